"""``python -m ingress`` (or ``dialstream ingress``): run the event ingress until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

from aiohttp import web
from prometheus_client import start_http_server

from dialstream.broker.celery_app import (
    EVENTS_QUEUE,
    GIL_SWITCH_INTERVAL,
    HANDLE_LEG_EVENT,
    create_app,
)
from dialstream.broker.messages import task_argsrepr
from dialstream.broker.messages import task_message as build_task_message
from dialstream.settings import Settings
from dialstream.state.client import connect_async
from ingress.core import EventIngress
from ingress.http import create_http_app
from ingress.server import create_server

__all__ = ["build_parser", "main", "serve"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dialstream ingress", description="Receive leg events and publish them.")
    parser.add_argument("--bind", help="gRPC host:port (default: DIALSTREAM_INGRESS_BIND)")
    parser.add_argument("--http-bind", default="", help="also serve the HTTPS-style JSON endpoint on host:port")
    return parser


async def serve(settings: Settings, bind: str, http_bind: str = "") -> None:
    celery_app = create_app(settings)

    def task_message(payload: dict[str, Any]) -> str:
        # argsrepr: Flower shows the leg and campaign, not the callee's number in the payload.
        args = [payload]
        argsrepr = task_argsrepr(HANDLE_LEG_EVENT, args)
        return build_task_message(celery_app, HANDLE_LEG_EVENT, args, queue=EVENTS_QUEUE, argsrepr=argsrepr)

    redis_client = connect_async(settings.redis_url, timeout=settings.redis_socket_timeout, decode_responses=False)
    ingress = EventIngress(
        redis_client, task_message, queue=EVENTS_QUEUE, dedupe_ttl=settings.dedupe_ttl, rescue_after=settings.event_rescue_after
    )
    server, port = create_server(ingress, bind)
    await server.start()
    runner: web.AppRunner | None = None
    if http_bind:
        host, _, http_port = http_bind.rpartition(":")
        runner = web.AppRunner(create_http_app(ingress))
        await runner.setup()
        await web.TCPSite(runner, host, int(http_port)).start()
    print(f"ingress listening on grpc://{bind.rpartition(':')[0]}:{port}" + (f" and http://{http_bind}/v1/events" if http_bind else ""), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    # Finish in-flight RPCs (their publishes) before closing the Redis connection.
    await server.stop(grace=5)
    if runner is not None:
        await runner.cleanup()
    await redis_client.aclose()
    celery_app.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)  # grpc's completion-queue threads share the GIL with the event loop
    logging.basicConfig(level=logging.INFO, format="%(asctime)s ingress %(levelname)s %(message)s")
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_bind)
    asyncio.run(serve(settings, args.bind or settings.ingress_bind, args.http_bind))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
