"""Hand-off to a human agent: each step of a cold or warm transfer and each way it falls back (pure)."""

from __future__ import annotations

import itertools

import pytest

from dialstream.domain.campaign import CampaignConfig, Flow, LegTag
from dialstream.domain.leg_record import TransferState
from dialstream.domain.leg_state import (
    Decision,
    Ending,
    LegRecord,
    Outcome,
    StreamState,
    apply_event,
    apply_failure,
    apply_timer,
    timers_for,
)
from dialstream.domain.transfer import AGENT_SETUP, AGENT_TIMER, BRIDGE_TIMER, HOLD_LOOPS, TransferRequest, start
from dialstream.errors import LegsApiClientError
from dialstream.exotel import events as ev
from dialstream.exotel.actions import ActionKind
from dialstream.exotel.events import LegEvent

_sids = itertools.count(1)
AGENTS = ("+918000000001", "+918000000002")
CALLEE, AGENT = "LEG1", "AGENT1"


def campaign(**overrides) -> CampaignConfig:
    settings = {"flow": Flow.BOT_FIRST, "bot_url": "ws://bot/media", "agents": AGENTS, "hold_message": "Please hold.",
                "whisper_message": "Loan customer, wants to talk about the EMI.", **overrides}  # fmt: skip
    return CampaignConfig("camp", **settings)


def event(name: str, leg: str = CALLEE, at: float = 100.0, **extra) -> LegEvent:
    kind = ev.LIFECYCLE if name.startswith("leg_") else ev.ACTION
    return LegEvent(f"E{next(_sids):031d}", kind, name, at, leg, **extra)


def step(record: LegRecord, config: CampaignConfig, *items) -> tuple[LegRecord, list]:
    """Apply events (or timer ids given as strings) in order: the record and the actions sent."""
    sent = []
    for item in items:
        result = apply_timer(record, item, config) if isinstance(item, str) else apply_event(record, item, config)
        if isinstance(result, Decision):
            record, sent = result.record, sent + list(result.actions)
    return record, sent


def talking(config: CampaignConfig) -> LegRecord:
    """A call whose bot stream is up."""
    record, _ = step(LegRecord.new(CALLEE, LegTag("camp", "c1"), config), config, event(ev.LEG_ANSWERED),
                     event(ev.STREAM_STARTED, event_data={"data": {"stream_sid": "S1"}}))  # fmt: skip
    return record


def transferring(config: CampaignConfig, request: TransferRequest = TransferRequest(), turn: int = 0) -> tuple[LegRecord, list]:
    result = start(talking(config), request, config, turn, now=101.0)
    assert isinstance(result, Decision)
    return result.record, list(result.actions)


def kinds(actions) -> list[str]:
    return [(a.kind.value, a.on_leg) if a.on_leg else a.kind.value for a in actions]


def test_a_transfer_stops_the_bot_holds_the_callee_and_dials_the_next_agent_beside_the_callees_leg():
    """The bot's stream stops, the hold message loops, the agent whose turn it is is dialled; its dial arms the agent timer."""
    config = campaign()
    record, sent = transferring(config, turn=3)
    assert kinds(sent) == ["stop_stream", "start_say", "create_leg"]
    assert sent[0].params == {"stream_sid": "S1"} and sent[1].params == {"text": "Please hold.", "loop": HOLD_LOOPS}
    assert sent[2].params == {"contact_uri": AGENTS[1], "ring_timeout": 20}
    assert record.stream is StreamState.STOPPED and record.transfer.state is TransferState.DIALING and record.transfer.requested_at == 101.0
    assert (AGENT_TIMER, 20 + AGENT_SETUP) in timers_for(record, tuple(sent), config)


