"""Accept a validated leg event: de-duplicate it, publish it, and only then acknowledge.

Transport-free: the gRPC servicer and the HTTP endpoint both call :meth:`EventIngress.accept`.
The order of the steps is the point:

1. claim the ``event_sid`` in Redis (``SET NX`` with a TTL) - a duplicate is acknowledged
   but not published again;
2. publish the event as a Celery task on the ``events`` queue;
3. if publishing failed, release the claim and raise, so the sender's retry is published
   rather than mistaken for a duplicate. An event is never acknowledged and lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import Counter, Histogram

from dialstream.errors import EventPublishError
from dialstream.events import LegEvent
from dialstream.store import keys

__all__ = ["EventIngress", "Publisher", "ACCEPTED", "DUPLICATE"]

log = logging.getLogger("dialstream.ingress")

ACCEPTED = "accepted"
DUPLICATE = "duplicate"

Publisher = Callable[[dict[str, Any]], None]

EVENTS_RECEIVED = Counter("dialstream_ingress_events_total", "Leg events received, by result", ["result"])
PUBLISH_SECONDS = Histogram(
    "dialstream_ingress_publish_seconds",
    "Time to publish one event to the broker",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
)


class EventIngress:
    """De-duplicate and publish leg events. ``publish`` is blocking broker I/O; it runs in
    a small thread pool so the event loop never waits on it."""

    def __init__(self, redis_client: aioredis.Redis, publish: Publisher, *, dedupe_ttl: int, publish_threads: int = 4) -> None:
        self._redis = redis_client
        self._publish = publish
        self._ttl = dedupe_ttl
        self._executor = ThreadPoolExecutor(max_workers=publish_threads, thread_name_prefix="publish")

    async def accept(self, event: LegEvent) -> str:
        """Return ``ACCEPTED`` or ``DUPLICATE``; raise :class:`EventPublishError` if the
        event could not be published (the sender must retry)."""
        key = keys.event(event.event_sid)
        try:
            claimed = await self._redis.set(key, event.leg_sid, nx=True, ex=self._ttl)
        except Exception as exc:  # any Redis failure means we cannot promise anything
            EVENTS_RECEIVED.labels("error").inc()
            raise EventPublishError(f"de-duplication store unavailable: {exc}") from exc
        if not claimed:
            EVENTS_RECEIVED.labels(DUPLICATE).inc()
            return DUPLICATE
        started = time.perf_counter()
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._publish, event.to_dict())
        except Exception as exc:
            EVENTS_RECEIVED.labels("error").inc()
            await self._release(key)
            raise EventPublishError(f"could not publish event {event.event_sid}: {exc}") from exc
        PUBLISH_SECONDS.observe(time.perf_counter() - started)
        EVENTS_RECEIVED.labels(ACCEPTED).inc()
        return ACCEPTED

    async def _release(self, key: str) -> None:
        try:
            await self._redis.delete(key)
        except Exception as exc:  # noqa: BLE001
            # Redis is failing too; until the claim expires a retry would look like a duplicate.
            log.error("could not release de-duplication claim %s: %s", key, exc)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
