"""``GET /sim/v1/summary``: outcome counts, percentiles of every figure, invariant checks.

Pure: works on the call reports of ``GET /sim/v1/calls`` (see ``sim.leg.Leg.report``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from dialstream.domain.report import percentile
from sim.leg import INVARIANTS, WARNINGS
from sim.timeline import FIGURES

__all__ = ["summarize", "figure_stats"]


def figure_stats(values: Iterable[float]) -> dict[str, float | int | None]:
    """count, p50, p95, p99 (nearest rank, :func:`dialstream.domain.report.percentile`), max and mean, in ms to 3 places."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    ranks = {f"p{q}": round(percentile(ordered, q), 3) for q in (50, 95, 99)}  # type: ignore[arg-type]
    return {"count": len(ordered), **ranks, "max": round(ordered[-1], 3), "mean": round(sum(ordered) / len(ordered), 3)}


def summarize(calls: list[Mapping[str, Any]], *, seed: int) -> dict[str, Any]:
    """The summary of ``calls`` (call reports, each with its broken ``invariants``)."""
    ended = [c for c in calls if c["state"] == "terminal"]
    figures = {
        name: figure_stats(c["figures"][name] for c in calls if c["figures"][name] is not None) for name in FIGURES
    }
    for name in sorted({name for c in calls for name in c["action_latency_ms"]}):
        figures[f"action_latency_ms.{name}"] = figure_stats(
            c["action_latency_ms"][name] for c in calls if name in c["action_latency_ms"]
        )
    events = [e for c in calls for e in c["events"]]
    figures["event_delivery_latency_ms"] = figure_stats(e["latency_ms"] for e in events if e["delivered"])
    invariants: dict[str, Any] = {
        name: [c["leg_sid"] for c in calls if name in c["invariants"]] for name in INVARIANTS
    }
    invariants["chunk_violations"] = {c["leg_sid"]: c["chunk_violations"] for c in calls if c["chunk_violations"]}
    invariants["undelivered_events"] = [e["event_sid"] for e in events if e["delivered"] is False]
    warnings: dict[str, Any] = {name: [c["leg_sid"] for c in calls if name in c["warnings"]] for name in WARNINGS}
    warnings["chunk_warnings"] = {c["leg_sid"]: c["chunk_warnings"] for c in calls if c["chunk_warnings"]}
    return {
        "seed": seed,
        "calls": len(calls),
        "live": len(calls) - len(ended),
        "answered": sum(1 for c in calls if c["timeline"]["answered"] is not None),
        "outcomes": dict(Counter(c["outcome"] for c in calls)),
        "exophones": dict(Counter(c["exophone"] for c in calls)),  # calls per caller ID
        "events": {
            "emitted": len(events),
            "delivered": sum(1 for e in events if e["delivered"]),
            "undelivered": len(invariants["undelivered_events"]),
            "pending": sum(1 for e in events if e["delivered"] is None),
            "retried": sum(1 for e in events if e["attempts"] > 1),
            "duplicated": sum(1 for e in events if e["deliveries"] > 1),
        },
        "figures": figures,
        "invariants": invariants,
        "warnings": warnings,  # reported, never a reason for ok to be false
        "ok": not any(invariants.values()),
    }
