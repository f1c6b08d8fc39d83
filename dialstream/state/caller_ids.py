"""Each exophone's calls today in Redis, and the caller ID for the next dial.

The choice is :func:`dialstream.domain.caller_id.choose_caller_id`; this module feeds it the
counts and takes the chosen number's call atomically (``caller_id_take.lua``), so two workers
can never push an exophone past its daily cap: the one that loses the last call chooses again.

Key (one per exophone and day, the day at the exophone's home)::

    ds:exophone:{exophone}:calls:{YYYY-MM-DD}     calls placed from it that day (expires in 2 days)

Example::

    choice = CallerIds(client).pick(settings.caller_id_pool(campaign), contact.phone, time.time())
    exophone = choice.exophone if choice else None    # None: every exophone is at its cap today
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

from dialstream.domain.caller_id import CallerIdChoice, CallerIdPool, choose_caller_id, exophone_day
from dialstream.state import keys
from dialstream.state.scripts import script

__all__ = ["CallerIds", "COUNTER_TTL", "count_keys", "used_counts"]

COUNTER_TTL = 2 * 24 * 3600  # a day's count outlives the day in every zone


class CallerIds:
    """Daily call counts per exophone, over a synchronous Redis client."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._take = script(client, "caller_id_take.lua")

    def used_today(self, exophones: Sequence[str], now: float) -> dict[str, int]:
        """Calls placed today from each of ``exophones``."""
        return used_counts(exophones, self.redis.mget(count_keys(exophones, now)))

    def take(self, exophone: str, now: float, daily_cap: int) -> bool:
        """Count a call on ``exophone`` today; False (nothing counted) when it is at its cap."""
        key = keys.exophone_calls(exophone, exophone_day(exophone, now))
        return int(self._take(keys=[key], args=[daily_cap, COUNTER_TTL])) > 0

    def pick(self, pool: CallerIdPool, callee: str, now: float, *, used: dict[str, int] | None = None) -> CallerIdChoice | None:
        """The caller ID for a call to ``callee`` now, its call counted; None when every
        exophone of the pool is at its cap today. ``used``: the pool's counts if the caller
        read them already (in a pipeline of its own: :func:`count_keys`), else they are read."""
        for _ in pool.numbers:  # each lost race leaves one number fewer under its cap
            choice = choose_caller_id(pool, callee, used if used is not None else self.used_today(pool.numbers, now))
            if choice is None or self.take(choice.exophone, now, pool.daily_cap):
                return choice
            used = None  # lost the race for that number: read the counts again
        return None


def count_keys(exophones: Sequence[str], now: float) -> list[str]:
    """The counters of ``exophones``' calls today, for an MGET in the caller's pipeline."""
    return [keys.exophone_calls(n, exophone_day(n, now)) for n in exophones]


def used_counts(exophones: Sequence[str], counts: Sequence[bytes | str | None]) -> dict[str, int]:
    """Calls today per exophone from the MGET of :func:`count_keys`."""
    return {n: int(c or 0) for n, c in zip(exophones, counts)}
