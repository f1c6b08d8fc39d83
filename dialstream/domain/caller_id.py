"""Which exophone (caller ID) a call shows the callee. Pure: the caller passes today's counts.

An account or a campaign has a pool of exophones, each allowed ``daily_cap`` calls a day
(0: no cap; a number that calls too much gets flagged as spam by carriers). Per call:

1. **Configured region** (``regions``): the callee's longest matching E.164 prefix
   (``+9180``, ``+1212``), else its place as phonenumbers' geocoder names it (``Karnataka``,
   ``New York, NY``), else its region code (``US``, ``IN``) maps to an exophone. This is how
   Indian mobile circles are served: their numbers carry no place, so the map names prefixes.
2. **Local presence** from the numbers themselves: an exophone in the callee's geographic area
   code, else in its place, else in its country.
3. **Rotation**: among the equally good, the one that has called least today (then pool order),
   so calls spread evenly across the pool whichever worker dials.

A number at its cap is skipped at every step; when all are, there is no caller ID to use
today (:func:`choose_caller_id` returns None) and the dial waits until :func:`pool_reopens`.

Example::

    pool = CallerIdPool(("+918030752400", "+912261234567", "+12125550100"), daily_cap=300,
                        regions=parse_regions("+9198450=+918030752400"))
    choice = choose_caller_id(pool, "+12125550134", used={"+12125550100": 12})
    choice.exophone, choice.reason    # ("+12125550100", "local: area code +1212")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import IntEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import geocoder

from dialstream.domain.phones import DEFAULT_TIMEZONE, normalize_number, timezone_for
from dialstream.errors import ConfigurationError

__all__ = ["CallerIdPool", "CallerIdChoice", "Locality", "choose_caller_id", "parse_regions", "exophone_day", "pool_reopens"]


@dataclass(frozen=True, slots=True)
class Locality:
    """Where a number is, as far as its digits tell: most specific first."""

    area: str  # "+1212": country and geographic area code; "" for mobiles and non-geographic numbers
    place: str  # "New York, NY", "Bangalore, Karnataka"; "" when only the country is known
    country: str  # "US", "IN"; "" when unknown


class _Match(IntEnum):
    NONE = 0
    COUNTRY = 1
    PLACE = 2
    AREA = 3


@lru_cache(maxsize=4096)
def locality(e164: str) -> Locality:
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return Locality("", "", "")
    # A number outside every known range still tells its country code.
    country = phonenumbers.region_code_for_number(number) or phonenumbers.region_code_for_country_code(number.country_code)
    country = "" if country == phonenumbers.UNKNOWN_REGION else country
    area_digits = phonenumbers.length_of_geographical_area_code(number)
    area = f"+{number.country_code}{phonenumbers.national_significant_number(number)[:area_digits]}" if area_digits else ""
    place = geocoder.description_for_number(number, "en")
    country_name = geocoder.country_name_for_number(number, "en")
    return Locality(area, "" if place == country_name else place, country)


@dataclass(frozen=True)
class CallerIdPool:
    """The exophones a campaign calls from, their daily cap, and the configured region map."""

    numbers: tuple[str, ...]
    daily_cap: int = 0
    regions: Mapping[str, str] = field(default_factory=dict)  # prefix, place or region code -> exophone of the pool

    def __post_init__(self) -> None:
        numbers = tuple(dict.fromkeys(_e164(n, "exophone") for n in self.numbers))  # deduplicated, in order
        if not numbers:
            raise ConfigurationError("a caller-ID pool needs at least one exophone")
        if self.daily_cap < 0:
            raise ConfigurationError(f"the exophones' daily cap {self.daily_cap} must be >= 0 (0: no cap)")
        # Entries for exophones outside the pool are dropped: the account's map also serves
        # campaigns that bring their own numbers.
        regions = {key: n for key, n in ((k, _e164(v, f"exophone for {k!r}")) for k, v in self.regions.items()) if n in numbers}
        object.__setattr__(self, "numbers", numbers)
        object.__setattr__(self, "regions", regions)


@dataclass(frozen=True, slots=True)
class CallerIdChoice:
    exophone: str
    reason: str  # "region +9180", "local: area code +1212", "local: New York, NY", "local: US", "rotation"


def choose_caller_id(pool: CallerIdPool, callee: str, used: Mapping[str, int]) -> CallerIdChoice | None:
    """The exophone for a call to ``callee`` (E.164), given each exophone's calls today; None
    when every exophone of the pool has reached its daily cap."""
    open_numbers = [n for n in pool.numbers if not pool.daily_cap or used.get(n, 0) < pool.daily_cap]
    if not open_numbers:
        return None
    where = locality(callee)
    mapped = _mapped(pool.regions, callee, where)
    if mapped is not None and mapped[1] in open_numbers:
        return CallerIdChoice(mapped[1], f"region {mapped[0]}")
    ranked = sorted(open_numbers, key=lambda n: (-_match(locality(n), where), used.get(n, 0), pool.numbers.index(n)))
    best = ranked[0]
    match = _match(locality(best), where)
    if match is _Match.AREA:
        return CallerIdChoice(best, f"local: area code {where.area}")
    if match is _Match.PLACE:
        return CallerIdChoice(best, f"local: {where.place}")
    if match is _Match.COUNTRY and any(_match(locality(n), where) is _Match.NONE for n in open_numbers):
        return CallerIdChoice(best, f"local: {where.country}")
    return CallerIdChoice(best, "rotation")


def parse_regions(items: Iterable[str]) -> dict[str, str]:
    """``["+9180=+918030752400", "US=+12125550100", "Karnataka=+918030752400"]`` as a map;
    ConfigurationError names an item that is not ``key=exophone``."""
    regions = {}
    for item in items:
        key, sep, number = (part.strip() for part in item.partition("="))
        if not sep or not key or not number:
            raise ConfigurationError(f"caller-ID region {item!r}: expected KEY=EXOPHONE (KEY: +prefix, place or region code)")
        regions[key] = number
    return regions


def exophone_day(exophone: str, now: float) -> str:
    """The date at ``exophone``'s home (its number's zone): the day its daily cap counts."""
    zone = timezone_for(exophone, default=DEFAULT_TIMEZONE)
    return datetime.fromtimestamp(now, ZoneInfo(zone)).date().isoformat()


def pool_reopens(pool: CallerIdPool, now: float) -> float:
    """When a pool whose every exophone is at its cap has room again: the first midnight after
    ``now`` at the home of any of its numbers, when that number's count starts afresh."""
    return min(_next_midnight(number, now) for number in pool.numbers)


def _next_midnight(exophone: str, now: float) -> float:
    zone = ZoneInfo(timezone_for(exophone, default=DEFAULT_TIMEZONE))
    tomorrow = datetime.fromtimestamp(now, zone).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(0), zone).timestamp()


def _mapped(regions: Mapping[str, str], callee: str, where: Locality) -> tuple[str, str] | None:
    """(key, exophone) of the callee's most specific entry in the region map."""
    prefixes = sorted((k for k in regions if k.startswith("+") and callee.startswith(k)), key=len, reverse=True)
    for key in (*prefixes, where.place, where.country):
        if key and key in regions:
            return key, regions[key]
    return None


def _match(exophone: Locality, callee: Locality) -> _Match:
    if exophone.area and exophone.area == callee.area:
        return _Match.AREA
    if exophone.place and exophone.place == callee.place:
        return _Match.PLACE
    if exophone.country and exophone.country == callee.country:
        return _Match.COUNTRY
    return _Match.NONE


def _e164(text: str, what: str) -> str:
    try:
        return normalize_number(text, strict=False)
    except ValueError as exc:
        raise ConfigurationError(f"{what}: {exc}") from None
