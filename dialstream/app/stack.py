"""The whole system on one machine: sandbox, ingress, workers per queue, bots, the HTTP API, Flower.

``start_stack`` is what ``dialstream demo``, ``dialstream up``, the end-to-end tests and
the benchmarks run; they differ only in the :class:`StackConfig` they pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialstream.app.embedded_redis import free_port
from dialstream.app.supervisor import ProcessSpec, Supervisor
from dialstream.broker.celery_app import DIAL_QUEUE, EVENTS_QUEUE, WEBHOOKS_QUEUE
from dialstream.errors import ConfigurationError
from dialstream.settings import Settings

__all__ = ["StackConfig", "Stack", "start_stack", "start_api", "start_flower", "worker_argv"]


@dataclass(frozen=True)
class StackConfig:
    """Which processes to run. Worker counts are processes (Celery nodes), each running
    ``concurrency`` tasks at once on a thread pool: the tasks wait on the Legs API and
    Redis, not on the CPU, so threads (not prefork children) set how many calls a node
    serves in parallel."""

    events_workers: int = 1
    dial_workers: int = 1
    webhooks_workers: int = 0  # `up` runs one; the demo and most tests need none
    concurrency: int = 16
    bots: int = 1
    bot_kind: str = "greeter"
    bot_script: Path | None = None  # the YAML script of bot_kind "scripted" (None: the shipped demo)
    sandbox: bool = True
    scenario: Path | None = None
    seed: int = 7
    worker_log_level: str = "INFO"
    worker_app: str = "workers.tasks"  # the Celery app module (tests substitute one that crashes)
    # Every process serves Prometheus /metrics on a free loopback port of its own (the
    # sandbox on its API port); off, no process serves any, whatever the settings say.
    metrics: bool = False
    # Flower on 127.0.0.1:flower_port (0: a free port), HTTP Basic auth from the settings.
    flower: bool = False
    flower_port: int = 0
    # The HTTP API (its dashboard and /metrics) on api_port (0: a free one), on settings.api_bind's host.
    api: bool = False
    api_port: int = 0


@dataclass
class Stack:
    """Addresses of a running stack, and the settings every component was given."""

    settings: Settings
    sandbox_url: str = ""
    bot_urls: tuple[str, ...] = ()
    ingress_port: int = 0
    worker_names: list[str] = field(default_factory=list)
    metrics_urls: dict[str, str] = field(default_factory=dict)  # component name -> /metrics URL
    flower_url: str = ""
    api_url: str = ""


def start_stack(supervisor: Supervisor, settings: Settings, config: StackConfig = StackConfig()) -> Stack:
    """Start every component under ``supervisor`` and wait until all are ready.

    ``settings.redis_url`` must point at a running server. With ``config.sandbox`` the Legs
    API is the local sandbox (and the account credentials the sandbox's), and the ingress
    listens on a free loopback port. Without it Exotel itself sends the events, so the
    ingress listens on ``settings.ingress_bind`` and Exotel is given ``settings.event_endpoint``.
    """
    bot_ports = [free_port() for _ in range(config.bots)]
    bot_urls = tuple(f"ws://127.0.0.1:{port}/media" for port in bot_ports)
    settings = settings.replace(bot_urls=bot_urls or settings.bot_urls, metrics_port=0)
    if config.sandbox:
        port = free_port()
        settings = settings.replace(ingress_bind=f"127.0.0.1:{port}", event_endpoint=f"grpc://127.0.0.1:{port}")
    stack = Stack(settings=settings, bot_urls=bot_urls, ingress_port=int(settings.ingress_bind.rpartition(":")[2]))

    def start(name: str, argv: list[str], *, metrics_port: bool = True, own: Settings | None = None, **ready: Any) -> None:
        """Start one component, with a metrics port of its own when ``config.metrics``."""
        own = own or stack.settings
        if config.metrics and metrics_port:
            own = own.replace(metrics_port=free_port())
            stack.metrics_urls[name] = f"http://127.0.0.1:{own.metrics_port}/metrics"
        supervisor.start(ProcessSpec(name, argv, own.to_env(), **ready))

    if config.sandbox:
        sandbox_port = free_port()
        stack.sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        stack.settings = stack.settings.replace(api_base_url=stack.sandbox_url)
        argv = ["-m", "sim", "--host", "127.0.0.1", "--port", str(sandbox_port), "--seed", str(config.seed)]
        if config.scenario is not None:
            argv += ["--scenario", str(config.scenario)]
        # The sandbox serves /metrics on its API port.
        start("sandbox", Supervisor.python(*argv), metrics_port=False, ready_port=sandbox_port)
        if config.metrics:
            stack.metrics_urls["sandbox"] = f"{stack.sandbox_url}/metrics"
    for index, (port, url) in enumerate(zip(bot_ports, bot_urls, strict=True)):
        # Its own URL, whatever DIALSTREAM_BOT_PUBLIC_URL the shell exports for a real fleet.
        argv = ["-m", "bot", "--bot", config.bot_kind, "--host", "127.0.0.1", "--port", str(port), "--public-url", url]
        if config.bot_script is not None:
            argv += ["--script", str(config.bot_script)]
        start(f"bot-{index}", Supervisor.python(*argv), ready_port=port)
    # Ready when it says so: its bind address need not be a loopback one.
    argv = Supervisor.python("-m", "ingress", "--bind", stack.settings.ingress_bind)
    # Events acknowledged while Redis restarts wait on disk rather than being refused.
    spool = stack.settings.ingress_spool_dir or str(supervisor.log_dir / "ingress-spool")
    start("ingress", argv, own=stack.settings.replace(ingress_spool_dir=spool), ready_text="ingress listening on")
    queues = ((EVENTS_QUEUE, config.events_workers), (DIAL_QUEUE, config.dial_workers), (WEBHOOKS_QUEUE, config.webhooks_workers))
    for queue, count in queues:
        for index in range(count):
            name = f"{queue}-{index}"
            start(name, worker_argv(queue, name, config), ready_text=" ready.")
            stack.worker_names.append(name)
    if config.api:
        start_api(supervisor, stack, config)
    if config.flower:
        start_flower(supervisor, stack, config)
    supervisor.wait_ready()
    return stack


def start_api(supervisor: Supervisor, stack: Stack, config: StackConfig) -> None:
    """The HTTP API on ``config.api_port`` (0: a free port) of DIALSTREAM_API_BIND's host; it serves its own /metrics."""
    host = stack.settings.api_bind.rpartition(":")[0] or "127.0.0.1"
    port = config.api_port or free_port()
    stack.settings = stack.settings.replace(api_bind=f"{host}:{port}")
    stack.api_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
    if config.metrics:
        stack.metrics_urls["api"] = f"{stack.api_url}/metrics"
    argv = Supervisor.python("-m", "api", "--bind", stack.settings.api_bind)
    supervisor.start(ProcessSpec("api", argv, stack.settings.to_env(), ready_port=port))


def start_flower(supervisor: Supervisor, stack: Stack, config: StackConfig) -> None:
    """Flower on loopback; the credentials go in its environment, not on its command line."""
    settings = stack.settings
    if not settings.flower_password:
        raise ConfigurationError("Flower needs a password: set DIALSTREAM_FLOWER_PASSWORD")
    port = config.flower_port or free_port()
    stack.flower_url = f"http://127.0.0.1:{port}"
    if config.metrics:
        stack.metrics_urls["flower"] = f"{stack.flower_url}/metrics"
    env = {**settings.to_env(), "FLOWER_BASIC_AUTH": f"{settings.flower_user}:{settings.flower_password}"}
    # The args column (each task's masked argsrepr: leg, campaign, contact) is what tells calls apart.
    argv = Supervisor.python(
        "-m", "celery", "-A", config.worker_app, "flower", "--address=127.0.0.1", f"--port={port}",
        "--tasks_columns=name,uuid,state,args,received,runtime,worker",
    )  # fmt: skip
    supervisor.start(ProcessSpec("flower", argv, env, ready_port=port))


def worker_argv(queue: str, name: str, config: StackConfig) -> list[str]:
    """The Celery worker command for one queue: a node of ``concurrency`` threads, with
    ``workers.metrics`` loaded so it serves /metrics when given a port. Beside Flower it sends
    task events from its first task (``-E``); Flower alone would turn them on only 5 s after it starts."""
    return Supervisor.python(
        "-m", "celery", "-A", config.worker_app, "worker",
        "-Q", queue, "-n", f"{name}@%h", "-P", "threads", "-c", str(config.concurrency),
        "--include", "workers.metrics,workers.webhooks",
        "--without-gossip", "--without-mingle", "-l", config.worker_log_level,
        *(["-E"] if config.flower else []),
    )  # fmt: skip
