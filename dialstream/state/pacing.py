"""The account's Legs API budget, shared by every worker on every machine, with priority.

Exotel allows 200 requests a minute per account and answers 429 beyond that. The budget is
a sliding window kept in Redis (``rate_limit.lua``): a sorted set of the times of the
requests granted in the last ``window`` seconds (plus a small latency guard). A request is
granted only if fewer than ``limit`` were granted in the window ending now, so no window
of that length ever holds more than ``limit`` grants. Time is the Redis server's (``TIME``
inside the script), never a worker's: machines with skewed clocks share one timeline.

Priority: in-call actions (start_stream, start_say, stop_say, hangup, ...) may use the whole
budget; a dial is granted only if it leaves a reserve for them::

    reserve = headroom + actions_per_call * (calls awaiting their actions, this one included)

"Calls awaiting actions" is a sorted set of call ids scored by expiry: a dial registers its
call when granted (``call_id=``); the worker settles it (:meth:`Pacer.call_settled`) once
the call needs no more budget from the reserve (its stream is up and its greeting stopped,
or it ended unanswered). Entries expire on their own, so a lost event cannot hold the
reserve forever, and adding or settling twice is harmless (Celery redelivers).

Key layout (``prefix`` defaults to ``ds``)::

    {prefix}:pacing:{account}:grants      sorted set: unique token -> server time of grant (us)
    {prefix}:pacing:{account}:awaiting    sorted set: call id -> expiry (server time, us)
    {prefix}:pacing:{account}:throttled   counter: 429 answers the account got all the same

Example::

    pacer = Pacer(client, settings.account_sid)
    grant = pacer.acquire(DIAL, timeout=2.0, call_id="camp:r12:1")
    if not grant:
        ...  # re-schedule the dial in grant.wait seconds instead of holding the worker
"""

from __future__ import annotations

import random
import secrets
import time
from typing import Any

import redis

from dialstream.domain.limits import Budget, Grant
from dialstream.state import keys
from dialstream.state.scripts import script

__all__ = ["Pacer", "ACTION", "DIAL", "DEFAULT_ACCOUNT"]

ACTION = "action"  # an in-call Legs API request: may use the whole budget
DIAL = "dial"  # create-leg: only what leaves the reserve for in-call actions
DEFAULT_ACCOUNT = "default"
_KINDS = (ACTION, DIAL)
_MIN_SLEEP = 0.001  # never spin: a wait of 0 means "now", but the slot is contended
_JITTER = 0.002  # spread waiters woken by the same freed slot


class Pacer:
    """One account's request budget over a synchronous Redis client; safe to share in a process."""

    def __init__(
        self, client: redis.Redis, account: str = DEFAULT_ACCOUNT, budget: Budget | None = None, *, prefix: str = "ds"
    ) -> None:
        self.redis = client
        self.budget = budget or Budget()
        self.grants_key = keys.pacing(account, "grants", prefix)
        self.awaiting_key = keys.pacing(account, "awaiting", prefix)
        self.throttled_key = keys.pacing(account, "throttled", prefix)
        self._rate_limit = script(client, "rate_limit.lua")

    def try_acquire(self, kind: str, *, call_id: str = "") -> Grant:
        """Take one request from the budget if ``kind`` may have it now; never blocks.

        ``call_id`` (dials only) registers the call as awaiting its in-call actions when the
        dial is granted, atomically with the grant, and counts it in the reserve it must leave.
        """
        return self._ask(kind, call_id=call_id, peek=False)

    def dial_room(self) -> tuple[int, float]:
        """(dials that could be granted now, one after the other; seconds until one could be
        when none can): a look that takes nothing, so a poller hands out no more dials than that."""
        budget = self.budget
        grant = self._ask(DIAL, call_id="", peek=True)
        # Dial k (from 0) is granted while used + k < limit - reserve - actions_per_call * (k + 1):
        # each dial also adds its own call's actions to the reserve.
        room = budget.limit - grant.used - grant.reserve - budget.actions_per_call
        if room > 0:
            return -(-room // (1 + budget.actions_per_call)), 0.0
        return 0, grant.wait or budget.enforced_window / budget.limit

    def _ask(self, kind: str, *, call_id: str, peek: bool) -> Grant:
        if kind not in _KINDS:
            raise ValueError(f"request kind {kind!r}: expected {ACTION!r} or {DIAL!r}")
        budget = self.budget
        granted, wait_us, now_us, used, reserve = self._rate_limit(
            keys=[self.grants_key, self.awaiting_key],
            args=[
                budget.limit,
                _us(budget.enforced_window),
                kind,
                secrets.token_hex(8),
                budget.actions_per_call,
                budget.headroom,
                call_id if kind == DIAL else "",
                _us(budget.awaiting_ttl),
                "1" if peek else "0",
            ],
        )
        if granted:
            return Grant(True, 0.0, int(now_us), int(used), int(reserve))
        # -1: dials are blocked by the reserve alone; come back after about one slot's time.
        wait = int(wait_us) / 1e6 if int(wait_us) >= 0 else budget.enforced_window / budget.limit
        return Grant(False, wait, int(now_us), int(used), int(reserve))

    def acquire(self, kind: str, timeout: float, *, call_id: str = "") -> Grant:
        """Wait up to ``timeout`` seconds for budget, sleeping as long as each answer says.

        Returns the refused grant at once when its wait exceeds the time left, so a worker
        can re-schedule the request rather than hold a process for most of a minute.
        """
        deadline = time.monotonic() + timeout
        while True:
            grant = self.try_acquire(kind, call_id=call_id)
            if grant.ok:
                return grant
            left = deadline - time.monotonic()
            if grant.wait > left:
                return grant
            time.sleep(min(left, max(grant.wait, _MIN_SLEEP) + random.uniform(0, _JITTER)))

    # Calls awaiting in-call actions (the reserve)

    def call_settled(self, call_id: str, *, client: Any = None) -> bool:
        """``call_id`` needs no more reserved budget (idempotent); True if it was counted.
        ``client`` may be a pipeline (the answer is then the pipeline's)."""
        return bool((client or self.redis).zrem(self.awaiting_key, call_id))

    def throttled(self, *, client: Any = None) -> int:
        """Count one 429 from the provider (there should be none); returns the count so far."""
        return int((client or self.redis).incr(self.throttled_key))

    def throttled_count(self) -> int:
        return int(self.redis.get(self.throttled_key) or 0)

    def used(self) -> int:
        """Requests granted in the window ending now (for metrics; two round trips)."""
        seconds, micros = self.redis.time()
        now_us = int(seconds) * 1_000_000 + int(micros)
        return int(self.redis.zcount(self.grants_key, f"({now_us - _us(self.budget.enforced_window)}", "+inf"))


def _us(seconds: float) -> int:
    return int(round(seconds * 1_000_000))
