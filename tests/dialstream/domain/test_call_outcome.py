"""Dispositions and callback requests a bot reports, and when a callback is dialled (pure)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dialstream.domain.call_outcome import CallbackRequest, Disposition, told
from dialstream.domain.campaign import CampaignConfig
from dialstream.domain.dialing import callback_dial
from dialstream.domain.windows import moment_in_zone

NOW = datetime(2026, 6, 3, 10, 0, tzinfo=timezone.utc).timestamp()  # 15:30 in Kolkata, 06:00 in New York


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_a_disposition_has_a_clean_code_and_small_json_data():
    """Codes are lower-cased and checked; data must be JSON and short; the JSON form round-trips."""
    disposition = Disposition.create("Promise_To_Pay", {"amount": 500, "by": "2026-06-10"}, now=NOW)
    assert (disposition.code, dict(disposition.data)) == ("promise_to_pay", {"amount": 500, "by": "2026-06-10"})
    assert Disposition.from_json(disposition.to_json()) == disposition
    for code, data, message in (
        ("", {}, "disposition code"),
        ("not ok", {}, "disposition code"),
        ("ok", {"when": datetime.now()}, "JSON values"),
        ("ok", {"notes": "x" * 3000}, "at most 2000"),
    ):
        with pytest.raises(ValueError, match=message):
            Disposition.create(code, data, now=NOW)


def test_a_callback_is_an_instant_or_the_callees_wall_clock():
    """With an offset the time is that instant; without one it is read in the callee's zone."""
    instant = CallbackRequest.create("2026-06-03T17:00:00+05:30", now=NOW)
    assert instant.due("America/New_York") == at("2026-06-03T11:30:00+00:00")
    local = CallbackRequest.create(datetime(2026, 6, 3, 17, 0), now=NOW, note="after work")
    assert local.at == "2026-06-03T17:00:00" and local.note == "after work"
    assert local.due("Asia/Kolkata") == at("2026-06-03T17:00:00+05:30")
    assert local.due("America/New_York") == at("2026-06-03T17:00:00-04:00")
    assert CallbackRequest.create(NOW + 3600, now=NOW).due("Asia/Kolkata") == NOW + 3600
    assert CallbackRequest.from_json(local.to_json()) == local


def test_a_callback_in_the_past_far_away_or_not_a_time_is_refused():
    """ValueError says why: not ISO 8601, already past, more than 60 days ahead."""
    for when, message in (("tomorrow at five", "ISO 8601"), ("2026-06-03T09:00:00Z", "in the past"), ("2026-12-01T10:00", "60 days")):
        with pytest.raises(ValueError, match=message):
            CallbackRequest.create(when, now=NOW)


def test_a_wall_clock_time_that_a_clock_change_skips_still_has_an_instant():
    """02:30 on the US spring-forward day is read by zoneinfo as 02:30 EST, i.e. 03:30 EDT."""
    assert moment_in_zone("2026-03-08T02:30", "America/New_York").timestamp() == at("2026-03-08T07:30:00+00:00")


def test_a_callback_is_dialled_at_its_time_inside_the_callees_window():
    """17:00 local is dialled at 17:00; 22:30 local waits for 09:00 the next day; a time already past is dialled now."""
    campaign = CampaignConfig("c")  # the default safe hours, 09:00-21:00
    assert callback_dial(campaign, at("2026-06-03T17:00:00+05:30"), "Asia/Kolkata", NOW) == at("2026-06-03T17:00:00+05:30")
    assert callback_dial(campaign, at("2026-06-03T22:30:00-04:00"), "America/New_York", NOW) == at("2026-06-04T09:00:00-04:00")
    assert callback_dial(campaign, NOW - 600, "Asia/Kolkata", NOW) == NOW
    assert callback_dial(campaign, NOW - 600, "America/New_York", NOW) == at("2026-06-03T09:00:00-04:00")  # 06:00 there now
    assert callback_dial(CampaignConfig("any", window="any"), at("2026-06-03T23:30:00-04:00"), "America/New_York", NOW) == at(
        "2026-06-03T23:30:00-04:00"
    )


def test_what_the_bot_told_becomes_fields_of_the_call_record():
    """The disposition's code and data and the callback time as asked; empty fields when the bot told nothing."""
    fields = told(Disposition.create("interested", {"choice": "sales"}, now=NOW), CallbackRequest.create("2026-06-03T17:00", now=NOW))
    assert fields == {"disposition": "interested", "disposition_data": {"choice": "sales"}, "callback_at": "2026-06-03T17:00"}
    assert told() == {"disposition": "", "disposition_data": {}, "callback_at": ""}
