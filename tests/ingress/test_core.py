"""EventIngress.accept against a real Redis: what it admits, and claim, publish and rescue timer together or not at all."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid

import pytest
import redis
import redis.asyncio as aioredis

from dialstream.app.embedded_redis import free_port
from dialstream.broker.celery_app import NEW_CALL_PRIORITY, queue_key, queue_keys
from dialstream.domain.campaign import CampaignConfig, Flow, LegTag
from dialstream.domain.leg_record import GreetingState, LegRecord
from dialstream.domain.leg_state import apply_event
from dialstream.errors import EventPublishError, EventRefused
from dialstream.exotel import events as ev
from dialstream.exotel.events import LegEvent
from dialstream.state import keys
from dialstream.state.store import LEG_TTL, Store, kept_field, progress_field
from ingress.core import ACCEPTED, DUPLICATE, EVENTS_RECEIVED, IGNORED, RECORDED, EventIngress

QUEUE = "test:ingress:events"
RESCUE_AFTER = 30.0


def message(payload: dict, priority: int) -> str:
    return json.dumps({"event_sid": payload["event_sid"], "priority": priority})


def queued(client: redis.Redis) -> list[dict]:
    """The messages on the test queue's lists, in the order a worker takes them (by priority, then oldest first)."""
    return [json.loads(m) for key in queue_keys(QUEUE) for m in reversed(client.lrange(key, 0, -1))]


LEG_PREFIX = "Ltestcore"
ACCOUNT = "acct1"
SECRET = "test-tag-secret"
TAG = LegTag("camp", "c1").encode(SECRET.encode())


def event(name: str = ev.LEG_ANSWERED, *, account: str = ACCOUNT, custom_param: str = TAG, data: dict | None = None) -> LegEvent:
    leg_sid = f"{LEG_PREFIX}{uuid.uuid4().hex[:8]}"
    return LegEvent(
        uuid.uuid4().hex, ev.LIFECYCLE, name, time.time(), leg_sid, account_sid=account, custom_param=custom_param, data=data or {}
    )


def count(result: str) -> float:
    return EVENTS_RECEIVED.labels(result)._value.get()


@pytest.fixture(autouse=True)
def clean(redis_client: redis.Redis):
    """No message or timer of these tests is left for another test's worker to find."""
    yield
    redis_client.delete(*queue_keys(QUEUE))
    for member in redis_client.zrange(keys.timers(), 0, -1):
        if LEG_PREFIX in member:
            redis_client.zrem(keys.timers(), member)


def accept(redis_url: str, *events: LegEvent) -> list[str]:
    async def run() -> list[str]:
        client = aioredis.Redis.from_url(redis_url)
        ingress = EventIngress(
            client, message, queue=QUEUE, account_sid=ACCOUNT, tag_secret=SECRET, dedupe_ttl=60, rescue_after=RESCUE_AFTER
        )
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
    assert queued(redis_client) == [{"event_sid": answered.event_sid, "priority": NEW_CALL_PRIORITY}]
    assert redis_client.get(keys.event(answered.event_sid)) == answered.leg_sid
    [(member, due)] = rescue_timers(redis_client, answered)
    assert json.loads(member) == {"kind": "event", "event": answered.to_dict()}  # nothing to mask: no number
    seconds, micros = redis_client.time()
    assert abs(due - (seconds + micros / 1e6 + RESCUE_AFTER)) < 5


def test_a_duplicate_publishes_nothing_more(redis_url, redis_client):
    """The same event_sid twice: the second is DUPLICATE, one message, one timer."""
    answered = event()
    assert accept(redis_url, answered, answered) == [ACCEPTED, DUPLICATE]
    assert len(queued(redis_client)) == 1 and len(rescue_timers(redis_client, answered)) == 1


