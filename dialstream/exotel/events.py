"""The internal leg-event model: what every process after the ingress sees.

One form from the wire to the state machine: the ingress validates Exotel's event once into
a :class:`LegEvent` (:meth:`LegEvent.from_dict` for the HTTPS door's JSON,
``dialstream.exotel.proto`` for the gRPC message), the broker carries :meth:`LegEvent.to_dict`
as the task's argument, and the worker rebuilds the same LegEvent from it
(:meth:`LegEvent.from_task`) without validating it a second time. Validation lives here so
that both doors reject the same malformed events with the same
:class:`~dialstream.errors.InvalidEvent`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from dialstream.errors import InvalidEvent

__all__ = [
    "LegEvent",
    "LIFECYCLE",
    "ACTION",
    "LEG_CONNECTING",
    "LEG_RINGING",
    "LEG_ANSWERED",
    "LEG_TERMINATED",
    "LEG_FAILED_TO_CREATE",
    "AMD_RESULT_SUCCESS",
    "AMD_BEEP_DETECTED",
    "STREAM_INITIATED",
    "STREAM_STARTED",
    "STREAM_STOPPED",
    "SAY_STARTED",
    "SAY_COMPLETED",
    "SAY_INTERRUPTED",
    "PLAY_STARTED",
    "PLAY_COMPLETED",
    "PLAY_INTERRUPTED",
    "PLAY_FAILED_TO_START",
    "RECORDING_AVAILABLE",
    "KNOWN_EVENT_NAMES",
    "SID_CHARS",
    "NAME_CHARS",
    "PARAMETER_CHARS",
]

LIFECYCLE = "leg_lifecycle_event"
ACTION = "leg_action_event"

LEG_CONNECTING = "leg_connecting"
LEG_RINGING = "leg_ringing"
LEG_ANSWERED = "leg_answered"
LEG_TERMINATED = "leg_terminated"
LEG_FAILED_TO_CREATE = "leg_failed_to_create"
AMD_RESULT_SUCCESS = "amd_result_success"
# An answering machine's beep: the sandbox's own name (sim/README.md, "AMD"), since Exotel
# documents no beep event; a voicemail is left after it (dialstream.domain.voicemail).
AMD_BEEP_DETECTED = "amd_beep_detected"
STREAM_INITIATED = "stream_initiated"
STREAM_STARTED = "stream_started"
STREAM_STOPPED = "stream_stopped"
SAY_STARTED = "say_started"
SAY_COMPLETED = "say_completed"
SAY_INTERRUPTED = "say_interrupted"
PLAY_STARTED = "play_started"
PLAY_COMPLETED = "play_completed"
PLAY_INTERRUPTED = "play_interrupted"
PLAY_FAILED_TO_START = "play_failed_to_start"
RECORDING_AVAILABLE = "recording_available"

# Every leg event Exotel documents (shared/reference/exotel.md, section 2.2). The ingress
# publishes only these: a name outside the catalogue is acknowledged and dropped, so a
# forged or garbled name never costs a worker task.
KNOWN_EVENT_NAMES = frozenset(
    {
        LEG_CONNECTING, LEG_RINGING, LEG_ANSWERED, LEG_TERMINATED, LEG_FAILED_TO_CREATE,
        AMD_RESULT_SUCCESS, AMD_BEEP_DETECTED, STREAM_INITIATED, STREAM_STARTED, STREAM_STOPPED,
        SAY_STARTED, SAY_COMPLETED, SAY_INTERRUPTED,
        PLAY_STARTED, PLAY_COMPLETED, PLAY_INTERRUPTED, PLAY_FAILED_TO_START,
        "leg_joined_bridge", "leg_left_bridge",
        "gather_initiated", "gather_started", "gather_success",
        "recording_started", "recording_stopped", RECORDING_AVAILABLE,
        "dial_initiated", "dial_success", "dial_completed",
        "hold_success", "unhold_success", "mute_success", "unmute_success", "digits_sent",
    }
)  # fmt: skip

# Longest accepted text fields. Exotel's SIDs are 32 characters and event names short; the
# caps keep a hostile sender from parking megabytes in Redis, logs and task bodies.
SID_CHARS = 64
NAME_CHARS = 64
PARAMETER_CHARS = 2048

_EVENT_TYPES = frozenset({LIFECYCLE, ACTION})


@dataclass(frozen=True, slots=True)
class LegEvent:
    """One leg event. ``timestamp`` is Unix seconds (UTC) as stamped by the sender.

    ``received_at`` is when the ingress accepted it (Unix seconds), for latency figures.
    Unknown ``event_name`` values are kept, not rejected: Exotel adds events over time and
    the workers ignore what they do not handle.
    """

    event_sid: str
    event_type: str
    event_name: str
    timestamp: float
    leg_sid: str
    account_sid: str = ""
    action_sid: str = ""
    action_custom_parameter: str = ""
    custom_param: str = ""
    event_data: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    received_at: float = 0.0

    @property
    def detail(self) -> Mapping[str, Any]:
        """``event_data.data``: the event-specific payload (stream_sid, AMD result...)."""
        inner = self.event_data.get("data")
        return inner if isinstance(inner, Mapping) else {}

    @property
    def error(self) -> Mapping[str, Any]:
        """``event_data.error`` on failure events (error_code, message, description)."""
        inner = self.event_data.get("error")
        return inner if isinstance(inner, Mapping) else {}

    @classmethod
    def from_dict(cls, raw: Any) -> LegEvent:
        """Validate Exotel's event JSON (or our own ``to_dict`` output) into a LegEvent.

        ``leg_sid``, ``account_sid`` and ``custom_param`` are taken from the top level when
        present, else from the ``data`` leg snapshot, as Exotel's documented payload has them.
        ``event_timestamp`` may be RFC 3339 text, Unix seconds, or ``{seconds, nanos}``.

        Raises:
            InvalidEvent: a required field is missing, empty or of the wrong type.
        """
        if not isinstance(raw, Mapping):
            raise InvalidEvent("event", f"expected a JSON object, got {type(raw).__name__}")
        data = _mapping(raw, "data")
        event_data = _mapping(raw, "event_data")
        event_type = _text(raw, "event_type", required=True)
        if event_type not in _EVENT_TYPES:
            raise InvalidEvent("event_type", f"{event_type!r} is not one of {sorted(_EVENT_TYPES)}")
        return cls(
            event_sid=_text(raw, "event_sid", required=True, limit=SID_CHARS),
            event_type=event_type,
            event_name=_text(raw, "event_name", required=True, limit=NAME_CHARS),
            timestamp=parse_timestamp(raw.get("event_timestamp")),
            leg_sid=_text(raw, "leg_sid", limit=SID_CHARS)
            or _text(data, "leg_sid", where="data.leg_sid", required=True, limit=SID_CHARS),
            account_sid=_text(raw, "account_sid", limit=SID_CHARS)
            or _text(data, "account_sid", where="data.account_sid", limit=SID_CHARS),
            action_sid=_text(raw, "action_sid", limit=SID_CHARS),
            action_custom_parameter=_text(raw, "action_custom_parameter", limit=PARAMETER_CHARS),
            custom_param=_text(raw, "custom_param", limit=PARAMETER_CHARS)
            or _text(data, "custom_param", where="data.custom_param", limit=PARAMETER_CHARS),
            event_data=event_data,
            data=data,
            received_at=_number(raw, "received_at"),
        )

    @classmethod
    def from_task(cls, payload: Mapping[str, Any]) -> LegEvent:
        """The event the ingress validated, back from its task payload (:meth:`to_dict`).

        Not validated again: the ingress is the trust boundary, and the broker carries only
        what it published.
        """
        fields = dict(payload)
        fields["timestamp"] = fields.pop("event_timestamp")
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; ``from_dict(to_dict(e)) == e``."""
        return {
            "event_sid": self.event_sid,
            "event_type": self.event_type,
            "event_name": self.event_name,
            "event_timestamp": self.timestamp,
            "leg_sid": self.leg_sid,
            "account_sid": self.account_sid,
            "action_sid": self.action_sid,
            "action_custom_parameter": self.action_custom_parameter,
            "custom_param": self.custom_param,
            "event_data": dict(self.event_data),
            "data": dict(self.data),
            "received_at": self.received_at,
        }


