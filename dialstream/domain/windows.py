"""Calling windows in the callee's local time. Pure: the caller passes the time.

Grammar (case-insensitive; whitespace around separators is free)::

    window := rule (";" rule)*
    rule   := [days] range ("," range)*
    days   := day-item ("," day-item)*         no spaces inside: "mon-fri,sun"
    day-item := DAY | DAY "-" DAY              DAY: mon tue wed thu fri sat sun; "fri-mon" wraps
    range  := HH:MM "-" HH:MM                  end "24:00" means midnight at the end of the day

A campaign that names no window gets :data:`SAFE_HOURS`, 09:00-21:00 every day in the
callee's local time: India's TRAI and the US TCPA both forbid telemarketing calls outside
about those hours. ``"any"`` (:data:`ANY_TIME`) says "at any time" explicitly.

Examples: ``"09:00-20:00"`` (every day), ``"mon-fri 09:00-13:00,14:00-20:00; sat 10:00-14:00"``,
``"22:00-02:00"`` (crosses midnight: a range whose end is not after its start ends the next
day; its days name the day it opens on, so ``"fri 22:00-02:00"`` includes Saturday 01:00).

Times are wall-clock times in the callee's zone, so daylight saving is handled by the zone
database. A window opens (or closes) at the first instant the wall clock reads its time or
later: on the day clocks jump forward over it (02:30 on a US spring-forward day) that is the
end of the jump (03:00); on the day the clock repeats an hour it is the first occurrence.

Example::

    window = CallingWindow.parse("mon-fri 09:00-20:00")
    due = window.next_allowed(datetime.now(timezone.utc), "Asia/Kolkata")  # now, or the next opening
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from dialstream.errors import ConfigurationError

__all__ = ["CallingWindow", "WindowRule", "TimeRange", "DAYS", "SAFE_HOURS", "ANY_TIME", "local_iso", "moment_in_zone"]

SAFE_HOURS = "09:00-21:00"  # a campaign's window when it names none (TRAI, TCPA)
ANY_TIME = "any"  # the window that is always open, chosen explicitly

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
_DAY_INDEX = {name: index for index, name in enumerate(DAYS)}
_ALL_DAYS = frozenset(range(7))
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_DAY_LIST = re.compile(r"^[a-z]{3}(-[a-z]{3})?(,[a-z]{3}(-[a-z]{3})?)*$")
_MINUTES_PER_DAY = 24 * 60
_UTC = timezone.utc
_HORIZON_DAYS = 8  # every rule applies at least one weekday, so an opening exists within a week


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Minutes after local midnight: ``start`` in [0, 1440), ``end`` in (0, 1440].

    ``end <= start`` means the range crosses midnight and ends the next day.
    """

    start: int
    end: int

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


@dataclass(frozen=True, slots=True)
class WindowRule:
    """Ranges that apply on some weekdays (0 = Monday)."""

    days: frozenset[int] = _ALL_DAYS
    ranges: tuple[TimeRange, ...] = (TimeRange(0, _MINUTES_PER_DAY),)


