"""The per-leg state machine: which Legs API actions a leg event calls for. Pure, no I/O.

``apply_event(record, event, campaign)`` returns the leg's next record and the actions to
send. The workers persist the record atomically (compare-and-set on ``version``, see
``dialstream.store``) *before* sending anything, with the actions kept in the record's
``outbox`` until they are dispatched; so a worker that dies in between leaves the actions
for the re-delivered event to send, and an event applied twice has no second effect.

Phases only move forward::

    created -> connecting -> ringing -> answered -> streaming -> ended

The greeting (approach 2) has its own state::

    none -> requested -> playing -> stopping -> stopped
                  \\-> stop_pending (stream started before the greeting did) -/

Events may arrive duplicated or out of order; each rule below says what it does then.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dialstream import events as ev
from dialstream.campaign import CampaignConfig, Flow, LegTag

__all__ = ["Phase", "GreetingState", "StreamState", "Action", "LegRecord", "Decision", "apply_event", "Outcome"]


class Phase(StrEnum):
    CREATED = "created"
    CONNECTING = "connecting"
    RINGING = "ringing"
    ANSWERED = "answered"
    STREAMING = "streaming"
    ENDED = "ended"


_PHASE_ORDER = {phase: index for index, phase in enumerate(Phase)}


class GreetingState(StrEnum):
    NONE = "none"
    REQUESTED = "requested"
    PLAYING = "playing"
    STOP_PENDING = "stop_pending"
    STOPPING = "stopping"
    STOPPED = "stopped"


class StreamState(StrEnum):
    NONE = "none"
    REQUESTED = "requested"
    STARTED = "started"
    STOPPED = "stopped"


class Outcome(StrEnum):
    """A call's final outcome, as the campaign report shows it."""

    COMPLETED = "completed"  # answered, streamed to a bot, ended
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"  # the network or Exotel could not place the call
    CANCELED = "canceled"
    ANSWERED_NO_STREAM = "answered_no_stream"  # answered but the bot never came up


_TERMINAL_STATUS_OUTCOMES = {
    "busy": Outcome.BUSY,
    "no-answer": Outcome.NO_ANSWER,
    "no_answer": Outcome.NO_ANSWER,
    "failed": Outcome.FAILED,
    "canceled": Outcome.CANCELED,
    "cancelled": Outcome.CANCELED,
}

# Which stop action ends which greeting.
_STOP_GREETING = {Flow.GREETING_SAY: "stop_say", Flow.GREETING_PLAY: "stop_play"}
_GREETING_STARTED = {ev.SAY_STARTED, ev.PLAY_STARTED}
_GREETING_ENDED = {ev.SAY_COMPLETED, ev.SAY_INTERRUPTED, ev.PLAY_COMPLETED, ev.PLAY_INTERRUPTED, ev.PLAY_FAILED_TO_START}


@dataclass(frozen=True, slots=True)
class Action:
    """One Legs API call to make for a leg. ``action_id`` is unique within the leg and is
    what makes sending it idempotent."""

    action_id: str
    kind: str  # start_stream | start_say | start_play | stop_say | stop_play | stop_stream | hangup
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"action_id": self.action_id, "kind": self.kind, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Action:
        return cls(raw["action_id"], raw["kind"], dict(raw.get("params") or {}))


@dataclass(frozen=True)
class LegRecord:
    """Everything dialstream knows about one leg. Times are Unix seconds from event timestamps."""

    leg_sid: str
    campaign_id: str
    contact_id: str
    attempt: int = 1
    flow: Flow = Flow.BOT_FIRST
    phase: Phase = Phase.CREATED
    greeting: GreetingState = GreetingState.NONE
    stream: StreamState = StreamState.NONE
    stream_attempts: int = 0
    streams_started: int = 0
    answered_at: float | None = None
    stream_started_at: float | None = None
    greeting_started_at: float | None = None
    greeting_stopped_at: float | None = None
    ended_at: float | None = None
    terminal_status: str = ""
    outcome: str = ""
    reason: str = ""
    stream_sid: str = ""
    action_counts: dict[str, int] = field(default_factory=dict)
    outbox: tuple[Action, ...] = ()
    errors: tuple[str, ...] = ()
    version: int = 0

    @property
    def finished(self) -> bool:
        return self.phase is Phase.ENDED

    def to_dict(self) -> dict[str, Any]:
        raw = dataclasses.asdict(self)
        raw["outbox"] = [action.to_dict() for action in self.outbox]
        raw["errors"] = list(self.errors)
        return raw

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LegRecord:
        raw = dict(raw)
        raw["flow"] = Flow(raw["flow"])
        raw["phase"] = Phase(raw["phase"])
        raw["greeting"] = GreetingState(raw["greeting"])
        raw["stream"] = StreamState(raw["stream"])
        raw["outbox"] = tuple(Action.from_dict(a) for a in raw.get("outbox", ()))
        raw["errors"] = tuple(raw.get("errors", ()))
        return cls(**raw)

    @classmethod
    def new(cls, leg_sid: str, tag: LegTag, campaign: CampaignConfig) -> LegRecord:
        return cls(leg_sid, tag.campaign_id, tag.contact_id, attempt=tag.attempt, flow=campaign.flow)


@dataclass(frozen=True, slots=True)
class Decision:
    """The result of applying one event: the next record and the actions to send now."""

    record: LegRecord
    actions: tuple[Action, ...] = ()


