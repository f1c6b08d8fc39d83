"""The dial poller hands out no more contacts than the caps and the API budget leave room for, campaigns taking turns."""

from __future__ import annotations

import time

import pytest
import redis

from dialstream.domain.campaign import CampaignConfig, Contact
from dialstream.engine.campaigns import CampaignEngine
from dialstream.broker.celery_app import EVENTS_QUEUE
from dialstream.settings import EngineConfig
from dialstream.state.dial_queue import DialItem
from dialstream.state.pacing import DIAL
from workers.poller import DialPoller

DB = 10  # this module's database on the session's server
ACCOUNT = "acct"


@pytest.fixture
def client(redis_url):
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + f"/{DB}", decode_responses=True)
    client.flushdb()
    yield client
    client.close()


def contacts(n: int, start: int = 0) -> list[Contact]:
    return [Contact(f"k{i}", f"+9199{i:08d}") for i in range(start, start + n)]


def poller(client: redis.Redis, engine: EngineConfig = EngineConfig()) -> tuple[DialPoller, list[DialItem]]:
    sent: list[DialItem] = []
    return DialPoller(client, ACCOUNT, engine, sent.extend), sent


def test_a_campaign_gets_no_more_than_its_cap_minus_what_it_already_holds(client):
    """With max_concurrent 3, one call live and one contact handed out, one more is handed out; nothing while paused."""
    engine = CampaignEngine(client, ACCOUNT)
    engine.submit(CampaignConfig("capped", max_concurrent=3, window="any"), contacts(10))
    engine.slots.acquire("capped", "capped:live:1", EngineConfig().slot_caps(engine.store.campaign("capped")), ttl=30)
    engine.store.queue.pop_due("capped", limit=1, lease=30)
    dial, sent = poller(client)
    assert dial.poll()[0] == 1 and [i.contact_id for i in sent] == ["k1"] and all(i.token for i in sent)
    assert dial.poll()[0] == 0
    engine.slots.release("capped:live:1")
    engine.pause("capped")
    assert dial.poll()[0] == 0


def test_the_account_cap_is_shared_and_campaigns_take_turns(client):
    """Two campaigns under an account cap of 4 split it, and each round starts with the other campaign."""
    engine = CampaignEngine(client, ACCOUNT)
    engine.submit(CampaignConfig("a", window="any"), contacts(10))
    engine.submit(CampaignConfig("b", window="any"), contacts(10, start=100))
    dial, sent = poller(client, EngineConfig(max_calls=4, max_dialing=2))
    assert dial.poll()[0] == 4
    assert sorted(i.campaign_id for i in sent) == ["a", "a", "b", "b"]  # max_dialing 2 per campaign
    assert dial.poll()[0] == 0  # four handed out, none placed yet: the account is full


def test_dials_stop_where_the_budget_stops_and_leave_the_reserve(client):
    """With 40 requests a window, 2 always kept for in-call actions and 3 reserved per call, nine dials fit; once they hold their grants, none."""
    engine = CampaignEngine(client, ACCOUNT, EngineConfig(api_budget=40))
    engine.submit(CampaignConfig("paced", window="any"), contacts(20))
    dial, sent = poller(client, EngineConfig(api_budget=40))
    count, _ = dial.poll()
    assert count == 9  # (40 - 2 - 3) / 4, rounded up: each dial also reserves its call's 3 actions
    for item in sent:
        assert engine.pacer.try_acquire(DIAL, call_id=f"paced:{item.contact_id}:1")
        engine.store.queue.ack([item])
    count, wait = dial.poll()
    assert count == 0 and wait > 0


def test_a_lease_that_ran_out_holds_no_room_and_its_contact_is_offered_again(client):
    """A contact taken by a worker that died long ago does not count against the cap: it is handed out again, under a new token."""
    engine = CampaignEngine(client, ACCOUNT)
    engine.submit(CampaignConfig("lost", max_concurrent=1, window="any"), contacts(1), clock=lambda: time.time() - 200)
    lost = engine.store.queue.pop_due("lost", time.time() - 100, limit=1, lease=30)[0]  # its lease ended 70 s ago
    dial, sent = poller(client)
    assert dial.poll()[0] == 1 and sent[0].contact_id == lost.contact_id and sent[0].token != lost.token


def test_a_long_events_backlog_slows_then_stops_new_dials(client):
    """DIALSTREAM_EVENT_BACKLOG 100: 40 leg events waiting leave the pace as it is, 75 halve it, 100 stop it (and the
    campaign's status says why); drained, the dials go on and the status says nothing more of it."""
    engine = CampaignEngine(client, ACCOUNT)
    engine.submit(CampaignConfig("busy", window="any"), contacts(400))
    dial, sent = poller(client, EngineConfig(api_budget=100_000, event_backlog=100, max_dialing=1000))
    handed = []
    for waiting in (40, 75, 100, 0):
        client.delete(EVENTS_QUEUE)
        if waiting:
            client.lpush(EVENTS_QUEUE, *range(waiting))
        handed.append(dial.poll()[0])
        if waiting == 100:
            held = engine.status("busy").waiting_for
    assert handed == [100, 50, 0, 100] and len(sent) == 250
    assert any(reason.startswith("new dials are held back: 100 leg events") for reason in held)
    assert not any("held back" in reason for reason in engine.status("busy").waiting_for)
