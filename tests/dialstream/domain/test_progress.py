"""Why a campaign is not dialling, from its facts: the calling window, caps, budget, no dialer, API errors."""

from __future__ import annotations

from dialstream.domain.call_timeline import call_timeline, histogram
from dialstream.domain.progress import DialFacts, waiting_for

NOW = 1_780_480_800.0  # 2026-06-03 10:00 UTC


def test_a_running_campaign_names_each_thing_it_waits_for():
    """Nothing due yet (window), a full campaign cap, a full account cap, a spent budget, no dialer and a recent API error each give a reason."""
    assert waiting_for(DialFacts("running", NOW, pending=3, next_due=NOW + 3600, window="09:00-20:00")) == (
        "no contact is due before 2026-06-03 11:00:00 UTC (outside the calling window '09:00-20:00')",
    )
    blocked = DialFacts(
        "running", NOW, pending=5, due_now=5, in_flight=4, max_concurrent=4, account_calls=8, max_calls=8,
        api_used=190, dial_limit=190, dialer_running=False, last_error="503 from create_leg", last_error_at=NOW - 5,
    )  # fmt: skip
    reasons = waiting_for(blocked)
    assert len(reasons) == 5 and reasons[0].startswith("no dial worker is running")
    assert "campaign's cap of 4" in reasons[1] and "account's cap of 8" in reasons[2] and "budget" in reasons[3]
    assert reasons[4] == "the Legs API failed a dial 5s ago: 503 from create_leg"
    assert waiting_for(DialFacts("running", NOW, pending=5, due_now=5, last_error="old", last_error_at=NOW - 600)) == ()
    assert waiting_for(DialFacts("paused", NOW)) == ("the campaign is paused: resume it to dial",)
    assert waiting_for(DialFacts("done", NOW)) == ()


def test_a_calls_timeline_is_its_marks_in_time_order_and_latencies_fall_in_buckets():
    """Marks come out sorted with their names; first audio is the greeting's start; values land in [edge, next edge)."""
    record = {"contact_id": "r2", "leg_sid": "L", "connecting_at": 10.0, "ringing_at": 10.2, "answered_at": 11.0,
              "greeting_started_at": 11.08, "stream_started_at": 11.3, "greeting_stopped_at": 11.35, "ended_at": 20.0}  # fmt: skip
    timeline = call_timeline(record)
    assert [m["name"] for m in timeline["marks"]] == ["dialled", "ringing", "answered", "greeting on", "stream started", "greeting off", "ended"]
    assert timeline["answered_to_first_audio_ms"] == 80.0
    buckets = histogram([0, 99, 100, 250, 9000], edges=(0, 100, 200))
    assert [b["count"] for b in buckets] == [2, 1, 2] and buckets[-1]["to"] is None
