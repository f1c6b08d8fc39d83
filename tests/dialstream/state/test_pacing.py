"""The shared Legs API budget: never over the limit in any window, in-call actions first, well used."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

from dialstream.domain.limits import Budget
from dialstream.errors import ConfigurationError
from dialstream.state.pacing import ACTION, DIAL, Pacer
from tests.dialstream.engine.engine_children import hammer_pacer, pacing_hammer, start_children, stop_children
from tests.utils import MS, wait_for


def pacer(client, prefix, **budget) -> Pacer:
    """A pacer on the test's keys; no latency guard unless asked, so windows are exact."""
    return Pacer(client, "acct", Budget(**{"latency_guard": 0.0, **budget}), prefix=prefix)


def assert_never_over(times_us: list[int], limit: int, window: float) -> None:
    """No ``limit + 1`` grants fall within any window: grant i and grant i + limit are a window apart."""
    times = sorted(times_us)
    window_us = int(window * 1_000_000)
    for i in range(len(times) - limit):
        assert times[i + limit] - times[i] >= window_us, f"{limit + 1} grants within {(times[i + limit] - times[i]) / 1e6:.6f}s"


@pytest.mark.parametrize(
    "budget",
    [dict(limit=0), dict(window=0), dict(limit=10, headroom=10), dict(headroom=-1), dict(actions_per_call=-1), dict(latency_guard=-1)],
)
def test_impossible_budgets_are_refused(budget):
    """A budget with no room, or a headroom that would starve dials for ever, raises ConfigurationError."""
    with pytest.raises(ConfigurationError):
        Budget(**budget)


def test_unknown_request_kinds_are_refused(client, prefix):
    """Only 'action' and 'dial' draw from the budget."""
    with pytest.raises(ValueError, match="request kind"):
        pacer(client, prefix).try_acquire("sms")


def test_the_limit_holds_and_the_wait_is_until_the_oldest_grant_leaves(client, prefix):
    """After ``limit`` grants the next is refused, told to wait until the oldest is a window old (server time)."""
    budget = pacer(client, prefix, limit=5, window=10, headroom=1)
    grants = [budget.try_acquire(ACTION) for _ in range(5)]
    assert all(grants) and [g.used for g in grants] == [1, 2, 3, 4, 5]
    refused = budget.try_acquire(ACTION)
    assert not refused
    assert refused.wait == pytest.approx((grants[0].at_us + 10_000_000 - refused.at_us) / 1e6, abs=1e-6)
    assert budget.used() == 5


def test_dials_leave_the_headroom_to_actions(client, prefix):
    """Dials stop at limit minus headroom; actions can still take the rest of the window."""
    budget = pacer(client, prefix, limit=10, window=10, headroom=3, actions_per_call=0)
    assert [bool(budget.try_acquire(DIAL)) for _ in range(8)] == [True] * 7 + [False]
    assert [bool(budget.try_acquire(ACTION)) for _ in range(4)] == [True] * 3 + [False]


def test_a_refused_dial_waits_for_more_than_a_refused_action(client, prefix):
    """When a slot frees, a waiting action may take it and a waiting dial may not."""
    budget = pacer(client, prefix, limit=4, window=0.5, headroom=1, actions_per_call=0)
    for kind in (DIAL, DIAL, DIAL, ACTION):
        assert budget.try_acquire(kind)
        time.sleep(50 * MS)  # grants spaced out, so the first frees well before the second
    dial, action = budget.try_acquire(DIAL), budget.try_acquire(ACTION)
    assert not dial and not action and action.wait < dial.wait
    time.sleep(action.wait + 5 * MS)
    assert not budget.try_acquire(DIAL)
    assert budget.try_acquire(ACTION)


