"""The HTTPS door: Exotel's HTTPS event-endpoint shape, into the same ingress core.

``POST /v1/events`` with the documented event JSON (and ``X-Exotel-Event-Sid``). Any 2xx
acknowledges; 400 means malformed and 403 another account (Exotel does not retry other
4xx); 401 asks for credentials (HTTP Basic, which Exotel can send, or the bearer token);
503 asks for a retry. TLS is the caller's ``ssl_context`` (``ingress.tls``).
"""

from __future__ import annotations

import hmac
import time

from aiohttp import web

from dialstream.errors import EventPublishError, EventRefused, InvalidEvent
from dialstream.exotel.basic_auth import basic_auth_matches
from dialstream.exotel.events import LegEvent
from ingress.core import EVENTS_RECEIVED, EventIngress

__all__ = ["create_http_app", "MAX_BODY_BYTES"]

MAX_BODY_BYTES = 64 * 1024  # as the gRPC door's message cap


def create_http_app(ingress: EventIngress, *, user: str = "", password: str = "", token: str = "") -> web.Application:
    """The door's app; with ``user`` (HTTP Basic) or ``token`` (Bearer) set, one of them is required."""
    bearer = f"Bearer {token}" if token else ""

    def authorized(request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if user and basic_auth_matches(header, user, password):
            return True
        return bool(bearer) and hmac.compare_digest(header.encode(), bearer.encode())

    async def receive(request: web.Request) -> web.Response:
        if (user or bearer) and not authorized(request):
            EVENTS_RECEIVED.labels("unauthenticated").inc()
            return web.json_response(
                {"error": "credentials required"}, status=401, headers={"WWW-Authenticate": 'Basic realm="dialstream events"'}
            )
        try:
            body = await request.json()
        except ValueError:
            EVENTS_RECEIVED.labels("invalid").inc()
            return web.json_response({"error": "body is not JSON"}, status=400)
        header_sid = request.headers.get("X-Exotel-Event-Sid")
        try:
            event = LegEvent.from_dict({**body, "received_at": time.time()} if isinstance(body, dict) else body)
            if header_sid and header_sid != event.event_sid:
                raise InvalidEvent("X-Exotel-Event-Sid", "does not match event_sid")
        except InvalidEvent as exc:
            EVENTS_RECEIVED.labels("invalid").inc()
            return web.json_response({"error": str(exc)}, status=400)
        try:
            result = await ingress.accept(event)
        except EventRefused as exc:
            return web.json_response({"error": str(exc)}, status=403)
        except EventPublishError as exc:
            return web.json_response({"error": str(exc)}, status=503)
        return web.json_response({"status": result})

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/v1/events", receive)
    return app
