"""Reconciliation: bringing a leg whose events stopped to its true state. Pure, no I/O.

Exotel retries an event only briefly (3 attempts about 1 s apart), so an ingress down for
a few seconds loses events for good. A lost ``leg_terminated`` would hold the call's
concurrency slot and its contact until the call's time limit (hours); a lost
``leg_answered`` would leave the callee in silence. So every dialled leg has a reconcile
timer (armed with its dial, moved by its answer, re-armed while the leg lives): when a leg is
quiet past the point its next event was due, the workers look it up through the Legs API (``GET
/legs/{sid}``), and what the answer means for the leg is decided here, as the event the
leg is missing. The workers feed that event to the state machine like any other, so the
call is recorded, its slot released and its contact finished the usual way. The event says
it was reconciled (:data:`RECONCILED`), and the state machine keeps that in the record's errors.

When a leg is due for a look-up (:func:`lookup_after`):

- not answered: its ring timeout after its dial (or its last look-up), plus ``after``: by then
  it is answered or over;
- answered: a live call sends no event while it talks, so it is looked up ``after`` seconds
  after its answer, then at intervals as long as the call has lasted so far (at most
  :data:`LONGEST_LOOKUP` margins): a call costs a look-up per doubling of its length, not one
  per margin, so a hundred live calls do not spend Exotel's 200 requests a minute on look-ups.
  A lost end is found within the call's age (at most ten margins: 5 min by default) when
  nothing else tells; but events are lost when an ingress was away, and that is told:
- at once, when an ingress is back (it started, or Redis answers it again): every live leg
  (:func:`looked_up_after_gap`): its answer, its stream's start or its end may have been sent
  while the ingress was away.

What the answer means (:func:`missing_event`): a terminal leg is missing its
``leg_terminated``; a connected leg the record does not know answered is missing its
``leg_answered`` (the callee is there and hears nothing: it gets its bot now); a leg the API
does not know (404) ended before it began. A stream that did not start in time is looked
up too (:func:`recovered_events`): its ``stream_started`` may have been emitted and lost, and
another attempt would put a second bot on the call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dialstream.domain.campaign import CampaignConfig
from dialstream.domain.leg_record import LegRecord, StreamState
from dialstream.errors import InvalidEvent
from dialstream.exotel import events as ev

__all__ = [
    "RECONCILED", "LONGEST_LOOKUP", "lookup_after", "looked_up_after_gap", "awaits_stream_start", "missing_event", "recovered_events",
]  # fmt: skip

RECONCILED = "reconciled"  # event_data.data key of an event the reconciler made: why
LONGEST_LOOKUP = 10  # margins (``after``) between two look-ups of a talking call, at the most
_TERMINAL_STATES = ("terminal", "completed")
_ANSWERED_STATES = ("connected", "in-progress")


def lookup_after(record: LegRecord | None, campaign: CampaignConfig, after: float, now: float) -> float | None:
    """Seconds from ``now`` (its dial, its answer, or its last look-up) until the leg ``record``
    (None: no event yet) is due for a look-up, or None once it has ended."""
    if record is not None and record.finished:
        return None
    if record is None or record.answered_at is None:
        return campaign.ring_timeout + after
    talked = now - record.answered_at
    return min(max(after, talked), LONGEST_LOOKUP * after)


def looked_up_after_gap(record: LegRecord | None) -> bool:
    """Whether the leg ``record`` (None: dialled, no event yet) is looked up at once when an
    ingress is back: every live one. A lost answer or stream start keeps a callee waiting; a
    lost end holds the call's slot and contact, and a talking call's next look-up may be
    minutes away."""
    return record is None or not record.finished


def awaits_stream_start(record: LegRecord) -> bool:
    """Whether the answered leg ``record`` has asked for a stream that has not started: its
    ``stream_started`` may be among the leg's undelivered events (:func:`recovered_events`)."""
    return record.answered_at is not None and not record.finished and record.stream is StreamState.REQUESTED


def missing_event(
    record: LegRecord | None, leg: Mapping[str, Any] | None, leg_sid: str, custom_param: str, now: float
) -> ev.LegEvent | None:
    """The event ``record`` lacks given the Legs API's ``leg`` (``GET /legs/{sid}`` data; None:
    the API does not know the leg), or None when the record is in step with it.

    The event is made here (its ``event_sid`` names the leg, so two look-ups make one event);
    a real one arriving late is a duplicate the state machine ignores.
    """
    if record is not None and record.finished:
        return None
    if leg is None:
        data = {"leg_sid": leg_sid, "state": "terminal", "terminal_status": "failed"}
        return _event(ev.LEG_TERMINATED, leg_sid, custom_param, now, data, "the Legs API does not know the leg")
    state = str(leg.get("state") or "")
    status = str(leg.get("terminal_status") or "")
    if state in _TERMINAL_STATES or status:
        ended = _time(leg.get("end_time")) or now
        # No status given: an answered leg (it has a start_time) completed; any other failed.
        status = status or ("completed" if leg.get("start_time") else "failed")
        data = {"leg_sid": leg_sid, "state": "terminal", "terminal_status": status}
        why = f"leg_terminated was not delivered; the Legs API says {state} ({status})"
        return _event(ev.LEG_TERMINATED, leg_sid, custom_param, ended, data, why)
    answered = record is not None and record.answered_at is not None
    if state in _ANSWERED_STATES and not answered:
        at = _time(leg.get("start_time")) or now
        data = {"leg_sid": leg_sid, "state": state}
        why = "leg_answered was not delivered; the Legs API says connected"
        return _event(ev.LEG_ANSWERED, leg_sid, custom_param, at, data, why)
    return None


def recovered_events(
    external_events: Iterable[Mapping[str, Any]], leg_sid: str, custom_param: str, *, delivered: bool = False
) -> list[ev.LegEvent]:
    """The events of ``GET /legs/{sid}/external-events`` that Exotel could not deliver (with
    ``delivered``, those it did deliver too), as leg events (oldest first); entries that do
    not read as events are skipped."""
    found = []
    for entry in external_events:
        info = entry.get("event_info") if isinstance(entry, Mapping) else None
        if not isinstance(info, Mapping) or (entry.get("endpoint_response") is True and not delivered):
            continue
        try:
            raw = {**info, "event_data": info.get("data"), "data": {}, "leg_sid": leg_sid, "custom_param": custom_param}
            event = ev.LegEvent.from_dict(raw)
        except InvalidEvent:
            continue
        found.append(event)
    return sorted(found, key=lambda event: event.timestamp)


def _event(name: str, leg_sid: str, custom_param: str, at: float, data: dict[str, Any], why: str) -> ev.LegEvent:
    return ev.LegEvent(
        event_sid=f"{RECONCILED}-{name}-{leg_sid}",
        event_type=ev.LIFECYCLE,
        event_name=name,
        timestamp=at,
        leg_sid=leg_sid,
        custom_param=custom_param,
        event_data={"data": {RECONCILED: why}},
        data=data,
    )


def _time(value: Any) -> float | None:
    """Unix seconds from the API's RFC 3339 text, or None when absent or unreadable."""
    try:
        return ev.parse_timestamp(value)
    except InvalidEvent:
        return None
