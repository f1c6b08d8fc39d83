"""Dispatch latency and what the callee hears, through the whole system, against an inline baseline.

Calls are offered to the sandbox at a fixed rate (every callee answers), and their events
flow through the real ingress, broker and Celery workers to real bots. The sandbox measures
every call: dispatch latency (``leg_answered`` emitted -> ``start_stream`` received),
answer -> first audio, dead air, greeting/bot overlap. The same calls are then offered with
the inline baseline (``bench.inline``: the Legs API called straight from the event handler)
as the leg event endpoint, so the cost of the queue is a ratio measured in the same run.

The bench is the dialer here (it creates legs through the Legs API itself) so that the
figures are those of the event path alone, whatever the campaign engine's pacing does.

What a call costs: over each run the bench reads the CPU time (``/proc/<pid>/stat``, utime +
stime) of the event path's processes (the ingress, the ``events`` workers and Redis) and
Redis's command counts, per answered call; and, to tell a slow event path from a saturated
machine, the sandbox's and bots' CPU per call and the share of the machine's CPUs busy. The same scenario is then run against
``BASELINE``, the commit before the overload work (issue 15), checked out under the temp
directory with its protos generated, so ``cpu_ratio_vs_baseline`` compares two codes on the
same machine in the same run. The baseline runs this very file in a child process whose
imports resolve to that checkout (``PYTHONPATH``): this file uses only APIs the baseline has.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
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
# The commit before the overload work: the event path's CPU per call is compared with it.
BASELINE = "79bf91c7a7053d19f9538a49993575a3a1adf3ef"
REPO = Path(__file__).resolve().parents[1]
FIGURES = ("dispatch_latency_ms", "answer_to_first_audio_ms", "dead_air_ms", "overlap_ms", "event_delivery_latency_ms")


def run(
    *,
    rates: tuple[float, ...] = (10.0, 50.0),
    duration: float = 6.0,
    flows: tuple[str, ...] = ("bot_first", "greeting_say"),
    events_workers: int = 2,
    baseline: str | None = BASELINE,
) -> dict[str, Any]:
    """Offer each of ``rates`` answered calls/s for ``duration`` s per flow, through dialstream
    and the inline baseline; then the same through the code of commit ``baseline`` (None: not).

    50/s is the target load; 10/s shows the cost of the queue where the machine is not the limit.
    """
    results = measure(rates=rates, duration=duration, flows=flows, events_workers=events_workers, inline=True)
    if baseline:
        before = _measure_at(baseline, rates=rates, duration=duration, flows=flows, events_workers=events_workers)
        results["baseline"] = {"commit": baseline, "rates": before["rates"]}
        for rate, at_rate in results["rates"].items():
            for flow, entry in at_rate.items():
                ours, theirs = entry["dialstream"], before["rates"][rate][flow]["dialstream"]
                cpu = "cpu_ms_per_answered_call"
                entry["cpu_ratio_vs_baseline"] = _ratio(ours[cpu], theirs[cpu])
                entry["tasks_per_call_baseline"] = theirs["tasks_per_call"]
    return results


def measure(
    *, rates: tuple[float, ...], duration: float, flows: tuple[str, ...], events_workers: int, inline: bool
) -> dict[str, Any]:
    """The runs of :func:`run` through the code this process imports (``inline``: and the inline baseline's)."""
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
        names = ["ingress", *(f"events-{i}" for i in range(events_workers))]
        others = ["sandbox", *(f"bot-{i}" for i in range(2))]
        meter = _EventPathMeter(
            client,
            {name: pid for name in names if (pid := supervisor.pid(name)) is not None},
            {name: pid for name in others if (pid := supervisor.pid(name)) is not None},
        )
        say_start_ms = 80.0  # sim.config.Timing.say_start_ms, the scenario keeps the default
        # Warm-up, not measured: the workers' clients and imports are made on first use.
        warm = CampaignConfig(f"warm-{uuid.uuid4().hex[:6]}", flow=Flow(flows[0]), greeting_text="Hello!", window="any")
        warm_contacts = [Contact(f"w{i}", f"+9196{i:08d}") for i in range(10)]
        store.create_campaign(warm, warm_contacts)
        _offer(stack.settings, stack.sandbox_url, warm, warm_contacts, 5.0, stack.settings.event_endpoint)
        for rate in rates:
            at_rate: dict[str, Any] = {}
            for flow in flows:
                campaign = CampaignConfig(f"bench-{uuid.uuid4().hex[:6]}", flow=Flow(flow), greeting_text="Hello!", window="any")
                count = int(rate * duration)
                contacts = [Contact(f"c{i}", f"+9197{i:08d}") for i in range(count)]
                store.create_campaign(campaign, contacts)
                offer = functools.partial(_offer, stack.settings, stack.sandbox_url, campaign, contacts, rate)
                queued = meter.around(functools.partial(offer, stack.settings.event_endpoint))
                entry: dict[str, Any] = {"dialstream": queued}
                if inline:
                    entry["inline"] = _offer_inline(supervisor, stack, flow, campaign, contacts, rate)
                    q50, b50 = queued["dispatch_latency_ms"]["p50"], entry["inline"]["dispatch_latency_ms"]["p50"]
                    entry["dispatch_p50_ratio"] = _ratio(q50, b50)
                    if flow == "greeting_say":
                        entry["say_start_ms"] = say_start_ms
                at_rate[flow] = entry
            results["rates"][f"{rate:g}"] = at_rate
        client.close()
    return results


def _offer_inline(
    supervisor: Supervisor, stack: Any, flow: str, campaign: CampaignConfig, contacts: list[Contact], rate: float
) -> dict[str, Any]:
    """The same calls with ``bench.inline`` as the leg event endpoint."""
    inline_port = free_port()
    name = f"inline-{flow}"
    argv = Supervisor.python("-m", "bench.inline", f"127.0.0.1:{inline_port}", flow, stack.bot_urls[0])
    supervisor.start(ProcessSpec(name, argv, stack.settings.to_env(), ready_port=inline_port))
    supervisor.wait_ready()
    try:
        return _offer(stack.settings, stack.sandbox_url, campaign, contacts, rate, f"grpc://127.0.0.1:{inline_port}")
    finally:
        supervisor.stop(name)


class _EventPathMeter:
    """CPU time of the event path's processes (and Redis's) and Redis's command counts over a
    run; and, to show how busy the machine was, the CPU of the rest of the stack (``others``:
    the sandbox and the bots) and the share of all CPUs busy (``/proc/stat``)."""

    def __init__(self, client: Any, pids: dict[str, int], others: dict[str, int]) -> None:
        self.client = client
        self.pids = {**pids, "redis": int(client.info("server")["process_id"])}
        self.others = others

    def around(self, offer: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run ``offer`` and add to its figures what its answered calls cost the event path."""
        cpu, commands, machine = self._cpu(self.pids), self._commands(), _busy_ticks()
        elsewhere = self._cpu(self.others)
        figures = offer()
        after, commands = self._cpu(self.pids), {name: n - commands.get(name, 0) for name, n in self._commands().items()}
        (busy, total), (busy_before, total_before) = _busy_ticks(), machine
        answered = figures["answered"] or 1
        spent = {name: (after[name] - cpu[name]) * 1000 / answered for name in after}
        figures["cpu_ms_per_answered_call"] = round(sum(spent.values()), 2)
        figures["cpu_ms_per_answered_call_by_process"] = {name: round(ms, 2) for name, ms in spent.items()}
        outside = self._cpu(self.others)
        figures["cpu_ms_per_answered_call_elsewhere"] = {
            name: round((outside[name] - elsewhere[name]) * 1000 / answered, 2) for name in outside
        }
        # From the first call offered until the last ended: how much of the machine was busy.
        figures["machine_busy_share"] = round((busy - busy_before) / max(1, total - total_before), 3)
        figures["redis_commands_per_answered_call"] = round(sum(commands.values()) / answered, 1)
        # Every task is one LPUSH onto a queue (kombu's publish; the ingress's accept script).
        figures["tasks_per_call"] = round(commands.get("lpush", 0) / answered, 2)
        return figures

    @staticmethod
    def _cpu(pids: dict[str, int]) -> dict[str, float]:
        """CPU seconds each process has used so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        used = {}
        for name, pid in pids.items():
            # Fields after the command's ")": state is the 3rd field of the line, utime the 14th.
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            used[name] = (int(fields[11]) + int(fields[12])) / ticks
        return used

    def _commands(self) -> dict[str, int]:
        stats = self.client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(stat["calls"]) for name, stat in stats.items()}


def _busy_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far: /proc/stat's first line, idle and iowait not busy."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


def _measure_at(commit: str, **kwargs: Any) -> dict[str, Any]:
    """:func:`measure` through the code of ``commit`` (no inline runs): this file, run in a child
    process whose imports resolve to a checkout of that commit."""
    root = _checkout(commit)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = [sys.executable, __file__, "--json-out", out.name, "--duration", str(kwargs["duration"])]
        argv += ["--events-workers", str(kwargs["events_workers"]), "--rates", *map(str, kwargs["rates"])]
        argv += ["--flows", *kwargs["flows"]]
        subprocess.run(argv, cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, check=True)
        return json.loads(Path(out.name).read_text())


def _checkout(commit: str) -> Path:
    """A copy of ``commit``'s tree under the temp directory, its protos generated (kept for the next run)."""
    root = Path(tempfile.gettempdir()) / f"dialstream-baseline-{commit[:12]}"
    if not (root / ".complete").exists():
        root.mkdir(exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        protos = [str(p.relative_to(root)) for p in root.glob("protos/**/*.proto")]
        protoc = ["-m", "grpc_tools.protoc", "-I", ".", "--python_out=.", "--pyi_out=.", "--grpc_python_out=."]
        subprocess.run([sys.executable, *protoc, *protos], cwd=root, check=True)
        (root / ".complete").touch()
    return root


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return round(ours / theirs, 2) if ours and theirs else None


def _offer(
    settings: Settings, sandbox: str, campaign: CampaignConfig, contacts: list[Contact], rate: float, endpoint: str
) -> dict[str, Any]:
    """Create one leg per contact at ``rate``/s with events to ``endpoint``; the sandbox's figures once all ended."""
    httpx.post(f"{sandbox}/sim/v1/reset", timeout=10).raise_for_status()
    started = time.monotonic()
    # Signed as the dialer signs them: the ingress drops events of legs with a tag it cannot verify.
    redis_client = connect(settings.redis_url)
    secret = shared_secret(redis_client, "tags", settings.tag_secret)
    redis_client.close()
    asyncio.run(_create_legs(settings, campaign, contacts, rate, endpoint, secret))
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


async def _create_legs(
    settings: Settings, campaign: CampaignConfig, contacts: list[Contact], rate: float, endpoint: str, secret: bytes
) -> None:
    async with httpx.AsyncClient(
        base_url=settings.legs_base_url, auth=(settings.api_key, settings.api_token), timeout=10
    ) as client:
        start = time.monotonic()
        pending = []
        for index, contact in enumerate(contacts):
            await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
            body = {
                "contact_uri": contact.phone,
                "exophone": settings.exophone,
                "leg_event_endpoint": endpoint,
                "custom_param": LegTag(campaign.campaign_id, contact.contact_id).encode(secret),
            }
            pending.append(asyncio.create_task(client.post("/legs", json=body)))
        for response in await asyncio.gather(*pending):
            response.raise_for_status()


def _stats(figure: dict[str, Any]) -> dict[str, Any]:
    return {key: figure.get(key) for key in ("count", "p50", "p95", "p99", "max")}


def main(argv: list[str] | None = None) -> int:
    """Run :func:`measure` (no inline runs), its figures to ``--json-out``: how :func:`run` measures a baseline."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--json-out", required=True)
    parser.add_argument("--rates", type=float, nargs="+", default=[10.0, 50.0])
    parser.add_argument("--flows", nargs="+", default=["bot_first", "greeting_say"])
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--events-workers", type=int, default=2)
    args = parser.parse_args(argv)
    rates, flows, workers = tuple(args.rates), tuple(args.flows), args.events_workers
    figures = measure(rates=rates, duration=args.duration, flows=flows, events_workers=workers, inline=False)
    Path(args.json_out).write_text(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
