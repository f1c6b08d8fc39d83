"""The worker's broker consumer: Celery's, back on the broker within a second of Redis's return.

Celery retries a lost broker connection with kombu's defaults, 2 s then 4 s, 6 s ... apart:
after a Redis restart of 2-3 s a worker took up its queue again 3-6 s after Redis was back
(the chaos suite: calls answered during the outage heard 3-6 s of silence, their greeting and
stream tasks waiting on the queue). Here it retries 0.2 s apart, growing to at most 1 s.
"""

from __future__ import annotations

import functools
from typing import Any

from celery.worker.consumer import Consumer

__all__ = ["QuickReconnectConsumer", "RECONNECT_FIRST", "RECONNECT_MAX"]

RECONNECT_FIRST = 0.2  # seconds before the first retry of a lost broker connection, and the step
RECONNECT_MAX = 1.0  # the longest wait between two retries


class QuickReconnectConsumer(Consumer):
    """Celery's consumer, retrying its broker connection every 0.2-1 s (``worker_consumer``)."""

    def ensure_connected(self, conn: Any) -> Any:
        intervals = {"interval_start": RECONNECT_FIRST, "interval_step": RECONNECT_FIRST, "interval_max": RECONNECT_MAX}
        conn.ensure_connection = functools.partial(conn.ensure_connection, **intervals)
        return super().ensure_connected(conn)
