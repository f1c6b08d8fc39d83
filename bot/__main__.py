"""``python -m bot``: run an AgentStream bot server (also ``dialstream bot``).

Examples::

    python -m bot --bot greeter --host 127.0.0.1 --port 8765
    python -m bot --bot echo --port 8765 --workers 4 --public-url ws://bot1.example:8765/ \\
        --redis-url redis://10.0.0.5:6379/0

``--workers N`` runs N independent processes on consecutive ports (8765, 8766, ...),
each registering its own URL in the fleet with its own capacity and load. We chose
consecutive ports over SO_REUSEPORT because the fleet balances by measured load per
URL: with one shared port the kernel would spread streams blindly and the per-process
load would be invisible to :func:`dialstream.state.fleet.select_bot`. The parent only forwards
SIGTERM/SIGINT to the workers and exits 1 if any of them failed.

The Basic-auth credentials come from the settings only (``DIALSTREAM_BOT_AUTH_USER``/
``_PASSWORD``), never from a flag, so they never show in ``ps``; a public URL holding
``user:pass@`` is refused, since it would put them in the fleet registry (the workers add
them to the URL they send Exotel). The public URL, the Redis URL and the metrics port and
bind address come from the settings too (``DIALSTREAM_BOT_PUBLIC_URL``, ``REDIS_URL``,
``DIALSTREAM_METRICS_PORT``/``_BIND``; see :class:`dialstream.settings.Settings`) unless a
flag overrides them.

SIGTERM (or Ctrl-C) drains: the process deregisters from the fleet, stops accepting
streams, lets calls in progress finish for up to ``--drain-timeout`` seconds, closes
the rest with 1001 and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from bot.api import Bot
from bot.bots import EchoBot, GreeterBot
from bot.config import BotServerConfig, Limits, Registration, Timeouts, TlsFiles
from bot.scripted import ScriptedBot
from bot.server import BotServer
from dialstream.errors import ConfigurationError
from dialstream.settings import Settings

__all__ = ["build_parser", "build_config", "main", "BUILTIN_BOTS"]

BUILTIN_BOTS: dict[str, type[Bot]] = {"echo": EchoBot, "greeter": GreeterBot, "scripted": ScriptedBot}

log = logging.getLogger("dialstream.bot")


def build_parser() -> argparse.ArgumentParser:
    defaults = BotServerConfig()
    parser = argparse.ArgumentParser(
        prog="python -m bot", description="Run an AgentStream bot server for Exotel to stream calls to."
    )
    parser.add_argument("--bot", choices=sorted(BUILTIN_BOTS), default="greeter", help="which built-in bot to run")
    parser.add_argument("--script", metavar="PATH", help="YAML script for --bot scripted (default: the shipped demo)")
    parser.add_argument("--host", default=defaults.host, help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=defaults.port, help="port; 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument("--workers", type=int, default=1, help="processes on consecutive ports (default: %(default)s)")
    parser.add_argument(
        "--capacity", type=int, default=defaults.limits.capacity, help="streams per process (default: %(default)s)"
    )
    parser.add_argument(
        "--public-url",
        default=None,
        help="URL registered in the fleet (default: DIALSTREAM_BOT_PUBLIC_URL; empty: ws://HOST:PORT/)",
    )
    parser.add_argument("--redis-url", default=None, help="fleet registry (default: REDIS_URL; empty: do not register)")
    parser.add_argument(
        "--key-prefix", default=defaults.registration.key_prefix, help="fleet key prefix (default: %(default)s, where workers look; another keeps a test fleet apart)"
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=defaults.timeouts.idle,
        help="seconds without a frame before closing (default: %(default)s)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=defaults.timeouts.drain,
        help="seconds calls may finish after SIGTERM (default: %(default)s)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus /metrics on DIALSTREAM_METRICS_BIND (default: DIALSTREAM_METRICS_PORT; 0: off)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the bot server until SIGTERM/SIGINT; return the process exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if bool(settings.bot_tls_cert) != bool(settings.bot_tls_key):
        parser.error("DIALSTREAM_BOT_TLS_CERT and DIALSTREAM_BOT_TLS_KEY go together: set both or neither")
    config = build_config(args, settings)
    if urlsplit(config.registration.public_url).username is not None:
        parser.error(
            "the public URL must not hold user:pass@ (it is stored in the fleet registry); "
            "set DIALSTREAM_BOT_AUTH_USER and DIALSTREAM_BOT_AUTH_PASSWORD instead"
        )
    if args.workers > 1:
        if args.port == 0:
            parser.error("--workers > 1 needs an explicit --port (workers use consecutive ports)")
        public_url = config.registration.public_url
        if public_url and urlsplit(public_url).port is None:
            parser.error("--workers > 1 needs a public URL (--public-url or DIALSTREAM_BOT_PUBLIC_URL) with a port")
        return _supervise(args, argv, settings, public_url)

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    bot = BUILTIN_BOTS[args.bot]
    if args.bot == "scripted":
        bot = ScriptedBot.from_file(args.script) if args.script else ScriptedBot.demo()
    metrics_port = settings.metrics_port if args.metrics_port is None else args.metrics_port
    if metrics_port:
        from prometheus_client import start_http_server

        from bot.metrics import REGISTRY

        start_http_server(metrics_port, addr=settings.metrics_bind, registry=REGISTRY)
    try:
        asyncio.run(_serve(args.bot, bot, config))
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def build_config(args: argparse.Namespace, settings: Settings) -> BotServerConfig:
    """The server's configuration: each value from its flag if given, else from ``settings``
    (Basic auth only from ``settings``)."""
    basic_auth = (settings.bot_auth_user, settings.bot_auth_password) if settings.bot_auth_user else None
    return BotServerConfig(
        host=args.host,
        port=args.port,
        basic_auth=basic_auth,
        tls=TlsFiles(settings.bot_tls_cert, settings.bot_tls_key) if settings.bot_tls_cert else None,
        timeouts=Timeouts(idle=args.idle_timeout, drain=args.drain_timeout),
        limits=Limits(capacity=args.capacity),
        registration=Registration(
            redis_url=settings.redis_url if args.redis_url is None else args.redis_url,
            public_url=settings.bot_public_url if args.public_url is None else args.public_url,
            key_prefix=args.key_prefix,
        ),
    )


async def _serve(name: str, bot: type[Bot], config: BotServerConfig) -> None:
    server = BotServer(bot, config)
    await server.start()
    # What is alive now (modules, prepared prompts) lives as long as the process: frozen,
    # it is no longer scanned by each full collection, which shortens those pauses of the
    # event loop that every stream's audio waits behind.
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    details = f"pid {os.getpid()}, capacity {config.limits.capacity}"
    if config.registration.redis_url:
        details += f", registered as {server.public_url}"
    print(f"dialstream bot {name!r} listening on {server.url} ({details})", flush=True)
    await stop.wait()
    log.info("signal received: draining")
    await server.drain()
    log.info("drained; exiting")


def _supervise(args: argparse.Namespace, argv: Sequence[str], settings: Settings, public_url: str) -> int:
    # argparse keeps the last occurrence of an option, so appending overrides per worker.
    metrics_port = settings.metrics_port if args.metrics_port is None else args.metrics_port
    children = []
    for index in range(args.workers):
        overrides = ["--workers", "1", "--port", str(args.port + index)]
        # Each worker registers its own port, whether the URL came from a flag or the environment.
        if public_url:
            overrides += ["--public-url", _offset_port(public_url, index)]
        if metrics_port:
            overrides += ["--metrics-port", str(metrics_port + index)]
        children.append(subprocess.Popen([sys.executable, "-m", "bot", *argv, *overrides]))

    def forward(signum: int, frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    statuses = [child.wait() for child in children]
    return 0 if not any(statuses) else 1


def _offset_port(url: str, offset: int) -> str:
    parts = urlsplit(url)
    assert parts.port is not None and parts.hostname is not None
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{parts.port + offset}"
    return urlunsplit(parts._replace(netloc=netloc))


if __name__ == "__main__":
    sys.exit(main())
