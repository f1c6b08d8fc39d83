"""Leg events over gRPC: order, shape, greetings and hang-up, as a receiver sees them."""

from __future__ import annotations

import asyncio
import re

from dialstream.exotel.events import ACTION, LIFECYCLE
from sim.callee import CalleeProfile
from tests.sim.harness import async_test, fast_config, harness
from tests.utils import MS

SID = re.compile(r"^[A-Za-z0-9]{27}00000$")
SNAPSHOT_KEYS = {
    "leg_sid", "account_sid", "contact_uri", "exophone", "state", "custom_param",
    "start_time", "end_time", "date_created", "date_updated",
}  # fmt: skip


@async_test
async def test_answered_call_emits_connecting_ringing_answered_then_terminated() -> None:
    """An answered then hung-up leg delivers leg_connecting, leg_ringing, leg_answered, leg_terminated in order."""
    async with harness() as h:
        leg_sid = await h.create_leg(custom_param="c1:row-7")
        await h.event(leg_sid, "leg_answered")
        await h.hang_up(leg_sid)
        events = h.recorder.of(leg_sid)
        assert [e.event_name for e in events] == ["leg_connecting", "leg_ringing", "leg_answered", "leg_terminated"]
        assert {e.event_type for e in events} == {LIFECYCLE}
        assert len({e.event_sid for e in events}) == 4
        assert all(SID.match(e.event_sid) for e in events)
        assert all(e.custom_param == "c1:row-7" and e.account_sid == "dialstream1" for e in events)
        assert [e.timestamp for e in events] == sorted(e.timestamp for e in events)
        answered, terminated = events[2], events[3]
        assert SNAPSHOT_KEYS <= set(answered.data)
        assert answered.data["state"] == "connected"
        assert answered.data["start_time"] is not None and answered.data["end_time"] is None
        assert terminated.data["state"] == "terminal"
        assert terminated.data["terminal_status"] == "completed"
        assert terminated.data["end_time"] is not None
        assert terminated.event_data == {"data": {}}


@async_test
async def test_every_delivery_is_recorded_with_attempts_and_latency() -> None:
    """The sandbox records, per event, that it was delivered, in how many attempts and how fast."""
    async with harness() as h:
        leg_sid = await h.answered_leg()
        await h.hang_up(leg_sid)
        report = await h.settled(leg_sid)
        names = [e["event_name"] for e in report["events"]]
        assert names == ["leg_connecting", "leg_ringing", "leg_answered", "leg_terminated"]
        for event in report["events"]:
            assert event["delivered"] is True
            assert event["attempts"] == 1
            assert event["error"] is None
            assert event["latency_ms"] >= 0


@async_test
async def test_failed_delivery_is_retried_up_to_three_attempts() -> None:
    """A receiver that fails twice still gets the event on the third attempt; the attempts are recorded."""
    async with harness() as h:
        h.recorder.fail_next = 2
        leg_sid = await h.create_leg()
        await h.event(leg_sid, "leg_connecting")
        report = await h.settled(leg_sid)
        first = report["events"][0]
        assert first["attempts"] == 3 and first["delivered"] is True
        assert first["error"].startswith("UNAVAILABLE")


@async_test
async def test_an_event_is_given_up_after_three_failed_attempts_and_the_next_follows() -> None:
    """After three failed attempts an event is recorded as undelivered and the leg's next event is sent."""
    async with harness() as h:
        h.recorder.fail_next = 3
        leg_sid = await h.create_leg()
        await h.event(leg_sid, "leg_ringing")
        assert h.recorder.names(leg_sid)[0] == "leg_ringing"
        report = await h.settled(leg_sid)
        assert report["events"][0]["delivered"] is False
        assert report["events"][0]["attempts"] == 3
        summary = await h.summary()
        assert summary["invariants"]["undelivered_events"] == [report["events"][0]["event_sid"]]


