"""The dispatch bench measures real calls: every call it offers reaches a bot, through
dialstream and through the inline baseline alike (a bench whose events the ingress drops
as forged would print empty figures and call them a result)."""

from __future__ import annotations

import pytest

from bench.dispatch import run

pytestmark = pytest.mark.e2e


def test_every_call_the_dispatch_bench_offers_is_dispatched_on_both_paths():
    """A few calls at a low rate: both paths keep every invariant and time every dispatch."""
    result = run(rates=(4.0,), duration=2.0, flows=("bot_first",), events_workers=1, baseline=None)
    entry = result["rates"]["4"]["bot_first"]
    for path in ("dialstream", "inline"):
        figures = entry[path]
        assert figures["invariants_ok"], (path, figures["broken_invariants"])
        assert figures["answered"] == figures["calls"] == 8
        assert figures["dispatch_latency_ms"]["count"] == 8, path
    assert entry["dispatch_p50_ratio"] is not None
    # What a call costs is measured, not printed empty: CPU of every process, tasks, how busy the machine was.
    ours = entry["dialstream"]
    assert ours["cpu_ms_per_answered_call"] > 0 and set(ours["cpu_ms_per_answered_call_by_process"]) == {"ingress", "events-0", "redis"}
    assert set(ours["cpu_ms_per_answered_call_elsewhere"]) == {"sandbox", "bot-0", "bot-1"}
    assert 0 < ours["machine_busy_share"] <= 1 and ours["tasks_per_call"] >= 1
