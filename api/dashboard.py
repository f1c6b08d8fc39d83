"""The dashboard page and the server-sent events that keep it live.

``/dashboard`` is one self-contained page (``static/dashboard.html``: no CDN, it works offline)
that draws campaigns and their progress, outcomes, latency histograms and call timelines in
SVG. It reads the API with a key the person gives it (``/dashboard#key=...`` as ``dialstream
up`` prints it: a fragment never reaches a server log) and follows ``/v1/stream``, an
``text/event-stream`` of every campaign's status once a second. The page reads the stream
with ``fetch`` rather than ``EventSource``, which cannot send the key's header.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from api import auth
from api.problems import RESPONSES

__all__ = ["router", "INTERVAL"]

router = APIRouter(responses=RESPONSES)

INTERVAL = 1.0  # seconds between two status events
_PAGE = Path(__file__).with_name("static") / "dashboard.html"


@router.get("/dashboard", response_class=HTMLResponse, tags=["dashboard"], summary="The live dashboard (a page for people)")
def dashboard() -> HTMLResponse:
    return HTMLResponse(_PAGE.read_text(encoding="utf-8"))


@router.get(
    "/v1/stream", tags=["dashboard"], dependencies=[auth.read], summary="Every campaign's status once a second (server-sent events)",
    responses={200: {"content": {"text/event-stream": {}}}},
)  # fmt: skip
async def stream(request: Request) -> StreamingResponse:
    engine = request.app.state.engine

    def statuses() -> list[dict]:
        return [{**s.to_dict(), "finished": s.finished} for s in engine.statuses()]

    async def events() -> AsyncIterator[str]:
        while not await request.is_disconnected():
            payload = await asyncio.to_thread(statuses)
            yield f"event: campaigns\ndata: {json.dumps(payload)}\n\n"
            await asyncio.sleep(INTERVAL)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