def test_who_may_ask_for_a_transfer_and_to_whom():
    """The bot names one of the campaign's agents or none; a key is a transfer only if it is the campaign's; one transfer per call."""
    config = campaign(transfer_key="0")
    assert transferring(config, TransferRequest.create(to=AGENTS[0]), turn=1)[1][2].params["contact_uri"] == AGENTS[0]
    assert start(talking(config), TransferRequest(key="5"), config, 0, 101.0).transfer is None
    assert transferring(config, TransferRequest(key="0"))[0].transfer.agent == AGENTS[0]
    stranger = start(talking(config), TransferRequest.create(to="+919999999999"), config, 0, 101.0)
    assert "not one of the campaign's agents" in stranger.record.errors[-1] and not stranger.actions
    alone = start(talking(campaign(agents=())), TransferRequest(), campaign(agents=()), 0, 101.0)
    assert "has no agents" in alone.record.errors[-1]
    record, _ = transferring(config)
    assert start(record, TransferRequest(), config, 1, 102.0) is record
    for bad, message in ((lambda: TransferRequest.create(to="12345"), "E.164"), (lambda: TransferRequest.create(mode="hot"), "cold/warm")):
        with pytest.raises(ValueError, match=message):
            bad()


def test_a_cold_transfer_bridges_at_the_agents_answer_and_ends_transferred():
    """Ringing is noted; at the answer the bridge is asked for and the hold stops; joined: bridged; the callee's
    hang-up ends the call as transferred and hangs the agent up."""
    config = campaign(transfer_mode="cold")
    record, _ = transferring(config)
    record, sent = step(record, config, event(ev.LEG_CONNECTING, AGENT, 102.0), event(ev.LEG_RINGING, AGENT, 102.5),
                        event(ev.LEG_ANSWERED, AGENT, 105.0))  # fmt: skip
    assert kinds(sent) == ["create_bridge", "stop_say"] and sent[0].params == {"leg_sids": [CALLEE, AGENT]}
    assert (BRIDGE_TIMER, 10.0) in timers_for(record, tuple(sent), config)
    record, _ = step(record, config, event("leg_joined_bridge", CALLEE, 105.4), event("leg_joined_bridge", AGENT, 105.5))
    transfer = record.transfer
    assert (transfer.state, transfer.ringing_at, transfer.answered_at, transfer.bridged_at) == (TransferState.BRIDGED, 102.5, 105.0, 105.4)
    record, sent = step(record, config, event(ev.LEG_TERMINATED, at=160.0, data={"terminal_status": "completed"}))
    assert record.outcome == Outcome.TRANSFERRED.value and kinds(sent) == [("hangup", AGENT)]


def test_a_warm_transfer_whispers_to_the_agent_before_the_bridge_and_an_agent_hanging_up_ends_the_call():
    """The agent hears the whisper first; its end brings the bridge; the agent's hang-up hangs up the callee."""
    config = campaign(transfer_mode="warm")
    record, _ = transferring(config)
    record, sent = step(record, config, event(ev.LEG_RINGING, AGENT), event(ev.LEG_ANSWERED, AGENT))
    assert kinds(sent) == [("start_say", AGENT)] and sent[0].params == {"text": config.whisper_message}
    record, sent = step(record, config, event(ev.SAY_COMPLETED, AGENT), event("leg_joined_bridge", AGENT, 108.0))
    assert kinds(sent) == ["create_bridge", "stop_say"] and record.transfer.bridged_at == 108.0
    record, sent = step(record, config, event(ev.LEG_TERMINATED, AGENT, 150.0, data={"terminal_status": "completed"}))
    assert kinds(sent) == ["hangup"] and record.transfer.ended_at == 150.0
    record, sent = step(record, config, event(ev.LEG_TERMINATED, at=150.5, data={"terminal_status": "completed"}))
    assert record.outcome == Outcome.TRANSFERRED.value and sent == []  # the agent's leg is over already


def test_a_warm_transfer_without_a_whisper_message_says_the_bots_summary():
    """The campaign has no whisper message: the agent hears what the bot summarised."""
    config = campaign(transfer_mode="warm", whisper_message="")
    record, _ = transferring(config, TransferRequest.create(summary="Wants  to prepay\n the loan. "))
    _, sent = step(record, config, event(ev.LEG_ANSWERED, AGENT))
    assert sent[0].params == {"text": "Wants to prepay the loan."}


