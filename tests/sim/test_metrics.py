"""The sandbox's GET /metrics: its timeline figures as Prometheus histograms, matching /sim/v1/summary."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from sim.metrics import _cumulative
from tests.sim.harness import Bot, async_test, harness, serve_bot


def test_buckets_are_cumulative_and_end_with_the_total():
    """Each bucket counts the values at or below its bound; +Inf counts them all."""
    assert _cumulative([0.004, 0.012, 0.5], (0.005, 0.015, 0.1)) == [
        ("0.005", 1.0),
        ("0.015", 2.0),
        ("0.1", 2.0),
        ("+Inf", 3.0),
    ]


@async_test
async def test_metrics_page_reports_the_calls_like_the_summary() -> None:
    """Answered calls given a stream and hung up: /metrics counts them as /sim/v1/summary does."""
    async with harness() as h, serve_bot(Bot()) as bot:
        for number in ("+919800000001", "+919800000002"):
            leg_sid = await h.answered_leg(number)
            await h.start_stream(leg_sid, bot.url)
            await h.hang_up(leg_sid)
        summary = await h.summary()
        async with h.http.get("/metrics") as response:
            assert response.status == 200
            text = await response.text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    assert (
        samples[("dialstream_sim_dispatch_latency_seconds_count", ())]
        == summary["figures"]["dispatch_latency_ms"]["count"]
        == 2
    )
    assert samples[("dialstream_sim_calls_live", ())] == summary["live"] == 0
    assert samples[("dialstream_sim_calls", (("outcome", "completed"),))] == 2
    assert samples[("dialstream_sim_invariant_breaches", (("invariant", "multiple_streams"),))] == 0
