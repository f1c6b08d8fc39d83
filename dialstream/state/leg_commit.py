"""Apply a leg event to its stored record: the atomic half of event handling.

Celery-free so it can be driven directly in tests; the workers call it from their tasks
(``workers.leg_events``, ``workers.actions``) and their timers (``workers.timers``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from dialstream.domain import transfer
from dialstream.domain.campaign import CampaignConfig, Contact, LegTag
from dialstream.domain.leg_state import Action, Decision, LegRecord, apply_event, apply_failure, apply_timer
from dialstream.domain.transfer import TransferRequest
from dialstream.errors import ConcurrentUpdate
from dialstream.exotel.events import LegEvent
from dialstream.state.store import Store

__all__ = ["commit_event", "commit_transfer", "commit_timer", "commit_failure", "add_error", "call_result", "CONCURRENT_RETRY_DELAY"]

_CAS_ATTEMPTS = 50
# A commit that lost every attempt raises ConcurrentUpdate; its task is retried this many
# seconds later, when the burst of writes to the leg has passed.
CONCURRENT_RETRY_DELAY = 0.5


def commit_event(store: Store, event: LegEvent, tag: LegTag, campaign: CampaignConfig) -> tuple[LegRecord | None, bool, bool]:
    """Apply ``event`` atomically; returns (the record as stored, whether it just ended,
    whether this call applied it: False for a duplicate or an event with no effect).

    An agent's leg (``tag.agent_of``) has no record of its own: its events go to the callee's
    leg's record, which they may not create (None: no such record).

    The returned record's ``outbox`` holds every action not yet dispatched, including any a
    crashed worker left behind: the caller dispatches them all.
    """
    effective = False

    def apply(current: LegRecord) -> LegRecord | Decision:
        nonlocal effective
        result = apply_event(current, event, campaign)
        effective = isinstance(result, Decision)
        return result

    initial = None if tag.agent_of else LegRecord.new(event.leg_sid, tag, campaign)
    record, ended = _commit(store, tag.agent_of or event.leg_sid, apply, event_sid=event.event_sid, initial=initial)
    return record, ended, effective


def commit_transfer(store: Store, leg_sid: str, request: TransferRequest, campaign: CampaignConfig, turn: int, now: float) -> LegRecord | None:
    """Begin the transfer ``request`` asks for (``dialstream.domain.transfer.start``); None if the leg is unknown."""
    return _commit(store, leg_sid, lambda current: transfer.start(current, request, campaign, turn, now))[0]


def commit_timer(store: Store, leg_sid: str, timer_id: str, campaign: CampaignConfig) -> LegRecord | None:
    """Apply a fired timer; None if the leg is unknown."""
    return _commit(store, leg_sid, lambda current: apply_timer(current, timer_id, campaign))[0]


def commit_failure(store: Store, leg_sid: str, action: Action, error: Exception) -> LegRecord | None:
    """Apply the failure of ``action``; None if the leg is unknown. The returned record's
    ``outbox`` holds what the failure calls for (the fallback message), for the caller to dispatch."""

    def apply(current: LegRecord) -> LegRecord | Decision:
        campaign = store.campaign(current.campaign_id)
        return current if campaign is None else apply_failure(current, action, error, campaign)

    return _commit(store, leg_sid, apply)[0]


def add_error(store: Store, leg_sid: str, error: str, *, reason: str = "") -> LegRecord | None:
    """Append an error (and optionally a reason) to a leg's record."""

    def append(current: LegRecord) -> Decision:
        return Decision(dataclasses.replace(current, errors=(*current.errors, error), reason=reason or current.reason))

    return _commit(store, leg_sid, append)[0]


def _commit(
    store: Store,
    leg_sid: str,
    transition: Callable[[LegRecord], LegRecord | Decision],
    *,
    event_sid: str = "",
    initial: LegRecord | None = None,
) -> tuple[LegRecord | None, bool]:
    """Compare-and-set loop: read the record, apply ``transition``, write if nobody else did.

    Returns (the record as stored, whether this write ended the leg). An event already
    applied (``event_sid`` seen) or a transition with no effect writes nothing.
    """
    for _ in range(_CAS_ATTEMPTS):
        record, version, applied = store.load_leg(leg_sid, event_sid, initial=initial)
        if record is None:
            return None, False
        if applied:
            return record, False  # a re-delivery: only a leftover outbox may need sending
        result = transition(record)
        if not isinstance(result, Decision):
            return record, False
        if store.save_leg(result.record, version, event_sid) >= 0:
            return result.record, result.record.finished and not record.finished
    raise ConcurrentUpdate(f"leg {leg_sid}: record changed {_CAS_ATTEMPTS} times in a row")


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
        connecting_at=record.connecting_at,
        ringing_at=record.ringing_at,
        answered_at=record.answered_at,
        stream_started_at=record.stream_started_at,
        greeting_started_at=record.greeting_started_at,
        greeting_stopped_at=record.greeting_stopped_at,
        ended_at=record.ended_at,
        voicemail_left_at=record.voicemail_left_at,
        recording_url=record.recording_url,
        answered_to_stream_ms=ms(record.answered_at, record.stream_started_at),
        greeting_state=record.greeting.value,
        streams_started=record.streams_started,
        stream_attempts=record.stream_attempts,
        errors=list(record.errors),
    )
    if (handed := record.transfer) is not None:
        # How long the agent's phone rang before the answer (from the request if no ringing came).
        result["transfer"] = {**handed.to_dict(), "agent_ring_ms": ms(handed.ringing_at or handed.requested_at, handed.answered_at)}
    return result
