"""Campaigns as a service, end to end on real processes: the sandbox, the ingress, events, dial and
webhooks workers, a bot and the HTTP API. A campaign created through the API with a key dials its
contacts; every webhook reaches a local receiver with a valid Standard Webhooks signature, also
those first sent while the receiver was down; a real browser shows the campaign and a call's timeline."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis
import yaml

from dialstream.app.stack import Stack, StackConfig, start_stack
from dialstream.app.supervisor import Supervisor
from dialstream.settings import Settings
from dialstream.state.api_keys import ApiKeys
from tests.api.browser import browser_or_skip, open_page
from tests.api.receiver import Receiver
from tests.utils import settings_free_env, wait_for

pytestmark = pytest.mark.e2e

DB = 5  # this module's database on the session's server
SCENARIO = {
    "seed": 41,
    "callee": {"answer": 1.0, "ring_ms": [200, 400], "talk_ms": [1500, 2500]},
    "numbers": {"+919811000004": "busy"},
}
CONTACTS = [{"phone": f"+91981100000{i}", "name": f"Person {i}", "plan": "gold"} for i in range(1, 5)]
ENV = {"DIALSTREAM_WEBHOOK_RETRY_SCHEDULE": "0.5,0.5,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1"}


@pytest.fixture(scope="module")
def service(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, redis.Redis]]:
    """The whole stack with the API and a webhooks worker on database ``DB`` (flushed)."""
    url = redis_url.rsplit("/", 1)[0] + f"/{DB}"
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    tmp = tmp_path_factory.mktemp("e2e")
    (tmp / "scenario.yaml").write_text(yaml.safe_dump(SCENARIO))
    env = {**settings_free_env(), **ENV}
    config = StackConfig(scenario=tmp / "scenario.yaml", api=True, webhooks_workers=1)
    with Supervisor(tmp / "logs", base_env=env) as supervisor:
        stack = start_stack(supervisor, Settings.from_env({**ENV, "REDIS_URL": url}), config)
        yield stack, client
    client.close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def campaign(service: tuple[Stack, redis.Redis], receiver: Receiver) -> dict:
    """A campaign created through the API with a write key, its webhooks to the (still down) receiver."""
    stack, client = service
    _, token = ApiKeys(client).create("write", name="e2e")
    body = {"name": "e2e", "window": "any", "retries": "none", "contacts": CONTACTS, "webhooks": [{"url": receiver.url}]}
    response = httpx.post(f"{stack.api_url}/v1/campaigns", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 201, response.text
    created = response.json()
    receiver.secret = created["webhooks"][0]["secret"]
    return {**created, "token": token}


def test_every_webhook_arrives_signed_even_those_sent_while_the_receiver_was_down(service, receiver, campaign):
    """call.answered x3, call.completed x4, contact.finished x4 (with the input columns), campaign.finished x1: each once, each signature valid."""
    stack, client = service
    headers = {"Authorization": f"Bearer {campaign['token']}"}
    # The receiver is down while the first calls are answered: those deliveries fail and are retried.
    wait_for(lambda: any(int(client.hget(f"ds:wh:delivery:{d}", "attempts") or 0) >= 1 for d in client.zrange("ds:wh:due", 0, -1)), timeout=60)
    receiver.start()
    cid = campaign["campaign_id"]
    wait_for(lambda: httpx.get(f"{stack.api_url}/v1/campaigns/{cid}", headers=headers, timeout=10).json()["finished"], timeout=90)
    wait_for(lambda: receiver.of_type("campaign.finished"), timeout=60)
    wait_for(lambda: len(receiver.messages) == 12, timeout=60)
    assert receiver.invalid == []
    answered, completed = receiver.of_type("call.answered"), receiver.of_type("call.completed")
    finished, done = receiver.of_type("contact.finished"), receiver.of_type("campaign.finished")
    assert (len(answered), len(completed), len(finished), len(done)) == (3, 4, 4, 1)
    assert sorted(m["data"]["outcome"] for m in completed) == ["busy", "completed", "completed", "completed"]
    talk = [m["data"] for m in completed if m["data"]["outcome"] == "completed"]
    assert all(d["timings"]["answered_to_stream_ms"] is not None and d["timings"]["talk_seconds"] > 0 for d in talk)
    assert {m["data"]["variables"]["name"] for m in finished} == {f"Person {i}" for i in range(1, 5)}
    assert done[0]["data"] == {"campaign_id": cid, "name": "e2e", "state": "done", "total": 4, "outcomes": {"completed": 3, "busy": 1}}
    report = httpx.get(f"{stack.api_url}/v1/campaigns/{cid}/report", params={"format": "json"}, headers=headers, timeout=10).json()
    assert [row["variables"]["plan"] for row in report["contacts"]] == ["gold"] * 4
    assert httpx.get(f"{stack.api_url}/v1/webhooks/dead", headers=headers, timeout=10).json() == []


def test_the_dashboard_shows_the_campaign_and_a_calls_timeline_in_a_real_browser(service, campaign, tmp_path):
    """Headless Chromium loads /dashboard with a read key: the campaign's row shows its progress, and a call is drawn with every mark."""
    browser_or_skip()
    stack, client = service
    cid = campaign["campaign_id"]
    headers = {"Authorization": f"Bearer {campaign['token']}"}
    wait_for(lambda: httpx.get(f"{stack.api_url}/v1/campaigns/{cid}", headers=headers, timeout=10).json()["finished"], timeout=90)
    _, token = ApiKeys(client).create("read", name="dashboard")
    with open_page(f"{stack.api_url}/dashboard#key={token}", tmp_path / "profile") as page:
        row = f'document.querySelector(\'#campaigns tr[data-id="{cid}"] .progress\')'
        progress = wait_for(lambda: page.evaluate(f"{row} && {row}.textContent"), timeout=30)
        assert progress == "4/4"
        assert page.evaluate("document.getElementById('status').textContent") == "live"
        call = "document.querySelector('#timeline g.call[data-leg]:not([data-leg=\"\"])')"
        marks = wait_for(lambda: page.evaluate(f"{call} && [...{call}.querySelectorAll('circle.mark')].map(m => m.dataset.mark)"), timeout=30)
        answered_call = wait_for(
            lambda: page.evaluate(
                "[...document.querySelectorAll('#timeline g.call')].map(g => [...g.querySelectorAll('circle.mark')].map(m => m.dataset.mark))"
                ".find(marks => marks.includes('stream started'))"
            ),
            timeout=30,
        )
        outcomes = page.evaluate("[...document.querySelectorAll('#outcomes g.outcome')].map(g => g.dataset.outcome).sort()")
        bars = page.evaluate("[...document.querySelectorAll('#hist-stream rect.bucket')].reduce((n, r) => n + Number(r.dataset.count), 0)")
        page.screenshot(tmp_path / "dashboard.png")
    assert {"dialled", "ended"} <= set(marks)
    assert {"dialled", "ringing", "answered", "greeting on", "stream started", "ended"} <= set(answered_call)
    assert outcomes == ["busy", "completed"] and bars == 3
