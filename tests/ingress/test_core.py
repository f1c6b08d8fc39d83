"""EventIngress.accept against a real Redis: claim, publish and rescue timer happen together or not at all."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
import redis
import redis.asyncio as aioredis

from dialstream.app.embedded_redis import free_port
from dialstream.errors import EventPublishError
from dialstream.exotel import events as ev
from dialstream.exotel.events import LegEvent
from dialstream.state import keys
from ingress.core import ACCEPTED, DUPLICATE, EventIngress

QUEUE = "test:ingress:events"
RESCUE_AFTER = 30.0


def message(payload: dict) -> str:
    return json.dumps({"event_sid": payload["event_sid"]})


LEG_PREFIX = "Ltestcore"


def event(name: str = ev.LEG_ANSWERED) -> LegEvent:
    return LegEvent(uuid.uuid4().hex, ev.LIFECYCLE, name, time.time(), f"{LEG_PREFIX}{uuid.uuid4().hex[:8]}")


@pytest.fixture(autouse=True)
def clean(redis_client: redis.Redis):
    """No message or timer of these tests is left for another test's worker to find."""
    yield
    redis_client.delete(QUEUE)
    for member in redis_client.zrange(keys.timers(), 0, -1):
        if LEG_PREFIX in member:
            redis_client.zrem(keys.timers(), member)


def accept(redis_url: str, *events: LegEvent) -> list[str]:
    async def run() -> list[str]:
        client = aioredis.Redis.from_url(redis_url)
        ingress = EventIngress(client, message, queue=QUEUE, dedupe_ttl=60, rescue_after=RESCUE_AFTER)
        try:
            return [await ingress.accept(e) for e in events]
        finally:
            await client.aclose()

    return asyncio.run(run())


def rescue_timers(client: redis.Redis, leg_event: LegEvent) -> list[tuple[str, float]]:
    return [(m, s) for m, s in client.zrange(keys.timers(), 0, -1, withscores=True) if leg_event.event_sid in m]


def test_an_event_is_claimed_published_and_given_a_rescue_timer(redis_url, redis_client):
    """accepted: the task message is on the queue, the event_sid claimed, a rescue timer due rescue_after from now."""
    answered = event()
    assert accept(redis_url, answered) == [ACCEPTED]
    assert json.loads(redis_client.rpop(QUEUE)) == {"event_sid": answered.event_sid}
    assert redis_client.get(keys.event(answered.event_sid)) == answered.leg_sid
    [(member, due)] = rescue_timers(redis_client, answered)
    assert json.loads(member) == {"kind": "event", "event": answered.to_dict()}
    seconds, micros = redis_client.time()
    assert abs(due - (seconds + micros / 1e6 + RESCUE_AFTER)) < 5


def test_a_duplicate_publishes_nothing_more(redis_url, redis_client):
    """The same event_sid twice: the second is DUPLICATE, one message, one timer."""
    answered = event()
    assert accept(redis_url, answered, answered) == [ACCEPTED, DUPLICATE]
    assert redis_client.llen(QUEUE) == 1 and len(rescue_timers(redis_client, answered)) == 1


def test_progress_events_need_no_rescue(redis_url, redis_client):
    """leg_ringing is published without a rescue timer: missing it changes nothing the callee hears."""
    ringing = event(ev.LEG_RINGING)
    assert accept(redis_url, ringing) == [ACCEPTED]
    assert redis_client.llen(QUEUE) == 1 and rescue_timers(redis_client, ringing) == []


def test_redis_down_raises_and_claims_nothing(redis_url, redis_client):
    """With Redis unreachable, accept raises EventPublishError; the retry (Redis back) is published, not a duplicate."""
    answered = event()
    with pytest.raises(EventPublishError, match=answered.event_sid):
        accept(f"redis://127.0.0.1:{free_port()}/0", answered)
    assert accept(redis_url, answered) == [ACCEPTED]
    assert redis_client.llen(QUEUE) == 1
