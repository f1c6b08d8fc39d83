"""Calling windows in the callee's local time: grammar, zones, midnight and daylight saving."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dialstream.domain.campaign import CampaignConfig
from dialstream.domain.windows import ANY_TIME, SAFE_HOURS, CallingWindow, TimeRange, local_iso
from dialstream.errors import ConfigurationError

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    "text, days, ranges",
    [
        ("09:00-20:00", set(range(7)), [TimeRange(540, 1200)]),
        ("mon-fri 9:00-13:00, 14:00-20:00", {0, 1, 2, 3, 4}, [TimeRange(540, 780), TimeRange(840, 1200)]),
        ("SAT,SUN 10:00-14:00", {5, 6}, [TimeRange(600, 840)]),
        ("fri-mon 22:00-02:00", {4, 5, 6, 0}, [TimeRange(1320, 120)]),
        ("00:00-24:00", set(range(7)), [TimeRange(0, 1440)]),
        ("20:00-00:00", set(range(7)), [TimeRange(1200, 1440)]),
    ],
)
def test_the_grammar_reads_days_and_ranges(text, days, ranges):
    """Rules name optional days (lists and wrapping ranges) and one or more HH:MM-HH:MM ranges."""
    (rule,) = CallingWindow.parse(text).rules
    assert set(rule.days) == days and list(rule.ranges) == ranges


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty rule"),
        ("mon-fri 09:00-20:00;", "empty rule"),
        ("9-5", "not a time range"),
        ("monday 09:00-17:00", "not a list of days"),
        ("mon-fry 09:00-17:00", "unknown day"),
        ("mon-fri", "no time range"),
        ("25:00-26:00", "starts between"),
        ("09:00-24:30", "ends between"),
        ("09:00-09:00", "empty or ambiguous"),
    ],
)
def test_bad_windows_are_refused_with_the_reason(text, message):
    """A window that does not follow the grammar raises ConfigurationError saying what is wrong."""
    with pytest.raises(ConfigurationError, match=message):
        CallingWindow.parse(text)


def test_inside_the_window_the_answer_is_now():
    """During the window (10:00 in Kolkata is 04:30 UTC) a call is allowed at once."""
    window = CallingWindow.parse("09:00-20:00")
    now = utc(2026, 3, 2, 4, 30)
    assert window.next_allowed(now, "Asia/Kolkata") == now
    assert window.is_open(now, "Asia/Kolkata")
    assert window.closes_at(now, "Asia/Kolkata") == utc(2026, 3, 2, 14, 30)


def test_before_and_after_the_window_the_next_opening_is_given_in_utc():
    """Early morning waits for 09:00 local today; late evening waits for 09:00 local tomorrow."""
    window = CallingWindow.parse("09:00-20:00")
    early = window.next_allowed(utc(2026, 3, 2, 0, 0), "Asia/Kolkata")  # 05:30 IST
    late = window.next_allowed(utc(2026, 3, 2, 15, 0), "Asia/Kolkata")  # 20:30 IST
    assert early == utc(2026, 3, 2, 3, 30) and early.tzinfo is UTC
    assert late == utc(2026, 3, 3, 3, 30)
    assert window.closes_at(utc(2026, 3, 2, 15, 0), "Asia/Kolkata") is None


def test_the_end_of_a_range_is_exclusive():
    """At exactly 20:00 local the window is closed; a second earlier it is open."""
    window = CallingWindow.parse("09:00-20:00")
    assert not window.is_open(utc(2026, 3, 2, 14, 30), "Asia/Kolkata")
    assert window.is_open(utc(2026, 3, 2, 14, 29, 59), "Asia/Kolkata")


def test_weekdays_skip_the_weekend():
    """A Friday-evening call in a Mon-Fri window waits for Monday 09:00 local."""
    window = CallingWindow.parse("mon-fri 09:00-20:00")
    friday_evening = utc(2026, 3, 6, 15, 0)  # Fri 20:30 IST
    assert window.next_allowed(friday_evening, "Asia/Kolkata") == utc(2026, 3, 9, 3, 30)


def test_several_ranges_and_rules_pick_the_nearest_opening():
    """A lunch break and a different Saturday rule are both honoured."""
    window = CallingWindow.parse("mon-fri 09:00-13:00,14:00-20:00; sat 10:00-14:00")
    lunch = utc(2026, 3, 2, 8, 0)  # Mon 13:30 IST
    assert window.next_allowed(lunch, "Asia/Kolkata") == utc(2026, 3, 2, 8, 30)
    friday_night = utc(2026, 3, 6, 16, 0)  # Fri 21:30 IST
    assert window.next_allowed(friday_night, "Asia/Kolkata") == utc(2026, 3, 7, 4, 30)  # Sat 10:00 IST


def test_a_window_crossing_midnight_is_open_on_both_sides():
    """22:00-02:00 is open at 01:00 (from the day before) and reopens at 22:00."""
    window = CallingWindow.parse("22:00-02:00")
    one_am = utc(2026, 3, 2, 19, 30)  # Tue 01:00 IST
    assert window.is_open(one_am, "Asia/Kolkata")
    assert window.closes_at(one_am, "Asia/Kolkata") == utc(2026, 3, 2, 20, 30)
    three_am = utc(2026, 3, 2, 21, 30)  # Tue 03:00 IST
    assert window.next_allowed(three_am, "Asia/Kolkata") == utc(2026, 3, 3, 16, 30)  # Tue 22:00 IST


def test_a_days_rule_crossing_midnight_belongs_to_the_day_it_opens():
    """fri 22:00-02:00 covers Saturday 01:00 but not Saturday 23:00."""
    window = CallingWindow.parse("fri 22:00-02:00")
    assert window.is_open(utc(2026, 3, 6, 19, 30), "Asia/Kolkata")  # Sat 01:00 IST
    assert window.next_allowed(utc(2026, 3, 7, 17, 30), "Asia/Kolkata") == utc(2026, 3, 13, 16, 30)  # next Fri 22:00


def test_new_york_opens_an_hour_earlier_in_utc_after_spring_forward():
    """09:00 New York is 14:00 UTC on Saturday (EST) and 13:00 UTC on Sunday, the DST start (EDT)."""
    window = CallingWindow.parse("09:00-20:00")
    saturday_night = utc(2026, 3, 8, 2, 0)  # Sat 21:00 EST
    assert window.next_allowed(utc(2026, 3, 7, 5, 0), "America/New_York") == utc(2026, 3, 7, 14, 0)
    assert window.next_allowed(saturday_night, "America/New_York") == utc(2026, 3, 8, 13, 0)


def test_an_opening_time_skipped_by_spring_forward_opens_when_the_clocks_land():
    """02:30 does not exist in New York on 8 March 2026: the window opens at 03:00 EDT (07:00 UTC)."""
    window = CallingWindow.parse("02:30-05:00")
    assert window.next_allowed(utc(2026, 3, 8, 5, 0), "America/New_York") == utc(2026, 3, 8, 7, 0)
    assert window.closes_at(utc(2026, 3, 8, 7, 0), "America/New_York") == utc(2026, 3, 8, 9, 0)


def test_a_repeated_hour_at_fall_back_opens_at_its_first_occurrence_and_stays_open():
    """01:30 happens twice on 1 November 2026 in New York: the window opens at the first and does not shut at the second."""
    window = CallingWindow.parse("01:30-20:00")
    assert window.next_allowed(utc(2026, 11, 1, 4, 0), "America/New_York") == utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    second_one_fifteen = utc(2026, 11, 1, 6, 15)  # 01:15 EST, after the clocks went back
    assert window.is_open(second_one_fifteen, "America/New_York")
    assert window.closes_at(second_one_fifteen, "America/New_York") == utc(2026, 11, 2, 1, 0)  # 20:00 EST


def test_sydney_windows_follow_its_october_dst_start():
    """09:00 Sydney is 23:00 UTC the day before under AEST and 22:00 UTC once AEDT starts (4 October 2026)."""
    window = CallingWindow.parse("09:00-20:00")
    saturday_evening = utc(2026, 10, 3, 10, 0)  # Sat 20:00 AEST: just closed
    assert not window.is_open(saturday_evening, "Australia/Sydney")
    assert window.next_allowed(saturday_evening, "Australia/Sydney") == utc(2026, 10, 3, 22, 0)
    assert window.next_allowed(utc(2026, 10, 2, 12, 0), "Australia/Sydney") == utc(2026, 10, 2, 23, 0)


def test_the_same_instant_is_open_in_one_zone_and_closed_in_another():
    """04:30 UTC is 10:00 in Kolkata but 23:30 the evening before in New York."""
    window = CallingWindow.parse("09:00-20:00")
    now = utc(2026, 3, 2, 4, 30)
    assert window.is_open(now, "Asia/Kolkata")
    assert window.next_allowed(now, "America/New_York") == utc(2026, 3, 2, 14, 0)


def test_non_utc_aware_input_is_accepted_and_naive_input_refused():
    """An aware datetime in any zone is converted; a naive one raises rather than guess its zone."""
    window = CallingWindow.parse("09:00-20:00")
    ist = timezone(timedelta(hours=5, minutes=30))
    assert window.next_allowed(datetime(2026, 3, 2, 5, 30, tzinfo=ist), "Asia/Kolkata") == utc(2026, 3, 2, 3, 30)
    with pytest.raises(ValueError, match="no time zone"):
        window.next_allowed(datetime(2026, 3, 2, 5, 30), "Asia/Kolkata")
    with pytest.raises(ConfigurationError, match="unknown time zone"):
        window.next_allowed(utc(2026, 3, 2), "Mars/Base")


def test_the_default_window_is_always_open():
    """CallingWindow() allows any time."""
    now = utc(2026, 3, 8, 7, 0)
    assert CallingWindow().next_allowed(now, "America/New_York") == now


def test_a_campaign_without_a_window_calls_only_in_safe_hours():
    """No window means 09:00-21:00 local, stored as such: a New York or London callee at 22:24 waits until 09:00 their time."""
    config = CampaignConfig("c")
    assert config.window == SAFE_HOURS == "09:00-21:00"
    assert CampaignConfig("c", window="  ").window == SAFE_HOURS  # an empty value from JSON or a form
    assert CampaignConfig.from_json(config.to_json()).window == SAFE_HOURS
    new_york = utc(2026, 3, 3, 3, 24)  # 22:24 EST on Monday 2 March
    opens = config.calling_window.opens_at(new_york, "America/New_York")
    assert opens == utc(2026, 3, 3, 14, 0) and local_iso(opens, "America/New_York") == "2026-03-03T09:00:00-05:00"
    london = utc(2026, 7, 1, 21, 24)  # 22:24 BST
    assert local_iso(config.calling_window.next_allowed(london, "Europe/London"), "Europe/London") == "2026-07-02T09:00:00+01:00"
    assert config.calling_window.opens_at(utc(2026, 7, 1, 12, 0), "Europe/London") is None  # 13:00: open


def test_any_overrides_safe_hours_explicitly():
    """window "any" (any case) is always open and stays "any" in the stored config."""
    config = CampaignConfig("c", window="ANY")
    assert config.calling_window.is_open(utc(2026, 3, 3, 3, 24), "America/New_York")
    assert str(config.calling_window) == ANY_TIME