def apply_event(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    """Apply ``event`` to ``record``.

    Returns the same ``record`` object when the event has no effect (a duplicate, a late
    event for a dead leg, an event we do not act on); otherwise a :class:`Decision`.
    """
    handler = _HANDLERS.get(event.event_name)
    if handler is None:
        return record
    return handler(record, event, campaign)


def _progress(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    target = Phase.CONNECTING if event.event_name == ev.LEG_CONNECTING else Phase.RINGING
    if _PHASE_ORDER[record.phase] >= _PHASE_ORDER[target]:
        return record  # duplicate or overtaken by a later event
    return Decision(dataclasses.replace(record, phase=target))


def _answered(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    if _PHASE_ORDER[record.phase] >= _PHASE_ORDER[Phase.ANSWERED]:
        # A second leg_answered (even with a new event_sid) must not start a second stream;
        # after leg_terminated nothing may be started on the dead leg.
        return record
    record = dataclasses.replace(record, phase=Phase.ANSWERED, answered_at=event.timestamp)
    record, stream = _start_stream(record, campaign)
    actions = [stream]
    if campaign.flow.has_greeting:
        record, greeting = _add_action(record, *_greeting_action(campaign))
        record = dataclasses.replace(record, greeting=GreetingState.REQUESTED)
        actions.append(greeting)
    return Decision(record, tuple(actions))


def _stream_started(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    if record.phase is Phase.ENDED or record.stream is StreamState.STARTED:
        return record
    record = dataclasses.replace(
        record,
        phase=Phase.STREAMING,
        stream=StreamState.STARTED,
        streams_started=record.streams_started + 1,
        stream_started_at=event.timestamp,
        stream_sid=str(event.detail.get("stream_sid") or record.stream_sid),
    )
    if record.greeting is GreetingState.PLAYING:
        return _stop_greeting(record, GreetingState.STOPPING)
    if record.greeting is GreetingState.REQUESTED:
        # The greeting was asked for but has not started (or its event is late): ask Exotel to
        # stop it now, and again when say_started/play_started shows it exists.
        return _stop_greeting(record, GreetingState.STOP_PENDING)
    return Decision(record)


def _greeting_started(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    if record.greeting not in (GreetingState.REQUESTED, GreetingState.STOP_PENDING):
        return record
    record = dataclasses.replace(record, greeting_started_at=event.timestamp)
    if record.greeting is GreetingState.STOP_PENDING:
        return _stop_greeting(record, GreetingState.STOPPING)
    return Decision(dataclasses.replace(record, greeting=GreetingState.PLAYING))


def _greeting_ended(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    if record.greeting in (GreetingState.NONE, GreetingState.STOPPED):
        return record
    return Decision(dataclasses.replace(record, greeting=GreetingState.STOPPED, greeting_stopped_at=event.timestamp))


def _stream_stopped(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    if record.stream is not StreamState.STARTED:
        return record
    reason = record.reason if record.phase is Phase.ENDED else "bot stream stopped while the call was up"
    return Decision(dataclasses.replace(record, stream=StreamState.STOPPED, reason=reason))


def _ended(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    if record.phase is Phase.ENDED:
        return record
    status = str(event.data.get("terminal_status") or event.detail.get("terminal_status") or "")
    if event.event_name == ev.LEG_FAILED_TO_CREATE:
        outcome, reason = Outcome.FAILED, str(event.error.get("message") or "leg failed to create")
    elif record.answered_at is not None or status == "completed":
        outcome = Outcome.COMPLETED if record.streams_started else Outcome.ANSWERED_NO_STREAM
        reason = record.reason
    else:
        outcome, reason = _TERMINAL_STATUS_OUTCOMES.get(status, Outcome.FAILED), record.reason or status
    return Decision(
        dataclasses.replace(
            record,
            phase=Phase.ENDED,
            ended_at=event.timestamp,
            terminal_status=status,
            outcome=outcome.value,
            reason=reason,
            # Anything not yet sent would act on a dead leg.
            outbox=(),
        )
    )


_HANDLERS = {
    ev.LEG_CONNECTING: _progress,
    ev.LEG_RINGING: _progress,
    ev.LEG_ANSWERED: _answered,
    ev.STREAM_STARTED: _stream_started,
    ev.STREAM_STOPPED: _stream_stopped,
    ev.LEG_TERMINATED: _ended,
    ev.LEG_FAILED_TO_CREATE: _ended,
    **{name: _greeting_started for name in _GREETING_STARTED},
    **{name: _greeting_ended for name in _GREETING_ENDED},
}


def _start_stream(record: LegRecord, campaign: CampaignConfig) -> tuple[LegRecord, Action]:
    params = {
        "url": campaign.bot_url,  # empty: the sender picks a live bot from the fleet
        "direction": campaign.stream_direction,
        "content_type": campaign.stream_content_type,
    }
    record, action = _add_action(record, "start_stream", params)
    return dataclasses.replace(record, stream=StreamState.REQUESTED, stream_attempts=record.stream_attempts + 1), action


def _greeting_action(campaign: CampaignConfig) -> tuple[str, dict[str, Any]]:
    if campaign.flow is Flow.GREETING_SAY:
        return "start_say", {"text": campaign.greeting_text}
    return "start_play", {"url": campaign.greeting_url}


def _stop_greeting(record: LegRecord, greeting: GreetingState) -> Decision:
    record, action = _add_action(record, _STOP_GREETING[record.flow], {})
    return Decision(dataclasses.replace(record, greeting=greeting), (action,))


def _add_action(record: LegRecord, kind: str, params: dict[str, Any]) -> tuple[LegRecord, Action]:
    count = record.action_counts.get(kind, 0) + 1
    action = Action(f"{kind}#{count}", kind, params)
    record = dataclasses.replace(
        record, action_counts={**record.action_counts, kind: count}, outbox=(*record.outbox, action)
    )
    return record, action