def test_an_agent_who_does_not_answer_sends_the_call_back_to_the_bot():
    """The agent's leg ends unanswered: a new bot stream (the hold plays until it is up); the call ends completed."""
    config = campaign(transfer_fallback="bot")
    record, _ = transferring(config)
    record, sent = step(record, config, event(ev.LEG_RINGING, AGENT), event(ev.LEG_TERMINATED, AGENT, data={"terminal_status": "no-answer"}))
    assert kinds(sent) == ["start_stream"] and record.transfer.state is TransferState.FAILED
    assert "no-answer" in record.transfer.reason
    record, sent = step(record, config, event(ev.SAY_STARTED, action_custom_parameter=record.greeting_action_id),
                        event(ev.STREAM_STARTED, event_data={"data": {"stream_sid": "S2"}}), AGENT_TIMER)  # fmt: skip
    assert kinds(sent) == ["stop_say"]  # the bot is back: the hold stops; the late agent timer changes nothing
    record, _ = step(record, config, event(ev.LEG_TERMINATED, data={"terminal_status": "completed"}))
    assert record.outcome == Outcome.COMPLETED.value


def test_an_agent_who_does_not_answer_in_time_is_hung_up_and_the_callee_hears_the_fallback_message():
    """The agent timer: the ringing agent leg is hung up, the hold stops, the fallback message plays, then the hang-up."""
    config = campaign(transfer_fallback="message")
    record, _ = transferring(config)
    record, sent = step(record, config, event(ev.LEG_RINGING, AGENT), AGENT_TIMER)
    assert kinds(sent) == [("hangup", AGENT), "stop_say", "start_say"] and record.ending is Ending.FALLBACK
    assert sent[-1].params == {"text": config.fallback_message} and "within 20s" in record.reason
    record, sent = step(record, config, event(ev.SAY_COMPLETED, action_custom_parameter=sent[-1].action_id),
                        event(ev.LEG_ANSWERED, AGENT))  # fmt: skip
    assert kinds(sent) == ["hangup", ("hangup", AGENT)]  # the callee after the message; an agent answering too late


def test_a_dial_or_a_bridge_that_fails_falls_back_and_a_failed_whisper_is_skipped():
    """create_leg refused: fallback; the whisper's say failing: the bridge at once; a bridge that never shows: fallback."""
    config = campaign(transfer_mode="warm")
    record, sent = transferring(config)
    failed = apply_failure(record, sent[2], LegsApiClientError(400, "invalid exophone"), config)
    assert kinds(failed.actions) == ["start_stream"] and "create_leg failed" in failed.record.transfer.reason
    record, sent = step(record, config, event(ev.LEG_ANSWERED, AGENT))
    skipped = apply_failure(record, sent[0], LegsApiClientError(409, "leg not up"), config)
    assert kinds(skipped.actions) == ["create_bridge", "stop_say"]
    record, sent = step(skipped.record, config, BRIDGE_TIMER)
    assert kinds(sent) == [("hangup", AGENT), "start_stream"] and "bridge was not up" in record.transfer.reason


def test_the_hold_message_starts_again_while_the_agent_rings():
    """Its loops over and no agent yet, the hold message is said again."""
    config = campaign()
    record, sent = transferring(config)
    record, more = step(record, config, event(ev.SAY_COMPLETED, action_custom_parameter=sent[1].action_id))
    assert kinds(more) == ["start_say"] and more[0].params["text"] == "Please hold." and record.greeting_action_id == more[0].action_id


def test_events_of_an_agent_leg_never_act_as_the_callees():
    """A stray agent-leg event for a call with no transfer changes nothing; the request survives JSON."""
    config = campaign()
    record = talking(config)
    assert apply_event(record, event(ev.LEG_TERMINATED, AGENT), config) is record
    request = TransferRequest.create(to=AGENTS[0], mode="warm", summary="EMI")
    assert TransferRequest.from_dict(request.to_dict()) == request
    assert ActionKind.CREATE_LEG.value == "create_leg"
