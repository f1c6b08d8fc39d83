"""The gRPC door: Exotel calls ``TriggerCallbackEvent`` here for every leg event.

Status codes the sender sees:

- ``OK``: the event is published, was a duplicate of one that is, or is acknowledged and
  dropped (not ours to handle: see ``ingress.core``);
- ``INVALID_ARGUMENT``: the event is malformed; retrying it will not help;
- ``UNAUTHENTICATED``: the bearer token is missing or wrong (when one is configured);
- ``PERMISSION_DENIED``: the event is for another account;
- ``UNAVAILABLE``: it could not be published now; retry.

The server also answers the standard health (``grpc.health.v1``) and server reflection
services, so ``grpcurl`` and Kubernetes gRPC probes work without credentials; health turns
``NOT_SERVING`` while Redis does not answer, and when the server stops.
"""

from __future__ import annotations

import hmac
import time

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from dialstream.errors import EventPublishError, EventRefused, InvalidEvent
from dialstream.exotel.proto import (
    SERVICE_NAME,
    CallbackEventResponse,
    CallbackServiceServicer,
    add_servicer,
    event_from_message,
)
from ingress.core import EVENTS_RECEIVED, EventIngress

__all__ = ["CallbackServicer", "create_server", "create_health_server", "MAX_MESSAGE_BYTES"]

# Exotel's events are a few KiB; anything far larger is not an event.
MAX_MESSAGE_BYTES = 64 * 1024


class CallbackServicer(CallbackServiceServicer):
    def __init__(self, ingress: EventIngress, *, token: str = "") -> None:
        self._ingress = ingress
        self._authorization = f"Bearer {token}".encode() if token else b""

    async def TriggerCallbackEvent(self, request, context: grpc.aio.ServicerContext):  # noqa: N802 - Exotel's name
        if self._authorization and not self._authorized(context):
            EVENTS_RECEIVED.labels("unauthenticated").inc()
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        try:
            event = event_from_message(request, received_at=time.time())
        except InvalidEvent as exc:
            EVENTS_RECEIVED.labels("invalid").inc()
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            result = await self._ingress.accept(event)
        except EventRefused as exc:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        except EventPublishError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return CallbackEventResponse(success=True, message=result)

    def _authorized(self, context: grpc.aio.ServicerContext) -> bool:
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                given = value if isinstance(value, bytes) else value.encode()
                return hmac.compare_digest(given, self._authorization)
        return False


def create_server(
    ingress: EventIngress,
    bind: str,
    *,
    credentials: grpc.ServerCredentials | None = None,
    token: str = "",
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """A gRPC server with the callback, health and reflection services on ``bind`` (host:port;
    port 0 picks one), over TLS when ``credentials`` are given. Returns it, its port and its
    health servicer (the caller sets the serving status)."""
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
    )
    add_servicer(CallbackServicer(ingress, token=token), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    port = server.add_secure_port(bind, credentials) if credentials else server.add_insecure_port(bind)
    if port == 0:
        raise OSError(f"could not bind the gRPC ingress to {bind}")
    return server, port, health_servicer


def create_health_server(health_servicer: health.aio.HealthServicer, bind: str) -> grpc.aio.Server:
    """A plaintext server answering only ``grpc.health.v1`` from ``health_servicer``, for probes
    that cannot speak TLS (Kubernetes' gRPC probes). It carries no event, so plaintext is safe."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if server.add_insecure_port(bind) == 0:
        raise OSError(f"could not bind the ingress health port to {bind}")
    return server
