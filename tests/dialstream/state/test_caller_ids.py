"""Daily exophone counters in Redis: the cap holds across racing workers, and the day is the exophone's."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from dialstream.domain.caller_id import CallerIdPool
from dialstream.state import keys
from dialstream.state.caller_ids import COUNTER_TTL, CallerIds, count_keys, used_counts

BANGALORE, MUMBAI, NEW_YORK = "+918030752400", "+912261234567", "+12125550100"
NOW = datetime(2026, 6, 3, 10, 0, tzinfo=timezone.utc).timestamp()


@pytest.fixture
def caller_ids(client):
    def clean():
        for key in client.scan_iter("ds:exophone:*"):
            client.delete(key)

    clean()
    yield CallerIds(client)
    clean()


def test_pick_counts_the_call_and_rotates_by_todays_counts(caller_ids, client):
    """Each pick counts one call on the chosen exophone under its day's key; the next Indian mobile gets the other number."""
    pool = CallerIdPool((BANGALORE, MUMBAI))
    picks = [caller_ids.pick(pool, "+919845012345", NOW).exophone for _ in range(4)]
    assert picks == [BANGALORE, MUMBAI, BANGALORE, MUMBAI]
    assert caller_ids.used_today(pool.numbers, NOW) == {BANGALORE: 2, MUMBAI: 2}
    key = keys.exophone_calls(BANGALORE, "2026-06-03")
    assert key == "ds:exophone:+918030752400:calls:2026-06-03" and 0 < client.ttl(key) <= COUNTER_TTL


def test_local_presence_through_redis(caller_ids):
    """A New York callee is called from the New York exophone, and that call is counted on it."""
    choice = caller_ids.pick(CallerIdPool((BANGALORE, NEW_YORK)), "+12125550134", NOW)
    assert (choice.exophone, choice.reason) == (NEW_YORK, "local: area code +1212")
    assert caller_ids.used_today((NEW_YORK,), NOW) == {NEW_YORK: 1}


def test_racing_workers_never_pass_the_daily_cap(caller_ids, client):
    """Twenty threads picking from a pool of two with a cap of 5 place exactly 10 calls, 5 per exophone."""
    pool = CallerIdPool((BANGALORE, MUMBAI), daily_cap=5)
    results = []

    def worker() -> None:
        results.append(CallerIds(client).pick(pool, "+919845012345", NOW))

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r is not None for r in results) == 10
    assert caller_ids.used_today(pool.numbers, NOW) == {BANGALORE: 5, MUMBAI: 5}
    assert caller_ids.pick(pool, "+919845012345", NOW) is None
    tomorrow = NOW + 24 * 3600
    assert caller_ids.pick(pool, "+919845012345", tomorrow).exophone == BANGALORE  # a new day, a new count


def test_counts_read_in_the_callers_pipeline_are_used_and_reread_after_a_lost_race(caller_ids, client):
    """``pick`` takes the counts the dial read in its own pipeline (``count_keys``); when they are
    stale and the number chosen from them is at its cap, it reads them again and takes the other."""
    pool = CallerIdPool((BANGALORE, MUMBAI), daily_cap=1)
    pipe = client.pipeline(transaction=False)
    pipe.mget(count_keys(pool.numbers, NOW))
    (counts,) = pipe.execute()
    assert used_counts(pool.numbers, counts) == {BANGALORE: 0, MUMBAI: 0}
    assert caller_ids.pick(pool, "+919845012345", NOW, used=used_counts(pool.numbers, counts)).exophone == BANGALORE
    # The same stale counts again: BANGALORE is at its cap now, so the pick falls to MUMBAI.
    assert caller_ids.pick(pool, "+919845012345", NOW, used=used_counts(pool.numbers, counts)).exophone == MUMBAI
    assert caller_ids.used_today(pool.numbers, NOW) == {BANGALORE: 1, MUMBAI: 1}
