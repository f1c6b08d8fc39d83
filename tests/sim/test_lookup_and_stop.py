"""Looking a leg up (GET leg, external events) as a worker reconciling lost events would, and stop_stream by streamSid."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from dialstream.exotel import agentstream as proto
from sim.callee import CalleeProfile
from sim.config import DeliveryPolicy
from tests.sim.harness import (
    FAST_TIMING,
    Bot,
    Harness,
    async_test,
    fast_config,
    harness,
    serve_bot,
    streaming_leg,
    until,
)


async def get_leg(h: Harness, leg_sid: str, query: str = "") -> dict[str, Any]:
    status, envelope, _ = await h.call("GET", f"{h.legs_path}/{leg_sid}{query}")
    assert status == 200, envelope
    return envelope["response"]["data"]


# GET leg through the leg's life


@async_test
async def test_get_leg_shows_created_then_ringing_then_connected_then_terminal() -> None:
    """The leg's state moves created -> ringing -> connected -> terminal as the call progresses."""
    slow = fast_config(CalleeProfile(ring_ms=(300, 300), talk_ms=None), timing=dataclasses.replace(FAST_TIMING, connecting_ms=200))
    async with harness(slow) as h:
        leg_sid = await h.create_leg()
        assert (await get_leg(h, leg_sid))["state"] == "created"
        await h.event(leg_sid, "leg_ringing")
        ringing = await get_leg(h, leg_sid)
        assert ringing["state"] == "ringing" and ringing["start_time"] is None and ringing["on_call_duration_ms"] == 0
        await h.event(leg_sid, "leg_answered")
        assert (await get_leg(h, leg_sid))["state"] == "connected"
        await h.hang_up(leg_sid)
        ended = await get_leg(h, leg_sid)
    assert ended["state"] == "terminal" and ended["terminal_status"] == "completed"
    assert ended["start_time"] < ended["end_time"] and ended["on_call_duration_ms"] > 0
    assert ended["date_created"] <= ended["date_updated"]


@async_test
async def test_get_leg_of_a_busy_callee_is_terminal_busy_without_talk_time() -> None:
    """A busy leg is terminal with terminal_status busy, an end time, no start time and 0 ms on call."""
    async with harness(fast_config(CalleeProfile(outcome="busy", ring_ms=(10, 10)))) as h:
        leg_sid = await h.create_leg()
        await h.event(leg_sid, "leg_terminated")
        data = await get_leg(h, leg_sid)
    assert (data["state"], data["terminal_status"], data["start_time"], data["on_call_duration_ms"]) == ("terminal", "busy", None, 0)
    assert data["end_time"] is not None


@async_test
async def test_get_leg_fields_select_the_documented_additional_info() -> None:
    """?fields= with every documented name returns exactly those entries of additional_info."""
    fields = "bridge_status,recording_status,tx_audio_status,rx_audio_status,hold_status,gather_status,play_status"
    async with harness() as h:
        leg_sid = await h.answered_leg()
        data = await get_leg(h, leg_sid, f"?fields={fields}")
        await h.hang_up(leg_sid)
    assert set(data["additional_info"]) == set(fields.split(","))
    assert data["additional_info"]["bridge_status"] == "not_bridged"


@async_test
async def test_external_events_answers_on_both_path_spellings() -> None:
    """.../external-events and .../external_events return the same history (the documented path lost its separator)."""
    async with harness() as h:
        leg_sid = await h.answered_leg()
        await h.hang_up(leg_sid)
        await h.settled(leg_sid)
        _, dashed, _ = await h.call("GET", f"{h.legs_path}/{leg_sid}/external-events")
        _, underscored, _ = await h.call("GET", f"{h.legs_path}/{leg_sid}/external_events")
    assert dashed["response"]["data"] == underscored["response"]["data"]
    assert len(dashed["response"]["data"]["external_events"]) == 4


@asynccontextmanager
async def refusing_door() -> AsyncIterator[str]:
    """A plain-HTTP event door that answers 400 to everything."""

    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=400)

    app = web.Application()
    app.router.add_post("/events", refuse)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/events"
    finally:
        await runner.cleanup()


