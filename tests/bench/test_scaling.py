"""The scaling bench steps one stack through rates and reports each step's dispatch figures."""

from __future__ import annotations

import pytest

from bench.scaling import run

pytestmark = pytest.mark.e2e


def test_a_scaling_step_dispatches_every_call_it_offers():
    """One events worker, one low rate: the step counts every call and keeps every invariant."""
    result = run(workers=(1,), rates=(4.0,), seconds=2.0)
    (step,) = result["events_workers"]["1"]["steps"]
    assert step["calls"] == 8
    assert step["invariants_ok"]
    assert step["dispatch_p99_ms"] is not None