@async_test
async def test_say_started_then_interrupted_by_stop_say() -> None:
    """start_say makes say_started arrive after the TTS latency; stop_say interrupts it with say_interrupted."""
    async with harness() as h:
        leg_sid = await h.answered_leg()
        status, envelope = await h.action(leg_sid, "start_say", text="Please hold while we connect you.", action_custom_param="greet")
        assert status == 202
        say_sid = envelope["response"]["data"]["action_sid"]
        started = await h.event(leg_sid, "say_started")
        assert started.event_type == ACTION
        assert started.action_sid == say_sid and started.action_custom_parameter == "greet"
        status, envelope = await h.action(leg_sid, "stop_say", action_custom_param="stop-greet")
        assert status == 202
        interrupted = await h.event(leg_sid, "say_interrupted")
        assert interrupted.action_sid == envelope["response"]["data"]["action_sid"]
        assert interrupted.action_custom_parameter == "stop-greet"
        assert interrupted.detail == {"interrupted_action_sid": say_sid}
        report = await h.report(leg_sid)
        # Event timestamps carry milliseconds; the timeline keeps the exact moment.
        assert abs(report["timeline"]["first_greeting_audio"] - started.timestamp) < 2 * MS
        assert report["timeline"]["greeting_stopped"] >= report["timeline"]["first_greeting_audio"]
        assert "say_completed" not in h.recorder.names(leg_sid)


@async_test
async def test_say_completes_after_its_spoken_length_times_loop() -> None:
    """A say lasts about 60 ms per character per loop, then say_completed arrives."""
    async with harness() as h:
        leg_sid = await h.answered_leg()
        await h.action(leg_sid, "start_say", text="Hi!", loop=2)
        started = await h.event(leg_sid, "say_started")
        completed = await h.event(leg_sid, "say_completed")
        assert completed.timestamp - started.timestamp >= 2 * 3 * 60 * MS * 0.9
        report = await h.report(leg_sid)
        (interval,) = report["greeting_audio"]
        assert interval[1] - interval[0] >= 0.3


@async_test
async def test_play_started_then_stop_play_interrupts() -> None:
    """start_play emits play_started; stop_play ends it with play_interrupted."""
    async with harness() as h:
        leg_sid = await h.answered_leg()
        await h.action(leg_sid, "start_play", url="https://example.com/hold.wav", loop=0)
        await h.event(leg_sid, "play_started")
        await h.action(leg_sid, "stop_play")
        await h.event(leg_sid, "play_interrupted")
        assert h.sandbox.leg(leg_sid).audible_greeting is None


@async_test
async def test_stop_say_before_it_is_audible_cancels_it_silently() -> None:
    """A stop_say that arrives during the TTS latency interrupts a say that was never heard."""
    async with harness() as h:
        leg_sid = await h.answered_leg()
        await h.action(leg_sid, "start_say", text="Hello")
        await h.action(leg_sid, "stop_say")
        await h.event(leg_sid, "say_interrupted")
        await asyncio.sleep(60 * MS)
        assert "say_started" not in h.recorder.names(leg_sid)
        assert (await h.report(leg_sid))["timeline"]["first_greeting_audio"] is None


@async_test
async def test_exoml_hangup_terminates_the_leg() -> None:
    """POST .../actions with <Flow><Hangup/></Flow> answers 202 and the leg ends as completed, hung up by the API."""
    async with harness() as h:
        leg_sid = await h.answered_leg()
        status, envelope = await h.exoml(leg_sid, "<Hangup/>", action_custom_param="bye")
        assert status == 202
        assert envelope["response"]["data"]["action_custom_param"] == "bye"
        terminated = await h.event(leg_sid, "leg_terminated")
        assert terminated.data["terminal_status"] == "completed"
        report = await h.report(leg_sid)
        assert report["hangup_by"] == "api"
        assert report["outcome"] == "completed"


@async_test
async def test_hangup_while_ringing_cancels_the_leg() -> None:
    """A <Hangup/> before the answer ends the leg as canceled, without leg_answered."""
    async with harness(fast_config(CalleeProfile(ring_ms=(2000, 2000)))) as h:
        leg_sid = await h.create_leg()
        await h.event(leg_sid, "leg_ringing")
        status, _ = await h.exoml(leg_sid, "<Hangup/>")
        assert status == 202
        terminated = await h.event(leg_sid, "leg_terminated")
        assert terminated.data["terminal_status"] == "canceled"
        assert "leg_answered" not in h.recorder.names(leg_sid)


@async_test
async def test_callee_hangs_up_after_talk_time() -> None:
    """With a talk time, the callee hangs up on their own: leg_terminated, hung up by the callee."""
    async with harness(fast_config(CalleeProfile(ring_ms=(10, 10), talk_ms=(50, 50)))) as h:
        leg_sid = await h.create_leg()
        terminated = await h.event(leg_sid, "leg_terminated")
        assert terminated.data["terminal_status"] == "completed"
        report = await h.report(leg_sid)
        assert report["hangup_by"] == "callee"
        assert report["figures"]["talk_time_ms"] >= 50 * 0.9
