"""A worker bootstep that runs one daemon thread for as long as the worker runs.

Subclasses decide in ``start`` whether their node runs the loop and hand it to
:meth:`ThreadStep.start_thread`; the loop watches ``_stop``, which the worker's stop sets
before the thread is joined (briefly: it is a daemon, it never holds the worker up).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from celery import bootsteps

__all__ = ["ThreadStep"]


class ThreadStep(bootsteps.StartStopStep):
    """A bootstep owning one background thread (the timer and webhook sweepers)."""

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start_thread(self, loop: Callable[..., None], *args: Any, name: str) -> None:
        """Run ``loop(*args)`` on a daemon thread called ``name``."""
        self._thread = threading.Thread(target=loop, args=args, name=name, daemon=True)
        self._thread.start()

    def stop(self, worker: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
