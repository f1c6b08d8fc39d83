"""Leg details, the event history, ExoML actions, account limits and the control API."""

from __future__ import annotations

import pytest

from sim.config import Limits
from tests.sim.harness import Bot, async_test, fast_config, harness, serve_bot

# Leg details and event history


@async_test
async def test_get_leg_returns_the_documented_details() -> None:
    """GET /legs/{leg_sid} returns the leg's state, times and, with ?fields=, additional_info."""
    async with harness() as h:
        leg_sid = await h.answered_leg()
        await h.action(leg_sid, "start_say", text="Hello there")
        await h.event(leg_sid, "say_started")
        status, envelope, _ = await h.call("GET", f"{h.legs_path}/{leg_sid}?fields=play_status,say_status")
        assert status == 200 and envelope["method"] == "GET"
        data = envelope["response"]["data"]
        assert data["leg_sid"] == leg_sid and data["state"] == "connected"
        assert data["direction"] == "outbound" and data["caller_id"] == "+918030752400"
        assert data["time_limit"] == 14400 and data["start_time"] and data["end_time"] is None
        assert data["additional_info"] == {"play_status": "idle", "say_status": "playing"}
        status, envelope, _ = await h.call("GET", f"{h.legs_path}/{leg_sid}")
        assert "additional_info" not in envelope["response"]["data"]
        await h.hang_up(leg_sid)
        status, envelope, _ = await h.call("GET", f"{h.legs_path}/{leg_sid}")
        data = envelope["response"]["data"]
        assert data["state"] == "terminal" and data["terminal_status"] == "completed"
        assert data["on_call_duration_ms"] > 0


@async_test
async def test_get_unknown_leg_is_404() -> None:
    """GET of a leg SID the account never created is a 404 envelope."""
    async with harness() as h:
        status, envelope, _ = await h.call("GET", f"{h.legs_path}/Nope0000000000000000000000000000")
        assert status == 404 and envelope["response"]["error_data"]["code"] == "NOT_FOUND"


@async_test
async def test_external_events_lists_each_event_with_its_delivery_result() -> None:
    """GET .../external-events lists every event with endpoint_response/error; ?event_name filters."""
    async with harness() as h:
        h.recorder.fail_next = 3  # leg_connecting is never delivered
        leg_sid = await h.answered_leg()
        await h.hang_up(leg_sid)
        await h.settled(leg_sid)
        status, envelope, _ = await h.call("GET", f"{h.legs_path}/{leg_sid}/external-events")
        assert status == 200
        data = envelope["response"]["data"]
        assert data["sid"] == leg_sid and data["event_type"] == ["leg_lifecycle_event"]
        events = data["external_events"]
        names = [e["event_info"]["event_name"] for e in events]
        assert names == ["leg_connecting", "leg_ringing", "leg_answered", "leg_terminated"]
        assert events[0]["endpoint_response"] is False and events[0]["error"].startswith("UNAVAILABLE")
        assert all(e["endpoint_response"] and e["error"] is None for e in events[1:])
        info = events[2]["event_info"]
        assert set(info) == {"event_sid", "event_type", "event_name", "event_timestamp", "action_sid", "action_custom_parameter", "data"}
        assert set(info["event_timestamp"]) == {"seconds", "nanos"}
        status, envelope, _ = await h.call("GET", f"{h.legs_path}/{leg_sid}/external-events?event_name=leg_answered")
        assert [e["event_info"]["event_name"] for e in envelope["response"]["data"]["external_events"]] == ["leg_answered"]


# ExoML


@async_test
async def test_exoml_say_and_stop_say() -> None:
    """<StartSay> and <StopSay/> through the ExoML endpoint behave like the named actions."""
    async with harness() as h:
        leg_sid = await h.answered_leg()
        status, envelope = await h.exoml(leg_sid, '<StartSay language="en">Please hold</StartSay>', action_custom_param="x")
        assert status == 202 and envelope["response"]["data"]["exoml"].endswith("</Flow>")
        started = await h.event(leg_sid, "say_started")
        assert started.action_custom_parameter == "x"
        await h.exoml(leg_sid, "<StopSay/>")
        await h.event(leg_sid, "say_interrupted")


