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

__all__ = ["TimerSweeper", "sweep", "SWEEP_INTERVAL"]

log = logging.getLogger("dialstream.sweeper")

SWEEP_INTERVAL = 0.05  # seconds between polls when nothing was due: bounds timer lateness


class TimerSweeper(bootsteps.StartStopStep):
    """Polls the timer set and hands each due timer to ``fire`` (set by ``workers.tasks``)."""

    fire: Callable[[dict[str, Any]], Any] | None = None

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
        assert TimerSweeper.fire is not None
        while not self._stop.is_set():
            try:
                due = sweep(timers, TimerSweeper.fire)
            except Exception:  # noqa: BLE001 - a Redis hiccup must not kill the sweeper
                log.exception("timer sweep failed; retrying")
                due = 0
            if not due:
                self._stop.wait(SWEEP_INTERVAL)


def sweep(timers: TimerQueue, fire: Callable[[dict[str, Any]], Any]) -> int:
    """Fire the timers due now (one batch), each on its own: one that fails is logged and
    the rest of the batch still fire. Returns how many were due."""
    due = timers.pop_due()
    for timer in due:
        try:
            fire(timer)
        except Exception:  # noqa: BLE001 - the other timers are failover deadlines and slot heartbeats
            # Kind and leg only: an event timer holds the event, with the callee's number.
            leg = timer.get("leg") or timer.get("event", {}).get("leg_sid")
            log.exception("%s timer of leg %s failed", timer.get("kind"), leg)
    return len(due)
