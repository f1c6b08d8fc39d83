"""Webhook endpoints and deliveries in Redis: one delivery per message and endpoint whatever the
re-emissions, event filters, leased hand-out, the retry schedule, dead letters and replay."""

from __future__ import annotations

import json

import pytest

from dialstream.domain.campaign import CampaignConfig, Contact
from dialstream.domain.webhooks import message_id
from dialstream.errors import ConfigurationError
from dialstream.state.store import Store
from dialstream.state.webhooks import DUE, Webhooks, call_completed, record_final
from tests.utils import database_url, emptied

DB = 14  # shared with the API-key tests: keys without a per-test prefix, so flushed per test


@pytest.fixture
def url(redis_url):
    return emptied(database_url(redis_url, DB))


def test_an_event_reaches_each_endpoint_that_wants_it_once_however_often_it_is_emitted(client):  # noqa: F811
    """The account's endpoint and the campaign's get a call.completed; one filtered to contact.finished does not; re-emitting adds nothing."""
    webhooks = Webhooks(client)
    account = webhooks.add_endpoint("http://127.0.0.1:1/a")
    own = webhooks.add_endpoint("http://127.0.0.1:1/b", campaign_id="c1")
    webhooks.add_endpoint("http://127.0.0.1:1/c", campaign_id="c1", events=["contact.finished"])
    webhooks.add_endpoint("http://127.0.0.1:1/d", campaign_id="other")
    result = {"contact_id": "r2", "leg_sid": "leg-1", "outcome": "completed", "answered_at": 10.0, "ended_at": 40.5, "attempt": 1}
    for _ in range(3):
        call_completed(client, "c1", result)
    due = webhooks.take_due(10, lease=30)
    msg = message_id("call.completed", "leg-1")
    assert sorted(due) == sorted([f"{msg}.{account.id}", f"{msg}.{own.id}"])
    delivery = webhooks.delivery(due[0])
    body = json.loads(delivery.body)
    assert body["type"] == "call.completed" and body["data"]["timings"]["talk_seconds"] == 30.5
    assert webhooks.take_due(10, lease=30) == []  # leased, not due again until the lease ends


def test_failed_attempts_follow_the_schedule_then_dead_letter_and_replay(client):  # noqa: F811
    """Each failure is due after the next delay; after the last the delivery is dead, and replay makes it due at once."""
    webhooks = Webhooks(client, schedule=(5.0, 60.0))
    webhooks.add_endpoint("http://127.0.0.1:1/a")
    call_completed(client, "c1", {"leg_sid": "leg-2", "outcome": "busy"})
    (delivery_id,) = webhooks.take_due(10, lease=30)
    assert webhooks.failed(delivery_id, "HTTP 500", 500) == 5.0
    assert webhooks.failed(delivery_id, "ConnectError", None) == 60.0
    assert client.zscore(DUE, delivery_id) > 0
    assert webhooks.failed(delivery_id, "HTTP 503", 503) is None
    dead = webhooks.dead()
    assert [d.id for d in dead] == [delivery_id] and dead[0].attempts == 3 and dead[0].last_error == "HTTP 503"
    assert webhooks.counts() == {"pending": 0, "dead": 1}
    assert webhooks.replay() == 1
    assert webhooks.take_due(10, lease=30) == [delivery_id] and webhooks.delivery(delivery_id).attempts == 0
    webhooks.delivered(delivery_id, 204)
    assert webhooks.delivery(delivery_id).state == "delivered" and webhooks.counts() == {"pending": 0, "dead": 0}


def test_the_last_contacts_final_record_also_says_the_campaign_finished(client):  # noqa: F811
    """record_final emits contact.finished with the input columns, and campaign.finished once every contact has its record."""
    store = Store(client)
    webhooks = Webhooks(client)
    webhooks.add_endpoint("http://127.0.0.1:1/a")
    contacts = [Contact("r2", "+919800000001", {"name": "Asha"}), Contact("r3", "+919800000002")]
    store.create_campaign(CampaignConfig("fin"), contacts)
    store.start_campaign("fin", 2)
    record_final(store, "fin", "r2", contacts[0], {"contact_id": "r2", "outcome": "completed", "attempts": 1})
    first = [json.loads(webhooks.delivery(d).body) for d in webhooks.take_due(10, lease=30)]
    assert [m["type"] for m in first] == ["contact.finished"]
    assert first[0]["data"]["variables"] == {"name": "Asha"} and first[0]["data"]["attempt_outcomes"] == ["completed"]
    record_final(store, "fin", "r3", contacts[1], {"contact_id": "r3", "outcome": "busy", "attempts": 2, "history": [{"outcome": "busy"}]})
    second = {m["type"]: m for m in (json.loads(webhooks.delivery(d).body) for d in webhooks.take_due(10, lease=30))}
    assert set(second) == {"contact.finished", "campaign.finished"}
    assert second["contact.finished"]["data"]["attempt_outcomes"] == ["busy", "busy"]
    assert second["campaign.finished"]["data"]["outcomes"] == {"completed": 1, "busy": 1}


def test_bad_endpoints_are_refused(client):  # noqa: F811
    """A URL that is not http(s), an unknown event or a malformed secret is a ConfigurationError."""
    webhooks = Webhooks(client)
    for url, options in (("ftp://x/y", {}), ("http://x/y", {"events": ["call.ringing"]}), ("http://x/y", {"secret": "whsec_short"})):
        with pytest.raises(ConfigurationError):
            webhooks.add_endpoint(url, **options)
    assert webhooks.endpoints() == []
