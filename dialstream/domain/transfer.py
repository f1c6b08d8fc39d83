"""Hand-off to a human agent: which step of a transfer comes next. Pure.

A transfer is asked for by the bot (``bot.api.Bot.transfer``) or by the callee pressing the
campaign's ``transfer_key`` (DTMF reaches only the bot, which forwards every key; whether it
is the transfer key is decided here), and reaches the worker as a :class:`TransferRequest`.
The transfer lives on the callee's leg record (``LegRecord.transfer``):

1. :func:`start`: the bot stream stops (the bot is done with the call, and its capacity
   serves another), the callee hears the hold message, and the agent's leg is created beside
   the callee's (``create_leg`` with ``reference_leg_sid``: legs to be bridged should be
   co-located). The agent is the request's, if it is one of the campaign's, else the next of
   the campaign's agents in turn.
2. The agent's leg events come to the callee's record (the agent leg's tag names the callee's
   leg): its ringing is noted; at its ``leg_answered`` a warm transfer says the whisper (the
   campaign's ``whisper_message``, else the bot's summary) to the agent first; a cold one, or
   the whisper's end, goes on.
3. The two legs are bridged (``create_bridge``) and the hold message stopped;
   ``leg_joined_bridge`` marks the call bridged. From then on the call is the agent's: if the
   agent hangs up the callee is hung up, and if the callee hangs up so is the agent.

No agent (busy, no answer within ``agent_ring_timeout``, a dial refused, a bridge not up within
:data:`BRIDGE_WAIT`) sends the call back as ``transfer_fallback`` says: to the bot (a new
stream; the hold message plays until it is up), or to the fallback message and a hang-up.
A bridged call's outcome is ``transferred``; the record keeps the agent, the mode and the
timings (asked at, the agent's ringing and answer, bridged at).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from dialstream.domain.campaign import CampaignConfig
from dialstream.domain.leg_actions import (
    add_action,
    callee_hears_something,
    give_up,
    hangup,
    start_greeting,
    start_stream,
    stop_greeting,
)
from dialstream.domain.leg_record import (
    Action,
    Decision,
    Ending,
    GreetingState,
    LegRecord,
    Outcome,
    Phase,
    StreamState,
    Transfer,
    TransferState,
)
from dialstream.exotel import events as ev
from dialstream.exotel.actions import ActionKind

__all__ = [
    "TransferRequest", "wanted", "start", "apply_event", "apply_timer", "apply_failure", "finish", "timers_for",
    "AGENT_TIMER", "BRIDGE_TIMER", "AGENT_SETUP", "BRIDGE_WAIT", "HOLD_LOOPS", "OWN_LEG_EVENTS",
]  # fmt: skip

AGENT_TIMER = "agent"
BRIDGE_TIMER = "bridge"
AGENT_SETUP = 5.0  # seconds an agent's leg may take to start ringing, on top of agent_ring_timeout
BRIDGE_WAIT = 10.0  # seconds from asking for the bridge to leg_joined_bridge at most
HOLD_LOOPS = 10  # the hold message said this many times in one action (Exotel's most); then again
MAX_SUMMARY = 500  # characters of the bot's summary said to the agent
LEG_JOINED_BRIDGE = "leg_joined_bridge"
# The events of the callee's own leg a transfer has a rule for (the bridge is up; a hold message ended).
OWN_LEG_EVENTS = frozenset({LEG_JOINED_BRIDGE, ev.SAY_COMPLETED})
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_LIVE = (TransferState.DIALING, TransferState.WHISPER, TransferState.BRIDGING)


@dataclass(frozen=True)
class TransferRequest:
    """A transfer asked for: by the bot (``to``, ``mode``, ``summary``; empty: the campaign's
    choice), or a key the callee pressed (``key``), a transfer only if it is the campaign's."""

    to: str = ""
    mode: str = ""
    summary: str = ""
    key: str = ""

    @classmethod
    def create(cls, to: str | None = None, mode: str | None = None, summary: str = "") -> TransferRequest:
        """A checked request; ValueError for a number that is not E.164 or a mode that is not cold/warm."""
        if to and not _E164.match(to):
            raise ValueError(f"transfer to {to!r}: expected an E.164 number like +918030752400")
        if mode not in (None, "", "cold", "warm"):
            raise ValueError(f"transfer mode {mode!r} is not cold/warm")
        return cls(to or "", mode or "", " ".join(summary.split())[:MAX_SUMMARY])

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TransferRequest:
        return cls(**{f.name: str(raw.get(f.name) or "") for f in dataclasses.fields(cls)})


