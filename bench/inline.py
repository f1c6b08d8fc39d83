"""The baseline the queue is measured against: an ingress that acts inline.

A minimal ``TriggerCallbackEvent`` server that calls the Legs API straight from the event
handler, with no broker, no worker and no state store: ``leg_answered`` -> ``start_stream``
(and the greeting), ``stream_started`` -> stop the greeting. It is what a hand-rolled
dialer does, and the lower bound on dispatch latency on this machine. It has none of
dialstream's guarantees (an event is acked before anything is done, a crash loses calls),
so it exists only in ``bench/``.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import grpc
import httpx

from dialstream.domain.campaign import CampaignConfig, Flow
from dialstream.exotel.proto import CallbackEventResponse, CallbackServiceServicer, add_servicer, event_from_message
from dialstream.settings import Settings

__all__ = ["InlineHandler", "main"]


class InlineHandler(CallbackServiceServicer):
    def __init__(self, settings: Settings, campaign: CampaignConfig, bot_url: str) -> None:
        self._http = httpx.AsyncClient(
            base_url=settings.legs_base_url, auth=(settings.api_key, settings.api_token), timeout=settings.api_timeout
        )
        self._campaign = campaign
        self._bot_url = bot_url
        self._tasks: set[asyncio.Task[None]] = set()

    async def TriggerCallbackEvent(self, request, context):  # noqa: N802 - Exotel's name
        event = event_from_message(request)
        flow = self._campaign.flow
        calls: list[tuple[str, dict[str, object]]] = []
        if event.event_name == "leg_answered":
            stream = {"direction": "bidirectional", "url": self._bot_url, "content_type": self._campaign.stream_content_type}
            calls.append(("start_stream", stream))
            if flow is Flow.GREETING_SAY:
                calls.append(("start_say", {"text": self._campaign.greeting_text}))
        elif event.event_name == "stream_started" and flow is Flow.GREETING_SAY:
            calls.append(("stop_say", {}))
        for name, body in calls:
            task = asyncio.create_task(self._post(event.leg_sid, name, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return CallbackEventResponse(success=True, message="accepted")

    async def _post(self, leg_sid: str, name: str, body: dict[str, object]) -> None:
        try:
            await self._http.post(f"/legs/{leg_sid}/actions/{name}", json=body)
        except httpx.HTTPError:
            pass  # a baseline: failures show up in the sandbox's figures

    async def close(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()


async def serve(settings: Settings, bind: str, campaign: CampaignConfig, bot_url: str) -> None:
    handler = InlineHandler(settings, campaign, bot_url)
    server = grpc.aio.server()
    add_servicer(handler, server)
    server.add_insecure_port(bind)
    await server.start()
    print(f"inline baseline listening on {bind}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(grace=1)
    await handler.close()


def main(argv: list[str]) -> int:
    """``python -m bench.inline BIND FLOW BOT_URL``; the Legs API comes from the environment."""
    bind, flow, bot_url = argv
    asyncio.run(serve(Settings.from_env(), bind, CampaignConfig("inline", flow=Flow(flow), window="any"), bot_url))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
