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
