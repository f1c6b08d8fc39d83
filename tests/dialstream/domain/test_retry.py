"""Retry decisions for Legs API calls, create-leg's bounded by time rather than by count."""

from __future__ import annotations

import random

from dialstream.domain.retry import DEFAULT_RETRY_POLICY, RetryPolicy, create_leg_retry_policy, exponential_backoff
from dialstream.errors import LegsApiClientError, LegsApiRateLimited, LegsApiServerError

UNAVAILABLE = LegsApiServerError(503, "service unavailable")


class Longest(random.Random):
    """Every jittered wait at its longest."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Shortest(random.Random):
    """Every jittered wait at its shortest (a retry storm)."""

    def uniform(self, a: float, b: float) -> float:
        return a


def outage_survived(policy: RetryPolicy, outage: float, rng: random.Random) -> bool:
    """Whether a call failing for ``outage`` seconds is still being retried when the outage ends."""
    failing_for, retries = 0.0, 0
    while failing_for < outage:
        wait = policy.delay(UNAVAILABLE, retries, rng, failing_for=failing_for)
        if wait is None:
            return False
        failing_for += max(wait, 0.001)  # the request itself takes time too
        retries += 1
    return True


def test_a_five_second_burst_of_503_on_create_leg_fails_no_contact() -> None:
    """Whatever the jitter, create-leg is still retried after 5 s (and after 59 s) of 503s; the default policy was not."""
    policy = create_leg_retry_policy(60.0)
    for rng in (Longest(), Shortest(), random.Random(1), random.Random(2)):
        assert outage_survived(policy, 5.0, rng) and outage_survived(policy, 59.0, rng)
    assert not outage_survived(DEFAULT_RETRY_POLICY, 5.0, Shortest())


def test_create_leg_gives_up_at_its_deadline_and_never_waits_past_it() -> None:
    """A wait is cut to end at give_up_after; from then on there is no retry."""
    policy = create_leg_retry_policy(60.0)
    assert policy.delay(UNAVAILABLE, 20, Longest(), failing_for=57.0) == 3.0
    assert policy.delay(UNAVAILABLE, 20, Longest(), failing_for=60.0) is None
    assert create_leg_retry_policy(0.0).delay(UNAVAILABLE, 0, Longest()) is None


def test_backoff_doubles_to_its_cap_and_client_errors_are_never_retried() -> None:
    """Waits double from the base to the cap; a 4xx is final; a 429 waits its Retry-After."""
    policy = create_leg_retry_policy(60.0)
    assert [policy.delay(UNAVAILABLE, n, Longest(), failing_for=1.0) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert [policy.delay(UNAVAILABLE, n, Shortest(), failing_for=1.0) for n in range(6)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0]
    assert policy.delay(LegsApiClientError(400, "bad request"), 0, Longest()) is None
    assert policy.delay(LegsApiRateLimited(2.0), 0, Shortest()) == 2.0
    assert exponential_backoff(100, 1.0, 30.0) == 30.0
