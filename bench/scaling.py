"""How leg-event throughput scales out with `events` worker processes.

For 1, 2 and 4 `events` worker processes (16 threads each), answered calls are offered to
the sandbox at rising rates, approach 2 (stream and greeting), with the bench dialling
through the Legs API itself as ``bench.dispatch`` does: events flow through the real
ingress, broker and workers to real bots. At each rate the sandbox measures dispatch
latency (``leg_answered`` emitted -> ``start_stream`` received) over every call. The rates
rise until p99 passes ``stop_p99_ms`` or a call breaks an invariant.

``max_calls_per_s`` is the highest rate whose dispatch p99 stayed within the target
(15 ms): the throughput that number of worker processes sustains at that latency.
``max_calls_per_s_within`` gives the same for looser targets, so the scaling shows even
where the target is out of reach. Everything (sandbox, ingress, Redis, bots, workers, this
process) shares this machine's cores: the figures show how far scaling out helps *here*; on
separate hosts each worker process brings its own core. Loopback only, bounded in time
(about two and a half minutes), stops what it starts.

Example::

    python -m bench scaling
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

import yaml

from bench.dispatch import SCENARIO, _offer
from dialstream.app.embedded_redis import EmbeddedRedis
from dialstream.app.stack import Stack, StackConfig, start_stack
from dialstream.app.supervisor import Supervisor
from dialstream.domain.campaign import CampaignConfig, Contact, Flow
from dialstream.settings import EngineConfig, Settings
from dialstream.state.client import connect
from dialstream.state.store import Store

__all__ = ["run"]

# The account's Legs API budget (200 requests a minute at Exotel) would cap the rates long
# before the workers do: the bench measures the event path, so the budget is out of the way.
ENGINE = EngineConfig(api_budget=1_000_000)


def run(
    *,
    workers: tuple[int, ...] = (1, 2, 4),
    rates: tuple[float, ...] = (5, 10, 15, 20, 25, 30, 40),
    seconds: float = 6.0,
    target_p99_ms: float = 15.0,
    looser_p99_ms: tuple[float, ...] = (50.0, 100.0, 250.0),
    stop_p99_ms: float = 500.0,
) -> dict[str, Any]:
    """For each worker count, offer each of ``rates`` (answered calls/s) for ``seconds`` until p99 > ``stop_p99_ms``."""
    work = Path(tempfile.mkdtemp(prefix="dialstream-bench-scaling-"))
    scenario = work / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO))
    targets = (target_p99_ms, *looser_p99_ms)
    results: dict[str, Any] = {
        "target_dispatch_p99_ms": target_p99_ms,
        "seconds_per_rate": seconds,
        "events_workers": {},
    }
    with EmbeddedRedis() as server:
        client = connect(server.url)
        store = Store(client)
        for count in workers:
            config = StackConfig(events_workers=count, dial_workers=0, bots=2, scenario=scenario)
            with Supervisor(work / f"logs-{count}") as supervisor:
                stack = start_stack(supervisor, Settings.from_env({"REDIS_URL": server.url}).replace(engine=ENGINE), config)
                _step(stack, store, rates[0], 2.0)  # warm-up: connection pools, imports, the bots' first streams
                steps = []
                for rate in rates:
                    steps.append(_step(stack, store, rate, seconds))
                    if not _within(steps[-1], stop_p99_ms):
                        break
            within = {f"{t:g}": max((s["calls_per_s"] for s in steps if _within(s, t)), default=0) for t in targets}
            results["events_workers"][str(count)] = {
                "max_calls_per_s": within[f"{target_p99_ms:g}"],
                "max_calls_per_s_within": within,
                "steps": steps,
            }
        client.close()
    return results


def _step(stack: Stack, store: Store, rate: float, seconds: float) -> dict[str, Any]:
    """Offer ``rate`` answered calls/s for ``seconds``; the sandbox's dispatch figures."""
    campaign = CampaignConfig(f"scale-{uuid.uuid4().hex[:6]}", flow=Flow.GREETING_SAY, greeting_text="Hello!", window="any")
    contacts = [Contact(f"c{i}", f"+9196{i:08d}") for i in range(int(rate * seconds))]
    store.create_campaign(campaign, contacts)
    offered = _offer(stack.settings, stack.sandbox_url, campaign, contacts, rate, stack.settings.event_endpoint)
    dispatch = offered["dispatch_latency_ms"]
    return {
        "calls_per_s": rate,
        "calls": offered["calls"],
        "dispatch_p50_ms": dispatch["p50"],
        "dispatch_p99_ms": dispatch["p99"],
        "invariants_ok": offered["invariants_ok"],
    }


def _within(step: dict[str, Any], target_p99_ms: float) -> bool:
    p99 = step["dispatch_p99_ms"]
    return p99 is not None and p99 <= target_p99_ms and step["invariants_ok"]


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
