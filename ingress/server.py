"""The gRPC ingress: Exotel calls ``TriggerCallbackEvent`` here for every leg event.

Status codes the sender sees:

- ``OK``: the event is published (or was a duplicate of one that is);
- ``INVALID_ARGUMENT``: the event is malformed; retrying it will not help;
- ``UNAVAILABLE``: it could not be published now; retry.
"""

from __future__ import annotations

import time

import grpc

from dialstream.errors import EventPublishError, InvalidEvent
from dialstream.exotel.proto import (
    CallbackEventResponse,
    CallbackServiceServicer,
    add_servicer,
    event_from_message,
)
from ingress.core import EVENTS_RECEIVED, EventIngress

__all__ = ["CallbackServicer", "create_server"]


class CallbackServicer(CallbackServiceServicer):
    def __init__(self, ingress: EventIngress) -> None:
        self._ingress = ingress

    async def TriggerCallbackEvent(self, request, context: grpc.aio.ServicerContext):  # noqa: N802 - Exotel's name
        try:
            event = event_from_message(request, received_at=time.time())
        except InvalidEvent as exc:
            EVENTS_RECEIVED.labels("invalid").inc()
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            result = await self._ingress.accept(event)
        except EventPublishError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return CallbackEventResponse(success=True, message=result)


def create_server(ingress: EventIngress, bind: str) -> tuple[grpc.aio.Server, int]:
    """A gRPC server with the callback service on ``bind`` (host:port; port 0 picks one)."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    add_servicer(CallbackServicer(ingress), server)
    port = server.add_insecure_port(bind)
    if port == 0:
        raise OSError(f"could not bind the gRPC ingress to {bind}")
    return server, port
