"""Accept a validated leg event: de-duplicate it, publish it, and only then acknowledge.

Transport-free: the gRPC servicer and the HTTP endpoint both call :meth:`EventIngress.accept`.
The order of the steps is the point:

1. claim the ``event_sid`` in Redis (``SET NX`` with a TTL) - a duplicate is acknowledged
   but not published again; the same round trip arms a rescue timer (``dialstream.timers``)
   so the event is applied even if the worker that takes it dies;
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
from dialstream.events import LEG_CONNECTING, LEG_RINGING, LegEvent
from dialstream.lua import script
from dialstream.store import keys
from dialstream.timers import TIMERS_KEY, event_timer

__all__ = ["EventIngress", "Publisher", "ACCEPTED", "DUPLICATE"]

log = logging.getLogger("dialstream.ingress")

ACCEPTED = "accepted"
DUPLICATE = "duplicate"

Publisher = Callable[[dict[str, Any]], None]

# Events that change nothing a callee hears or a report shows need no rescue.
_PROGRESS_ONLY = frozenset({LEG_CONNECTING, LEG_RINGING})

EVENTS_RECEIVED = Counter("dialstream_ingress_events_total", "Leg events received, by result", ["result"])
PUBLISH_SECONDS = Histogram(
    "dialstream_ingress_publish_seconds",
    "Time to publish one event to the broker",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
)


class EventIngress:
    """De-duplicate and publish leg events. ``publish`` is blocking broker I/O; it runs in
    a small thread pool so the event loop never waits on it."""

    def __init__(
        self,
        redis_client: aioredis.Redis,
        publish: Publisher,
        *,
        dedupe_ttl: int,
        rescue_after: float,
        publish_threads: int = 4,
    ) -> None:
        self._redis = redis_client
        self._publish = publish
        self._ttl = dedupe_ttl
        self._rescue_after = rescue_after
        self._arm_timer = script(redis_client, "timers_add.lua")
        self._executor = ThreadPoolExecutor(max_workers=publish_threads, thread_name_prefix="publish")

    async def accept(self, event: LegEvent) -> str:
        """Return ``ACCEPTED`` or ``DUPLICATE``; raise :class:`EventPublishError` if the
        event could not be published (the sender must retry)."""
        key = keys.event(event.event_sid)
        payload = event.to_dict()
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.set(key, event.leg_sid, nx=True, ex=self._ttl)
            if event.event_name not in _PROGRESS_ONLY:
                # Same round trip: if the worker that takes this event dies, another re-applies it.
                await self._arm_timer(keys=[TIMERS_KEY], args=[event_timer(payload), self._rescue_after], client=pipe)
            claimed = (await pipe.execute())[0]
        except Exception as exc:  # any Redis failure means we cannot promise anything
            EVENTS_RECEIVED.labels("error").inc()
            raise EventPublishError(f"de-duplication store unavailable: {exc}") from exc
        if not claimed:
            EVENTS_RECEIVED.labels(DUPLICATE).inc()
            return DUPLICATE
        started = time.perf_counter()
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._publish, payload)
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
