"""Caller-ID choice: configured regions, local presence, rotation and the daily cap (pure)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dialstream.domain.caller_id import (
    CallerIdPool,
    choose_caller_id,
    exophone_day,
    locality,
    parse_regions,
    pool_reopens,
)
from dialstream.domain.campaign import CampaignConfig
from dialstream.errors import ConfigurationError
from dialstream.settings import Settings

BANGALORE, MUMBAI, NEW_YORK, SAN_FRANCISCO, LONDON = "+918030752400", "+912261234567", "+12125550100", "+14155550100", "+442079460000"
POOL = (BANGALORE, MUMBAI, NEW_YORK, SAN_FRANCISCO, LONDON)


def test_a_numbers_locality_comes_from_its_digits():
    """Geographic numbers have an area code and a place; mobiles only a country."""
    assert locality("+12125550134").area == "+1212" and locality("+12125550134").place == "New York, NY"
    assert locality(BANGALORE).place == "Bangalore, Karnataka"
    assert (locality("+919845012345").area, locality("+919845012345").place, locality("+919845012345").country) == ("", "", "IN")


def test_local_presence_prefers_area_code_then_place_then_country():
    """A New York callee gets the 212 exophone, a Mumbai landline the Mumbai one, a UK mobile the London one."""
    pool = CallerIdPool(POOL)
    choice = choose_caller_id(pool, "+12125550134", {})
    assert (choice.exophone, choice.reason) == (NEW_YORK, "local: area code +1212")
    assert choose_caller_id(pool, "+912266660000", {}).exophone == MUMBAI
    uk = choose_caller_id(pool, "+447812345678", {})
    assert (uk.exophone, uk.reason) == (LONDON, "local: GB")


def test_without_a_local_number_the_least_used_today_rotates():
    """Callees with no better match go to the exophone that called least today, then pool order."""
    pool = CallerIdPool((BANGALORE, MUMBAI))
    used = {BANGALORE: 0, MUMBAI: 0}
    chosen = []
    for _ in range(4):  # an Indian mobile: both exophones are equally local
        choice = choose_caller_id(pool, "+919845012345", used)
        assert choice.reason == "rotation"
        used[choice.exophone] += 1
        chosen.append(choice.exophone)
    assert chosen == [BANGALORE, MUMBAI, BANGALORE, MUMBAI]


def test_the_region_map_wins_and_names_the_longest_prefix():
    """A configured prefix, place or region code picks the exophone; the longest prefix wins over a shorter one."""
    regions = parse_regions(["+9198=" + MUMBAI, "+919845=" + BANGALORE, "California=" + SAN_FRANCISCO, "GB=" + LONDON])
    pool = CallerIdPool(POOL, regions=regions)
    assert choose_caller_id(pool, "+919845012345", {}) .reason == "region +919845"
    assert choose_caller_id(pool, "+919812345601", {}).exophone == MUMBAI
    assert choose_caller_id(pool, "+13105550100", {}).exophone == SAN_FRANCISCO  # geocoded "California"
    assert choose_caller_id(pool, "+447812345678", {}).reason == "region GB"


def test_the_daily_cap_skips_a_number_and_none_is_left_when_all_are_capped():
    """A capped exophone is passed over, even when local or mapped; with every one capped there is no caller ID."""
    pool = CallerIdPool((NEW_YORK, SAN_FRANCISCO), daily_cap=2, regions={"US": NEW_YORK})
    assert choose_caller_id(pool, "+12125550134", {NEW_YORK: 2}).exophone == SAN_FRANCISCO
    assert choose_caller_id(pool, "+12125550134", {NEW_YORK: 2, SAN_FRANCISCO: 2}) is None
    assert choose_caller_id(CallerIdPool((NEW_YORK,)), "+12125550134", {NEW_YORK: 10**6}).exophone == NEW_YORK  # no cap


def test_bad_pools_fail_with_one_line():
    """An empty pool, a bad number, a negative cap, a map entry without '=' are configuration errors."""
    for pool, message in (
        (lambda: CallerIdPool(()), "at least one"),
        (lambda: CallerIdPool(("not a number",)), "exophone"),
        (lambda: CallerIdPool((NEW_YORK,), daily_cap=-1), "daily cap"),
        (lambda: parse_regions(["US"]), "KEY=EXOPHONE"),
        (lambda: CampaignConfig("c", exophones=("12345",)), "E.164"),
    ):
        with pytest.raises(ConfigurationError, match=message):
            pool()


def test_the_day_a_cap_counts_is_the_exophones_own():
    """At 20:00 UTC it is already tomorrow for a Bangalore exophone but still today for a New York one."""
    now = datetime(2026, 6, 3, 20, 0, tzinfo=timezone.utc).timestamp()
    assert (exophone_day(BANGALORE, now), exophone_day(NEW_YORK, now)) == ("2026-06-04", "2026-06-03")


def test_a_full_pool_reopens_at_the_first_midnight_at_any_of_its_exophones_homes():
    """At 20:00 UTC Bangalore's next day starts at 18:30 UTC tomorrow, New York's at 04:00 UTC: a pool of both reopens at New York's."""
    now = datetime(2026, 6, 3, 20, 0, tzinfo=timezone.utc).timestamp()
    assert pool_reopens(CallerIdPool((BANGALORE,)), now) == datetime(2026, 6, 4, 18, 30, tzinfo=timezone.utc).timestamp()
    assert pool_reopens(CallerIdPool((BANGALORE, NEW_YORK)), now) == datetime(2026, 6, 4, 4, 0, tzinfo=timezone.utc).timestamp()


def test_settings_give_the_campaigns_pool_else_the_accounts_else_the_one_exophone():
    """EXOTEL_EXOPHONE alone is a pool of one; EXOTEL_EXOPHONES replaces it; a campaign's own exophones win."""
    assert Settings.from_env({"EXOTEL_EXOPHONE": NEW_YORK}).caller_id_pool().numbers == (NEW_YORK,)
    settings = Settings.from_env({"EXOTEL_EXOPHONES": f"{BANGALORE}, {MUMBAI}", "EXOTEL_EXOPHONE_DAILY_CAP": "300",
                                  "EXOTEL_EXOPHONE_REGIONS": f"+9122={MUMBAI}"})  # fmt: skip
    pool = settings.caller_id_pool()
    assert (pool.numbers, pool.daily_cap, dict(pool.regions)) == ((BANGALORE, MUMBAI), 300, {"+9122": MUMBAI})
    own = settings.caller_id_pool(CampaignConfig("c", exophones=(LONDON,), window="any"))
    assert (own.numbers, dict(own.regions)) == ((LONDON,), {})  # the account's map names none of its numbers
