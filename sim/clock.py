"""Wall-clock timestamps derived from the monotonic clock.

Every moment the sandbox records is ``anchor + time.monotonic()``: differences between
two moments are exact monotonic durations (immune to NTP steps), yet each value reads as
ordinary Unix seconds so it can be compared with timestamps taken by other processes.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

__all__ = ["Clock", "rfc3339"]


class Clock:
    """Monotonic-derived wall time; one per sandbox so all its figures share an anchor."""

    def __init__(self) -> None:
        self._anchor = time.time() - time.monotonic()

    def now(self) -> float:
        """Unix seconds, advancing with the monotonic clock."""
        return self._anchor + time.monotonic()

    def wall(self, monotonic: float) -> float:
        """Unix seconds for a ``time.monotonic()`` / ``loop.time()`` value."""
        return self._anchor + monotonic

    def monotonic(self, wall: float) -> float:
        """The ``loop.time()`` value of a wall time from :meth:`now` (for ``call_at``)."""
        return wall - self._anchor


def rfc3339(seconds: float | None) -> str | None:
    """``2026-01-15T10:30:00.529Z`` (millisecond precision, UTC), as Exotel stamps events."""
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
