"""The ``dialstream`` command.

    dialstream demo [--contacts N] [--flow F] [--json-out PATH]   run a campaign end to end
    dialstream up                                                the whole stack until Ctrl-C
    dialstream campaign submit|status|pause|resume|cancel|report|purge  run real campaigns
    dialstream bots add|list|remove                              external bot fleets and their formats
    dialstream contact erase NUMBER                              erase a number everywhere
    dialstream sim ...                                           the Exotel sandbox alone
    dialstream bot ...                                           a bot server
    dialstream ingress ...                                       the gRPC event ingress
    dialstream api ...                                           the HTTP API, dashboard and /metrics
    dialstream apikey create|list|revoke                         the HTTP API's keys
    dialstream webhook add|list|remove|dead|replay               webhook endpoints and dead letters
    dialstream worker --queue events|dial|webhooks ...           a Celery worker
    dialstream settings                                          every variable and its value in effect
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import redis
from rich.console import Console

from dialstream.app import apikey_cli, bots_cli, campaign_cli, contact_cli, run_state, up, webhook_cli
from dialstream.app.embedded_redis import redis_for_cli
from dialstream.app.stack import StackConfig, worker_argv
from dialstream.broker.celery_app import DIAL_QUEUE, EVENTS_QUEUE, WEBHOOKS_QUEUE
from dialstream.domain.campaign import Flow
from dialstream.errors import ConfigurationError, EmbeddedRedisError
from dialstream.settings import Settings
from dialstream.state.client import connect_settings

__all__ = ["main"]

# Subcommands that belong to another package: their own parser handles the arguments.
_DELEGATED = {"sim": "sim.__main__", "bot": "bot.__main__", "ingress": "ingress.__main__", "api": "api.__main__"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dialstream", description="Outbound voice-bot campaigns on Exotel.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run a simulated campaign through the whole system")
    demo.add_argument("--contacts", type=int, default=20, help="simulated contacts to call (default 20)")
    demo.add_argument("--flow", choices=[f.value for f in Flow], default=Flow.GREETING_SAY.value)
    demo.add_argument("--greeting", default="Hello!", help="greeting text for greeting_say (200-500 ms of speech)")
    demo.add_argument("--json-out", type=Path, help="also write the report as JSON here")
    demo.add_argument("--scenario", type=Path, help="sandbox scenario YAML (default: sim/scenarios/demo.yaml)")
    demo.add_argument("--seed", type=int, default=7, help="sandbox random seed")
    demo.add_argument("--timeout", type=float, default=150.0, help="seconds to wait for every call to end")

    for name, help_text in (
        ("sim", "run the Exotel sandbox"),
        ("bot", "run a bot server"),
        ("ingress", "run the gRPC event ingress"),
        ("api", "run the HTTP API (campaigns, DNC, webhooks, dashboard, /metrics)"),
    ):
        commands.add_parser(name, help=help_text, add_help=False)

    worker = commands.add_parser("worker", help="run a Celery worker for one queue")
    worker.add_argument("--queue", choices=[EVENTS_QUEUE, DIAL_QUEUE, WEBHOOKS_QUEUE], required=True)
    worker.add_argument("--concurrency", "-c", type=int, default=StackConfig.concurrency, help="threads (default %(default)s)")
    worker.add_argument("--name", default="", help="node name (default: the queue)")

    up.add_parser(commands)
    campaign_cli.add_parser(commands)
    apikey_cli.add_parser(commands)
    webhook_cli.add_parser(commands)
    bots_cli.add_parser(commands)
    contact_cli.add_parser(commands)
    commands.add_parser("settings", help="every environment variable and the value in effect (secrets masked)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in _DELEGATED:
        module = __import__(_DELEGATED[argv[0]], fromlist=["main"])
        return int(module.main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    settings = Settings.for_command("dialstream")
    if settings is None:
        return 2
    if args.command in ("campaign", "apikey", "webhook", "contact") and not settings.redis_url:
        running = run_state.read()  # the stack `dialstream up` runs in this directory
        if running:
            settings = settings.replace(redis_url=running["redis_url"])
        else:  # none runs: the data an earlier up left in DIALSTREAM_DATA_DIR, if any
            try:
                with redis_for_cli(settings) as stored:
                    return _dispatch(args, stored)
            except EmbeddedRedisError as exc:
                print(f"dialstream {args.command}: {exc}", file=sys.stderr)
                return 2
    return _dispatch(args, settings)


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "demo":
        from dialstream.app.demo import DemoOptions, run_demo

        options = DemoOptions(
            contacts=args.contacts, flow=Flow(args.flow), greeting=args.greeting, timeout=args.timeout,
            json_out=args.json_out, scenario=args.scenario, seed=args.seed,
        )  # fmt: skip
        return run_demo(options, settings)
    if args.command == "up":
        return up.run(args, settings)
    if args.command == "campaign":
        return campaign_cli.run(args, settings)
    if args.command in ("apikey", "webhook"):
        return _redis_command(args, settings)
    if args.command == "bots":
        return bots_cli.run(args, settings)
    if args.command == "contact":
        return contact_cli.run(args, settings)
    if args.command == "worker":
        # The same command `dialstream up`, the tests and deploy/ run.
        argv = worker_argv(args.queue, args.name or args.queue, StackConfig(concurrency=args.concurrency))
        os.execv(argv[0], argv)
    if args.command == "settings":
        for name, value, help_text in settings.in_effect():
            print(f"{name:36} {value:40} {help_text}")
        return 0
    return 2


def _redis_command(args: argparse.Namespace, settings: Settings) -> int:
    """``apikey`` and ``webhook``: commands on the stack's Redis, their mistakes one line on stderr."""
    if not settings.redis_url:
        print(f"dialstream {args.command}: no stack found: run dialstream up here, or set REDIS_URL to its Redis", file=sys.stderr)
        return 2
    client = connect_settings(settings)
    module = apikey_cli if args.command == "apikey" else webhook_cli
    try:
        return module.run(args, client, Console())
    except KeyError as exc:
        print(f"dialstream {args.command}: {exc.args[0]}", file=sys.stderr)
        return 1
    except (ConfigurationError, redis.RedisError) as exc:
        print(f"dialstream {args.command}: {exc}", file=sys.stderr)
        return 2
    finally:
        client.close()


if __name__ == "__main__":
    raise SystemExit(main())