def wanted(request: TransferRequest, campaign: CampaignConfig) -> bool:
    """Whether ``request`` asks for a transfer: the bot's always, a key only if it is the campaign's transfer key."""
    return not request.key or (bool(campaign.transfer_key) and request.key == campaign.transfer_key)


def start(record: LegRecord, request: TransferRequest, campaign: CampaignConfig, turn: int, now: float) -> LegRecord | Decision:
    """Begin a transfer of the answered call ``record`` (``turn``: a counter that rotates the
    campaign's agents; ``now``: when the request was taken). One transfer per call: a second
    request, or one for a call not talking to its bot, changes nothing."""
    talking = record.phase in (Phase.ANSWERED, Phase.STREAMING) and record.ending is Ending.NONE and not record.machine
    if record.transfer is not None or not talking or not wanted(request, campaign):
        return record
    agents = campaign.agents
    if request.to and request.to not in agents:
        return Decision(_noted(record, f"transfer to {request.to}: not one of the campaign's agents"))
    if not agents:
        return Decision(_noted(record, "transfer asked for, but the campaign has no agents"))
    agent = request.to or agents[turn % len(agents)]
    mode = request.mode or campaign.transfer_mode
    actions: list[Action] = []
    if record.stream in (StreamState.REQUESTED, StreamState.STARTED):
        record, stop = add_action(record, ActionKind.STOP_STREAM, {"stream_sid": record.stream_sid} if record.stream_sid else {})
        record = dataclasses.replace(record, stream=StreamState.STOPPED)
        actions.append(stop)
    if callee_hears_something(record):
        record, stop = add_action(record, ActionKind.stop(record.greeting_kind), {})
        actions.append(stop)
    record, hold = start_greeting(record, "say", {"text": campaign.hold_message, "loop": HOLD_LOOPS})
    record, dial = add_action(record, ActionKind.CREATE_LEG, {"contact_uri": agent, "ring_timeout": campaign.agent_ring_timeout})
    whisper = (campaign.whisper_message or request.summary) if mode == "warm" else ""
    transfer = Transfer(agent, mode, TransferState.DIALING, now, whisper)
    return Decision(dataclasses.replace(record, transfer=transfer), (*actions, hold, dial))


