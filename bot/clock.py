"""The bot process's one pacing timer, shared by every stream.

Streams ask to be flushed at a deadline; the clock keeps the deadlines in a heap behind
a single loop timer set to the earliest, and flushes every stream due when it fires. So
a stream between two chunks costs no task, timer or wake-up of its own.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Protocol

__all__ = ["PacingClock", "Flushable"]


class Flushable(Protocol):
    """What the clock calls back: a stream whose deadline ``when`` came."""

    def due(self, when: float) -> None: ...


class PacingClock:
    """Deadlines of every stream behind one loop timer.

    A stream that moves its deadline leaves the old entry behind; the stream ignores it
    when it comes up (see :meth:`bot.stream.Stream.due`).
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._heap: list[tuple[float, int, Flushable]] = []
        self._order = itertools.count()  # breaks ties, so streams are never compared
        self._timer: asyncio.TimerHandle | None = None

    def at(self, when: float, stream: Flushable) -> None:
        """Call ``stream.due(when)`` once the loop's clock reaches ``when``."""
        heapq.heappush(self._heap, (when, next(self._order), stream))
        first = self._heap[0][0]
        if self._timer is None or first < self._timer.when():
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(first, self._fire)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._heap.clear()

    def _fire(self) -> None:
        self._timer = None
        now = self._loop.time()
        due = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap))
        # Streams re-arm through at() while being flushed, which sets the next timer.
        for when, _, stream in due:
            stream.due(when)
        if self._heap and self._timer is None:
            self._timer = self._loop.call_at(self._heap[0][0], self._fire)
