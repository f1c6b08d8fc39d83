"""Callee outcomes (busy, no-answer, failed, AMD, time limit) and every injectable fault."""

from __future__ import annotations

import asyncio

import pytest

from sim.callee import CalleeProfile
from sim.config import DeliveryPolicy
from sim.faults import ApiFaults, Burst, CalleeFaults, EventFaults, Faults, StreamFaults
from sim.scenario import Scenario
from tests.sim.harness import ANSWERING, async_test, fast_config, harness, streaming_leg, until
from tests.utils import MS


def with_faults(profile: CalleeProfile = ANSWERING, **faults: object) -> Scenario:
    return Scenario(callee=profile, faults=Faults(**faults))  # type: ignore[arg-type]


# Callee outcomes


@pytest.mark.parametrize(
    ("outcome", "names", "status"),
    [
        ("busy", ["leg_connecting", "leg_ringing", "leg_terminated"], "busy"),
        ("no-answer", ["leg_connecting", "leg_ringing", "leg_terminated"], "no-answer"),
        ("failed", ["leg_connecting", "leg_terminated"], "failed"),
    ],
)
@async_test
async def test_unanswered_outcomes_end_with_their_terminal_status(outcome: str, names: list[str], status: str) -> None:
    """Busy, no-answer and failed callees produce their event sequence and terminal_status."""
    async with harness(fast_config(CalleeProfile(outcome=outcome, ring_ms=(10, 10)))) as h:
        leg_sid = await h.create_leg(ring_timeout=1)
        terminated = await h.event(leg_sid, "leg_terminated", timeout=3)
        assert h.recorder.names(leg_sid) == names
        assert terminated.data["terminal_status"] == status
        assert (await h.report(leg_sid))["outcome"] == status


@async_test
async def test_no_answer_rings_for_the_ring_timeout() -> None:
    """A callee slower than ring_timeout rings for exactly that long, then the leg ends no-answer."""
    async with harness(fast_config(CalleeProfile(ring_ms=(5000, 5000)))) as h:
        leg_sid = await h.create_leg(ring_timeout=1)
        terminated = await h.event(leg_sid, "leg_terminated", timeout=3)
        ringing = next(e for e in h.recorder.of(leg_sid) if e.event_name == "leg_ringing")
        assert terminated.data["terminal_status"] == "no-answer"
        assert terminated.timestamp - ringing.timestamp >= 0.99


@async_test
async def test_failed_to_create_emits_only_leg_failed_to_create_with_an_error() -> None:
    """A leg that cannot be created emits leg_failed_to_create with event_data.error and nothing else."""
    async with harness(fast_config(CalleeProfile(create_failed=1.0))) as h:
        leg_sid = await h.create_leg()
        failed = await h.event(leg_sid, "leg_failed_to_create")
        assert set(failed.error) == {"error_code", "message", "description"}
        assert failed.data["state"] == "terminal" and failed.data["terminal_status"] == "failed"
        await asyncio.sleep(50 * MS)
        assert h.recorder.names(leg_sid) == ["leg_failed_to_create"]


@pytest.mark.parametrize(("profile", "result"), [(CalleeProfile(), "HUMAN"), (CalleeProfile(machine=1.0), "MACHINE"), (CalleeProfile(amd_not_sure=1.0), "NOT_SURE")])
@async_test
async def test_amd_result_follows_the_answer_when_enabled(profile: CalleeProfile, result: str) -> None:
    """With amd_enable, amd_result_success carries HUMAN, MACHINE or NOT_SURE after leg_answered."""
    profile = CalleeProfile(ring_ms=(10, 10), talk_ms=None, amd_ms=(20, 20), machine=profile.machine, amd_not_sure=profile.amd_not_sure)
    async with harness(fast_config(profile)) as h:
        leg_sid = await h.create_leg(amd_enable=True)
        amd = await h.event(leg_sid, "amd_result_success")
        assert amd.detail == {"result": result}
        assert h.recorder.names(leg_sid).index("leg_answered") < h.recorder.names(leg_sid).index("amd_result_success")
        await h.hang_up(leg_sid)


@async_test
async def test_no_amd_event_without_amd_enable() -> None:
    """Legs created without amd_enable never get amd_result_success."""
    async with harness(fast_config(CalleeProfile(ring_ms=(10, 10), talk_ms=None, amd_ms=(5, 5)))) as h:
        leg_sid = await h.answered_leg()
        await asyncio.sleep(50 * MS)
        await h.hang_up(leg_sid)
        assert "amd_result_success" not in h.recorder.names(leg_sid)


