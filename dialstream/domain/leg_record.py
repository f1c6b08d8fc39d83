"""A leg's record: everything dialstream knows about one leg, and the actions it awaits. Pure.

The state machine (``dialstream.domain.leg_state``) moves a :class:`LegRecord` from one
state to the next; the workers store it in Redis as JSON (``LegRecord.to_dict``) and send
the :class:`Action` s of its ``outbox``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dialstream.domain.campaign import CampaignConfig, Flow, LegTag
from dialstream.exotel.actions import ActionKind

__all__ = [
    "Phase", "GreetingState", "StreamState", "Outcome", "Ending", "TransferState", "Transfer", "Action", "LegRecord", "Decision",
]  # fmt: skip


class Phase(StrEnum):
    CREATED = "created"
    CONNECTING = "connecting"
    RINGING = "ringing"
    ANSWERED = "answered"
    STREAMING = "streaming"
    ENDED = "ended"


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
    """A contact's final outcome, as the campaign report shows it: its last call's, or why
    no call was placed (canceled, dnc, failed)."""

    COMPLETED = "completed"  # answered, streamed to a bot, ended
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"  # the network or Exotel could not place the call
    CANCELED = "canceled"
    MACHINE = "machine"  # an answering machine picked up (amd_enable)
    VOICEMAIL_LEFT = "voicemail_left"  # an answering machine took the campaign's message, said after its beep
    TRANSFERRED = "transferred"  # the callee was bridged to an agent (dialstream.domain.transfer)
    ANSWERED_NO_STREAM = "answered_no_stream"  # answered, but no bot could be kept on the call
    DNC = "dnc"  # the number is on the do-not-call list: never dialled (dialstream.domain.dialing)


class Ending(StrEnum):
    """Why the call is being wound down by us, if it is."""

    NONE = ""
    FALLBACK = "fallback"  # no bot could be reached: fallback message, then hang up
    VOICEMAIL = "voicemail"  # answering machine: leave the message, then hang up
    HANGUP = "hangup"  # hang-up sent
    BOT_HANGUP = "bot_hangup"  # the bot ended the call (closed its stream normally): hang-up sent


class TransferState(StrEnum):
    """Where a hand-off to a human agent is (``dialstream.domain.transfer``)."""

    DIALING = "dialing"  # the agent's leg is created and rings; the callee hears the hold message
    WHISPER = "whisper"  # warm: the agent answered and hears the whisper first
    BRIDGING = "bridging"  # the bridge is asked for
    BRIDGED = "bridged"  # callee and agent talk
    FAILED = "failed"  # no agent came: the call went back to the bot, or to the fallback message


@dataclass(frozen=True, slots=True)
class Transfer:
    """A hand-off of the call to a human agent. Times are Unix seconds from event timestamps
    (``requested_at`` is the worker's, when the request was taken)."""

    agent: str  # the agent's number
    mode: str  # cold | warm
    state: TransferState
    requested_at: float
    whisper: str = ""  # warm: what the agent hears before being connected
    leg_sid: str = ""  # the agent's leg, from its first event
    ringing_at: float | None = None
    answered_at: float | None = None
    bridged_at: float | None = None
    ended_at: float | None = None  # the agent's leg ended
    reason: str = ""  # why it failed

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Transfer:
        return cls(**{**raw, "state": TransferState(raw["state"])})


@dataclass(frozen=True, slots=True)
class Action:
    """One Legs API call to make for a leg. ``action_id`` is unique within the leg and is
    what makes sending it idempotent. ``on_leg``: another leg of the same call it acts on
    (the agent's, in a transfer); empty for the record's own leg."""

    action_id: str
    kind: ActionKind
    params: dict[str, Any] = field(default_factory=dict)
    on_leg: str = ""

    def to_dict(self) -> dict[str, Any]:
        raw = {"action_id": self.action_id, "kind": self.kind.value, "params": dict(self.params)}
        return {**raw, "on_leg": self.on_leg} if self.on_leg else raw

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Action:
        return cls(raw["action_id"], ActionKind(raw["kind"]), dict(raw.get("params") or {}), raw.get("on_leg", ""))


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
    connecting_at: float | None = None  # leg_connecting: Exotel is dialling
    ringing_at: float | None = None
    answered_at: float | None = None
    stream_started_at: float | None = None
    greeting_started_at: float | None = None
    greeting_stopped_at: float | None = None
    ended_at: float | None = None
    terminal_status: str = ""
    outcome: str = ""
    reason: str = ""
    stream_sid: str = ""
    stream_action_id: str = ""  # the start_stream whose stream is live
    # start_stream action id -> its stream's sid, from stream_initiated: how a superseded attempt is stopped
    stream_sids: dict[str, str] = field(default_factory=dict)
    greeting_kind: str = ""  # "say" | "play": how what the callee hears now was started
    greeting_action_id: str = ""  # the start_say/start_play of what the callee hears now
    ending: Ending = Ending.NONE
    ending_action_id: str = ""  # the start_say of the fallback/voicemail message
    machine: bool = False
    voicemail_left_at: float | None = None  # say_completed of the voicemail message
    transfer: Transfer | None = None  # a hand-off to a human agent, once asked for
    recording_url: str = ""  # recording_available's URL (the campaign records its calls)
    action_counts: dict[str, int] = field(default_factory=dict)  # ActionKind -> actions of that kind so far
    outbox: tuple[Action, ...] = ()
    errors: tuple[str, ...] = ()
    version: int = 0

    @property
    def finished(self) -> bool:
        return self.phase is Phase.ENDED

    def to_dict(self) -> dict[str, Any]:
        # Shallow on purpose: dataclasses.asdict deep-copies, and this runs for every event.
        raw = {f.name: getattr(self, f.name) for f in _RECORD_FIELDS}
        raw["action_counts"] = dict(self.action_counts)
        raw["stream_sids"] = dict(self.stream_sids)
        raw["outbox"] = [action.to_dict() for action in self.outbox]
        raw["errors"] = list(self.errors)
        raw["transfer"] = self.transfer.to_dict() if self.transfer else None
        return raw

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LegRecord:
        raw = dict(raw)
        raw["flow"] = Flow(raw["flow"])
        raw["phase"] = Phase(raw["phase"])
        raw["greeting"] = GreetingState(raw["greeting"])
        raw["stream"] = StreamState(raw["stream"])
        raw["ending"] = Ending(raw["ending"])
        raw["outbox"] = tuple(Action.from_dict(a) for a in raw.get("outbox", ()))
        raw["errors"] = tuple(raw.get("errors", ()))
        raw["transfer"] = Transfer.from_dict(raw["transfer"]) if raw.get("transfer") else None
        return cls(**raw)

    @classmethod
    def new(cls, leg_sid: str, tag: LegTag, campaign: CampaignConfig) -> LegRecord:
        return cls(leg_sid, tag.campaign_id, tag.contact_id, attempt=tag.attempt, flow=campaign.flow)


_RECORD_FIELDS = dataclasses.fields(LegRecord)


@dataclass(frozen=True, slots=True)
class Decision:
    """The result of a transition (an event, a timer, a failed action): the next record and the actions to send now."""

    record: LegRecord
    actions: tuple[Action, ...] = ()
