"""<Dial>, <Hold>/<UnHold> and agents (callees who answer after N s or never): what transfer tests need."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import pytest

from dialstream.errors import ConfigurationError
from sim.callee import ANSWERED, NO_ANSWER
from sim.config import Limits
from sim.scenario import Scenario
from tests.sim.harness import ANSWERING, Harness, async_test, fast_config, harness, until

AGENT = "+918000000001"  # answers after 50 ms
SLOW_AGENT = "+918000000002"  # never answers
AGENTS = {"agents": {AGENT: 0.05, SLOW_AGENT: None}}


def with_agents() -> AbstractAsyncContextManager[Harness]:
    return harness(fast_config(scenario=Scenario.from_mapping({"callee": {"ring_ms": [20, 40], "talk_ms": None}, **AGENTS})))


def second_leg(h: Harness, leg_sid: str) -> str:
    (initiated,) = [e for e in h.recorder.of(leg_sid) if e.event_name == "dial_initiated"]
    return str(initiated.detail["second_leg_sid"])


async def bridged_to_agent(h: Harness) -> tuple[str, str]:
    """An answered leg that dialled AGENT, once they are bridged (dial_success): (caller, agent)."""
    caller = await h.answered_leg()
    await h.exoml(caller, f'<Dial contactUri="{AGENT}"/>')
    await h.event(caller, "dial_success")
    return caller, second_leg(h, caller)


# Agents in a scenario


def test_agents_answer_after_their_time_or_never() -> None:
    """An agent number answers after answer_after_s and stays on; null rings out; agents are not contacts."""
    scenario = Scenario.from_mapping(
        {"numbers": {"+919800000001": {}}, "agents": {AGENT: {"answer_after_s": 3, "hang_up_after_s": 60}, SLOW_AGENT: None}}
    )
    quick, never = scenario.profile_for(AGENT), scenario.profile_for(SLOW_AGENT)
    assert (quick.outcome, quick.ring_ms, quick.talk_ms) == (ANSWERED, (3000.0, 3000.0), (60000.0, 60000.0))
    assert never.outcome == NO_ANSWER
    assert scenario.contacts == ("+919800000001",)


@pytest.mark.parametrize(
    ("agents", "message"),
    [({AGENT: {"answer_after": 1}}, "unknown key"), ({AGENT: "soon"}, "expected a number of seconds"),
     ({"+919800000001": 1}, "also listed under numbers")],
)  # fmt: skip
def test_bad_agent_entries_are_refused(agents: dict[str, object], message: str) -> None:
    """An agent entry with an unknown key, a non-number time or a number also listed as a contact is refused."""
    with pytest.raises(ConfigurationError, match=message):
        Scenario.from_mapping({"numbers": {"+919800000001": {}}, "agents": agents})


# <Dial>


@async_test
async def test_dial_creates_a_co_located_second_leg_and_bridges_it_when_it_answers() -> None:
    """<Dial contactUri>: dial_initiated, the agent's leg events (recorded with record), then the legs bridged and dial_success."""
    async with with_agents() as h:
        caller = await h.answered_leg()
        dial = f'<Dial contactUri="{AGENT}" customParam="transfer-1" timeout="20" record="true"/>'
        status, _ = await h.exoml(caller, dial, action_custom_param="t")
        assert status == 202
        initiated = await h.event(caller, "dial_initiated")
        agent, bridge_sid = initiated.detail["second_leg_sid"], initiated.detail["bridge_sid"]
        assert initiated.action_custom_parameter == "t"
        success = await h.event(caller, "dial_success")
        assert success.detail == {"bridge_sid": bridge_sid, "second_leg_sid": agent}
        await h.event(agent, "leg_joined_bridge")
        assert h.recorder.names(agent)[:3] == ["leg_connecting", "leg_ringing", "leg_answered"]
        agent_leg = h.sandbox.leg(agent)
        assert agent_leg.request.reference_leg_sid == caller and agent_leg.request.custom_param == "transfer-1"
        assert agent_leg.location == h.sandbox.leg(caller).location and agent_leg.bridge_sid == bridge_sid
        assert agent_leg.request.record and "recording_started" in h.recorder.names(agent)
        await h.hang_up(agent)
        completed = await h.event(caller, "dial_completed")
        assert completed.detail == {"bridge_sid": bridge_sid, "second_leg_sid": agent, "dial_status": "completed"}
        assert "leg_left_bridge" in h.recorder.names(caller) and h.sandbox.leg(caller).state == "connected"
        caller_report = await h.report(caller)
        await h.hang_up(caller)
    assert caller_report["timeline"]["bridged"] is not None and caller_report["warnings"] == {}


