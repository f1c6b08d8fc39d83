"""Retry policy for Legs API calls. Pure: the caller supplies the randomness.

- 429: wait what the server said (Retry-After), plus a little jitter so that every worker
  that was told the same number does not come back in the same millisecond;
- 5xx, timeouts, connection errors: exponential backoff with full jitter, bounded in count,
  and for create-leg in time (:func:`create_leg_retry_policy`);
- other 4xx: never retry, the request itself is wrong.

What stops something the callee hears over the bot (stop_say, stop_play, stop_stream) and
hang-ups cannot wait: a 429 or 5xx on one is retried at once, tries a few tens of milliseconds
apart, for as long as retrying still helps (:data:`IN_CALL_RETRY_POLICY`: the greeting it
stops is a few seconds long), each try within the in-call reserve of the account's budget;
the Retry-After is meant for the other requests (a greeting over the bot for a Retry-After
of 30 s is a broken call, and five tries over 300 ms lose to a storm that fails half the
requests now and then: the chaos suite, 330 ms of greeting over the bot). What the callee waits for at the answer (the
greeting, the bot's stream) cannot wait a Retry-After either, a second of it is a second of
dead air: its first 429s are retried after the jitter alone, later ones wait as told
(:data:`AT_ANSWER_RETRY_POLICY`). :func:`action_retry_policy` says which applies.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dialstream.errors import LegsApiError, LegsApiRateLimited, LegsApiServerError
from dialstream.exotel.actions import ActionKind

__all__ = [
    "RetryPolicy", "DEFAULT_RETRY_POLICY", "IN_CALL_RETRY_POLICY", "IN_CALL_RETRY_FOR", "AT_ANSWER_RETRY_POLICY",
    "exponential_backoff", "create_leg_retry_policy", "action_retry_policy",
]  # fmt: skip


def exponential_backoff(attempt: int, base: float, cap: float) -> float:
    """``base * 2**attempt`` seconds, at most ``cap``: the wait before retry ``attempt`` (from 0)."""
    return min(cap, base * 2 ** min(attempt, 62))


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before retrying a failed Legs API call.

    ``give_up_after`` (seconds) bounds the retries by time instead of only by count: the
    call is retried until it has been failing that long, the last wait ending right then.
    That is what a create-leg needs: a 5xx or a timeout is Exotel's trouble, not the
    contact's, so it is retried through an outage of up to ``give_up_after`` before the
    contact is failed, whatever the campaign's redial rules say.
    """

    max_retries: int = 6
    base_delay: float = 0.1  # seconds before the first retry of a 5xx
    max_delay: float = 5.0  # cap on one backoff wait
    rate_limit_jitter: float = 0.25  # seconds of spread added to Retry-After
    give_up_after: float | None = None  # seconds of failing after which no retry is made
    floor: float = 0.0  # share of the backoff always waited (0: full jitter; 0.5: "equal jitter")
    honour_retry_after: bool = True  # False: a 429 is retried after the jitter alone
    impatient_retries: int = 0  # the first this many 429s are retried after the jitter alone
    in_place: bool = False  # retried where it failed, at once (True), or sent back to wait its turn (a task's retry)

    def delay(
        self, error: LegsApiError, retries_so_far: int, rng: random.Random | None = None, *, failing_for: float = 0.0
    ) -> float | None:
        """Seconds to wait before the next try, or None when the call must not be retried.

        ``failing_for``: seconds since the call first failed (used with ``give_up_after``).
        """
        rng = rng or random
        if retries_so_far >= self.max_retries:
            return None
        if self.give_up_after is not None and failing_for >= self.give_up_after:
            return None
        if isinstance(error, LegsApiRateLimited):
            honour = self.honour_retry_after and retries_so_far >= self.impatient_retries
            wait = (error.retry_after if honour else 0.0) + rng.uniform(0, self.rate_limit_jitter)
        elif isinstance(error, LegsApiServerError):
            backoff = exponential_backoff(retries_so_far, self.base_delay, self.max_delay)
            wait = rng.uniform(self.floor * backoff, backoff)
        else:
            return None
        return wait if self.give_up_after is None else min(wait, self.give_up_after - failing_for)


DEFAULT_RETRY_POLICY = RetryPolicy()
# Stops and hang-ups: retried where they failed (not queued behind other tasks) for up to
# IN_CALL_RETRY_FOR seconds, 429s 0-50 ms apart, 5xx after up to 20, 40, then 50 ms (a few
# dozen tries; the count is a bound the time bound reaches first). Longer waits only lengthen
# the greeting over the bot: six 503s in a row, 20 ms doubling to 150 ms, took 390 ms.
IN_CALL_RETRY_FOR = 2.0
IN_CALL_RETRY_POLICY = RetryPolicy(
    max_retries=200, base_delay=0.02, max_delay=0.05, rate_limit_jitter=0.05, honour_retry_after=False,
    give_up_after=IN_CALL_RETRY_FOR, in_place=True,
)  # fmt: skip
_CANNOT_WAIT = frozenset({ActionKind.STOP_SAY, ActionKind.STOP_PLAY, ActionKind.STOP_STREAM, ActionKind.HANGUP})
# The greeting and the stream at the answer: four 429s retried 0-100 ms apart (a storm lets one
# through), then Retry-After as told (an account really over its budget is not hammered).
AT_ANSWER_RETRY_POLICY = RetryPolicy(rate_limit_jitter=0.1, impatient_retries=4)
_AT_ANSWER = frozenset({ActionKind.START_SAY, ActionKind.START_PLAY, ActionKind.START_STREAM})


def action_retry_policy(kind: ActionKind) -> RetryPolicy:
    """How a failed leg action of ``kind`` is retried: at once if it cannot wait (stops,
    hang-ups), quickly at first if the callee waits for it (the greeting, the stream)."""
    if kind in _CANNOT_WAIT:
        return IN_CALL_RETRY_POLICY
    return AT_ANSWER_RETRY_POLICY if kind in _AT_ANSWER else DEFAULT_RETRY_POLICY


def create_leg_retry_policy(give_up_after: float) -> RetryPolicy:
    """Create-leg's policy: 5xx and timeouts retried for ``give_up_after`` seconds, waits of
    0.5 s doubling to 8 s, each at least half its backoff (so the time bound, not a count of
    quick retries, is what ends them)."""
    retries = 20 + int(give_up_after / 4)  # the count a time-bound outage needs, with room to spare
    return RetryPolicy(max_retries=retries, base_delay=0.5, max_delay=8.0, give_up_after=give_up_after, floor=0.5)
