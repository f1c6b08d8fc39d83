"""Retry decisions for Legs API calls, create-leg's bounded by time rather than by count."""

from __future__ import annotations

import random

from dialstream.domain.retry import (
    DEFAULT_RETRY_POLICY, IN_CALL_RETRY_FOR, RetryPolicy, action_retry_policy, create_leg_retry_policy,
    exponential_backoff,
)  # fmt: skip
from dialstream.errors import LegsApiClientError, LegsApiRateLimited, LegsApiServerError
from dialstream.exotel.actions import ActionKind

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


def test_stops_and_hangups_retry_a_429_at_once_and_other_actions_wait_its_retry_after():
    """A stop_say, stop_play, stop_stream or hang-up answered 429 with Retry-After 30 is retried
    within 50 ms, and a 5xx within 20 ms, 40 ms, then 50 ms; a bridge waits the 30 s."""
    told_to_wait = LegsApiRateLimited(30.0)
    for kind in (ActionKind.STOP_SAY, ActionKind.STOP_PLAY, ActionKind.STOP_STREAM, ActionKind.HANGUP):
        policy = action_retry_policy(kind)
        assert [policy.delay(told_to_wait, retries, Longest()) for retries in range(6)] == [0.05] * 6
        server = [policy.delay(UNAVAILABLE, retries, Longest()) for retries in range(5)]
        assert server == [0.02, 0.04, 0.05, 0.05, 0.05]  # 5xx: 20 ms doubling to 50 ms
    assert action_retry_policy(ActionKind.CREATE_BRIDGE).delay(told_to_wait, 0, Shortest()) == 30.0
    assert action_retry_policy(ActionKind.STOP_SAY).delay(LegsApiClientError(409, "not live"), 0) is None


def test_a_stop_is_retried_for_as_long_as_the_greeting_it_stops_may_still_play():
    """Five failures in a row (a storm failing half the requests) no longer end a stop's retries,
    as they did after about 300 ms (the chaos suite: 330 ms of greeting over the bot): a stop
    failing for up to IN_CALL_RETRY_FOR seconds is still retried, a couple of dozen tries or
    more, every wait short, the last ending at the bound; after it, none."""
    policy = action_retry_policy(ActionKind.STOP_SAY)
    for error in (LegsApiRateLimited(30.0), UNAVAILABLE):
        for rng in (Longest(), Shortest(), random.Random(3)):
            failing_for, tries = 0.0, 0
            while (wait := policy.delay(error, tries, rng, failing_for=failing_for)) is not None:
                assert wait <= 0.05
                failing_for += wait + 0.02  # the request itself: a round trip of tens of ms
                tries += 1
            assert IN_CALL_RETRY_FOR <= failing_for <= IN_CALL_RETRY_FOR + 0.021 and tries >= 13
    assert policy.delay(UNAVAILABLE, 5, Longest(), failing_for=IN_CALL_RETRY_FOR) is None


def test_the_greeting_and_the_stream_at_the_answer_retry_their_first_429s_at_once_then_wait_as_told():
    """A start_say, start_play or start_stream answered 429 (Retry-After 30) is retried within
    100 ms four times (a second of Retry-After is a second of dead air; seen in the chaos suite),
    then waits the 30 s: an account really over its budget is not hammered."""
    told_to_wait = LegsApiRateLimited(30.0)
    for kind in (ActionKind.START_SAY, ActionKind.START_PLAY, ActionKind.START_STREAM):
        policy = action_retry_policy(kind)
        assert [policy.delay(told_to_wait, retries, Longest()) for retries in range(5)] == [0.1] * 4 + [30.1]
        assert not policy.in_place