@async_test
async def test_per_number_profiles_and_seeded_outcomes() -> None:
    """Numbers listed in the scenario behave as listed; the same seed reproduces the plans but never the SIDs."""
    scenario = Scenario.from_mapping({"callee": {"ring_ms": [10, 50], "talk_ms": None}, "numbers": {"+911": "busy"}})
    plans, sids = [], []
    for _ in range(2):
        async with harness(fast_config(scenario=scenario)) as h:
            busy, fine = await h.create_leg("+911"), await h.create_leg("+912")
            await h.event(busy, "leg_terminated")
            await h.event(fine, "leg_answered")
            plans.append([(await h.report(leg))["plan"] for leg in (busy, fine)])
            sids.append({busy, fine, *(e.event_sid for e in h.recorder.events)})
            await h.hang_up(fine)
    assert plans[0] == plans[1]
    assert not sids[0] & sids[1]
    assert [p["outcome"] for p in plans[0]] == ["busy", "answered"]


@async_test
async def test_time_limit_ends_the_call() -> None:
    """A callee who never hangs up is cut off at the leg's time_limit."""
    async with harness() as h:
        leg_sid = await h.create_leg(time_limit=1)
        await h.event(leg_sid, "leg_terminated", timeout=3)
        assert (await h.report(leg_sid))["hangup_by"] == "time_limit"


# Faults


@async_test
async def test_fault_duplicate_delivers_the_same_event_twice() -> None:
    """faults.events.duplicate delivers each event twice with the same event_sid."""
    async with harness(fast_config(scenario=with_faults(events=EventFaults(duplicate=1.0)))) as h:
        leg_sid = await h.create_leg()
        await until(lambda: h.recorder.names(leg_sid).count("leg_answered") == 2)
        answered = [e for e in h.recorder.of(leg_sid) if e.event_name == "leg_answered"]
        assert answered[0].event_sid == answered[1].event_sid
        report = await h.settled(leg_sid)
        assert [e["deliveries"] for e in report["events"][:3]] == [2, 2, 2]


@async_test
async def test_fault_reorder_swaps_an_event_with_its_successor() -> None:
    """faults.events.reorder delivers an event after the leg's next one."""
    async with harness(fast_config(scenario=with_faults(events=EventFaults(reorder=1.0)))) as h:
        leg_sid = await h.create_leg()
        await until(lambda: len(h.recorder.names(leg_sid)) == 3)
        assert h.recorder.names(leg_sid) == ["leg_ringing", "leg_connecting", "leg_answered"]
        await h.hang_up(leg_sid)


@async_test
async def test_fault_drop_loses_the_first_attempt_and_the_retry_delivers() -> None:
    """faults.events.drop loses the first attempt (it times out) and the second attempt delivers."""
    config = fast_config(scenario=with_faults(events=EventFaults(drop=1.0)), delivery=DeliveryPolicy(attempt_timeout_s=0.05, attempt_interval_s=0.05))
    async with harness(config) as h:
        leg_sid = await h.create_leg()
        await h.event(leg_sid, "leg_connecting")
        assert h.recorder.names(leg_sid) == ["leg_connecting"]
        first = (await h.settled(leg_sid))["events"][0]
        assert first["attempts"] == 2 and first["delivered"] and "dropped" in first["error"]
        assert first["latency_ms"] >= 50


@async_test
async def test_fault_lose_loses_the_named_events_for_good_and_external_events_still_lists_them() -> None:
    """faults.events.lose with lose_names: leg_terminated never arrives (every attempt fails), the
    other events do; GET leg says terminal and external-events lists the lost event undelivered,
    so a client can find out; a loss the scenario asked for is not the endpoint's undelivered event."""
    profile = CalleeProfile(ring_ms=(10, 10), talk_ms=(50, 50))
    scenario = with_faults(profile, events=EventFaults(lose=1.0, lose_names=("leg_terminated",)))
    async with harness(fast_config(scenario=scenario, delivery=DeliveryPolicy(attempt_timeout_s=0.05, attempt_interval_s=0.05))) as h:
        leg_sid = await h.create_leg()
        await h.event(leg_sid, "leg_answered")
        while (settled := await h.settled(leg_sid))["events"][-1]["event_name"] != "leg_terminated":
            await asyncio.sleep(0.02)  # settled() bounds the wait: the call ends after its 50 ms of talk
        _, leg, _ = await h.call("GET", f"{h.legs_path}/{leg_sid}")
        _, history, _ = await h.call("GET", f"{h.legs_path}/{leg_sid}/external-events?event_name=leg_terminated")
    assert "leg_terminated" not in h.recorder.names(leg_sid)
    assert h.recorder.names(leg_sid)[:3] == ["leg_connecting", "leg_ringing", "leg_answered"]
    lost = settled["events"][-1]
    assert lost["delivered"] is False and lost["attempts"] == 3 and lost["faults"] == ["lose"]
    assert "undelivered_events" not in settled["invariants"]  # (no bot here: answered_without_stream is expected)
    assert leg["response"]["data"]["state"] == "terminal" and leg["response"]["data"]["terminal_status"] == "completed"
    (entry,) = history["response"]["data"]["external_events"]
    assert entry["endpoint_response"] is False and "lost" in entry["error"]


