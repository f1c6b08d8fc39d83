"""``dialstream up``: the whole stack on this machine until Ctrl-C, with the API, Flower and metrics.

First checks what it needs: the ports of the API and Flower (and the ingress, for real
Exotel) are free, no other ``up`` runs in this directory, a given ``REDIS_URL`` answers; it
refuses in one line otherwise, before starting anything. Then starts Redis (an embedded
Valkey unless ``REDIS_URL``), the Exotel sandbox (unless real Exotel credentials are
configured, see :func:`uses_sandbox`), the gRPC ingress, Celery worker processes per queue,
bots, the HTTP API and Flower; prints one line per component with its address and its
Prometheus ``/metrics`` URL, the dashboard's URL and a first API key; writes
``.ds-run/stack.json`` (:mod:`dialstream.app.run_state`) so the CLI finds the stack; then
supervises them: a component that dies is restarted with backoff, the embedded Valkey too
(on its data directory, ``DIALSTREAM_DATA_DIR``), and losing Redis is reported once (and its
return). SIGINT or SIGTERM stops every process it started, after the calls in progress end
(:mod:`dialstream.app.drain`); if ``up`` itself is killed, its children die with it.

Example::

    dialstream up --events-workers 2 --bots 2
"""

from __future__ import annotations

import argparse
import secrets
import signal
import sys
import tempfile
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

from dialstream.app import run_state
from dialstream.app.drain import drain_calls
from dialstream.app.embedded_redis import EmbeddedRedis, bindable
from dialstream.app.redis_watch import RedisWatch
from dialstream.app.stack import Stack, StackConfig, start_stack
from dialstream.app.supervisor import ProcessFailed, Supervisor
from dialstream.broker.celery_app import DIAL_QUEUE
from dialstream.errors import ConfigurationError, EmbeddedRedisError
from dialstream.settings import SANDBOX_API_KEY, SANDBOX_API_TOKEN, Settings
from dialstream.state.api_keys import ApiKeys
from dialstream.state.client import connect, connect_settings
from dialstream.state.slots import Slots

__all__ = ["add_parser", "run", "uses_sandbox", "main", "READY_LINE"]

READY_LINE = "dialstream is up; Ctrl-C stops everything"
_CHECK_INTERVAL = 0.5  # seconds between checks that every component is still running


