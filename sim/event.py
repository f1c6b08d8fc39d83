"""One emitted event (leg or bridge) and what became of its delivery. Pure record-keeping."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sim.clock import rfc3339
from sim.faults import EventFate

__all__ = ["EventRecord", "new_event", "BRIDGE_LIFECYCLE"]

BRIDGE_LIFECYCLE = "bridge_lifecycle_event"  # bridge_created, bridge_terminated... (reference §1.8)


def new_event(
    event_sid: str,
    name: str,
    event_type: str,
    now: float,
    data: dict[str, Any],
    *,
    action: Any = None,
    detail: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> EventRecord:
    """An event in Exotel's JSON shape (reference §2), about to be delivered.

    ``data`` is the snapshot of the leg (or bridge); ``action`` (an
    :class:`~sim.action.ActionRecord`) is the request that caused it; ``event_data`` is
    ``{"error": error}`` or ``{"data": detail}``.
    """
    event = {
        "event_sid": event_sid,
        "event_type": event_type,
        "event_name": name,
        "event_timestamp": rfc3339(now),
        "action_sid": action.action_sid if action else "",
        "action_custom_parameter": action.custom_param if action else "",
        "event_data": {"error": error} if error else {"data": detail or {}},
        "data": data,
    }
    return EventRecord(event=event, emitted_at=now)


@dataclass(eq=False)
class EventRecord:
    """One emitted event and what became of its delivery."""

    event: dict[str, Any]
    emitted_at: float
    delivered: bool | None = None  # None while queued or in flight
    attempts: int = 0
    deliveries: int = 0  # successful deliveries; 2 when a duplicate got through
    error: str | None = None  # the last failed attempt's error
    endpoint_response: str | None = None  # the endpoint's answer to the first delivery (ack message, HTTP status)
    outcomes: list[dict[str, Any]] = field(default_factory=list)  # per attempt: {attempt, at, ok, response|error}
    latency_ms: float | None = None  # emitted -> first acknowledgement
    updated_at: float | None = None
    fate: EventFate = EventFate()

    @property
    def name(self) -> str:
        return self.event["event_name"]

    def report(self) -> dict[str, Any]:
        return {
            "event_sid": self.event["event_sid"],
            "event_name": self.name,
            "action_sid": self.event["action_sid"],
            "emitted_at": self.emitted_at,
            "delivered": self.delivered,
            "attempts": self.attempts,
            "deliveries": self.deliveries,
            "error": self.error,
            "endpoint_response": self.endpoint_response,
            "outcomes": self.outcomes,
            "latency_ms": self.latency_ms,
            "faults": [name for name in ("duplicate", "reorder", "drop", "lose") if getattr(self.fate, name)]
            + (["delay"] if self.fate.delay_ms else []),
        }

    def external_event(self) -> dict[str, Any]:
        """An ``external_events[]`` item of ``GET /legs/{sid}/external-events``."""
        seconds, fraction = divmod(self.emitted_at, 1.0)
        return {
            "endpoint_response": bool(self.delivered),
            "error": self.error if not self.delivered else None,
            "date_created": rfc3339(self.emitted_at),
            "date_updated": rfc3339(self.updated_at or self.emitted_at),
            "event_info": {
                "event_sid": self.event["event_sid"],
                "event_type": self.event["event_type"],
                "event_name": self.name,
                "event_timestamp": {"seconds": int(seconds), "nanos": int(fraction * 1e9)},
                "action_sid": self.event["action_sid"],
                "action_custom_parameter": self.event["action_custom_parameter"],
                "data": self.event["event_data"],
            },
        }
