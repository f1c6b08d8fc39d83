"""The campaign engine's figures: ingest rate, dial rate with the budget lifted, budget use at Exotel's.

Three bounded loopback runs, each on its own embedded Valkey (and the second and third on a
whole stack: sandbox, ingress, Celery workers, a bot), that stop by themselves:

- ``ingest``: a 100,000-row CSV (``bench.contacts_ingest.write_batch``: mostly valid, ~3 %
  bad rows) submitted as a campaign, streamed into Redis: rows per second;
- ``dial_rate``: the API budget and every cap lifted (the sandbox's too), a campaign of busy
  numbers: dials per second the poller and one dial worker sustain, events included;
- ``budget``: the default budget (200 requests/minute) against a sandbox enforcing the same,
  a backlog of answering callees for two full windows: requests per window (utilisation)
  and the 429s the account got.

Run ``python -m bench.campaign``.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from bench.contacts_ingest import write_batch
from dialstream.app.demo import fetch_timelines
from dialstream.app.embedded_redis import EmbeddedRedis
from dialstream.app.stack import Stack, StackConfig, start_stack
from dialstream.app.supervisor import Supervisor
from dialstream.domain.campaign import CampaignConfig, Contact, Flow
from dialstream.engine.campaigns import CampaignEngine
from dialstream.settings import EngineConfig, Settings
from dialstream.state.client import connect

__all__ = ["run"]

LIFTED = EngineConfig(api_budget=10_000_000, max_dialing=1000)


def run(*, rows: int = 100_000, dials: int = 3000, budget_windows: int = 2) -> dict[str, Any]:
    """All three figures; ``budget_windows`` minutes of backlog for the budget run."""
    return {"ingest": ingest(rows), "dial_rate": dial_rate(dials), "budget": budget(budget_windows)}


def ingest(rows: int) -> dict[str, Any]:
    """Submit a ``rows``-row CSV as a campaign (paused: nothing dials) and time it."""
    with tempfile.TemporaryDirectory(prefix="dialstream-bench-") as tmp, EmbeddedRedis() as server:
        path = Path(tmp) / "batch.csv"
        write_batch(path, rows)
        client = connect(server.url)
        engine = CampaignEngine(client, "bench")
        started = time.perf_counter()
        report = engine.submit_file(CampaignConfig("ingest", window="09:00-20:00"), path, paused=True)
        seconds = time.perf_counter() - started
        memory = int(client.info("memory")["used_memory"])
        client.close()
    return {
        "rows": report.accepted + report.rejected,
        "accepted": report.accepted,
        "rejected": report.rejected,
        "seconds": round(seconds, 2),
        "rows_per_s": round((report.accepted + report.rejected) / seconds),
        "redis_bytes_per_contact": round(memory / max(report.accepted, 1)),
    }


def dial_rate(count: int) -> dict[str, Any]:
    """Dial ``count`` busy numbers with nothing limiting but the engine itself."""
    scenario = {"seed": 41, "callee": {"outcome": "busy", "ring_ms": [50, 100]},
                "limits": {"requests_per_minute": 0, "concurrent_legs": 0, "active_streams": 0}}  # fmt: skip
    with _stack(scenario, LIFTED) as (stack, engine):
        contacts = [Contact(f"b{i}", f"+9191{i:08d}") for i in range(count)]
        started = time.time()
        engine.submit(CampaignConfig(f"rate-{uuid.uuid4().hex[:6]}", flow=Flow.BOT_FIRST, window="any"), contacts)
        campaign_id = engine.store.campaign_ids()[0]
        _wait(lambda: engine.status(campaign_id).finished, 30 + count / 20)
        dialled = sorted(call["timeline"]["dialed"] for call in fetch_timelines(stack.sandbox_url).values())
        status = engine.status(campaign_id)
    span = dialled[-1] - dialled[0] if len(dialled) > 1 else 0.0
    return {
        "contacts": count,
        "dialled": len(dialled),
        "outcomes": dict(status.outcomes),
        "first_dial_after_submit_s": round(dialled[0] - started, 3) if dialled else None,
        "dials_per_s": round((len(dialled) - 1) / span, 1) if span else None,
        "throttled_429": status.throttled,
    }


def budget(windows: int) -> dict[str, Any]:
    """A backlog of answering callees for ``windows`` full budget windows at the default budget."""
    engine_config = EngineConfig()
    limit = engine_config.api_budget
    scenario = {"seed": 43, "callee": {"answer": 1.0, "ring_ms": [200, 500], "talk_ms": [3000, 5000]},
                "limits": {"requests_per_minute": limit}}  # fmt: skip
    with _stack(scenario, engine_config) as (stack, engine):
        # Far more contacts than the budget can reach in the run: a backlog all along.
        backlog = limit * windows
        campaign = CampaignConfig(f"budget-{uuid.uuid4().hex[:6]}", greeting_text="Hi", window="any")
        started = time.time()
        engine.submit(campaign, [Contact(f"u{i}", f"+9192{i:08d}") for i in range(backlog)])
        time.sleep(windows * engine_config.api_window + 2)
        status = engine.status(campaign.campaign_id)
        engine.cancel(campaign.campaign_id)
        _wait(lambda: engine.status(campaign.campaign_id).finished, 30)
        calls = fetch_timelines(stack.sandbox_url).values()
        throttled = engine.pacer.throttled_count()
    requests = sorted([c["timeline"]["dialed"] for c in calls] + [a["received_at"] for c in calls for a in c["actions"]])
    per_window = [
        sum(1 for at in requests if started + n * engine_config.api_window <= at < started + (n + 1) * engine_config.api_window)
        for n in range(windows)
    ]
    return {
        "limit_per_window": limit,
        "window_s": engine_config.api_window,
        "requests_per_window": per_window,
        "utilisation": [round(n / limit, 3) for n in per_window],
        "throttled_429": throttled,
        "backlog_left": status.pending,
        "calls": len(calls),
    }


@contextmanager
def _stack(scenario: dict[str, Any], engine_config: EngineConfig) -> Iterator[tuple[Stack, CampaignEngine]]:
    work = Path(tempfile.mkdtemp(prefix="dialstream-bench-"))
    (work / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    with EmbeddedRedis() as server, Supervisor(work / "logs") as supervisor:
        settings = Settings.from_env({"REDIS_URL": server.url}).replace(engine=engine_config)
        stack = start_stack(supervisor, settings, StackConfig(scenario=work / "scenario.yaml"))
        client = connect(server.url)
        try:
            yield stack, CampaignEngine(client, stack.settings.account_sid, engine_config)
        finally:
            client.close()


def _wait(done: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.2)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