def apply_event(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision | None:
    """An event of a call with a transfer, or of an agent's leg: the transfer's decision, or
    None when the call's own rules (``dialstream.domain.leg_state``) decide it."""
    transfer = record.transfer
    if event.leg_sid != record.leg_sid:
        return record if transfer is None else _agent_event(record, transfer, event, campaign)
    if transfer is None or event.event_name not in OWN_LEG_EVENTS:
        return None
    if event.event_name == LEG_JOINED_BRIDGE:
        return _joined(record, transfer, event)
    hold_over = event.event_name == ev.SAY_COMPLETED and event.action_custom_parameter == record.greeting_action_id
    if hold_over and transfer.state in (TransferState.DIALING, TransferState.WHISPER) and record.ending is Ending.NONE:
        record = dataclasses.replace(record, greeting=GreetingState.STOPPED, greeting_stopped_at=event.timestamp)
        record, hold = start_greeting(record, "say", {"text": campaign.hold_message, "loop": HOLD_LOOPS})
        return Decision(record, (hold,))  # still no agent: the callee keeps hearing the hold message
    return None


def timers_for(record: LegRecord, actions: tuple[Action, ...], campaign: CampaignConfig) -> list[tuple[str, float]]:
    """The agent's answer is watched from its dial; the bridge from its request."""
    timers = []
    if any(a.kind is ActionKind.CREATE_LEG for a in actions):
        timers.append((AGENT_TIMER, campaign.agent_ring_timeout + AGENT_SETUP))
    if any(a.kind is ActionKind.CREATE_BRIDGE for a in actions):
        timers.append((BRIDGE_TIMER, BRIDGE_WAIT))
    return timers


def apply_timer(record: LegRecord, timer_id: str, campaign: CampaignConfig) -> LegRecord | Decision:
    """:data:`AGENT_TIMER` or :data:`BRIDGE_TIMER` fired: a transfer still waiting for it falls back."""
    transfer = record.transfer
    if transfer is None:
        return record
    if timer_id == AGENT_TIMER and transfer.state is TransferState.DIALING:
        return _fall_back(record, transfer, campaign, f"no answer from the agent within {campaign.agent_ring_timeout}s")
    if timer_id == BRIDGE_TIMER and transfer.state is TransferState.BRIDGING:
        return _fall_back(record, transfer, campaign, f"the bridge was not up within {BRIDGE_WAIT:g}s")
    return record


def apply_failure(record: LegRecord, action: Action, error: Exception, campaign: CampaignConfig) -> Decision:
    """A transfer's action failed for good: no agent leg or no bridge falls back; a whisper
    that could not be said is skipped (the agent is connected without it)."""
    transfer = record.transfer
    if transfer is None:
        return Decision(record)
    if action.kind in (ActionKind.CREATE_LEG, ActionKind.CREATE_BRIDGE) and transfer.state in (TransferState.DIALING, TransferState.BRIDGING):
        return _fall_back(record, transfer, campaign, f"{action.kind} failed: {error}")
    if action.kind is ActionKind.START_SAY and action.on_leg and transfer.state is TransferState.WHISPER:
        return _bridge(record, transfer)
    return Decision(record)


def finish(decision: Decision) -> Decision:
    """The callee's leg ended (``decision`` ends it): a bridged call's outcome is ``transferred``,
    one whose transfer failed after its bot had it is ``completed``; an agent's leg still up is
    hung up."""
    record = decision.record
    transfer = record.transfer
    if transfer is None:
        return decision
    if transfer.bridged_at is not None:
        record = dataclasses.replace(record, outcome=Outcome.TRANSFERRED.value, reason="")
    elif transfer.state is TransferState.FAILED and record.streams_started and record.outcome == Outcome.ANSWERED_NO_STREAM.value:
        record = dataclasses.replace(record, outcome=Outcome.COMPLETED.value)
    if not transfer.leg_sid or transfer.ended_at is not None:
        return Decision(record, decision.actions)
    record, hang = add_action(record, ActionKind.HANGUP, {}, on_leg=transfer.leg_sid)
    return Decision(record, (*decision.actions, hang))


def _agent_event(record: LegRecord, transfer: Transfer, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    if transfer.leg_sid and event.leg_sid != transfer.leg_sid:
        return record  # not this call's agent leg
    first = not transfer.leg_sid
    transfer = dataclasses.replace(transfer, leg_sid=event.leg_sid)
    name = event.event_name
    if name == ev.LEG_RINGING and transfer.ringing_at is None:
        return Decision(dataclasses.replace(record, transfer=dataclasses.replace(transfer, ringing_at=event.timestamp)))
    if name == ev.LEG_ANSWERED and transfer.answered_at is None:
        return _agent_answered(record, dataclasses.replace(transfer, answered_at=event.timestamp))
    if name in (ev.SAY_COMPLETED, ev.SAY_INTERRUPTED) and transfer.state is TransferState.WHISPER:
        return _bridge(record, transfer)
    if name == LEG_JOINED_BRIDGE:
        return _joined(record, transfer, event)
    if name in (ev.LEG_TERMINATED, ev.LEG_FAILED_TO_CREATE) and transfer.ended_at is None:
        return _agent_ended(record, dataclasses.replace(transfer, ended_at=event.timestamp), event, campaign)
    return Decision(dataclasses.replace(record, transfer=transfer)) if first else record


def _agent_answered(record: LegRecord, transfer: Transfer) -> Decision:
    if transfer.state is not TransferState.DIALING or record.finished:
        # Too late: the call went back to the bot (or ended) meanwhile.
        record, hang = add_action(record, ActionKind.HANGUP, {}, on_leg=transfer.leg_sid)
        return Decision(dataclasses.replace(record, transfer=transfer), (hang,))
    if transfer.whisper:
        record, say = add_action(record, ActionKind.START_SAY, {"text": transfer.whisper}, on_leg=transfer.leg_sid)
        return Decision(dataclasses.replace(record, transfer=dataclasses.replace(transfer, state=TransferState.WHISPER)), (say,))
    return _bridge(record, transfer)


def _agent_ended(record: LegRecord, transfer: Transfer, event: ev.LegEvent, campaign: CampaignConfig) -> Decision:
    if transfer.state is TransferState.BRIDGED:
        record = dataclasses.replace(record, transfer=transfer)
        return Decision(record) if record.finished or record.ending is not Ending.NONE else hangup(record)  # the agent hung up
    if transfer.state in _LIVE:
        status = str(event.data.get("terminal_status") or event.error.get("message") or event.event_name)
        return _fall_back(record, transfer, campaign, f"the agent's leg ended before the bridge ({status})")
    return Decision(dataclasses.replace(record, transfer=transfer))


def _bridge(record: LegRecord, transfer: Transfer) -> Decision:
    record, bridge = add_action(record, ActionKind.CREATE_BRIDGE, {"leg_sids": [record.leg_sid, transfer.leg_sid]})
    record = dataclasses.replace(record, transfer=dataclasses.replace(transfer, state=TransferState.BRIDGING))
    if not callee_hears_something(record):
        return Decision(record, (bridge,))
    # The hold message stops with the bridge (and again once it shows up, if it has not yet).
    pending = GreetingState.STOP_PENDING if record.greeting is GreetingState.REQUESTED else GreetingState.STOPPING
    stop = stop_greeting(record, pending)
    return Decision(stop.record, (bridge, *stop.actions))


def _joined(record: LegRecord, transfer: Transfer, event: ev.LegEvent) -> LegRecord | Decision:
    if transfer.state is not TransferState.BRIDGING:
        return record
    transfer = dataclasses.replace(transfer, state=TransferState.BRIDGED, bridged_at=event.timestamp)
    return Decision(dataclasses.replace(record, transfer=transfer))


def _fall_back(record: LegRecord, transfer: Transfer, campaign: CampaignConfig, reason: str) -> Decision:
    """No agent: hang up the agent's leg if it is up, and send the call back to the bot or to the fallback message."""
    transfer = dataclasses.replace(transfer, state=TransferState.FAILED, reason=reason)
    record = dataclasses.replace(record, transfer=transfer, errors=(*record.errors, f"transfer: {reason}"))
    actions: list[Action] = []
    if transfer.leg_sid and transfer.ended_at is None:
        record, hang = add_action(record, ActionKind.HANGUP, {}, on_leg=transfer.leg_sid)
        actions.append(hang)
    if record.finished or record.ending is not Ending.NONE:
        return Decision(record, tuple(actions))
    if campaign.transfer_fallback == "bot":
        record, stream = start_stream(record, campaign)  # the hold message plays until the bot is back
        return Decision(record, (*actions, stream))
    decision = give_up(record, campaign, f"transfer failed: {reason}")
    return Decision(decision.record, (*actions, *decision.actions))


def _noted(record: LegRecord, error: str) -> LegRecord:
    return dataclasses.replace(record, errors=(*record.errors, error))