def test_each_call_awaiting_its_actions_holds_back_dials(client, prefix):
    """A granted dial registers its call; each awaiting call reserves actions_per_call requests until settled."""
    budget = pacer(client, prefix, limit=20, window=10, headroom=2, actions_per_call=3)
    # The n-th dial needs used (n - 1) < 20 - 2 - 3n, counting itself: n <= 4.
    granted = [bool(budget.try_acquire(DIAL, call_id=f"call{n}")) for n in range(1, 6)]
    assert granted == [True, True, True, True, False]
    assert client.zcard(budget.awaiting_key) == 4
    assert budget.call_settled("call1") and budget.call_settled("call2")
    assert not budget.call_settled("call2")  # settling twice is harmless
    grant = budget.try_acquire(DIAL, call_id="call5")
    assert grant and grant.reserve == 2 + 3 * 3


def test_dial_room_tells_how_many_dials_would_be_granted_and_takes_nothing(client, prefix):
    """dial_room counts the dials the budget allows one after another now, exactly as try_acquire then grants them."""
    budget = pacer(client, prefix, limit=20, window=10, headroom=2, actions_per_call=3)
    assert budget.try_acquire(ACTION)
    room, wait = budget.dial_room()
    assert (room, wait) == (4, 0.0) and budget.used() == 1  # (n - 1) + 1 < 20 - 2 - 3n: n <= 4
    assert [bool(budget.try_acquire(DIAL, call_id=f"c{n}")) for n in range(room + 1)] == [True] * room + [False]
    empty, wait = budget.dial_room()
    assert empty == 0 and wait > 0


def test_429s_are_counted(client, prefix):
    """Each 429 the account got is counted for status and benchmarks."""
    budget = pacer(client, prefix)
    assert budget.throttled_count() == 0
    budget.throttled()
    assert budget.throttled() == 2 and budget.throttled_count() == 2


def test_registering_a_call_twice_counts_it_once(client, prefix):
    """A retried dial of a registered call neither registers it again nor reserves for it twice."""
    budget = pacer(client, prefix, limit=20, window=10, headroom=2, actions_per_call=3)
    assert budget.try_acquire(DIAL, call_id="c1").reserve == 2 + 3 * 1
    assert budget.try_acquire(DIAL, call_id="c1").reserve == 2 + 3 * 1
    assert client.zcard(budget.awaiting_key) == 1


def test_awaiting_calls_expire_when_never_settled(client, prefix):
    """A call whose stream never started stops holding budget back after its ttl."""
    budget = pacer(client, prefix, limit=20, window=10, headroom=2, actions_per_call=3, awaiting_ttl=200 * MS)
    assert budget.try_acquire(DIAL, call_id="lost").reserve == 2 + 3 * 1
    # A look at the room (it takes nothing) drops the expired calls, as every dial does.
    wait_for(lambda: budget.dial_room() and client.zcard(budget.awaiting_key) == 0, timeout=3)
    assert budget.try_acquire(DIAL).reserve == 2


def test_a_dial_blocked_by_the_reserve_alone_gets_a_polling_hint(client, prefix):
    """With more calls awaiting than the budget holds, a dial is refused with a wait of one slot's time."""
    budget = pacer(client, prefix, limit=10, window=5, headroom=1, actions_per_call=20)
    refused = budget.try_acquire(DIAL, call_id="c1")
    assert not refused and refused.used == 0 and refused.wait == pytest.approx(0.5)
    assert client.zcard(budget.awaiting_key) == 0  # a refused dial registers nothing


def test_the_latency_guard_lengthens_the_enforced_window(client, prefix):
    """With a guard, a freed slot comes back window + guard after the oldest grant, not window."""
    budget = pacer(client, prefix, limit=1, window=10, headroom=0, latency_guard=0.5)
    first = budget.try_acquire(ACTION)
    refused = budget.try_acquire(ACTION)
    assert refused.wait == pytest.approx((first.at_us + 10_500_000 - refused.at_us) / 1e6, abs=1e-6)