def parse_timestamp(value: Any) -> float:
    """Unix seconds from RFC 3339 text, a number, or a protobuf-style ``{seconds, nanos}``."""
    if isinstance(value, bool) or value is None or value == "":
        raise InvalidEvent("event_timestamp", "missing")
    if isinstance(value, (int, float)):
        if value <= 0:
            raise InvalidEvent("event_timestamp", "must be positive")
        return float(value)
    if isinstance(value, Mapping):
        seconds, nanos = value.get("seconds", 0), value.get("nanos", 0)
        if not isinstance(seconds, (int, float)) or not isinstance(nanos, (int, float)) or seconds <= 0:
            raise InvalidEvent("event_timestamp", "expected {seconds, nanos} with positive seconds")
        return float(seconds) + float(nanos) / 1e9
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidEvent("event_timestamp", f"{value!r} is not RFC 3339") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    raise InvalidEvent("event_timestamp", f"unsupported type {type(value).__name__}")


def _mapping(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidEvent(key, f"expected an object, got {type(value).__name__}")
    return value


def _text(raw: Mapping[str, Any], key: str, *, where: str = "", required: bool = False, limit: int = NAME_CHARS) -> str:
    value = raw.get(key)
    if value is None or value == "":
        if required:
            raise InvalidEvent(where or key, "missing")
        return ""
    if not isinstance(value, str):
        raise InvalidEvent(where or key, f"expected a string, got {type(value).__name__}")
    if len(value) > limit:
        raise InvalidEvent(where or key, f"longer than {limit} characters")
    if limit <= NAME_CHARS and not value.isprintable():
        # A SID or a name with a newline would forge log lines downstream; none is genuine.
        raise InvalidEvent(where or key, "contains control characters")
    return value


def _number(raw: Mapping[str, Any], key: str) -> float:
    value = raw.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidEvent(key, "expected a number")
    return float(value)
