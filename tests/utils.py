"""Helpers for tests: one time unit, scaled on slow machines.

Every timeout in a test is a multiple of ``MS``; set ``DIALSTREAM_TESTS_TIMEOUT_FACTOR``
(default 1) to stretch them all on a loaded machine instead of editing numbers.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import TypeVar

import redis

MS = 0.001 * float(os.environ.get("DIALSTREAM_TESTS_TIMEOUT_FACTOR", "1"))

T = TypeVar("T")


def settings_free_env() -> dict[str, str]:
    """This process's environment without any dialstream or Exotel setting: what a child process
    of a test starts from, so the shell's settings never leak into it."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DIALSTREAM_", "EXOTEL_"))}


def database_url(redis_url: str, db: int) -> str:
    """The session's Redis server (``redis_url``) with database ``db``: test modules keep their data apart by database."""
    return redis_url.rsplit("/", 1)[0] + f"/{db}"


def emptied(url: str) -> str:
    """``url``, once everything in its database is deleted."""
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    return url


def _polled(predicate: Callable[[], T], deadline: float, failure: str) -> T | None:
    """``predicate()`` if truthy; None while there is time to poll again; ``failure`` raised after ``deadline``."""
    value = predicate()
    if value:
        return value
    if time.monotonic() > deadline:
        raise AssertionError(failure)
    return None


def wait_for(predicate: Callable[[], T], timeout: float, interval: float = 10 * MS) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    failure = f"condition not met within {timeout:.2f}s: {predicate}"
    while (value := _polled(predicate, deadline, failure)) is None:
        time.sleep(interval)
    return value


async def until(predicate: Callable[[], T], timeout: float = 5_000 * MS, what: str = "", interval: float = 5 * MS) -> T:
    """:func:`wait_for` inside an event loop: polls without blocking it."""
    deadline = time.monotonic() + timeout
    failure = f"not met within {timeout:.1f}s: {what or predicate}"
    while (value := _polled(predicate, deadline, failure)) is None:
        await asyncio.sleep(interval)
    return value
