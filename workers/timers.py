"""Timers: what a fired timer does (``dialstream.state.timers`` names the three kinds).

The sweeper thread of every worker node (``workers.sweeper``) hands each due timer to
:func:`fire_timer`: a rescued event is applied again (``workers.leg_events``), a leg deadline
is applied to the leg's state machine and its actions dispatched (``workers.actions``), a
call's slot heartbeat keeps the slot of a call that talks for long without an event, and a
leg's reconcile timer looks up a leg whose events are overdue (``workers.reconcile``), as
does a stream attempt's timer before another bot is tried, and an ingress's gap timer has
the legs its gap may have cost an event looked up at once.

A rescue waits while the events workers are behind (the queue past half of
``DIALSTREAM_EVENT_BACKLOG``, where the dialer slows down too): its event is most likely
still queued, not lost with a worker, and rescuing it would do its work twice just when
the workers have least to spare. It is due again when its claim's lease runs out.
"""

from __future__ import annotations

import time
from typing import Any

from dialstream.broker.celery_app import EVENTS_QUEUE, queue_keys
from dialstream.domain.dialing import backlog_share
from dialstream.domain.leg_state import awaits_stream
from dialstream.domain.slot_heartbeat import Beat, beat_interval, heartbeat
from dialstream.domain.limits import SlotCaps
from dialstream.state.leg_commit import commit_timer
from dialstream.state.timers import leg_timer, slot_timer
from workers.actions import dispatch
from workers.leg_events import handle_event
from workers.reconcile import look_up_gap, reconcile_leg, recover_stream_events
from workers.runtime import runtime
from workers.sweeper import LATER

__all__ = ["fire_timer"]


def fire_timer(timer: dict[str, Any]) -> str:
    """A timer fired (in a sweeper thread): re-apply a rescued event, a call's slot
    heartbeat, a leg's look-up, an ingress's gap, or a leg deadline."""
    if timer.get("kind") == "event":
        if _workers_behind():
            return LATER
        # Idempotent: a no-op when the worker that took the event handled it.
        return handle_event(timer["event"], rescue=True)
    if timer.get("kind") == "slot":
        return _heartbeat(timer)
    if timer.get("kind") == "reconcile":
        return reconcile_leg(timer)
    if timer.get("kind") == "gap":
        return look_up_gap(timer)
    rt = runtime()
    campaign = rt.store.campaign(timer["campaign"])
    if campaign is None:
        return "unknown-campaign"
    awaited, _, _ = rt.store.load_leg(timer["leg"])
    if awaited is not None and awaits_stream(awaited, timer["timer"]):
        # A request that got through late (retried 429s, a worker that died) gives its bot its
        # whole time from the acceptance: giving up on it sooner puts a second bot on the call.
        accepted = rt.store.stream_accepted_at(timer["leg"], timer["timer"])
        if accepted is not None and (left := accepted + campaign.stream_start_timeout - time.time()) > 0:
            rt.timers.arm(leg_timer(timer["campaign"], timer["leg"], timer["timer"]), left)
            return "waiting"
        # Its stream_started may have been emitted and lost: applied now, it makes the timer stale.
        recover_stream_events(rt, awaited)
    record = commit_timer(rt.store, timer["leg"], timer["timer"], campaign)
    if record is not None:
        pipe = rt.store.redis.pipeline(transaction=False)
        dispatch(rt, record, campaign, pipe)
        pipe.execute()
    return timer["timer"]


def _workers_behind() -> bool:
    """Whether the events queue is past half of DIALSTREAM_EVENT_BACKLOG (never, when that is 0):
    the point from which the dial poller slows new dials (``backlog_share``)."""
    rt = runtime()
    limit = rt.settings.engine.event_backlog
    if not limit:
        return False
    pipe = rt.store.redis.pipeline(transaction=False)
    for key in queue_keys(EVENTS_QUEUE):
        pipe.llen(key)
    return backlog_share(sum(pipe.execute()), limit) < 1.0  # where the dialer slows down too


def _heartbeat(timer: dict[str, Any]) -> str:
    """Do what the state machine says of a call's slot heartbeat (``heartbeat``): release the
    slot of a call that ended, or refresh it and arm the next beat."""
    rt = runtime()
    record, _, _ = rt.store.load_leg(timer["leg"])
    call_id = timer["call"]
    beat = heartbeat(record, time.time(), timer["until"])
    if beat is Beat.RELEASE:
        rt.slots.release(call_id)
    elif beat is Beat.REFRESH:
        ttl = rt.settings.engine.slot_ttl
        if not rt.slots.refresh(call_id, ttl):
            # Lapsed (its workers were all down for a while): the call is live, so count it again, cap or not.
            rt.slots.acquire(timer["campaign"], call_id, SlotCaps(), ttl)
        next_beat = slot_timer(timer["campaign"], timer["leg"], call_id, timer["until"], timer.get("beat", 0) + 1)
        rt.timers.arm(next_beat, beat_interval(ttl))
    return beat.value
