"""Timers fired in this process on a real Redis: what a fired timer leaves armed."""

from __future__ import annotations

import json
import time
import uuid

from dialstream.broker.celery_app import EVENTS_QUEUE
from dialstream.exotel import events as ev
from dialstream.exotel.events import LegEvent
from dialstream.state.timers import TimerQueue, event_timer, slot_timer
from workers.sweeper import LATER, sweep
from workers.tasks import fire_timer


def test_a_slot_heartbeat_fired_twice_arms_one_next_beat(worker_runtime):
    """A heartbeat fired by two sweepers (one stalled past its lease) arms a single next beat: the call keeps one heartbeat."""
    leg_sid, call_id = uuid.uuid4().hex, f"camp:{uuid.uuid4().hex[:8]}:1"
    beat = json.loads(slot_timer("camp", leg_sid, call_id, time.time() + 600))
    assert fire_timer(beat) == fire_timer(beat) == "refreshed"
    armed = [json.loads(m) for m in worker_runtime.store.redis.zrange(worker_runtime.timers.key, 0, -1)]
    assert [(t["call"], t["beat"]) for t in armed if t.get("call") == call_id] == [(call_id, 2)]
    worker_runtime.store.redis.zrem(worker_runtime.timers.key, slot_timer("camp", leg_sid, call_id, beat["until"], 2))
    worker_runtime.slots.release(call_id)


def test_a_rescue_waits_while_the_events_workers_are_behind(worker_runtime):
    """With more than half of DIALSTREAM_EVENT_BACKLOG (200) waiting in the events queue, a rescued event is left
    claimed for later (its task is most likely still queued); with the queue short again it is applied."""
    event = LegEvent(uuid.uuid4().hex, ev.LIFECYCLE, ev.LEG_TERMINATED, time.time(), f"Lrescue{uuid.uuid4().hex[:8]}")
    member = event_timer(event.to_dict())
    timers = TimerQueue(worker_runtime.store.redis, f"test:timers:{uuid.uuid4().hex[:8]}")
    redis = worker_runtime.store.redis
    try:
        redis.lpush(EVENTS_QUEUE, *range(101))
        timers.arm(member, 0)
        assert fire_timer(json.loads(member)) == LATER and sweep(timers, fire_timer) == 1
        assert redis.zcard(timers.key) == 1  # left claimed: due again when the lease runs out
        redis.delete(EVENTS_QUEUE)
        assert fire_timer(json.loads(member)) == "untagged"  # applied (this event has no campaign tag)
    finally:
        redis.delete(EVENTS_QUEUE, timers.key)
