"""Timers fired in this process on a real Redis: what a fired timer leaves armed."""

from __future__ import annotations

import json
import time
import uuid

from dialstream.broker.celery_app import EVENTS_QUEUE
from dialstream.domain.campaign import CampaignConfig, Contact, Flow, LegTag
from dialstream.exotel import events as ev
from dialstream.exotel.events import LegEvent
from dialstream.state.leg_commit import commit_event
from dialstream.state.timers import TIMER_LEASE, TimerQueue, event_timer, leg_timer, reconcile_timer, slot_timer
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


def test_a_reconciled_end_whose_worker_died_before_recording_the_call_is_recorded_when_its_timer_fires_again(worker_runtime):
    """The reconciled leg_terminated was committed, then its worker was killed before the call
    was recorded (seen in the chaos suite: a contact without a final record for ever). The
    look-up's timer, fired again once its claim ran out, records the call; a later firing
    finds it recorded and does nothing more."""
    store = worker_runtime.store
    campaign = CampaignConfig(f"w-{uuid.uuid4().hex[:8]}", flow=Flow.BOT_FIRST, bot_url="ws://bot/media")
    store.create_campaign(campaign, [Contact("c1", "+919800000001")])
    tag, leg_sid = LegTag(campaign.campaign_id, "c1"), uuid.uuid4().hex
    ended_at = time.time() - 2 * TIMER_LEASE
    for name in (ev.LEG_CONNECTING, ev.LEG_RINGING):
        commit_event(store, LegEvent(uuid.uuid4().hex, ev.LIFECYCLE, name, ended_at - 5, leg_sid, custom_param=tag.encode()), tag, campaign)
    terminated = LegEvent(
        uuid.uuid4().hex, ev.LIFECYCLE, ev.LEG_TERMINATED, ended_at, leg_sid, custom_param=tag.encode(),
        data={"leg_sid": leg_sid, "state": "terminal", "terminal_status": "no-answer"},
    )  # fmt: skip
    record, just_ended, _ = commit_event(store, terminated, tag, campaign)  # ... and the worker is killed here
    assert record is not None and just_ended and store.result(campaign.campaign_id, "c1") is None
    timer = json.loads(reconcile_timer(campaign.campaign_id, "c1", 1, leg_sid))
    assert fire_timer(timer) == "recorded"
    result = store.result(campaign.campaign_id, "c1")
    assert result is not None and result["leg_sid"] == leg_sid and result["final"]
    assert fire_timer(timer) == "ended"


def test_a_stream_whose_request_got_through_late_gets_its_whole_time_from_the_acceptance(worker_runtime):
    """start_stream was accepted a moment ago (its request was retried through 429s, or its
    worker died): when its timer fires no other bot is tried yet (seen in the chaos suite: two
    bots on one call); the timer is armed again for the rest of the bot's time."""
    store, timers = worker_runtime.store, worker_runtime.timers
    campaign = CampaignConfig(f"w-{uuid.uuid4().hex[:8]}", flow=Flow.BOT_FIRST, bot_url="ws://bot/media", stream_start_timeout=3.0)
    store.create_campaign(campaign, [Contact("c1", "+919800000001")])
    tag, leg_sid = LegTag(campaign.campaign_id, "c1"), uuid.uuid4().hex
    answered = LegEvent(uuid.uuid4().hex, ev.LIFECYCLE, ev.LEG_ANSWERED, time.time() - 3.5, leg_sid, custom_param=tag.encode())
    commit_event(store, answered, tag, campaign)
    store.stream_accepted(leg_sid, "start_stream#1", time.time() - 0.5)
    assert fire_timer(json.loads(leg_timer(campaign.campaign_id, leg_sid, "start_stream#1"))) == "waiting"
    record, _, _ = store.load_leg(leg_sid)
    assert record.action_counts.get("start_stream") == 1, "no second attempt"
    armed = {member: score for member, score in store.redis.zrange(timers.key, 0, -1, withscores=True) if leg_sid in member}
    assert [json.loads(member)["timer"] for member in armed] == ["start_stream#1"]
    assert min(armed.values()) > time.time() + 1.5  # about 2.5 s left of the bot's 3 s
    store.redis.zrem(timers.key, *armed)
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
