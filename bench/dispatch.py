"""Dispatch latency and what the callee hears, through the whole system, against an inline baseline.

Calls are offered to the sandbox at a fixed rate (every callee answers), and their events
flow through the real ingress, broker and Celery workers to real bots. The sandbox measures
every call: dispatch latency (``leg_answered`` emitted -> ``start_stream`` received),
answer -> first audio, dead air, greeting/bot overlap. The same calls are then offered with
the inline baseline (``bench.inline``: the Legs API called straight from the event handler)
as the leg event endpoint, so the cost of the queue is a ratio measured in the same run.

The bench is the dialer here (it creates legs through the Legs API itself) so that the
figures are those of the event path alone, whatever the campaign engine's pacing does.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml

from dialstream.app.embedded_redis import EmbeddedRedis, free_port
from dialstream.app.stack import StackConfig, start_stack
from dialstream.app.supervisor import ProcessSpec, Supervisor
from dialstream.domain.campaign import CampaignConfig, Contact, Flow, LegTag
from dialstream.domain.report import percentile
from dialstream.settings import EngineConfig, Settings
from dialstream.state.client import connect
from dialstream.state.secrets import shared_secret
from dialstream.state.store import Store

__all__ = ["run"]

SCENARIO = {
    "seed": 21,
    "callee": {"answer": 1.0, "ring_ms": [200, 400], "talk_ms": [1500, 2000]},
    # The bench offers far more than an account's 200 requests/minute.
    "limits": {"requests_per_minute": 0, "concurrent_legs": 0, "active_streams": 0},
}
FIGURES = ("dispatch_latency_ms", "answer_to_first_audio_ms", "dead_air_ms", "overlap_ms", "event_delivery_latency_ms")


def run(
    *,
    rates: tuple[float, ...] = (10.0, 50.0),
    duration: float = 6.0,
    flows: tuple[str, ...] = ("bot_first", "greeting_say"),
    events_workers: int = 2,
) -> dict[str, Any]:
    """Offer each of ``rates`` answered calls/s for ``duration`` s per flow, through dialstream and the baseline.

    50/s is the target load; 10/s shows the cost of the queue where the machine is not the limit.
    """
    work = Path(tempfile.mkdtemp(prefix="dialstream-bench-"))
    scenario = work / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO))
    results: dict[str, Any] = {"seconds_per_run": duration, "events_workers": events_workers, "rates": {}}
    # The bench offers far more than an account's 200 requests/minute: lift the budget, so
    # that what is measured is the event path, not the pacer.
    with EmbeddedRedis() as server, Supervisor(work / "logs") as supervisor:
        settings = Settings.from_env({"REDIS_URL": server.url}).replace(engine=EngineConfig(api_budget=10_000_000))
        stack = start_stack(supervisor, settings, StackConfig(scenario=scenario, bots=2, events_workers=events_workers))
        client = connect(server.url)
        store = Store(client)
        secret = shared_secret(client, "tags", settings.tag_secret)
        say_start_ms = 80.0  # sim.config.Timing.say_start_ms, the scenario keeps the default
        for rate in rates:
            at_rate: dict[str, Any] = {}
            for flow in flows:
                campaign = CampaignConfig(f"bench-{uuid.uuid4().hex[:6]}", flow=Flow(flow), greeting_text="Hello!", window="any")
                count = int(rate * duration)
                contacts = [Contact(f"c{i}", f"+9197{i:08d}") for i in range(count)]
                store.create_campaign(campaign, contacts)
                queued = _offer(stack.settings, stack.sandbox_url, campaign, contacts, rate, stack.settings.event_endpoint, secret)
                inline_port = free_port()
                name = f"inline-{flow}"
                argv = Supervisor.python("-m", "bench.inline", f"127.0.0.1:{inline_port}", flow, stack.bot_urls[0])
                supervisor.start(ProcessSpec(name, argv, stack.settings.to_env(), ready_port=inline_port))
                supervisor.wait_ready()
                inline = f"grpc://127.0.0.1:{inline_port}"
                baseline = _offer(stack.settings, stack.sandbox_url, campaign, contacts, rate, inline, secret)
                supervisor.stop(name)
                entry: dict[str, Any] = {"dialstream": queued, "inline": baseline}
                q50, b50 = queued["dispatch_latency_ms"]["p50"], baseline["dispatch_latency_ms"]["p50"]
                entry["dispatch_p50_ratio"] = round(q50 / b50, 2) if q50 and b50 else None
                if flow == "greeting_say":
                    entry["say_start_ms"] = say_start_ms
                at_rate[flow] = entry
            results["rates"][f"{rate:g}"] = at_rate
        client.close()
    return results


def _offer(
    settings: Settings,
    sandbox: str,
    campaign: CampaignConfig,
    contacts: list[Contact],
    rate: float,
    endpoint: str,
    secret: bytes,
) -> dict[str, Any]:
    """Create one leg per contact at ``rate``/s with events to ``endpoint``; the sandbox's figures once all ended.

    Each leg's tag is signed with the stack's ``secret`` like the dialer's: the ingress drops
    events whose tag it did not sign as forged.
    """
    tags = [LegTag(campaign.campaign_id, contact.contact_id).encode(secret) for contact in contacts]
    httpx.post(f"{sandbox}/sim/v1/reset", timeout=10).raise_for_status()
    started = time.monotonic()
    asyncio.run(_create_legs(settings, contacts, tags, rate, endpoint))
    offered_for = time.monotonic() - started
    deadline = time.monotonic() + 120
    while True:
        summary = httpx.get(f"{sandbox}/sim/v1/summary", timeout=10).json()
        if summary["calls"] >= len(contacts) and summary["live"] == 0:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"calls still live after 120 s: {summary['live']}")
        time.sleep(0.5)
    calls = httpx.get(f"{sandbox}/sim/v1/calls", timeout=30).json()["calls"]
    figures = {name: _stats(summary["figures"][name]) for name in FIGURES}
    greeting = [
        (c["timeline"]["first_greeting_audio"] - c["timeline"]["answered"]) * 1000
        for c in calls
        if c["timeline"]["first_greeting_audio"] and c["timeline"]["answered"]
    ]
    figures["answer_to_first_greeting_audio_ms"] = {
        "p50": percentile(greeting, 50),
        "p95": percentile(greeting, 95),
        "p99": percentile(greeting, 99),
    }
    return {
        "calls": summary["calls"],
        "answered": summary["answered"],
        "offered_for_s": round(offered_for, 2),
        "invariants_ok": summary["ok"],
        "broken_invariants": {name: len(broken) for name, broken in summary["invariants"].items() if broken},
        **figures,
    }


async def _create_legs(settings: Settings, contacts: list[Contact], tags: list[str], rate: float, endpoint: str) -> None:
    async with httpx.AsyncClient(
        base_url=settings.legs_base_url, auth=(settings.api_key, settings.api_token), timeout=10
    ) as client:
        start = time.monotonic()
        pending = []
        for index, (contact, tag) in enumerate(zip(contacts, tags, strict=True)):
            await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
            body = {
                "contact_uri": contact.phone,
                "exophone": settings.exophone,
                "leg_event_endpoint": endpoint,
                "custom_param": tag,
            }
            pending.append(asyncio.create_task(client.post("/legs", json=body)))
        for response in await asyncio.gather(*pending):
            response.raise_for_status()


def _stats(figure: dict[str, Any]) -> dict[str, Any]:
    return {key: figure.get(key) for key in ("count", "p50", "p95", "p99", "max")}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
