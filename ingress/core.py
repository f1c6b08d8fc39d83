"""Accept a validated leg event: de-duplicate it, publish it, and only then acknowledge.

Transport-free: the gRPC servicer and the HTTP endpoint both call :meth:`EventIngress.accept`.
One Lua script (``dialstream/state/ingress_accept.lua``) does, atomically, in one round trip:

1. claim the ``event_sid`` (``SET NX`` with a TTL) - a duplicate is acknowledged but not
   published again;
2. push the event's Celery task onto the ``events`` queue (the broker is this Redis);
3. arm a rescue timer (``dialstream.state.timers``), so the event is applied even if the worker
   that takes it dies.

Either all of it happened or none: an error raises, the sender retries, and the retry is
published rather than mistaken for a duplicate. An event is never acknowledged and lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import Counter, Histogram

from dialstream.errors import EventPublishError
from dialstream.exotel.events import LEG_CONNECTING, LEG_RINGING, LegEvent
from dialstream.state import keys
from dialstream.state.scripts import script
from dialstream.state.timers import event_timer

__all__ = ["EventIngress", "TaskMessage", "ACCEPTED", "DUPLICATE"]

ACCEPTED = "accepted"
DUPLICATE = "duplicate"

# The broker message that runs the event task for a payload (dialstream.broker.messages.task_message).
TaskMessage = Callable[[dict[str, Any]], str]

# Events that change nothing a callee hears or a report shows need no rescue.
_PROGRESS_ONLY = frozenset({LEG_CONNECTING, LEG_RINGING})

EVENTS_RECEIVED = Counter("dialstream_ingress_events_total", "Leg events received, by result", ["result"])
PUBLISH_SECONDS = Histogram(
    "dialstream_ingress_publish_seconds",
    "Time to de-duplicate and publish one event (one Redis round trip)",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
)


class EventIngress:
    """De-duplicate and publish leg events onto the broker queue ``queue``."""

    def __init__(
        self, redis_client: aioredis.Redis, task_message: TaskMessage, *, queue: str, dedupe_ttl: int, rescue_after: float
    ) -> None:
        self._task_message = task_message
        self._queue = queue
        self._ttl = dedupe_ttl
        self._rescue_after = rescue_after
        self._accept = script(redis_client, "ingress_accept.lua")

    async def accept(self, event: LegEvent) -> str:
        """Return ``ACCEPTED`` or ``DUPLICATE``; raise :class:`EventPublishError` if the
        event could not be published (the sender must retry)."""
        payload = event.to_dict()
        timer = "" if event.event_name in _PROGRESS_ONLY else event_timer(payload)
        started = time.perf_counter()
        try:
            published = await self._accept(
                keys=[keys.event(event.event_sid), self._queue, keys.timers()],
                args=[event.leg_sid, self._ttl, self._task_message(payload), timer, self._rescue_after],
            )
        except Exception as exc:  # any Redis failure means we cannot promise anything
            EVENTS_RECEIVED.labels("error").inc()
            raise EventPublishError(f"could not publish event {event.event_sid}: {exc}") from exc
        if not published:
            EVENTS_RECEIVED.labels(DUPLICATE).inc()
            return DUPLICATE
        PUBLISH_SECONDS.observe(time.perf_counter() - started)
        EVENTS_RECEIVED.labels(ACCEPTED).inc()
        return ACCEPTED
