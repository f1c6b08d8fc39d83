"""``python -m api`` (or ``dialstream api``): serve the HTTP API with uvicorn.

    python -m api [--bind HOST:PORT]      default DIALSTREAM_API_BIND

uvicorn logs ``Uvicorn running on http://HOST:PORT`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from api.app import create_app
from dialstream.settings import Settings

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dialstream api", description="Serve the HTTP API, its dashboard and /metrics.")
    parser.add_argument("--bind", default="", help="host:port (default: DIALSTREAM_API_BIND)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.for_command("dialstream api")
    if settings is None:
        return 2
    if not settings.redis_url:
        print("dialstream api: set REDIS_URL to the Redis the workers use", file=sys.stderr)
        return 2
    host, _, port = (args.bind or settings.api_bind).rpartition(":")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s api %(levelname)s %(message)s")
    config = uvicorn.Config(create_app(settings), host=host or "127.0.0.1", port=int(port), log_level="info", timeout_graceful_shutdown=3)
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
