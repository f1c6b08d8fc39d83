"""Retry policy for Legs API calls. Pure: the caller supplies the randomness.

- 429: wait what the server said (Retry-After), plus a little jitter so that every worker
  that was told the same number does not come back in the same millisecond;
- 5xx, timeouts, connection errors: exponential backoff with full jitter, bounded;
- other 4xx: never retry, the request itself is wrong.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dialstream.errors import LegsApiError, LegsApiRateLimited, LegsApiServerError

__all__ = ["RetryPolicy", "DEFAULT_RETRY_POLICY", "exponential_backoff"]


def exponential_backoff(attempt: int, base: float, cap: float) -> float:
    """``base * 2**attempt`` seconds, at most ``cap``: the wait before retry ``attempt`` (from 0)."""
    return min(cap, base * 2 ** min(attempt, 62))


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before retrying a failed Legs API call."""

    max_retries: int = 6
    base_delay: float = 0.1  # seconds before the first retry of a 5xx
    max_delay: float = 5.0  # cap on one backoff wait
    rate_limit_jitter: float = 0.25  # seconds of spread added to Retry-After

    def delay(self, error: LegsApiError, retries_so_far: int, rng: random.Random | None = None) -> float | None:
        """Seconds to wait before the next try, or None when the call must not be retried."""
        rng = rng or random
        if retries_so_far >= self.max_retries:
            return None
        if isinstance(error, LegsApiRateLimited):
            return error.retry_after + rng.uniform(0, self.rate_limit_jitter)
        if isinstance(error, LegsApiServerError):
            return rng.uniform(0, exponential_backoff(retries_so_far, self.base_delay, self.max_delay))
        return None


DEFAULT_RETRY_POLICY = RetryPolicy()
