"""The API's account routes on a real process: health and readiness, the DNC list, the bot fleet."""

from __future__ import annotations

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from dialstream.app.embedded_redis import free_port
from dialstream.app.supervisor import Supervisor
from dialstream.state import fleet
from tests.api.conftest import start_api
from tests.api.test_campaigns import problem
from tests.utils import settings_free_env


def test_health_answers_and_readiness_checks_redis(api_url, tmp_path):
    """/healthz and /readyz answer without a key; an API whose Redis is unreachable is alive but not ready (503)."""
    assert httpx.get(f"{api_url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{api_url}/readyz").json() == {"status": "ready", "redis": "ok"}
    env = settings_free_env()
    with Supervisor(tmp_path / "logs", base_env=env) as supervisor:
        lonely = start_api(supervisor, f"redis://127.0.0.1:{free_port()}/0", {"DIALSTREAM_REDIS_SOCKET_TIMEOUT": "0.5"})
        assert httpx.get(f"{lonely}/healthz").status_code == 200
        not_ready = httpx.get(f"{lonely}/readyz", timeout=10)
    assert not_ready.status_code == 503 and not_ready.json()["status"] == "unavailable"


def test_dnc_add_check_list_and_remove(writer):
    """Numbers go on the list in E.164 whatever their spelling, are checked, listed and removed; a non-number is a 422."""
    added = writer.post("/v1/dnc", json={"numbers": ["098123 45699", "+14155550100"]}).json()
    assert added == {"added": 2, "numbers": ["+919812345699", "+14155550100"]}
    assert writer.get("/v1/dnc/+919812345699").json() == {"number": "+919812345699", "blocked": True}
    assert writer.get("/v1/dnc/+919812345600").json()["blocked"] is False
    assert {"+919812345699", "+14155550100"} <= set(writer.get("/v1/dnc").json()["numbers"])
    writer.post("/v1/dnc", json={"numbers": ["+919812345698"], "campaign_id": "c1"}).raise_for_status()
    assert writer.get("/v1/dnc/+919812345698", params={"campaign_id": "c1"}).json()["blocked"] is True
    assert writer.get("/v1/dnc/+919812345698").json()["blocked"] is False
    assert writer.delete("/v1/dnc/+919812345699").json() == {"removed": "+919812345699"}
    problem(writer.delete("/v1/dnc/+919812345699"), 404)
    assert "not a phone number" in problem(writer.post("/v1/dnc", json={"numbers": ["+919812345697", "call me"]}), 422)["detail"]
    assert writer.get("/v1/dnc/+919812345697").json()["blocked"] is False  # nothing was written


def test_the_bot_fleet_is_listed(reader, api_redis_url):
    """A bot that registered itself appears with its capacity and load."""
    client = redis.Redis.from_url(api_redis_url)
    fleet.heartbeat(client, "ws://10.0.0.7:8765/media", capacity=20, load=3, ttl=60)
    client.close()
    bots = {bot["url"]: bot for bot in reader.get("/v1/bots").json()}
    assert bots["ws://10.0.0.7:8765/media"] == {"url": "ws://10.0.0.7:8765/media", "capacity": 20, "load": 3, "free": 17, "static": False}


def test_metrics_give_each_campaigns_contacts_by_state_and_outcomes(writer, api_url):
    """/metrics (no key: Prometheus scrapes it) has a campaign's pending and done contacts and its outcomes."""
    writer.post("/v1/campaigns", json={"campaign_id": "metered", "contacts": [{"phone": "+919812345691"}, {"phone": "+919812345692"}]}).raise_for_status()
    writer.post("/v1/campaigns/metered/cancel").raise_for_status()
    samples = {
        (s.name, s.labels.get("state") or s.labels.get("outcome")): s.value
        for family in text_string_to_metric_families(httpx.get(f"{api_url}/metrics").text)
        for s in family.samples
        if s.labels.get("campaign") == "metered"
    }
    assert samples[("dialstream_campaign_contacts", "done")] == 2 and samples[("dialstream_campaign_contacts", "pending")] == 0
    assert samples[("dialstream_campaign_outcomes", "canceled")] == 2
