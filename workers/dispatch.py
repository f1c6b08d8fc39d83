"""Apply a leg event to its stored record: the atomic half of event handling.

Celery-free so it can be driven directly in tests; ``workers.tasks`` wraps it in tasks.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from typing import Any

from dialstream.campaign import CampaignConfig, Contact, LegTag
from dialstream.events import LegEvent
from dialstream.leg_state import Decision, LegRecord, apply_event
from dialstream.store import Store

__all__ = ["commit_event", "forget_dispatched", "add_error", "call_result", "ConcurrentUpdate"]

_CAS_ATTEMPTS = 50


class ConcurrentUpdate(RuntimeError):
    """The leg record kept changing under us; the task is retried."""


def commit_event(store: Store, event: LegEvent, tag: LegTag, campaign: CampaignConfig) -> tuple[LegRecord, bool]:
    """Apply ``event`` atomically; returns (the record as stored, whether it just ended).

    The returned record's ``outbox`` holds every action not yet dispatched, including any a
    crashed worker left behind: the caller dispatches them all.
    """
    for _ in range(_CAS_ATTEMPTS):
        record, version, applied = store.load_leg(event.leg_sid, event.event_sid)
        if record is None:
            record = LegRecord.new(event.leg_sid, tag, campaign)
        if applied:
            return record, False  # a re-delivery: only a leftover outbox may need sending
        result = apply_event(record, event, campaign)
        if not isinstance(result, Decision):
            return record, False
        if store.save_leg(result.record, version, event.event_sid) >= 0:
            return result.record, result.record.finished and not record.finished
    raise ConcurrentUpdate(f"leg {event.leg_sid}: record changed {_CAS_ATTEMPTS} times while applying {event.event_name}")


def forget_dispatched(store: Store, leg_sid: str, action_ids: Iterable[str]) -> None:
    """Drop dispatched actions from the leg's outbox (they are now Celery's to deliver)."""
    sent = set(action_ids)
    for _ in range(_CAS_ATTEMPTS):
        record, version, _ = store.load_leg(leg_sid)
        if record is None or not any(a.action_id in sent for a in record.outbox):
            return
        kept = tuple(a for a in record.outbox if a.action_id not in sent)
        if store.save_leg(dataclasses.replace(record, outbox=kept), version) >= 0:
            return
    raise ConcurrentUpdate(f"leg {leg_sid}: could not clear the outbox")


def add_error(store: Store, leg_sid: str, error: str, *, reason: str = "") -> LegRecord | None:
    """Append an error (and optionally a reason) to a leg's record."""
    for _ in range(_CAS_ATTEMPTS):
        record, version, _ = store.load_leg(leg_sid)
        if record is None:
            return None
        updated = dataclasses.replace(record, errors=(*record.errors, error), reason=reason or record.reason)
        if store.save_leg(updated, version) >= 0:
            return updated
    raise ConcurrentUpdate(f"leg {leg_sid}: could not record an error")


def call_result(record: LegRecord | None, contact: Contact | None, *, outcome: str = "", reason: str = "") -> dict[str, Any]:
    """The final per-contact record shown in reports."""
    result: dict[str, Any] = {
        "contact_id": contact.contact_id if contact else (record.contact_id if record else ""),
        "phone": contact.phone if contact else "",
        "recorded_at": time.time(),
    }
    if record is None:
        result.update(outcome=outcome, reason=reason, leg_sid="", attempt=0)
        return result

    def ms(start: float | None, end: float | None) -> float | None:
        return None if start is None or end is None else round((end - start) * 1000, 1)

    result.update(
        leg_sid=record.leg_sid,
        attempt=record.attempt,
        outcome=outcome or record.outcome,
        reason=reason or record.reason,
        flow=record.flow.value,
        answered_at=record.answered_at,
        stream_started_at=record.stream_started_at,
        greeting_started_at=record.greeting_started_at,
        greeting_stopped_at=record.greeting_stopped_at,
        ended_at=record.ended_at,
        answered_to_stream_ms=ms(record.answered_at, record.stream_started_at),
        greeting_state=record.greeting.value,
        streams_started=record.streams_started,
        stream_attempts=record.stream_attempts,
        errors=list(record.errors),
    )
    return result