def test_a_new_calls_answer_waits_behind_the_events_of_calls_already_up(redis_url, redis_client):
    """leg_answered goes on the queue's NEW_CALL_PRIORITY list, stream_started and leg_terminated on its first:
    a worker takes the in-call events first, whatever the order they came in."""
    answered, started, ended = event(ev.LEG_ANSWERED), event(ev.STREAM_STARTED), event(ev.LEG_TERMINATED)
    assert accept(redis_url, answered, started, ended) == [ACCEPTED] * 3
    assert [(m["event_sid"], m["priority"]) for m in queued(redis_client)] == [
        (started.event_sid, 0), (ended.event_sid, 0), (answered.event_sid, NEW_CALL_PRIORITY)
    ]
    assert redis_client.llen(queue_key(QUEUE, NEW_CALL_PRIORITY)) == 1


def test_progress_events_are_recorded_beside_the_leg_without_a_task(redis_url, redis_client):
    """leg_ringing of a callee's leg is RECORDED: its first timestamp is kept in the leg's hash
    (which gets the leg's TTL), and no task, claim or rescue timer is spent on it."""
    ringing = event(ev.LEG_RINGING)
    again = LegEvent(uuid.uuid4().hex, ev.LIFECYCLE, ev.LEG_RINGING, ringing.timestamp + 1, ringing.leg_sid, account_sid=ACCOUNT, custom_param=TAG)
    assert accept(redis_url, ringing, again) == [RECORDED, RECORDED]
    assert len(queued(redis_client)) == 0 and rescue_timers(redis_client, ringing) == []
    assert redis_client.exists(keys.event(ringing.event_sid)) == 0
    assert float(redis_client.hget(keys.leg(ringing.leg_sid), progress_field(ev.LEG_RINGING))) == ringing.timestamp
    assert 0 < redis_client.ttl(keys.leg(ringing.leg_sid)) <= LEG_TTL


def answered_leg(client: redis.Redis, flow: Flow = Flow.BOT_FIRST, *events: LegEvent) -> tuple[Store, str]:
    """A callee's leg answered (and then given ``events``), its record saved as a worker saves it; its leg_sid."""
    store, leg_sid = Store(client), f"{LEG_PREFIX}{uuid.uuid4().hex[:8]}"
    campaign = CampaignConfig("camp", flow=flow, bot_url="ws://bot/media", greeting_text="Hello!")
    store.create_campaign(dataclasses.replace(campaign, campaign_id=f"camp-{leg_sid}"))
    record = LegRecord.new(leg_sid, LegTag(f"camp-{leg_sid}", "c1"), campaign)
    for item in (LegEvent(uuid.uuid4().hex, ev.LIFECYCLE, ev.LEG_ANSWERED, 1.0, leg_sid), *events):
        record = apply_event(record, dataclasses.replace(item, leg_sid=leg_sid), campaign).record
    assert store.save_leg(record, 0) == 1
    return store, leg_sid


def media_event(leg_sid: str, name: str, attempt: str, stream_sid: str = "") -> LegEvent:
    return LegEvent(
        uuid.uuid4().hex, ev.ACTION, name, time.time(), leg_sid, account_sid=ACCOUNT, custom_param=TAG,
        action_custom_parameter=attempt, event_data={"data": {"stream_sid": stream_sid} if stream_sid else {}},
    )  # fmt: skip


def test_an_event_the_record_names_quiet_is_kept_beside_it_without_a_task(redis_url, redis_client):
    """stream_initiated of the leg's latest attempt calls for nothing but keeping its sid: it is
    RECORDED, in the next load of the record, no task or rescue timer is spent, and a re-delivery of it is a duplicate."""
    store, leg_sid = answered_leg(redis_client)
    initiated = media_event(leg_sid, ev.STREAM_INITIATED, "start_stream#1", "S1")
    assert accept(redis_url, initiated, initiated) == [RECORDED, DUPLICATE]
    assert queued(redis_client) == [] and rescue_timers(redis_client, initiated) == []
    assert json.loads(redis_client.hget(keys.leg(leg_sid), kept_field(ev.STREAM_INITIATED)))["event_sid"] == initiated.event_sid
    record, version, _ = store.load_leg(leg_sid)
    assert record.stream_sids == {"start_stream#1": "S1"} and version == 2