@async_test
async def test_fault_delay_holds_events_back() -> None:
    """faults.events.delay delays delivery by the configured time, keeping the leg's order."""
    scenario = with_faults(events=EventFaults(delay=1.0, delay_ms=(80, 80)))
    async with harness(fast_config(scenario=scenario)) as h:
        leg_sid = await h.create_leg()
        connecting = await h.event(leg_sid, "leg_connecting")
        assert connecting.received_at - connecting.timestamp >= 0.079
        report = await h.report(leg_sid)
        assert report["events"][0]["faults"] == ["delay"]


@async_test
async def test_fault_api_errors_and_bursts() -> None:
    """faults.api injects 429s and 5xx per request, and bursts of one status in a time window;
    the summary counts the error answers served, by status."""
    async with harness(fast_config(scenario=with_faults(api=ApiFaults(rate_429=1.0)))) as h:
        status, envelope, headers = await h.call("GET", f"{h.legs_path}/x")
        assert status == 429 and headers["Retry-After"] == "1"
        await h.call("GET", f"{h.legs_path}/y")
        async with h.http.get("/sim/v1/summary") as response:
            assert (await response.json())["api_errors"] == {"429": 2}
    async with harness(fast_config(scenario=with_faults(api=ApiFaults(rate_5xx=1.0, status_5xx=502)))) as h:
        status, envelope, _ = await h.call("GET", f"{h.legs_path}/x")
        assert status == 502 and envelope["response"]["error_data"]["code"] == "BAD_GATEWAY"
    async with harness(fast_config(scenario=with_faults(api=ApiFaults(bursts=(Burst(0, 3600, 503),))))) as h:
        status, _, _ = await h.call("GET", f"{h.legs_path}/x")
        assert status == 503
        async with h.http.get("/sim/v1/summary") as response:  # the sandbox's own API is never faulted
            assert response.status == 200
    async with harness(fast_config(scenario=with_faults(api=ApiFaults(bursts=(Burst(0, 3600, 429, share=0.5),))))) as h:
        statuses = [(await h.call("GET", f"{h.legs_path}/x"))[0] for _ in range(40)]
        assert {429, 404} == set(statuses), "a storm answers some requests with its status, the rest as usual"


@async_test
async def test_fault_handshake_failures_exhaust_the_retry() -> None:
    """faults.streams.handshake_fail fails both attempts; stream_stopped carries the error."""
    scenario = with_faults(streams=StreamFaults(handshake_fail=1.0))
    async with streaming_leg(fast_config(scenario=scenario), started=False) as (h, bot, leg_sid):
        stopped = await h.event(leg_sid, "stream_stopped")
        assert stopped.error["error_code"] == "STREAM_CONNECT_FAILED"
        assert bot.connections == 0
        await h.hang_up(leg_sid)


@async_test
async def test_fault_slow_handshake_delays_stream_started() -> None:
    """faults.streams.handshake_delay slows the connection by the configured time."""
    scenario = with_faults(streams=StreamFaults(handshake_delay=1.0, handshake_delay_ms=(150, 150)))
    async with streaming_leg(fast_config(scenario=scenario)) as (h, bot, leg_sid):
        assert (await h.report(leg_sid))["figures"]["stream_setup_ms"] >= 150 + 30
        await h.hang_up(leg_sid)


@async_test
async def test_fault_disconnect_drops_the_media_connection() -> None:
    """faults.streams.disconnect breaks the socket mid-stream: stream_stopped with reason disconnected."""
    scenario = with_faults(streams=StreamFaults(disconnect=1.0, disconnect_after_ms=(50, 50)))
    async with streaming_leg(fast_config(scenario=scenario), started=False) as (h, bot, leg_sid):
        stopped = await h.event(leg_sid, "stream_stopped")
        assert stopped.detail["reason"] == "disconnected"
        assert h.sandbox.leg(leg_sid).state == "connected"
        await h.hang_up(leg_sid)


@async_test
async def test_fault_callee_hangs_up_early() -> None:
    """faults.callee.hangup makes the callee hang up soon after answering, even mid-greeting."""
    scenario = with_faults(callee=CalleeFaults(hangup=1.0, hangup_after_ms=(100, 100)))
    async with harness(fast_config(scenario=scenario)) as h:
        leg_sid = await h.answered_leg()
        await h.action(leg_sid, "start_say", text="A long greeting that will not finish")
        await h.event(leg_sid, "leg_terminated")
        report = await h.report(leg_sid)
        assert report["hangup_by"] == "callee"
        assert "say_completed" not in h.recorder.names(leg_sid)
        assert report["greeting_audio"][0][1] == report["timeline"]["hung_up"]
