"""Timers fired in this process on a real Redis: what a fired timer leaves armed."""

from __future__ import annotations

import json
import time
import uuid

from dialstream.state.timers import slot_timer
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
