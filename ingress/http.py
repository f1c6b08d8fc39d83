"""The second door: Exotel's HTTPS JSON event endpoint shape, into the same ingress.

``POST /v1/events`` with the documented event JSON (and ``X-Exotel-Event-Sid``). Any 2xx
acknowledges; 400 means malformed (Exotel does not retry other 4xx); 503 asks for a retry.
"""

from __future__ import annotations

import time

from aiohttp import web

from dialstream.errors import EventPublishError, InvalidEvent
from dialstream.exotel.events import LegEvent
from ingress.core import EVENTS_RECEIVED, EventIngress

__all__ = ["create_http_app"]


def create_http_app(ingress: EventIngress) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
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
        except EventPublishError as exc:
            return web.json_response({"error": str(exc)}, status=503)
        return web.json_response({"status": result})

    app = web.Application(client_max_size=256 * 1024)
    app.router.add_post("/v1/events", receive)
    return app
