"""``python -m ingress`` (or ``dialstream ingress``): run the event ingress until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys
from typing import Any

from aiohttp import web
from grpc_health.v1 import health_pb2
from prometheus_client import start_http_server

from dialstream.broker.celery_app import EVENTS_QUEUE, GIL_SWITCH_INTERVAL, HANDLE_LEG_EVENT, create_app
from dialstream.broker.messages import task_argsrepr
from dialstream.broker.messages import task_message as build_task_message
from dialstream.errors import ConfigurationError
from dialstream.settings import Settings
from dialstream.state.client import connect_async
from ingress.core import EventIngress
from ingress.http import create_http_app
from ingress.server import create_health_server, create_server
from ingress.spool import EventSpool
from ingress.tls import ServerCertificates

__all__ = ["build_parser", "main", "serve", "check_bind"]

log = logging.getLogger("dialstream.ingress")

HEALTH_INTERVAL = 2.0  # seconds between Redis pings behind the health status
AWAY_INTERVAL = 0.2  # ... while Redis is down: its spool replayed and the workers told within this of its return
CERT_REFRESH_INTERVAL = 30.0  # seconds between checks of the certificate files (gRPC also checks per handshake)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dialstream ingress", description="Receive leg events and publish them.")
    parser.add_argument("--bind", help="gRPC host:port (default: DIALSTREAM_INGRESS_BIND)")
    parser.add_argument("--http-bind", default="", help="also serve the HTTPS event door on host:port (default: DIALSTREAM_EVENTS_HTTP_BIND)")
    return parser


def check_bind(bind: str, *, tls: bool, insecure_allowed: bool) -> None:
    """Refuse plaintext on an address other machines reach, unless explicitly allowed."""
    host = bind.rpartition(":")[0].strip("[]") or "0.0.0.0"
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not tls and not loopback and not insecure_allowed:
        raise ConfigurationError(
            f"the ingress would listen in plaintext on {bind}: set DIALSTREAM_INGRESS_TLS_CERT and "
            "DIALSTREAM_INGRESS_TLS_KEY (Exotel delivers only over TLS), or DIALSTREAM_INGRESS_INSECURE=true"
        )


async def serve(settings: Settings, bind: str, http_bind: str = "") -> None:
    certificates = None
    if settings.ingress_tls_cert or settings.ingress_tls_key:
        certificates = ServerCertificates(settings.ingress_tls_cert, settings.ingress_tls_key, settings.ingress_client_ca)
    elif settings.ingress_client_ca:
        raise ConfigurationError("DIALSTREAM_INGRESS_CLIENT_CA needs DIALSTREAM_INGRESS_TLS_CERT and _KEY")
    for address in filter(None, (bind, http_bind)):
        check_bind(address, tls=certificates is not None, insecure_allowed=settings.ingress_insecure)
    celery_app = create_app(settings)

    def task_message(payload: dict[str, Any], priority: int) -> str:
        # argsrepr: Flower shows the leg and campaign, not the callee's number in the payload.
        args = [payload]
        argsrepr = task_argsrepr(HANDLE_LEG_EVENT, args)
        return build_task_message(celery_app, HANDLE_LEG_EVENT, args, queue=EVENTS_QUEUE, argsrepr=argsrepr, priority=priority)

    redis_client = connect_async(settings.redis_url, timeout=settings.redis_socket_timeout, decode_responses=False)
    ingress = EventIngress(
        redis_client,
        task_message,
        queue=EVENTS_QUEUE,
        account_sid=settings.account_sid,
        tag_secret=settings.tag_secret,
        dedupe_ttl=settings.dedupe_ttl,
        rescue_after=settings.event_rescue_after,
        spool=EventSpool(settings.ingress_spool_dir, max_events=settings.ingress_spool_max) if settings.ingress_spool_dir else None,
    )
    credentials = certificates.grpc_credentials() if certificates else None
    server, port, health = create_server(ingress, bind, credentials=credentials, token=settings.ingress_token)
    await server.start()
    probe_server = None
    if settings.ingress_health_bind:
        probe_server = create_health_server(health, settings.ingress_health_bind)
        await probe_server.start()
    runner: web.AppRunner | None = None
    if http_bind:
        host, _, http_port = http_bind.rpartition(":")
        app = create_http_app(
            ingress, user=settings.events_http_user, password=settings.events_http_password, token=settings.ingress_token
        )
        runner = web.AppRunner(app)
        await runner.setup()
        ssl_context = certificates.ssl_context() if certificates else None
        await web.TCPSite(runner, host, int(http_port), ssl_context=ssl_context).start()
    scheme = ("grpcs", "https") if certificates else ("grpc", "http")
    mutual = " (mutual TLS)" if certificates and certificates.mutual else ""
    door = f" and {scheme[1]}://{http_bind}/v1/events" if http_bind else ""
    print(f"ingress listening on {scheme[0]}://{bind.rpartition(':')[0]}:{port}{door}{mutual}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watch = asyncio.create_task(_watch(redis_client, ingress, health, certificates, stop))
    await stop.wait()
    await health.enter_graceful_shutdown()
    watch.cancel()
    # Finish in-flight RPCs (their publishes) before closing the Redis connection.
    await server.stop(grace=5)
    if probe_server is not None:
        await probe_server.stop(grace=0)
    if runner is not None:
        await runner.cleanup()
    await redis_client.aclose()
    celery_app.close()


async def _watch(
    redis_client: Any, ingress: EventIngress, health: Any, certificates: ServerCertificates | None, stop: asyncio.Event
) -> None:
    """Health follows Redis (an ingress that cannot publish should not get traffic); spooled
    events are published once Redis answers, and the workers are told the ingress is back
    (after its start, or Redis's return); the HTTPS door's certificate follows its files."""
    status, since_refresh, away = None, 0.0, True  # away: started or lost Redis, and not said it is back yet
    while not stop.is_set():
        try:
            await redis_client.ping()
            redis_up = True
        except Exception:  # noqa: BLE001 - any failure means events cannot be published now
            redis_up = False
        if redis_up and (published := await ingress.replay()):
            log.warning("published %d events spooled while Redis was down", published)
        away = away or not redis_up
        if redis_up and away:
            try:
                await ingress.back()
                away = False
            except Exception:  # noqa: BLE001 - said at the next check
                log.warning("could not tell the workers the ingress is back; trying again")
        # Without Redis the ingress still takes events while its spool has room.
        new = SERVING if redis_up or ingress.spool_has_room else NOT_SERVING
        if new != status:
            await health.set("", new)
            if status is not None:
                log.warning("health %s", "SERVING" if new == SERVING else "NOT_SERVING (Redis down, spool full or off)")
            status = new
        since_refresh += AWAY_INTERVAL if away else HEALTH_INTERVAL
        if certificates is not None and since_refresh >= CERT_REFRESH_INTERVAL:
            since_refresh = 0.0
            try:
                certificates.refresh()
            except ConfigurationError as exc:
                log.error("%s; still serving the previous certificate", exc)
        await asyncio.sleep(AWAY_INTERVAL if away else HEALTH_INTERVAL)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)  # grpc's completion-queue threads share the GIL with the event loop
    logging.basicConfig(level=logging.INFO, format="%(asctime)s ingress %(levelname)s %(message)s")
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_bind)
    try:
        asyncio.run(serve(settings, args.bind or settings.ingress_bind, args.http_bind or settings.events_http_bind))
    except ConfigurationError as exc:
        print(f"dialstream ingress: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
