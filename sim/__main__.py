"""``python -m sim``: run the Exotel sandbox until SIGINT or SIGTERM.

Example::

    python -m sim --host 127.0.0.1 --port 8080 --scenario sim/scenarios/demo.yaml --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from dialstream.errors import ConfigurationError
from dialstream.settings import Settings
from sim.config import SandboxConfig
from sim.sandbox import Sandbox

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sim",
        description="Exotel sandbox: the Legs REST API, leg events over gRPC, AgentStream media to your bot.",
        epilog="The account and its credentials come from EXOTEL_ACCOUNT_SID, EXOTEL_API_KEY and "
        "EXOTEL_API_TOKEN, like every dialstream process (default: the built-in sandbox account).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--scenario", metavar="FILE", help="scenario YAML: callee models, limits, timing, faults (see sim/README.md)")
    parser.add_argument("--seed", type=int, help="seed for every random draw (default: the scenario's, else random)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # The account the rest of the stack dials with (EXOTEL_*; the sandbox's by default).
        settings = Settings.from_env()
        overrides: dict[str, Any] = {
            "host": args.host,
            "port": args.port,
            "account_sid": settings.account_sid,
            "api_key": settings.api_key,
            "api_token": settings.api_token,
        }
        if args.seed is not None:
            overrides["seed"] = args.seed
        if args.scenario:
            config = SandboxConfig.from_yaml(args.scenario, **overrides)
        else:
            config = SandboxConfig(**overrides)
    except ConfigurationError as exc:
        print(f"sim: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(config))
    except OSError as exc:  # typically: the port is taken
        print(f"sim: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(config: SandboxConfig) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    sandbox = Sandbox(config)
    await sandbox.start()
    try:
        print(
            f"sim: Exotel sandbox listening on {sandbox.url} (account {config.account_sid}, seed {sandbox.seed})",
            flush=True,
        )
        await stopping.wait()
    finally:
        await sandbox.stop()


if __name__ == "__main__":
    sys.exit(main())
