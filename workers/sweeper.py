"""A worker bootstep that fires due leg timers (``dialstream.state.timers``).

Every worker node runs one sweeper thread; the atomic pop hands each due timer to exactly
one of them, which applies it in place (most are no-ops costing one Redis round trip, so
they are not worth a Celery task each). So timers survive the death of the worker that
armed them, and firing them is spread over the fleet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from celery import bootsteps

from dialstream.settings import Settings
from dialstream.state.client import connect_settings
from dialstream.state.timers import TimerQueue

__all__ = ["TimerSweeper", "SWEEP_INTERVAL"]

log = logging.getLogger("dialstream.sweeper")

SWEEP_INTERVAL = 0.05  # seconds between polls when nothing was due: bounds timer lateness


class TimerSweeper(bootsteps.StartStopStep):
    """Polls the timer set and hands each due timer to ``fire`` (set by ``workers.tasks``)."""

    fire: Callable[[dict[str, Any]], None] | None = None

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, worker: Any) -> None:
        settings: Settings = worker.app.conf.dialstream_settings
        client = connect_settings(settings)
        self._thread = threading.Thread(target=self._run, args=(TimerQueue(client),), name="timer-sweeper", daemon=True)
        self._thread.start()

    def stop(self, worker: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _run(self, timers: TimerQueue) -> None:
        while not self._stop.is_set():
            try:
                due = timers.pop_due()
                for timer in due:
                    assert TimerSweeper.fire is not None
                    TimerSweeper.fire(timer)
            except Exception:  # noqa: BLE001 - a Redis hiccup must not kill the sweeper
                log.exception("timer sweep failed; retrying")
                due = []
            if not due:
                self._stop.wait(SWEEP_INTERVAL)