def test_acquire_sleeps_until_a_slot_frees_or_gives_up_at_once(client, prefix):
    """acquire() waits as told and then gets the slot; with too little time left it returns the refusal."""
    budget = pacer(client, prefix, limit=2, window=0.3, headroom=1)
    first = budget.try_acquire(ACTION)
    assert budget.try_acquire(ACTION)
    too_short = budget.acquire(ACTION, timeout=0.01)
    assert not too_short and too_short.wait > 0.01
    later = budget.acquire(ACTION, timeout=5)
    assert later and later.at_us - first.at_us >= 300_000


def test_many_threads_and_processes_never_exceed_the_limit_in_any_window(url, client, prefix):
    """Grants from 3 processes and 12 threads, dials and actions mixed, never number more than the limit in any window."""
    limit, window, headroom, seconds = 40, 2.0, 5, 4.5
    ctx = multiprocessing.get_context("spawn")
    children = [
        ctx.Process(target=pacing_hammer, args=(url, prefix, limit, window, headroom, seconds, 4, [DIAL, ACTION]))
        for _ in range(2)
    ]
    try:
        start_children(client, prefix, children)
        local = Pacer(client, "acct", Budget(limit=limit, window=window, headroom=headroom), prefix=prefix)
        hammer_pacer(local, client, prefix, seconds, 4, [ACTION, DIAL])
    finally:
        stop_children(children)
    assert all(child.exitcode == 0 for child in children)
    grants = [int(t) for t in client.lrange(f"{prefix}:test:grants", 0, -1)]
    assert len(grants) > limit  # the run went past a full window, so the check below bites
    assert_never_over(grants, limit, window)


def test_actions_are_served_at_once_while_dials_are_backlogged(client, prefix):
    """With dials queued beyond the budget, occasional in-call actions are granted on their first try."""
    limit, window, headroom = 40, 2.0, 8
    seconds = 4.0
    deadline = time.monotonic() + seconds
    dial_refusals = 0
    dial_grants: list[int] = []
    lock = threading.Lock()

    def dialer() -> None:
        nonlocal dial_refusals
        budget = pacer(client, prefix, limit=limit, window=window, headroom=headroom, actions_per_call=0)
        while time.monotonic() < deadline:
            grant = budget.try_acquire(DIAL)
            with lock:
                if grant:
                    dial_grants.append(grant.at_us)
                else:
                    dial_refusals += 1
            if not grant:
                time.sleep(max(grant.wait, 0.001))

    dialers = [threading.Thread(target=dialer) for _ in range(6)]
    for thread in dialers:
        thread.start()
    budget = pacer(client, prefix, limit=limit, window=window, headroom=headroom, actions_per_call=0)
    latencies, first_try = [], []
    try:
        time.sleep(0.3)  # let the dialers fill the budget first
        while time.monotonic() < deadline - 0.3:
            asked = time.monotonic()
            grant = budget.try_acquire(ACTION)
            first_try.append(grant.ok)
            if not grant:
                grant = budget.acquire(ACTION, timeout=window)
            latencies.append(time.monotonic() - asked)
            time.sleep(0.3)  # about 7 actions per window: fewer than the headroom of 8
    finally:
        for thread in dialers:
            thread.join()
    assert dial_refusals > 0 and len(dial_grants) >= limit  # dials really were backlogged
    assert len(first_try) >= 10 and all(first_try)
    assert max(latencies) < 250 * MS  # generous: a Redis round trip, far from a window's wait


def test_a_dial_backlog_uses_at_least_90_percent_of_the_budget(client, prefix):
    """Dial-only demand above the budget gets at least 90 % of the limit in every window of a run."""
    limit, window, headroom, windows = 40, 1.0, 2, 3
    hammer_pacer(pacer(client, prefix, limit=limit, window=window, headroom=headroom), client, prefix, windows * window + 0.3, 4, [DIAL])
    grants = sorted(int(t) for t in client.lrange(f"{prefix}:test:grants", 0, -1))
    start = grants[0]
    in_run = [t for t in grants if t < start + windows * window * 1_000_000]
    assert len(in_run) >= 0.9 * windows * limit
    assert_never_over(grants, limit, window)