def test_an_event_kept_beside_the_record_makes_a_commit_begun_before_it_read_again(redis_url, redis_client):
    """A worker that read the record before an event was kept cannot write over it unseen: its
    compare-and-set fails (the version moved), its retry reads the event's effect, and its
    write, which carries that effect, removes the event from beside the record."""
    store, leg_sid = answered_leg(redis_client, Flow.GREETING_SAY)
    record, version, _ = store.load_leg(leg_sid)
    assert accept(redis_url, media_event(leg_sid, ev.SAY_STARTED, "start_say#1")) == [RECORDED]
    assert store.save_leg(record, version) == -1
    record, version, _ = store.load_leg(leg_sid)
    assert record.greeting is GreetingState.PLAYING
    # The record saved next carries the kept event's effect: the event is no longer beside it.
    assert store.save_leg(record, version) == version + 1
    assert redis_client.hget(keys.leg(leg_sid), kept_field(ev.SAY_STARTED)) is None
    assert store.load_leg(leg_sid)[0].greeting is GreetingState.PLAYING


@pytest.mark.parametrize(
    "flow, before, name, attempt",
    [
        (Flow.BOT_FIRST, (), ev.STREAM_INITIATED, "start_stream#0"),  # not the latest attempt: it must be stopped
        (Flow.GREETING_SAY, (LegEvent("e", ev.ACTION, ev.STREAM_STARTED, 2.0, ""),), ev.SAY_STARTED, "start_say#1"),  # the stop waits for it
        (Flow.BOT_FIRST, (LegEvent("e", ev.LIFECYCLE, ev.LEG_TERMINATED, 2.0, ""),), ev.STREAM_INITIATED, "start_stream#1"),  # ended
    ],
    ids=["superseded-stream", "greeting-to-stop", "ended-leg"],
)
def test_an_event_that_calls_for_something_goes_to_a_worker(redis_url, redis_client, flow, before, name, attempt):
    """An event the record does not name as quiet is published like any other, and its record's hash is left as it was."""
    _, leg_sid = answered_leg(redis_client, flow, *before)
    sent = media_event(leg_sid, name, attempt, "S1")
    assert accept(redis_url, sent) == [ACCEPTED]
    assert [m["event_sid"] for m in queued(redis_client)] == [sent.event_sid]
    assert redis_client.hget(keys.leg(leg_sid), kept_field(name)) is None
    assert redis_client.hget(keys.leg(leg_sid), "version") == "1"


def test_events_no_rule_reads_cost_nothing(redis_url, redis_client):
    """recording_started of a callee's leg changes nothing whatever its record holds: acknowledged, nothing stored."""
    started = event("recording_started")
    assert accept(redis_url, started) == [IGNORED]
    assert len(queued(redis_client)) == 0 and not redis_client.exists(keys.event(started.event_sid), keys.leg(started.leg_sid))


def test_an_agents_leg_events_all_go_to_a_worker(redis_url, redis_client):
    """The agent's leg of a transfer: its ringing is the transfer's to judge, so it is published like any event."""
    agent_tag = LegTag("camp", "c1", agent_of="Lcallee").encode(SECRET.encode())
    ringing = event(ev.LEG_RINGING, custom_param=agent_tag)
    assert accept(redis_url, ringing) == [ACCEPTED]
    assert len(queued(redis_client)) == 1 and len(rescue_timers(redis_client, ringing)) == 1


def test_redis_down_raises_and_claims_nothing(redis_url, redis_client):
    """With Redis unreachable, accept raises EventPublishError; the retry (Redis back) is published, not a duplicate."""
    answered = event()
    with pytest.raises(EventPublishError, match=answered.event_sid):
        accept(f"redis://127.0.0.1:{free_port()}/0", answered)
    assert accept(redis_url, answered) == [ACCEPTED]
    assert len(queued(redis_client)) == 1


def test_an_event_for_another_account_is_refused_and_counted(redis_url, redis_client):
    """account_sid not ours: EventRefused (the door answers 403), nothing published, counted as foreign."""
    before = count("foreign")
    with pytest.raises(EventRefused, match="account"):
        accept(redis_url, event(account="someone-else"))
    assert len(queued(redis_client)) == 0 and count("foreign") == before + 1