@dataclass(frozen=True)
class CallingWindow:
    """When calls may be placed, in the callee's local time. The default is always open."""

    rules: tuple[WindowRule, ...] = (WindowRule(),)
    text: str = "00:00-24:00"

    @classmethod
    def parse(cls, text: str) -> CallingWindow:
        """Parse the grammar in the module docstring, or ``"any"``; ConfigurationError says what is wrong."""
        if text.strip().lower() == ANY_TIME:
            return cls(text=ANY_TIME)
        rules = tuple(_parse_rule(part.strip(), text) for part in text.split(";"))
        return cls(rules, text.strip())

    def next_allowed(self, now_utc: datetime, tz: str) -> datetime:
        """``now_utc`` if the window is open then, else the next opening; always in UTC."""
        now = _as_utc(now_utc)
        for start, end in self._intervals(now, tz):
            if end > now:
                return max(start, now)
        raise AssertionError("unreachable: every rule opens within a week")  # pragma: no cover

    def opens_at(self, now_utc: datetime, tz: str) -> datetime | None:
        """When the window next opens (UTC) if it is closed at ``now_utc``; None while it is open."""
        now = _as_utc(now_utc)
        opening = self.next_allowed(now, tz)
        return None if opening == now else opening

    def is_open(self, now_utc: datetime, tz: str) -> bool:
        now = _as_utc(now_utc)
        return self.next_allowed(now, tz) == now

    def closes_at(self, now_utc: datetime, tz: str) -> datetime | None:
        """When the window open at ``now_utc`` closes (UTC), or None if it is closed now."""
        now = _as_utc(now_utc)
        for start, end in self._intervals(now, tz):
            if end > now:
                return end if start <= now else None
        return None  # pragma: no cover

    def _intervals(self, now: datetime, tz: str) -> list[tuple[datetime, datetime]]:
        """Open intervals (UTC) from the day before ``now``'s local date on, merged and sorted."""
        zone = _zone(tz)
        today = now.astimezone(zone).date()
        spans: list[tuple[datetime, datetime]] = []
        for offset in range(-1, _HORIZON_DAYS):
            day = today + timedelta(days=offset)
            for rule in self.rules:
                if day.weekday() not in rule.days:
                    continue
                for span in rule.ranges:
                    start = _opening(day, span.start, zone)
                    end_day = day + timedelta(days=1) if span.crosses_midnight else day
                    end = _opening(end_day, span.end, zone)
                    if end > start:  # a range wholly inside a spring-forward gap never opens
                        spans.append((start, end))
        spans.sort()
        merged: list[tuple[datetime, datetime]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    def __str__(self) -> str:
        return self.text


def local_iso(moment: datetime, tz: str) -> str:
    """``moment`` as the callee's wall clock shows it, ISO 8601 with its offset (``2026-03-03T09:00:00-05:00``)."""
    return _as_utc(moment).astimezone(_zone(tz)).isoformat(timespec="seconds")


def moment_in_zone(text: str, tz: str) -> datetime:
    """ISO 8601 ``text`` as an aware datetime: its own offset if it has one, else ``tz``'s wall
    clock (zoneinfo's first reading of an hour a clock change repeats or skips). ValueError
    when ``text`` is not ISO 8601; ConfigurationError for an unknown zone."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not an ISO 8601 time like 2026-06-03T17:00 or 2026-06-03T17:00+05:30") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=_zone(tz))


def _parse_rule(rule: str, text: str) -> WindowRule:
    def fail(why: str) -> ConfigurationError:
        return ConfigurationError(f"calling window {text!r}: {why}")

    if not rule:
        raise fail("an empty rule (a stray ';'?)")
    lowered = rule.lower()
    days = _ALL_DAYS
    if lowered[0].isalpha():
        head, _, lowered = lowered.partition(" ")
        if not _DAY_LIST.match(head):
            raise fail(f"{head!r} is not a list of days like 'mon-fri' or 'sat,sun'")
        days = _parse_days(head, fail)
        lowered = lowered.strip()
    if not lowered:
        raise fail(f"rule {rule!r} has no time range like 09:00-20:00")
    ranges = []
    for item in lowered.split(","):
        match = _RANGE.match(item.strip())
        if not match:
            raise fail(f"{item.strip()!r} is not a time range like 09:00-20:00")
        h1, m1, h2, m2 = (int(group) for group in match.groups())
        if h1 > 23 or m1 > 59:
            raise fail(f"{item.strip()!r}: a range starts between 00:00 and 23:59")
        if h2 > 24 or m2 > 59 or (h2 == 24 and m2):
            raise fail(f"{item.strip()!r}: a range ends between 00:01 and 24:00")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if start == end % _MINUTES_PER_DAY and end != _MINUTES_PER_DAY:
            raise fail(f"{item.strip()!r} is empty or ambiguous; write 00:00-24:00 for the whole day")
        if end == 0:
            end = _MINUTES_PER_DAY  # "22:00-00:00" ends at midnight
        ranges.append(TimeRange(start, end))
    return WindowRule(days, tuple(ranges))


def _parse_days(spec: str, fail: Callable[[str], ConfigurationError]) -> frozenset[int]:
    chosen: set[int] = set()
    for item in spec.split(","):
        first, _, last = item.partition("-")
        if first not in _DAY_INDEX or (last and last not in _DAY_INDEX):
            raise fail(f"unknown day in {item!r}; days are {', '.join(DAYS)}")
        a = _DAY_INDEX[first]
        b = _DAY_INDEX[last] if last else a
        chosen.update((a + step) % 7 for step in range((b - a) % 7 + 1))
    return frozenset(chosen)


def _opening(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the wall clock in ``zone`` reads ``day`` ``minute`` or later."""
    if minute == _MINUTES_PER_DAY:
        day, minute = day + timedelta(days=1), 0
    wall = datetime.combine(day, time(minute // 60, minute % 60))
    instant = wall.replace(tzinfo=zone).astimezone(_UTC)  # fold=0: the first of a repeated time
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    # ``wall`` never happens: the clocks jump over it. fold=1 reads it with the offset after
    # the jump, which lands before the jump; search the jump's exact instant to the second.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(_UTC)
    after = instant
    while after - before > timedelta(seconds=1):
        middle = before + (after - before) / 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            after = middle
        else:
            before = middle
    return after


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        raise ConfigurationError(f"unknown time zone {name!r}") from None


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no time zone: pass an aware datetime (UTC)")
    return moment.astimezone(_UTC)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"