@async_test
async def test_dial_to_an_agent_who_never_answers_completes_with_no_answer() -> None:
    """A Dial whose second leg rings out ends with dial_completed {dial_status: no-answer} and no dial_success."""
    async with with_agents() as h:
        caller = await h.answered_leg()
        await h.exoml(caller, f'<Dial contactUri="{SLOW_AGENT}" timeout="1"/>')
        completed = await h.event(caller, "dial_completed")
        assert completed.detail["dial_status"] == "no-answer"
        assert "dial_success" not in h.recorder.names(caller)
        assert h.sandbox.leg(second_leg(h, caller)).terminal_status == "no-answer"
        await h.hang_up(caller)


@async_test
async def test_the_caller_hanging_up_hangs_up_the_leg_it_dialled() -> None:
    """When the leg that dialled ends, the bridged second leg leaves the bridge and is hung up (hangup_by peer)."""
    async with with_agents() as h:
        caller, agent = await bridged_to_agent(h)
        await h.hang_up(caller)
        await h.event(agent, "leg_terminated")
        assert h.recorder.names(agent)[-2:] == ["leg_left_bridge", "leg_terminated"]
        assert h.sandbox.leg(agent).hangup_by == "peer"


@async_test
async def test_dial_is_refused_at_the_concurrent_legs_limit() -> None:
    """A <Dial> that would exceed the account's concurrent legs is a 429 CONCURRENCY_LIMIT_EXCEEDED; nothing runs."""
    async with harness(fast_config(ANSWERING, limits=Limits(concurrent_legs=1))) as h:
        caller = await h.answered_leg()
        status, envelope = await h.exoml(caller, f'<Dial contactUri="{AGENT}"/>')
        assert status == 429 and envelope["response"]["error_data"]["code"] == "CONCURRENCY_LIMIT_EXCEEDED"
        assert h.sandbox.leg(caller).actions == []
        await h.hang_up(caller)


# <Hold> and <UnHold/>


@async_test
async def test_hold_plays_music_and_takes_the_leg_out_of_the_conversation() -> None:
    """<Hold> with a nested <StartPlay> plays music to the held leg; the other party hears no one until <UnHold/>."""
    async with with_agents() as h:
        caller, agent = await bridged_to_agent(h)
        status, _ = await h.exoml(caller, "<Hold><StartPlay>https://example.com/moh.wav</StartPlay></Hold>")
        assert status == 202
        held = await h.event(caller, "hold_success")
        assert held.detail == {"music_url": "https://example.com/moh.wav"}
        status, envelope, _ = await h.call("GET", f"{h.legs_path}/{caller}?fields=hold_status,bridge_status")
        assert envelope["response"]["data"]["additional_info"] == {"hold_status": "hold", "bridge_status": "bridged"}
        caller_heard, agent_heard = h.sandbox.leg(caller).timeline.heard, h.sandbox.leg(agent).timeline.heard
        assert caller_heard["hold"][-1][1] is None and caller_heard["bridge"][-1][1] is not None
        assert agent_heard["bridge"][-1][1] is not None  # the agent hears no one
        await h.exoml(caller, "<UnHold/>")
        await h.event(caller, "unhold_success")
        assert caller_heard["hold"][-1][1] is not None
        assert caller_heard["bridge"][-1][1] is None and agent_heard["bridge"][-1][1] is None
        await h.hang_up(caller)


@async_test
async def test_warm_transfer_timeline_hold_music_then_the_agent() -> None:
    """A transfer the worker drives (hold, create the agent's leg co-located, bridge): the callee hears music, then the agent."""
    async with with_agents() as h:
        callee = await h.answered_leg()
        await h.exoml(callee, "<Hold><StartPlay>https://example.com/moh.wav</StartPlay></Hold>")
        await h.event(callee, "hold_success")
        agent = await h.answered_leg(AGENT, reference_leg_sid=callee)
        status, envelope, _ = await h.call(
            "POST", f"/v2/accounts/{h.sandbox.config.account_sid}/bridges", {"leg_sids": [callee, agent], "bridge_event_endpoint": h.endpoint}
        )
        assert status == 202
        await h.event(agent, "leg_joined_bridge")
        await h.exoml(callee, "<UnHold/>")
        await h.event(callee, "unhold_success")
        await until(lambda: h.sandbox.leg(callee).timeline.heard["bridge"])
        await h.hang_up(callee)
        await h.hang_up(agent)
        report = await h.report(callee)
    (music,), (talk,) = report["hold_audio"], report["bridge_audio"]
    assert music[0] < music[1] <= talk[0] < talk[1]
    assert report["timeline"]["bridged"] == talk[0]
    assert report["figures"]["answer_to_first_audio_ms"] is not None and report["invariants"] == []