def test_an_unknown_event_name_is_acknowledged_but_reaches_no_worker(redis_url, redis_client):
    """A name outside Exotel's catalogue: IGNORED (no retry from the sender), no task, no timer, counted."""
    odd = event("leg_exploded")
    before = count("unknown_event")
    assert accept(redis_url, odd) == [IGNORED]
    assert len(queued(redis_client)) == 0 and rescue_timers(redis_client, odd) == []
    assert count("unknown_event") == before + 1


@pytest.mark.parametrize(
    "custom_param",
    ["", LegTag("camp", "c1").encode(), LegTag("camp", "c1").encode(b"another-secret"), '{"ds":1,"c":"camp","k":"c1","a":1,"s":"00"}'],
    ids=["untagged", "unsigned", "signed-by-another", "forged-signature"],
)
def test_an_event_for_a_leg_we_did_not_place_changes_nothing(redis_url, redis_client, custom_param):
    """No valid signed tag and no leg record: IGNORED, no task, no timer, counted as unknown_leg."""
    forged = event(ev.LEG_TERMINATED, custom_param=custom_param)
    before = count("unknown_leg")
    assert accept(redis_url, forged) == [IGNORED]
    assert len(queued(redis_client)) == 0 and rescue_timers(redis_client, forged) == []
    assert not redis_client.exists(keys.event(forged.event_sid))  # a later genuine delivery is not a "duplicate"
    assert count("unknown_leg") == before + 1


def test_an_untagged_event_of_a_leg_with_a_record_is_published(redis_url, redis_client):
    """A leg dialstream already recorded (e.g. placed without a tag) is known by its record."""
    known = event(custom_param="")
    redis_client.hset(keys.leg(known.leg_sid), "version", 1)
    try:
        assert accept(redis_url, known) == [ACCEPTED]
    finally:
        redis_client.delete(keys.leg(known.leg_sid))
    assert len(queued(redis_client)) == 1


def test_the_task_carries_a_masked_number_not_the_callees(redis_url, redis_client):
    """data.contact_uri is masked in the task and the rescue timer: they keep the tag, not the number."""
    answered = event(data={"leg_sid": "x", "contact_uri": "+919812345678"})
    payloads = []
    accept_with = message

    async def run() -> None:
        client = aioredis.Redis.from_url(redis_url)

        def keep(payload: dict, priority: int) -> str:
            payloads.append(payload)
            return accept_with(payload, priority)

        ingress = EventIngress(client, keep, queue=QUEUE, account_sid=ACCOUNT, tag_secret=SECRET, dedupe_ttl=60, rescue_after=RESCUE_AFTER)
        try:
            assert await ingress.accept(answered) == ACCEPTED
        finally:
            await client.aclose()

    asyncio.run(run())
    [(member, _)] = rescue_timers(redis_client, answered)
    assert payloads[0]["data"]["contact_uri"] == "+9198*****678"
    assert "+919812345678" not in member and "+9198*****678" in member


def test_the_task_carries_no_bot_credentials_from_an_echoed_stream_url(redis_url, redis_client):
    """An event echoing the stream URL with user:pass@ (stream_started here; stream_initiated of an
    agent's leg too): the task and its timer keep the bare URL."""
    initiated = event(ev.STREAM_STARTED)
    initiated = LegEvent(
        initiated.event_sid, initiated.event_type, initiated.event_name, initiated.timestamp, initiated.leg_sid,
        account_sid=ACCOUNT, custom_param=TAG,
        event_data={"data": {"stream_sid": "S1", "stream_url": "wss://exotel:s3cret@bot.example/media?x=1"}},
    )  # fmt: skip
    assert accept(redis_url, initiated) == [ACCEPTED]
    [(member, _)] = rescue_timers(redis_client, initiated)
    assert "s3cret" not in member and "wss://bot.example/media?x=1" in member
