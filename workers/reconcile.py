"""Reconciliation's I/O: look a quiet leg up through the Legs API and feed the state machine
the event it is missing (what the answer means is ``dialstream.domain.reconcile``'s).

Two moments call for it, both from a sweeper thread (``workers.timers``):

- a leg's reconcile timer (armed with its dial, ``workers.dials``, moved by its answer,
  ``workers.leg_events``) fires: ``GET /legs/{sid}``; a terminal leg is ended, a connected one
  the record does not know answered is answered (the callee gets the bot), and the timer is
  moved to the next look-up (``lookup_after``) while the leg lives;
- a stream attempt's timer fires while the leg still awaits its ``stream_started``: before
  another bot is tried, the leg's undelivered events (``GET .../external-events``) are applied,
  so a stream that did start is kept, not doubled.

The events go through ``workers.leg_events.handle_event`` like any delivered event: the call
is recorded, its slot released and its contact finished the usual way. A look-up takes from
the account's budget what a dial would (it never touches the in-call reserve); without
budget, or when the API fails, the look-up is made later.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from dialstream.domain.campaign import LegTag
from dialstream.domain.leg_state import LegRecord
from dialstream.domain.reconcile import (
    awaits_stream_start, looked_up_after_gap, lookup_after, missing_event, recovered_events,
)  # fmt: skip
from dialstream.domain.retry import IN_CALL_RETRY_POLICY
from dialstream.errors import LegsApiError
from dialstream.state.pacing import ACTION, DIAL
from dialstream.state.timers import TIMER_LEASE, reconcile_timer
from workers.actions import retry_in_place
from workers.leg_events import handle_event, record_unrecorded_end
from workers.runtime import Runtime, runtime

__all__ = ["reconcile_leg", "look_up_gap", "recover_stream_events", "LOOKUP_RETRY"]

log = logging.getLogger("dialstream.workers")

LOOKUP_RETRY = 2.0  # seconds before a look-up the Legs API failed (5xx, timeout) is made again
_NOT_FOUND = 404


def reconcile_leg(timer: dict[str, Any]) -> str:
    """A leg's reconcile timer fired (it is due): look the leg up, apply what it is missing, and
    move the timer to the next look-up while the leg lives."""
    rt = runtime()
    campaign = rt.store.campaign(timer["campaign"])
    if campaign is None:
        return "unknown-campaign"
    leg_sid = timer["leg"]
    record, _, _ = rt.store.load_leg(leg_sid)
    if record is not None and record.finished:
        # A worker killed after applying a reconciled end but before recording the call leaves
        # its timer to fire again (its claim ran out): the call is recorded now. One that ended
        # a moment ago may still be being recorded: looked at again once that is long done.
        if record.ended_at is not None and time.time() - record.ended_at < TIMER_LEASE:
            rt.timers.arm(_member(timer), TIMER_LEASE)
            return "ending"
        return "recorded" if record_unrecorded_end(rt, record, campaign) else "ended"
    grant = rt.pacer.try_acquire(DIAL)
    if not grant:
        rt.timers.arm(_member(timer), max(grant.wait, LOOKUP_RETRY))
        return "no-budget"
    try:
        leg = rt.legs.get_leg(leg_sid)
    except LegsApiError as exc:
        if exc.status != _NOT_FOUND:
            log.warning("leg %s: look-up failed (%s); again in %gs", leg_sid, exc, LOOKUP_RETRY)
            rt.timers.arm(_member(timer), LOOKUP_RETRY)
            return "lookup-failed"
        leg = None
    tag = LegTag(timer["campaign"], timer["contact"], timer["attempt"])
    event = missing_event(record, leg, leg_sid, tag.encode(rt.tag_secret), time.time())
    if event is not None:
        log.warning("leg %s: %s was never delivered; reconciled from the Legs API", leg_sid, event.event_name)
        handle_event(event.to_dict())
        record, _, _ = rt.store.load_leg(leg_sid)
    elif record is not None and awaits_stream_start(record):
        recover_stream_events(rt, record)  # its stream_started may be what was lost
    lookup = lookup_after(record, campaign, rt.settings.engine.reconcile_after, time.time())
    if lookup is not None:
        rt.timers.arm(_member(timer), lookup)
    return event.event_name if event is not None else "in-step"


def look_up_gap(timer: dict[str, Any]) -> str:
    """An ingress is back after a gap (a gap timer fired): the reconcile timer of every live
    leg (``looked_up_after_gap``) is moved to now, so its look-ups are made at once, each
    within the budget as any look-up is."""
    rt = runtime()
    moved = 0
    for member in rt.timers.armed("reconcile"):
        record, _, _ = rt.store.load_leg(json.loads(member)["leg"])
        if looked_up_after_gap(record):
            rt.timers.arm(member, 0.0)
            moved += 1
    log.warning("an ingress is back (at %.3f): %d legs looked up at once", timer["back_at"], moved)
    return "gap"


def recover_stream_events(rt: Runtime, record: LegRecord) -> int:
    """Apply the leg's events as Exotel sent them (a ``stream_started`` above all), before its
    stream attempt is given up for lost. Returns how many there were; 0 without budget or when
    the look-up fails (the attempt is then given up as before)."""
    if not rt.pacer.try_acquire(ACTION):
        return 0
    try:
        history = rt.legs.leg_events(record.leg_sid)
    except LegsApiError as exc:
        # Not knowing whether the stream is up is no reason to put a second bot on the call:
        # a 429 or 5xx is retried at once, as a stop is.
        found: list[Any] = []
        failed = retry_in_place(rt, IN_CALL_RETRY_POLICY, lambda: found.extend(rt.legs.leg_events(record.leg_sid)), exc)
        if failed is not None:
            log.warning("leg %s: external events look-up failed: %s", record.leg_sid, failed)
            return 0
        history = found
    tag = LegTag(record.campaign_id, record.contact_id, record.attempt)
    # Delivered ones too: one acknowledged but not applied yet (spooled through a Redis outage,
    # held by a worker that died) is as late as a lost one; applying an applied one does nothing.
    events = recovered_events(history, record.leg_sid, tag.encode(rt.tag_secret), delivered=True)
    for event in events:
        handle_event(event.to_dict())
    if events:
        names = ", ".join(event.event_name for event in events)
        log.warning("leg %s: its events applied again from the Legs API: %s", record.leg_sid, names)
    return len(events)


def _member(timer: dict[str, Any]) -> str:
    """The leg's one reconcile timer, as armed (arming it again moves it)."""
    return reconcile_timer(timer["campaign"], timer["contact"], timer["attempt"], timer["leg"])
