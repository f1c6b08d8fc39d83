"""Answering-machine detection: synchronous and asynchronous AMD, the machine's greeting and beep, voicemail drops."""

from __future__ import annotations

from sim.callee import CalleeProfile
from tests.sim.harness import Harness, async_test, fast_config, harness, until

MACHINE = CalleeProfile(ring_ms=(10, 10), talk_ms=None, machine=1.0, amd_ms=(300, 300), beep_ms=(600, 600))
HUMAN = CalleeProfile(ring_ms=(10, 10), talk_ms=None, amd_ms=(300, 300))


def emitted(h: Harness, leg_sid: str, name: str) -> float:
    """When the sandbox emitted the leg's event ``name`` (Unix seconds)."""
    return next(r.emitted_at for r in h.sandbox.leg(leg_sid).events if r.name == name)


@async_test
async def test_synchronous_amd_answers_once_the_verdict_is_in() -> None:
    """amd_enable without async_amd: leg_answered comes amd_ms after pickup, with amd_result_success right after it."""
    async with harness(fast_config(HUMAN)) as h:
        leg_sid = await h.create_leg(amd_enable=True)
        leg = h.sandbox.leg(leg_sid)
        await until(lambda: leg.start_time is not None)
        early, envelope = await h.action(leg_sid, "start_say", text="Hello")
        assert early == 409 and leg.state == "ringing"  # detection still running: not answered yet
        result = await h.event(leg_sid, "amd_result_success")
        assert result.detail == {"result": "HUMAN"}
        names = h.recorder.names(leg_sid)
        assert names.index("amd_result_success") == names.index("leg_answered") + 1
        assert emitted(h, leg_sid, "leg_answered") - leg.start_time >= 0.3
        assert (await h.report(leg_sid))["timeline"]["answered"] == leg.start_time  # the pickup
        await h.hang_up(leg_sid)


@async_test
async def test_asynchronous_amd_answers_at_once_and_the_verdict_follows() -> None:
    """async_amd: leg_answered at pickup, actions run at once, amd_result_success arrives later as an event."""
    async with harness(fast_config(HUMAN)) as h:
        leg_sid = await h.create_leg(amd_enable=True, async_amd=True)
        await h.event(leg_sid, "leg_answered")
        status, _ = await h.action(leg_sid, "start_say", text="Hello there")
        assert status == 202 and "amd_result_success" not in h.recorder.names(leg_sid)
        await h.event(leg_sid, "amd_result_success")
        leg = h.sandbox.leg(leg_sid)
        assert emitted(h, leg_sid, "amd_result_success") - leg.start_time >= 0.3
        report = await h.report(leg_sid)
        await h.hang_up(leg_sid)
    assert report["voicemail"] is None and "amd_beep_detected" not in h.recorder.names(leg_sid)


@async_test
async def test_a_machine_plays_its_greeting_then_beeps_and_the_beep_is_an_event() -> None:
    """On a machine, amd_beep_detected {beep_ms} comes beep_ms after pickup; a message played after it is left."""
    async with harness(fast_config(MACHINE)) as h:
        leg_sid = await h.create_leg(amd_enable=True, async_amd=True)
        result = await h.event(leg_sid, "amd_result_success")
        assert result.detail == {"result": "MACHINE"}
        beep = await h.event(leg_sid, "amd_beep_detected")
        assert beep.event_type == "leg_lifecycle_event" and beep.detail == {"beep_ms": 600}
        await h.action(leg_sid, "start_say", text="Hi, call us back")  # the voicemail message, after the beep
        await h.event(leg_sid, "say_completed")
        await h.hang_up(leg_sid)
        report = await h.report(leg_sid)
        summary = await h.summary()
    voicemail = report["voicemail"]
    assert voicemail["beep_at"] - voicemail["greeting_from"] >= 0.6
    assert voicemail["voicemail_left"] is True and voicemail["message_over_greeting_ms"] == 0
    assert voicemail["message_after_beep_ms"] > 0
    assert report["plan"]["machine"] is True and report["warnings"] == {}
    assert summary["ok"], summary["invariants"]  # a machine left without a bot stream is no breach


@async_test
async def test_a_message_started_over_the_greeting_is_reported() -> None:
    """A message that plays over the machine's greeting (not recorded) warns; ended before the beep, nothing is left."""
    async with harness(fast_config(MACHINE)) as h:
        leg_sid = await h.create_leg(amd_enable=True, async_amd=True)
        await h.event(leg_sid, "leg_answered")
        await h.action(leg_sid, "start_say", text="Hi")  # 120 ms, over the greeting
        await h.event(leg_sid, "say_completed")
        await h.event(leg_sid, "amd_beep_detected")
        await h.hang_up(leg_sid)
        report = await h.report(leg_sid)
    voicemail = report["voicemail"]
    assert voicemail["message_over_greeting_ms"] > 0 and voicemail["voicemail_left"] is False
    assert "message_over_voicemail_greeting" in report["warnings"]


@async_test
async def test_without_amd_a_machine_still_greets_and_beeps_but_says_nothing() -> None:
    """A machine answers whether or not AMD is on; without amd_enable there are no AMD or beep events."""
    async with harness(fast_config(MACHINE)) as h:
        leg_sid = await h.answered_leg()
        leg = h.sandbox.leg(leg_sid)
        await until(lambda: leg.timeline.machine and leg.timeline.machine["beep_at"])
        await h.hang_up(leg_sid)
        report = await h.report(leg_sid)
    assert report["voicemail"]["beep_at"] is not None
    assert not {"amd_result_success", "amd_beep_detected"} & set(h.recorder.names(leg_sid))
