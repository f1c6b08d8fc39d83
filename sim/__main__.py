"""``python -m sim``: run the Exotel sandbox until SIGINT or SIGTERM.

Example::

    python -m sim --host 127.0.0.1 --port 8080 --scenario sim/scenarios/demo.yaml --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import sys
from typing import Any

from dialstream.errors import ConfigurationError
from dialstream.settings import Settings
from sim.config import DeliveryPolicy, SandboxConfig
from sim.sandbox import Sandbox

__all__ = ["build_parser", "build_config", "main"]


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
    tls = parser.add_argument_group(
        "event delivery over TLS", "override the scenario's delivery section; a bearer token or Basic credentials "
        "for the event endpoint go in the scenario file (delivery.bearer_token, delivery.basic_auth), never in argv"
    )  # fmt: skip
    tls.add_argument("--tls", action="store_true", help="deliver grpc:// endpoints over TLS too (grpcs:// and https:// always are)")
    tls.add_argument("--ca-file", metavar="PEM", help="CA bundle that verifies the event endpoint's certificate (default: system roots)")
    tls.add_argument("--client-cert", metavar="PEM", help="client certificate for mutual TLS (with --client-key)")
    tls.add_argument("--client-key", metavar="PEM", help="client private key for mutual TLS")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = build_config(args, Settings.from_env())
    except ConfigurationError as exc:
        print(f"sim: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(config))
    except ConfigurationError as exc:  # a TLS file named by the scenario cannot be read
        print(f"sim: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # typically: the port is taken
        print(f"sim: {exc}", file=sys.stderr)
        return 1
    return 0


def build_config(args: argparse.Namespace, settings: Settings) -> SandboxConfig:
    """The sandbox for the account the rest of the stack dials with (EXOTEL_*; the sandbox's by default)."""
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
    config = config.replace(delivery=_delivery(config.delivery, args))
    if not config.exophones:  # a scenario's list wins; else the account's pool the stack dials from
        config = config.replace(exophones=settings.caller_id_pool().numbers)
    return config


def _delivery(policy: DeliveryPolicy, args: argparse.Namespace) -> DeliveryPolicy:
    changes: dict[str, Any] = {"tls": True} if args.tls else {}
    for flag, key in (("ca_file", "ca_file"), ("client_cert", "client_cert_file"), ("client_key", "client_key_file")):
        if getattr(args, flag):
            changes[key] = getattr(args, flag)
    return dataclasses.replace(policy, **changes) if changes else policy


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
