"""A worker bootstep that fires due leg timers (``dialstream.state.timers``).

Every worker node runs one sweeper thread; the atomic claim hands each due timer to one of
them at a time, which applies it in place (most are no-ops costing one Redis round trip, so
they are not worth a Celery task each) and then acks it. So timers survive the death of the
worker that armed them, and of the one firing them (its claim's lease runs out and another
sweeper fires the timer), and firing them is spread over the fleet. Firing is idempotent:
a timer fired twice (a sweeper that stalled past its lease) does no harm.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from dialstream.settings import Settings
from dialstream.state.client import connect_settings
from dialstream.state.timers import TimerQueue
from workers.thread_step import ThreadStep

__all__ = ["TimerSweeper", "sweep", "SWEEP_INTERVAL", "LATER"]

log = logging.getLogger("dialstream.sweeper")

SWEEP_INTERVAL = 0.05  # seconds between polls when nothing was due: bounds timer lateness
LATER = "later"  # what a fire returns to leave its timer claimed: due again when the claim's lease runs out


class TimerSweeper(ThreadStep):
    """Polls the timer set and hands each due timer to ``fire`` (set by ``workers.tasks``)."""

    fire: Callable[[dict[str, Any]], Any] | None = None

    def start(self, worker: Any) -> None:
        settings: Settings = worker.app.conf.dialstream_settings
        client = connect_settings(settings)
        self.start_thread(self._run, TimerQueue(client), name="timer-sweeper")

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
    """Claim the timers due now (one batch) and fire each on its own: one that fails (or
    answers :data:`LATER`) is left claimed, due again when its lease runs out, and the rest
    of the batch still fire. Those fired are acked together. Returns how many were due."""
    claims = timers.claim_due()
    fired = []
    for claim in claims:
        try:
            if fire(claim.timer) == LATER:
                continue
        except Exception:  # noqa: BLE001 - the other timers are failover deadlines and slot heartbeats
            # Kind and leg only: an event timer holds the event, with the callee's number.
            leg = claim.timer.get("leg") or claim.timer.get("event", {}).get("leg_sid")
            log.exception("%s timer of leg %s failed; it fires again after its lease", claim.timer.get("kind"), leg)
        else:
            fired.append(claim)
    timers.ack(fired)
    return len(claims)
