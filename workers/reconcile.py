"""Reconciliation's I/O: look a quiet leg up through the Legs API and feed the state machine
the event it is missing (what the answer means is ``dialstream.domain.reconcile``'s).

Two moments call for it, both from a sweeper thread (``workers.timers``):

- a leg's reconcile timer (armed with its dial, ``workers.dials``) fires: if the leg is
  overdue (``lookup_at``), ``GET /legs/{sid}``; a terminal leg is ended, a connected one
  the record does not know answered is answered (the callee gets the bot), and the timer
  is re-armed while the leg lives;
- a stream attempt's timer fires while the leg still awaits its ``stream_started``: before
  another bot is tried, the leg's undelivered events (``GET .../external-events``) are applied,
  so a stream that did start is kept, not doubled.

The events go through ``workers.leg_events.handle_event`` like any delivered event: the call
is recorded, its slot released and its contact finished the usual way. A look-up takes from
the account's budget what a dial would (it never touches the in-call reserve); without
budget, or when the API fails, the look-up is made later.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from dialstream.domain.campaign import LegTag
from dialstream.domain.leg_state import LegRecord
from dialstream.domain.reconcile import lookup_at, missing_event, recovered_events
from dialstream.errors import LegsApiError
from dialstream.exotel.events import LEG_TERMINATED
from dialstream.state.pacing import ACTION, DIAL
from dialstream.state.timers import reconcile_timer
from workers.leg_events import handle_event
from workers.runtime import Runtime, runtime

__all__ = ["reconcile_leg", "recover_stream_events", "LOOKUP_RETRY"]

log = logging.getLogger("dialstream.workers")

LOOKUP_RETRY = 2.0  # seconds before a look-up the Legs API failed (5xx, timeout) is made again
_NOT_FOUND = 404


def reconcile_leg(timer: dict[str, Any]) -> str:
    """A leg's reconcile timer fired: look the leg up if it is overdue and apply what it is missing."""
    rt = runtime()
    campaign = rt.store.campaign(timer["campaign"])
    if campaign is None:
        return "unknown-campaign"
    leg_sid = timer["leg"]
    record, _, _ = rt.store.load_leg(leg_sid)
    after = rt.settings.engine.reconcile_after
    due = lookup_at(record, timer["since"], campaign, after)
    now = time.time()
    if due is None:
        return "ended"
    if due > now:
        _again(rt, timer, due - now, since=timer["since"])
        return "waiting"
    grant = rt.pacer.try_acquire(DIAL)
    if not grant:
        _again(rt, timer, max(grant.wait, LOOKUP_RETRY), since=timer["since"])
        return "no-budget"
    try:
        leg = rt.legs.get_leg(leg_sid)
    except LegsApiError as exc:
        if exc.status != _NOT_FOUND:
            log.warning("leg %s: look-up failed (%s); again in %gs", leg_sid, exc, LOOKUP_RETRY)
            _again(rt, timer, LOOKUP_RETRY, since=timer["since"])
            return "lookup-failed"
        leg = None
    tag = LegTag(timer["campaign"], timer["contact"], timer["attempt"])
    event = missing_event(record, leg, leg_sid, tag.encode(rt.tag_secret), now)
    if event is not None:
        log.warning("leg %s: %s was never delivered; reconciled from the Legs API", leg_sid, event.event_name)
        handle_event(event.to_dict())
    if event is None or event.event_name != LEG_TERMINATED:
        _again(rt, timer, after, since=now)
    return event.event_name if event is not None else "in-step"


def recover_stream_events(rt: Runtime, record: LegRecord) -> int:
    """Apply the leg's events Exotel could not deliver (a ``stream_started`` above all), before
    its stream attempt is given up for lost. Returns how many there were; 0 without budget
    or when the look-up fails (the attempt is then given up as before)."""
    if not rt.pacer.try_acquire(ACTION):
        return 0
    try:
        history = rt.legs.leg_events(record.leg_sid)
    except LegsApiError as exc:
        log.warning("leg %s: external events look-up failed: %s", record.leg_sid, exc)
        return 0
    tag = LegTag(record.campaign_id, record.contact_id, record.attempt)
    events = recovered_events(history, record.leg_sid, tag.encode(rt.tag_secret))
    for event in events:
        log.warning("leg %s: %s was never delivered; recovered from external events", record.leg_sid, event.event_name)
        handle_event(event.to_dict())
    return len(events)


def _again(rt: Runtime, timer: dict[str, Any], seconds: float, *, since: float) -> None:
    """Arm the leg's next look-up ``seconds`` from now."""
    member = reconcile_timer(
        timer["campaign"], timer["contact"], timer["attempt"], timer["leg"], since, timer.get("check", 0) + 1
    )
    rt.timers.arm(member, seconds)