def uses_sandbox(settings: Settings) -> bool:
    """The rule for the sandbox: it runs while the Exotel credentials are the sandbox's own.

    Credentials, not the API URL, decide: whoever sets a real API key and token means to
    dial for real, and the default URL is Exotel's, not the sandbox's.
    """
    return settings.api_key == SANDBOX_API_KEY and settings.api_token == SANDBOX_API_TOKEN


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``up`` to the CLI's subparsers (``argparse._SubParsersAction``)."""
    defaults = StackConfig()
    up = subparsers.add_parser(
        "up",
        help="run the whole stack locally until Ctrl-C (Flower, metrics; the sandbox unless real Exotel credentials)",
        description=__doc__.splitlines()[0],
    )
    up.add_argument(
        "--events-workers", type=int, default=defaults.events_workers, help="worker processes for queue events"
    )
    up.add_argument("--dial-workers", type=int, default=defaults.dial_workers, help="worker processes for queue dial")
    up.add_argument("--webhooks-workers", type=int, default=1, help="worker processes for queue webhooks")
    up.add_argument("--concurrency", type=int, default=defaults.concurrency, help="threads per worker process")
    up.add_argument("--bots", type=int, default=defaults.bots, help="bot processes (0: use DIALSTREAM_BOT_URLS)")
    up.add_argument("--bot", default=defaults.bot_kind, help="built-in bot to run (default: %(default)s)")
    up.add_argument("--flower-port", type=int, default=5555, help="Flower's port on 127.0.0.1; 0 picks a free one")
    up.add_argument("--api-port", type=int, default=None, help="the HTTP API's port (default: DIALSTREAM_API_BIND's); 0 picks a free one")
    up.add_argument("--scenario", type=Path, help="sandbox scenario YAML")
    up.add_argument("--seed", type=int, default=defaults.seed, help="sandbox random seed")
    up.add_argument("--log-dir", type=Path, help="where each component's log goes (default: a new temporary directory)")
    up.add_argument(
        "--drain-timeout", type=float, default=60.0, help="seconds Ctrl-C waits for calls in progress to end (default %(default)s)"
    )
    return up


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run until SIGINT/SIGTERM; 0 after a requested stop, 2 if a component did not start (one
    that dies later is restarted)."""
    api_port = int(settings.api_bind.rpartition(":")[2]) if args.api_port is None else args.api_port
    refusal = preflight(settings, args.flower_port, api_port)
    if refusal:
        _say(refusal)
        return 2
    stop, stop_now = threading.Event(), threading.Event()

    def on_signal(*_: object) -> None:
        (stop_now if stop.is_set() else stop).set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with ExitStack() as cleanup:
            generated = not settings.flower_password
            if generated:
                settings = settings.replace(flower_password=secrets.token_urlsafe(12))
            log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="dialstream-up-"))
            _say(f"starting; logs in {log_dir}")
            supervisor = Supervisor(log_dir)
            try:
                settings, redis_note = _start_redis(supervisor, settings, cleanup)
            except (ProcessFailed, EmbeddedRedisError) as exc:
                _say(f"redis failed to start: {exc}")
                return 2
            config = StackConfig(
                events_workers=args.events_workers, dial_workers=args.dial_workers, concurrency=args.concurrency,
                bots=args.bots, bot_kind=args.bot, sandbox=uses_sandbox(settings), scenario=args.scenario,
                seed=args.seed, metrics=True, flower=True, flower_port=args.flower_port,
                webhooks_workers=args.webhooks_workers, api=True, api_port=api_port,
            )  # fmt: skip
            try:
                stack = start_stack(supervisor, settings, config)
            except (ProcessFailed, ConfigurationError) as exc:
                _say(f"a component failed to start: {exc}")
                return 2
            for line in status_lines(stack, redis_note, generated):
                _say(line)
            token = first_key(stack.settings)
            _say(f"{'dashboard':10} {stack.api_url}/dashboard#key={token}")
            _say(f"{'apikey':10} {token}  (write scope; more: dialstream apikey create)")
            run_state.write(state_of(stack))
            cleanup.callback(run_state.remove)
            _say(f"{'state':10} {run_state.STATE_FILE}: the CLI here finds this stack by itself")
            _say(READY_LINE)
            client = connect(stack.settings.redis_url, timeout=1)  # the watch must not hang the loop
            cleanup.callback(client.close)
            watch = RedisWatch(client)
            while not stop.wait(_CHECK_INTERVAL):
                supervisor.heal(_say)
                if line := watch.check():
                    _say(line)
            _say("stopping...")
            dial_workers = [name for name in stack.worker_names if name.startswith(f"{DIAL_QUEUE}-")]
            slots = Slots(client, stack.settings.account_sid)
            drain_calls(supervisor, dial_workers, slots, timeout=args.drain_timeout, stop_now=stop_now, say=_say)
        _say("every component stopped")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _start_redis(supervisor: Supervisor, settings: Settings, cleanup: ExitStack) -> tuple[Settings, str]:
    """Settings with the Redis URL (the embedded Valkey, started and healed by ``supervisor``
    on ``DIALSTREAM_DATA_DIR``, unless ``REDIS_URL``), and a note for its status line.
    ``cleanup`` stops the supervisor's children, then lets go of the data directory."""
    if settings.redis_url:
        cleanup.enter_context(supervisor)
        return settings, ""
    server = EmbeddedRedis(data_dir=settings.valkey_dir)
    cleanup.callback(server.unlock)
    cleanup.enter_context(supervisor)
    supervisor.start(server.spec())
    supervisor.wait_ready()
    return settings.replace(redis_url=server.url), f" (embedded Valkey, data in {settings.valkey_dir})"


