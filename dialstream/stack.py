"""The whole system on one machine: sandbox, ingress, workers per queue, bots.

``start_stack`` is what ``dialstream demo``, ``dialstream up``, the end-to-end tests and
the benchmarks run; they differ only in the :class:`StackConfig` they pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dialstream.embedded_redis import free_port
from dialstream.settings import Settings
from dialstream.supervisor import ProcessSpec, Supervisor
from workers.app import DIAL_QUEUE, EVENTS_QUEUE

__all__ = ["StackConfig", "Stack", "start_stack"]


@dataclass(frozen=True)
class StackConfig:
    """Which processes to run. Worker counts are processes (Celery nodes), each running
    ``concurrency`` tasks at once on a thread pool: the tasks wait on the Legs API and
    Redis, not on the CPU, so threads (not prefork children) set how many calls a node
    serves in parallel."""

    events_workers: int = 1
    dial_workers: int = 1
    concurrency: int = 16
    bots: int = 1
    bot_kind: str = "greeter"
    sandbox: bool = True
    scenario: Path | None = None
    seed: int = 7
    worker_log_level: str = "INFO"
    worker_app: str = "workers.tasks"  # the Celery app module (tests substitute one that crashes)


@dataclass
class Stack:
    """Addresses of a running stack, and the settings every component was given."""

    settings: Settings
    sandbox_url: str = ""
    bot_urls: tuple[str, ...] = ()
    ingress_port: int = 0
    worker_names: list[str] = field(default_factory=list)


def start_stack(supervisor: Supervisor, settings: Settings, config: StackConfig = StackConfig()) -> Stack:
    """Start every component under ``supervisor`` and wait until all are ready.

    ``settings.redis_url`` must point at a running server. With ``config.sandbox`` the Legs
    API is the local sandbox (and the account credentials the sandbox's).
    """
    ingress_port = free_port()
    bot_ports = [free_port() for _ in range(config.bots)]
    bot_urls = tuple(f"ws://127.0.0.1:{port}/media" for port in bot_ports)
    settings = settings.replace(
        ingress_bind=f"127.0.0.1:{ingress_port}",
        event_endpoint=f"grpc://127.0.0.1:{ingress_port}",
        bot_urls=bot_urls or settings.bot_urls,
    )
    stack = Stack(settings=settings, bot_urls=bot_urls, ingress_port=ingress_port)
    if config.sandbox:
        sandbox_port = free_port()
        stack.sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        settings = stack.settings = settings.replace(api_base_url=stack.sandbox_url)
        argv = ["-m", "sim", "--host", "127.0.0.1", "--port", str(sandbox_port), "--seed", str(config.seed)]
        if config.scenario is not None:
            argv += ["--scenario", str(config.scenario)]
        supervisor.start(ProcessSpec("sandbox", Supervisor.python(*argv), settings.to_env(), ready_port=sandbox_port))
    env = settings.to_env()
    for index, port in enumerate(bot_ports):
        argv = ["-m", "bot", "--bot", config.bot_kind, "--host", "127.0.0.1", "--port", str(port)]
        supervisor.start(ProcessSpec(f"bot-{index}", Supervisor.python(*argv), env, ready_port=port))
    supervisor.start(
        ProcessSpec("ingress", Supervisor.python("-m", "ingress", "--bind", settings.ingress_bind), env, ready_port=ingress_port)
    )
    for queue, count in ((EVENTS_QUEUE, config.events_workers), (DIAL_QUEUE, config.dial_workers)):
        for index in range(count):
            name = f"{queue}-{index}"
            supervisor.start(ProcessSpec(name, worker_argv(queue, name, config), env, ready_text=" ready."))
            stack.worker_names.append(name)
    supervisor.wait_ready()
    return stack


def worker_argv(queue: str, name: str, config: StackConfig) -> list[str]:
    """The Celery worker command for one queue: a node of ``concurrency`` threads."""
    return Supervisor.python(
        "-m", "celery", "-A", config.worker_app, "worker",
        "-Q", queue, "-n", f"{name}@%h", "-P", "threads", "-c", str(config.concurrency),
        "--without-gossip", "--without-mingle", "-l", config.worker_log_level,
    )  # fmt: skip
