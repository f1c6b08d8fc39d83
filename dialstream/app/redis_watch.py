"""``dialstream up`` watching its Redis: one line when it becomes unreachable, one when it is back.

The components retry on their own (Celery reconnects, the ingress answers UNAVAILABLE so
Exotel retries); what the person running ``up`` needs is to know that it happened and for
how long, not a connection error per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

__all__ = ["RedisWatch"]


class RedisWatch:
    """Pings Redis on each :meth:`check`; says something only when reachability changes."""

    def __init__(self, client: redis.Redis, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.clock = clock
        self.down_since: float | None = None

    def check(self) -> str | None:
        """A line when Redis was just lost or just came back, else None."""
        try:
            self.client.ping()
        except redis.RedisError as exc:
            if self.down_since is not None:
                return None
            self.down_since = self.clock()
            return f"redis is unreachable ({type(exc).__name__}: {exc}); the components retry until it is back"
        if self.down_since is None:
            return None
        lost, self.down_since = self.clock() - self.down_since, None
        return f"redis is back after {lost:.1f}s"