def preflight(settings: Settings, flower_port: int, api_port: int) -> str:
    """Why ``up`` must not start, in one line, or ''. Nothing is started before this passes."""
    running = run_state.read()
    if running:
        return f"another dialstream up (pid {running['pid']}) runs in this directory: its API is {running.get('api_url')}"
    api_host = settings.api_bind.rpartition(":")[0] or "127.0.0.1"
    wanted = [("the API", api_host, api_port), ("Flower", "127.0.0.1", flower_port)]
    if not uses_sandbox(settings):
        host, _, port = settings.ingress_bind.rpartition(":")
        wanted.append(("the ingress", host, int(port)))
    for what, host, port in wanted:
        if port and not bindable(host, port, reuse=True):
            return f"port {port} on {host} ({what}) is taken: stop what uses it, or choose another port (see dialstream up --help)"
    if settings.redis_url:
        client = connect(settings.redis_url, timeout=3)
        try:
            client.ping()
        except redis.RedisError as exc:
            return f"the Redis at {_redact(settings.redis_url)} does not answer ({exc}); unset REDIS_URL for an embedded one"
        finally:
            client.close()
    return ""


def first_key(settings: Settings) -> str:
    """A write key for the person who started the stack (a new one each time; old ones stay valid until revoked)."""
    client = connect_settings(settings)
    try:
        return ApiKeys(client).create("write", name="dialstream up")[1]
    finally:
        client.close()


def state_of(stack: Stack) -> dict[str, object]:
    """What the CLI needs to find this stack (``.ds-run/stack.json``)."""
    return {
        "redis_url": stack.settings.redis_url,
        "api_url": stack.api_url,
        "dashboard_url": f"{stack.api_url}/dashboard",
        "flower_url": stack.flower_url,
        "sandbox_url": stack.sandbox_url,
        "ports": {"api": int(stack.api_url.rpartition(":")[2]), "flower": int(stack.flower_url.rpartition(":")[2]), "ingress": stack.ingress_port},
    }


def status_lines(stack: Stack, redis_note: str, generated_password: bool) -> list[str]:
    """One line per component: what it is, where it listens, its /metrics."""
    settings, metrics = stack.settings, stack.metrics_urls

    def line(name: str, what: str) -> str:
        suffix = f"  metrics {metrics[name]}" if name in metrics else ""
        return f"{name:10} {what}{suffix}"

    lines = [line("redis", _redact(settings.redis_url) + redis_note)]
    if stack.sandbox_url:
        lines.append(line("sandbox", f"{stack.sandbox_url}  (Exotel sandbox: Legs API /v2, reports /sim/v1)"))
    else:
        lines.append(line("exotel", f"{settings.api_base_url}  (real account {settings.account_sid})"))
    lines.append(line("ingress", f"grpc://{settings.ingress_bind}  (Exotel sends events to {settings.event_endpoint})"))
    for name in stack.worker_names:
        lines.append(line(name, f"celery worker, queue {name.rsplit('-', 1)[0]}"))
    for index, url in enumerate(stack.bot_urls):
        lines.append(line(f"bot-{index}", url))
    lines.append(line("api", f"{stack.api_url}  (docs {stack.api_url}/docs)"))
    password = settings.flower_password if generated_password else "from DIALSTREAM_FLOWER_PASSWORD"
    lines.append(line("flower", f"{stack.flower_url}  (user {settings.flower_user}, password {password})"))
    return lines


def _redact(url: str) -> str:
    """``redis://:secret@host`` -> ``redis://:***@host``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _say(text: str) -> None:
    print(f"dialstream up: {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m dialstream.app.up [options]``: the same as ``dialstream up``."""
    parser = argparse.ArgumentParser(prog="dialstream")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["up", *(sys.argv[1:] if argv is None else argv)])
    settings = Settings.for_command("dialstream")
    if settings is None:
        return 2
    return run(args, settings)


if __name__ == "__main__":
    raise SystemExit(main())