@async_test
async def test_exoml_start_and_stop_stream() -> None:
    """<StartStream streamUrl=... streamType=...> connects to the bot; <StopStream/> ends it."""
    async with harness() as h, serve_bot(Bot()) as bot:
        leg_sid = await h.answered_leg()
        status, _ = await h.exoml(leg_sid, f'<StartStream streamType="bidirectional" streamUrl="{bot.url}"/>')
        assert status == 202
        await h.event(leg_sid, "stream_started")
        await h.exoml(leg_sid, "<StopStream/>")
        stopped = await h.event(leg_sid, "stream_stopped")
        assert stopped.detail["reason"] == "stopped"
        await h.hang_up(leg_sid)


@pytest.mark.parametrize(
    ("verbs", "status"),
    [("<Gather numDigits='1'/>", 501), ("<Mute direction='in'/>", 501), ("<Hangup>", 400), ("<Shout/>", 400),
     ("<Dial/>", 400), ("<JoinBridge/>", 400), ("<Refer bridgeEventEndpoint='grpc://x:1'/>", 400),
     ("<StartPlay loop='99'>https://x</StartPlay>", 400)],
)  # fmt: skip
@async_test
async def test_exoml_errors(verbs: str, status: int) -> None:
    """Unsimulated documented verbs answer 501; malformed XML, unknown verbs and bad attributes 400."""
    async with harness() as h:
        leg_sid = await h.answered_leg()
        got, envelope = await h.exoml(leg_sid, verbs)
        assert got == status
        assert envelope["response"]["error_data"]["description"]
        assert h.sandbox.leg(leg_sid).actions == []


# Account limits


@async_test
async def test_rate_limit_answers_429_with_retry_after_and_headers() -> None:
    """Past the per-minute budget requests get 429 with Retry-After; every answer carries X-RateLimit-*."""
    async with harness(fast_config(limits=Limits(requests_per_minute=3))) as h:
        path = f"{h.legs_path}/Nope0000000000000000000000000000"
        statuses = []
        for _ in range(4):
            status, envelope, headers = await h.call("GET", path)
            statuses.append(status)
        assert statuses == [404, 404, 404, 429]
        assert envelope["response"]["error_data"]["code"] == "RATE_LIMIT_EXCEEDED"
        assert int(headers["Retry-After"]) >= 1
        assert headers["X-RateLimit-Limit"] == "3" and headers["X-RateLimit-Remaining"] == "0"
        assert int(headers["X-RateLimit-Reset"]) > 0


@async_test
async def test_concurrent_legs_limit() -> None:
    """Creating a leg while the account's concurrent-legs limit is reached is a 429; ended legs free a slot."""
    async with harness(fast_config(limits=Limits(concurrent_legs=1))) as h:
        first = await h.answered_leg()
        body = {"contact_uri": "+919800000002", "exophone": "+918030752400", "leg_event_endpoint": h.endpoint}
        status, envelope, headers = await h.call("POST", h.legs_path, body)
        assert status == 429 and envelope["response"]["error_data"]["code"] == "CONCURRENCY_LIMIT_EXCEEDED"
        assert headers["Retry-After"] == "1"
        await h.hang_up(first)
        await h.create_leg("+919800000002")


@async_test
async def test_active_streams_limit() -> None:
    """start_stream beyond the account's active-streams limit is a 429 (STREAM_LIMIT_EXCEEDED)."""
    async with harness(fast_config(limits=Limits(active_streams=1))) as h, serve_bot(Bot()) as bot:
        one, two = await h.answered_leg("+919800000001"), await h.answered_leg("+919800000002")
        status, _ = await h.action(one, "start_stream", direction="bidirectional", url=bot.url)
        assert status == 202
        status, envelope = await h.action(two, "start_stream", direction="bidirectional", url=bot.url)
        assert status == 429 and envelope["response"]["error_data"]["code"] == "STREAM_LIMIT_EXCEEDED"
        await h.hang_up(one)
        await h.hang_up(two)


# Control API


@async_test
async def test_reset_forgets_every_call() -> None:
    """POST /sim/v1/reset drops all calls (live ones silently) and starts the figures afresh."""
    async with harness() as h:
        await h.answered_leg()
        async with h.http.post("/sim/v1/reset") as response:
            assert await response.json() == {"reset": True}
        async with h.http.get("/sim/v1/calls") as response:
            assert await response.json() == {"calls": []}
        summary = await h.summary()
        assert summary["calls"] == 0 and summary["ok"]
        async with h.http.get("/sim/v1/calls/unknown") as response:
            assert response.status == 404
