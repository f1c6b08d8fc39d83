"""Bot audio queued for the callee on one stream: Exotel's playout buffer, without I/O.

Exotel buffers what a bot sends and plays it in real time. Times are the caller's
monotonic seconds (``loop.time()``). A chunk starts when everything before it has played
(or when it arrives, if the buffer ran dry), a ``mark`` is due when the audio before it
has played, and ``clear`` drops every chunk that has not started playing: the one
playing finishes ("the Clear command only removes audio that hasn't started playing yet").
:func:`echo_marks` is the loop that sends each mark back once it is due.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

__all__ = ["Playout", "echo_marks"]


class Playout:
    def __init__(self, delay_s: float = 0.0) -> None:
        self._delay = delay_s  # receive -> audible for a chunk arriving at an idle buffer
        self._chunks: deque[tuple[float, float]] = deque()  # (start, end), not yet fully played
        self._marks: deque[tuple[float, str]] = deque()  # (due, name), in due order
        self._end = 0.0

    def push_audio(self, now: float, seconds: float) -> tuple[float, float]:
        """Queue a chunk; returns the interval over which it will play."""
        start = max(now + self._delay, self._end)
        self._end = start + seconds
        self._chunks.append((start, self._end))
        self._forget_played(now)
        return start, self._end

    def push_mark(self, now: float, name: str) -> float:
        """Queue a mark; returns when it is due (now, if nothing is left to play)."""
        due = max(now, self._end)
        self._marks.append((due, name))
        return due

    def next_mark_due(self) -> float | None:
        return self._marks[0][0] if self._marks else None

    def due_marks(self, now: float) -> list[str]:
        """Names of the marks whose audio has played, removed from the buffer."""
        names = []
        while self._marks and self._marks[0][0] <= now:
            names.append(self._marks.popleft()[1])
        return names

    def clear(self, now: float) -> tuple[float, list[str]]:
        """Drop unplayed audio. Returns (when the audio still playing ends, marks dropped)."""
        self._forget_played(now)
        playing = [chunk for chunk in self._chunks if chunk[0] <= now]
        kept_until = playing[-1][1] if playing else now
        self._chunks = deque(playing)
        self._end = kept_until
        dropped = [name for due, name in self._marks if due > kept_until]
        self._marks = deque(mark for mark in self._marks if mark[0] <= kept_until)
        return kept_until, dropped

    def _forget_played(self, now: float) -> None:
        while self._chunks and self._chunks[0][1] <= now:
            self._chunks.popleft()


async def echo_marks(playout: Playout, changed: asyncio.Event, echo: Callable[[str], Awaitable[None]]) -> None:
    """Forever: ``echo(name)`` each mark of ``playout`` once it is due.

    ``changed`` is set by whoever pushes a mark or clears, so that a new earliest due time
    is noticed before the current wait ends.
    """
    loop = asyncio.get_running_loop()
    while True:
        changed.clear()
        due = playout.next_mark_due()
        timeout = None if due is None else max(0.0, due - loop.time())
        try:
            await asyncio.wait_for(changed.wait(), timeout)
        except TimeoutError:
            pass
        for name in playout.due_marks(loop.time()):
            await echo(name)