@async_test
async def test_external_events_show_each_events_delivery_failure() -> None:
    """Events the endpoint refused show endpoint_response false and the endpoint's error, as Exotel records them."""
    config = fast_config(delivery=DeliveryPolicy(attempt_interval_s=0.01))
    async with harness(config) as h, refusing_door() as url:
        leg_sid = await h.create_leg(leg_event_endpoint=url)
        await until(lambda: h.sandbox.leg(leg_sid).state == "connected")
        await h.exoml(leg_sid, "<Hangup/>")
        await h.settled(leg_sid)
        _, envelope, _ = await h.call("GET", f"{h.legs_path}/{leg_sid}/external-events?event_name=leg_answered")
    (answered,) = envelope["response"]["data"]["external_events"]
    assert answered["endpoint_response"] is False and answered["error"] == "HTTP 400"


# stop_stream honours the stream it names


@asynccontextmanager
async def two_streams(h: Harness) -> AsyncIterator[tuple[str, Bot, Bot, str, str]]:
    """An answered leg with a stream to each of two bots: (leg, first bot, second bot, first sid, second sid)."""
    async with serve_bot(Bot()) as first, serve_bot(Bot()) as second:
        leg_sid = await h.answered_leg()
        await h.request_stream(leg_sid, first.url)
        await until(lambda: h.recorder.names(leg_sid).count("stream_started") == 1)
        await h.request_stream(leg_sid, second.url)
        await until(lambda: h.recorder.names(leg_sid).count("stream_started") == 2)
        sids = [e.detail["stream_sid"] for e in h.recorder.of(leg_sid) if e.event_name == "stream_started"]
        yield leg_sid, first, second, sids[0], sids[1]


@async_test
async def test_named_stop_stream_with_stream_sid_stops_only_that_stream() -> None:
    """POST .../actions/stop_stream {"stream_sid": X} stops stream X; the leg's other stream stays live."""
    async with harness() as h, two_streams(h) as (leg_sid, first, second, old, live):
        status, _ = await h.action(leg_sid, "stop_stream", stream_sid=old)
        assert status == 202
        stopped = await h.event(leg_sid, "stream_stopped")
        assert stopped.detail["stream_sid"] == old and stopped.detail["reason"] == "stopped"
        await until(lambda: first.of(proto.Stop))
        streams = {s.stream_sid: s for s in h.sandbox.leg(leg_sid).streams}
        assert streams[live].active and not second.of(proto.Stop)
        await h.hang_up(leg_sid)


@async_test
async def test_exoml_stop_stream_with_stream_sid_stops_only_that_stream() -> None:
    """<StopStream streamSid="X"/> (what the workers send) stops stream X and leaves the live one alone."""
    async with harness() as h, two_streams(h) as (leg_sid, first, second, old, live):
        status, _ = await h.exoml(leg_sid, f'<StopStream streamSid="{old}"/>')
        assert status == 202
        stopped = await h.event(leg_sid, "stream_stopped")
        assert stopped.detail["stream_sid"] == old
        assert {s.stream_sid: s.active for s in h.sandbox.leg(leg_sid).streams} == {old: False, live: True}
        await h.hang_up(leg_sid)


@async_test
async def test_a_stop_naming_another_stream_leaves_the_live_one_alone() -> None:
    """A stop_stream whose streamSid is not live on the leg stops nothing (202) and the report warns about it."""
    async with streaming_leg() as (h, bot, leg_sid):
        status, _ = await h.exoml(leg_sid, '<StopStream streamSid="SomeOtherStream000000000000000000"/>')
        assert status == 202
        status, _ = await h.action(leg_sid, "stop_stream", streamSid="SomeOtherStream000000000000000000")
        assert status == 202
        assert h.sandbox.leg(leg_sid).streams[0].active and not bot.of(proto.Stop)
        await h.hang_up(leg_sid)
        report = await h.report(leg_sid)
    assert "stream_stopped" not in [e["event_name"] for e in report["events"][:-2]]
    assert "stop_stream_unmatched" in report["warnings"] and report["invariants"] == []


@async_test
async def test_stop_stream_without_a_stream_sid_stops_every_stream() -> None:
    """A stop_stream that names no stream stops all of the leg's streams, as before."""
    async with harness() as h, two_streams(h) as (leg_sid, first, second, _, _):
        await h.action(leg_sid, "stop_stream")
        await until(lambda: h.recorder.names(leg_sid).count("stream_stopped") == 2)
        assert not any(s.active for s in h.sandbox.leg(leg_sid).streams)
        await h.hang_up(leg_sid)
