"""Stopping ``dialstream up`` without losing calls: dialing stops first, calls in progress end.

A call whose events arrive while nothing listens has no final record until something looks
it up; so on Ctrl-C ``up`` stops its dial workers (no new call is placed; a contact already
taken goes back to its queue when its lease runs out), waits for the account's live calls
to end (their slots to be released), and only then stops the rest. A second Ctrl-C, or the
timeout, stops at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import redis

from dialstream.app.supervisor import Supervisor
from dialstream.state.slots import Slots

__all__ = ["drain_calls"]

_POLL = 0.5  # seconds between looks at the live calls


def drain_calls(
    supervisor: Supervisor,
    dial_workers: Iterable[str],
    slots: Slots,
    *,
    timeout: float,
    stop_now: threading.Event,
    say: Callable[[str], None],
) -> int:
    """Stop ``dial_workers``, then wait for live calls to end; returns the calls still live."""
    for name in dial_workers:
        supervisor.stop(name)
    deadline = time.monotonic() + timeout
    try:
        calls = slots.counts().account_calls
        if calls:
            say(f"dialing stopped; waiting up to {timeout:g}s for {calls} call(s) in progress to end (Ctrl-C again: stop now)")
        while calls and time.monotonic() < deadline and not stop_now.wait(_POLL):
            calls = slots.counts().account_calls
    except redis.RedisError as exc:
        say(f"cannot see the calls in progress ({exc}); stopping now")
        return -1
    if calls:
        say(f"{calls} call(s) still in progress: events they send while dialstream is down may be lost")
    return calls
