"""Leg events the ingress acknowledged while Redis was down, kept on local disk until published.

Exotel retries a failed delivery only briefly (three attempts about a second apart), so
answering ``UNAVAILABLE`` through a Redis restart of a few seconds loses events for good. With a
spool the ingress acknowledges an event only once it is durable: published to Redis, or
written here (one file per event, fsynced, then renamed into place, and the directory
fsynced) and published as soon as Redis answers again. A killed ingress replays what it
spooled when it starts again. The spool is bounded: when it holds ``max_events``, the
ingress answers ``UNAVAILABLE`` as before, and Exotel retries.

Replaying publishes through the same atomic accept, so an event Exotel also redelivered
after Redis came back is published once (de-duplicated by ``event_sid``).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["EventSpool", "SpoolFull"]

_SUFFIX = ".json"


class SpoolFull(Exception):
    """The spool holds ``max_events`` already."""


class EventSpool:
    """A directory of events, each in its own file named in arrival order."""

    def __init__(self, directory: str | os.PathLike[str], *, max_events: int = 10_000) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_events = max_events
        self._count = sum(1 for _ in self._files())

    def __len__(self) -> int:
        return self._count

    def append(self, payload: dict[str, Any]) -> None:
        """Make ``payload`` durable (on disk when this returns).

        Raises:
            SpoolFull: ``max_events`` are waiting already.
            OSError: the disk refused it (the caller must not acknowledge the event).
        """
        if self._count >= self.max_events:
            raise SpoolFull(f"{self._count} events are waiting in {self.directory}")
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        partial = self.directory / f".{name}.tmp"
        with open(partial, "wb") as file:
            file.write(json.dumps(payload, separators=(",", ":")).encode())
            file.flush()
            os.fsync(file.fileno())
        partial.rename(self.directory / f"{name}{_SUFFIX}")
        _fsync_directory(self.directory)
        self._count += 1

    def pending(self) -> Iterator[tuple[Path, dict[str, Any]]]:
        """The spooled events, oldest first; an unreadable file is skipped (and left for a person)."""
        for path in self._files():
            try:
                yield path, json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue

    def remove(self, path: Path) -> None:
        """Forget an event once it is published."""
        path.unlink(missing_ok=True)
        self._count = max(0, self._count - 1)

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob(f"*{_SUFFIX}"))


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
