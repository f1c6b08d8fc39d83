"""The account's request budget: a token bucket refilled at ``per_minute / 60`` per second.

Pure: the caller passes the current (monotonic) time. A full bucket holds one minute's
budget, so a client may burst up to ``per_minute`` requests and then proceeds at the
documented average rate, which is how "200 calls per minute" behaves to a client.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["TokenBucket", "Decision"]


@dataclass(frozen=True)
class Decision:
    """The outcome of one request, with what the ``X-RateLimit-*`` headers report."""

    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int  # whole seconds until one token is available (0 when allowed)
    reset_after_s: int  # whole seconds until the bucket is full again


class TokenBucket:
    def __init__(self, per_minute: int, now: float) -> None:
        self.limit = per_minute
        self._rate = per_minute / 60.0
        self._tokens = float(per_minute)
        self._updated = now

    def take(self, now: float) -> Decision:
        """Spend one token if there is one."""
        self._tokens = min(float(self.limit), self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        allowed = self._tokens >= 1.0
        if allowed:
            self._tokens -= 1.0
        missing = 0.0 if allowed else 1.0 - self._tokens
        return Decision(
            allowed=allowed,
            limit=self.limit,
            remaining=int(self._tokens),
            retry_after_s=math.ceil(missing / self._rate) if missing else 0,
            reset_after_s=math.ceil((self.limit - self._tokens) / self._rate),
        )
