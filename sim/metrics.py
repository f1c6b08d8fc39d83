"""``GET /metrics``: the sandbox's timeline figures in Prometheus form.

Computed from the call reports at scrape time (like ``/sim/v1/summary``), so they always
agree with the JSON reports and start again from zero after ``POST /sim/v1/reset``:

- ``dialstream_sim_<figure>_seconds``: a histogram per timeline figure
  (``sim.timeline.FIGURES``: dispatch latency, dead air, overlap, ...) over every call
  where it applies, plus ``dialstream_sim_event_delivery_latency_seconds``;
- ``dialstream_sim_calls{outcome}``, ``dialstream_sim_calls_live``;
- ``dialstream_sim_invariant_breaches{invariant}``: calls that broke each invariant;
- ``dialstream_sim_warnings{warning}``: calls with each warning (short chunks...);
- ``dialstream_sim_events{state}``: emitted events by delivered/undelivered/pending.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

from sim.account import Account
from sim.leg import INVARIANTS, WARNINGS
from sim.timeline import FIGURES

__all__ = ["BUCKETS", "sandbox_registry"]

# Seconds; 0.015 is the dispatch-latency target of the scaling benchmark.
BUCKETS = (0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def sandbox_registry(account: Account) -> CollectorRegistry:
    """A registry whose only collector reads ``account``'s call reports."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SandboxCollector(account))
    return registry


class _SandboxCollector:
    def __init__(self, account: Account) -> None:
        self._account = account

    def collect(self) -> Iterator[Metric]:
        calls = self._account.reports()
        for figure in FIGURES:
            values = [c["figures"][figure] for c in calls if c["figures"][figure] is not None]
            yield _histogram(
                f"dialstream_sim_{figure.removesuffix('_ms')}_seconds", f"Timeline figure {figure}.", values
            )
        events = [e for c in calls for e in c["events"]]
        delivery = [e["latency_ms"] for e in events if e["delivered"]]
        yield _histogram("dialstream_sim_event_delivery_latency_seconds", "Event emitted -> acknowledged.", delivery)

        outcomes = GaugeMetricFamily(
            "dialstream_sim_calls", "Calls in the sandbox's records, by outcome.", labels=["outcome"]
        )
        for outcome, count in sorted(Counter(c["outcome"] for c in calls).items()):
            outcomes.add_metric([outcome], count)
        yield outcomes
        yield GaugeMetricFamily(
            "dialstream_sim_calls_live", "Calls not yet ended.", value=sum(c["state"] != "terminal" for c in calls)
        )
        breaches = GaugeMetricFamily(
            "dialstream_sim_invariant_breaches", "Calls that broke each invariant.", labels=["invariant"]
        )
        for name in INVARIANTS:
            breaches.add_metric([name], sum(name in c["invariants"] for c in calls))
        yield breaches
        cautions = GaugeMetricFamily(
            "dialstream_sim_warnings", "Calls with each warning (tolerated, as Exotel does).", labels=["warning"]
        )
        for name in WARNINGS:
            cautions.add_metric([name], sum(name in c["warnings"] for c in calls))
        yield cautions
        states = GaugeMetricFamily("dialstream_sim_events", "Emitted leg events by delivery state.", labels=["state"])
        for state, delivered in (("delivered", True), ("undelivered", False), ("pending", None)):
            states.add_metric([state], sum(e["delivered"] is delivered for e in events))
        yield states


def _histogram(name: str, documentation: str, values_ms: Iterable[float]) -> HistogramMetricFamily:
    seconds = sorted(v / 1000.0 for v in values_ms)
    family = HistogramMetricFamily(name, documentation)
    family.add_metric([], _cumulative(seconds, BUCKETS), sum(seconds))
    return family


def _cumulative(ordered: Sequence[float], bounds: Sequence[float]) -> list[tuple[str, float]]:
    counts, index = [], 0
    for bound in bounds:
        while index < len(ordered) and ordered[index] <= bound:
            index += 1
        counts.append((str(bound), float(index)))
    return [*counts, ("+Inf", float(len(ordered)))]
