"""Event delivery to each leg's ``leg_event_endpoint`` over gRPC ``TriggerCallbackEvent``.

One :class:`LegQueue` per leg delivers that leg's events strictly in order (faults aside):
an event is retried (per-attempt timeout, ``attempts`` tries, as Exotel documents for its
HTTPS endpoint) before the next one is sent, and given up after the last attempt. Every
attempt's outcome lands in the event's :class:`EventRecord`, which the external-events
API and ``/sim/v1`` report. Event faults (duplicate, reorder, drop, delay) are applied here.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import grpc

from dialstream.exotel.proto import CallbackServiceStub, message_from_dict
from sim.clock import Clock, rfc3339
from sim.config import DeliveryPolicy
from sim.faults import EventFate, EventFaults

__all__ = ["EventRecord", "Deliverer", "LegQueue", "grpc_target"]


def grpc_target(endpoint: str) -> str:
    """``grpc://host:port`` -> ``host:port``."""
    return endpoint.removeprefix("grpc://").rstrip("/")


@dataclass(eq=False)
class EventRecord:
    """One emitted event and what became of its delivery."""

    event: dict[str, Any]
    emitted_at: float
    delivered: bool | None = None  # None while queued or in flight
    attempts: int = 0
    deliveries: int = 0  # successful deliveries; 2 when a duplicate got through
    error: str | None = None  # the last failed attempt's error
    endpoint_response: str | None = None  # the ack's message
    latency_ms: float | None = None  # emitted -> first acknowledgement
    updated_at: float | None = None
    fate: EventFate = EventFate()

    @property
    def name(self) -> str:
        return self.event["event_name"]

    def report(self) -> dict[str, Any]:
        return {
            "event_sid": self.event["event_sid"],
            "event_name": self.name,
            "action_sid": self.event["action_sid"],
            "emitted_at": self.emitted_at,
            "delivered": self.delivered,
            "attempts": self.attempts,
            "deliveries": self.deliveries,
            "error": self.error,
            "latency_ms": self.latency_ms,
            "faults": [name for name in ("duplicate", "reorder", "drop") if getattr(self.fate, name)]
            + (["delay"] if self.fate.delay_ms else []),
        }

    def external_event(self) -> dict[str, Any]:
        """An ``external_events[]`` item of ``GET /legs/{sid}/external-events``."""
        seconds, fraction = divmod(self.emitted_at, 1.0)
        return {
            "endpoint_response": bool(self.delivered),
            "error": self.error if not self.delivered else None,
            "date_created": rfc3339(self.emitted_at),
            "date_updated": rfc3339(self.updated_at or self.emitted_at),
            "event_info": {
                "event_sid": self.event["event_sid"],
                "event_type": self.event["event_type"],
                "event_name": self.name,
                "event_timestamp": {"seconds": int(seconds), "nanos": int(fraction * 1e9)},
                "action_sid": self.event["action_sid"],
                "action_custom_parameter": self.event["action_custom_parameter"],
                "data": self.event["event_data"],
            },
        }


class Deliverer:
    """Holds one gRPC channel per endpoint and every leg's queue, so stop() can close all."""

    def __init__(self, policy: DeliveryPolicy, faults: EventFaults, clock: Clock) -> None:
        self.policy = policy
        self.faults = faults
        self.clock = clock
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._queues: set[LegQueue] = set()

    def queue(self, endpoint: str, rng: random.Random) -> LegQueue:
        target = grpc_target(endpoint)
        if target not in self._channels:
            self._channels[target] = grpc.aio.insecure_channel(target)
        queue = LegQueue(self, CallbackServiceStub(self._channels[target]), rng)
        self._queues.add(queue)
        return queue

    def forget(self, queue: LegQueue) -> None:
        self._queues.discard(queue)

    async def close(self) -> None:
        """Abandon undelivered events and close every channel."""
        for queue in list(self._queues):
            await queue.cancel()
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


_CLOSE = object()  # sentinel: the leg ended, deliver what is queued and stop


class LegQueue:
    """The ordered delivery queue of one leg."""

    def __init__(self, deliverer: Deliverer, stub: CallbackServiceStub, rng: random.Random) -> None:
        self._deliverer = deliverer
        self._policy = deliverer.policy
        self._stub = stub
        self._rng = rng
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="sim-leg-delivery")

    def put(self, record: EventRecord) -> None:
        record.fate = self._deliverer.faults.draw(self._rng)
        self._queue.put_nowait(record)

    def close(self) -> None:
        """No more events for this leg: finish the queue, then release it."""
        self._queue.put_nowait(_CLOSE)

    async def drained(self) -> None:
        await asyncio.shield(self._task)

    async def cancel(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def _run(self) -> None:
        try:
            while (record := await self._queue.get()) is not _CLOSE:
                if record.fate.reorder:
                    # Hold the event back until its successor has gone out first.
                    try:
                        successor = await asyncio.wait_for(self._queue.get(), self._policy.reorder_hold_ms / 1000)
                    except TimeoutError:
                        successor = None
                    if successor is not None and successor is not _CLOSE:
                        await self._deliver(successor)
                    await self._deliver(record)
                    if successor is _CLOSE:
                        return
                    continue
                await self._deliver(record)
        finally:
            self._deliverer.forget(self)

    async def _deliver(self, record: EventRecord) -> None:
        if record.fate.delay_ms:
            await asyncio.sleep(record.fate.delay_ms / 1000)
        message = message_from_dict(record.event)
        clock = self._deliverer.clock
        for attempt in range(1, self._policy.attempts + 1):
            if attempt > 1:
                await asyncio.sleep(self._policy.retry_backoff_ms / 1000)
            record.attempts = attempt
            if attempt == 1 and record.fate.drop:
                # Lost in transit: the sender only learns it when its attempt times out.
                await asyncio.sleep(self._policy.attempt_timeout_s)
                record.error, record.updated_at = "DEADLINE_EXCEEDED: dropped in transit (fault)", clock.now()
                continue
            if await self._send(record, message):
                record.latency_ms = round((record.updated_at - record.emitted_at) * 1000.0, 3)
                if record.fate.duplicate:
                    await self._send(record, message)
                record.delivered = True  # only now: a report never shows a half-done duplicate
                return
        record.delivered = False

    async def _send(self, record: EventRecord, message: Any) -> bool:
        try:
            response = await self._stub.TriggerCallbackEvent(message, timeout=self._policy.attempt_timeout_s)
        except grpc.aio.AioRpcError as exc:
            record.error = f"{exc.code().name}: {exc.details()}"
            record.updated_at = self._deliverer.clock.now()
            return False
        record.deliveries += 1
        if record.deliveries == 1:
            record.endpoint_response = response.message
            record.updated_at = self._deliverer.clock.now()
        return True
