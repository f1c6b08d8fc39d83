"""Event delivery to each leg's (or bridge's) event endpoint, in order, with Exotel's retries.

One :class:`LegQueue` per leg delivers that leg's events strictly in order (faults aside):
an event gets up to ``attempts`` attempts (per-attempt timeout, attempts started
``attempt_interval_s`` apart, as Exotel documents for its HTTPS endpoint: "up to 3
attempts ... ~1 second") before the next one is sent, and is given up after the last
attempt or at once when the endpoint's answer is not worth retrying (a 4xx other than
408/429; see :mod:`sim.transport`). Every attempt's outcome lands in the event's
:class:`~sim.event.EventRecord`, which the external-events API and ``/sim/v1`` report.
Event faults (duplicate, reorder, drop, delay, lose) are applied here.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from sim.clock import Clock
from sim.config import DeliveryPolicy
from sim.event import EventRecord
from sim.faults import EventFaults
from sim.transport import Attempt, GrpcTransport, HttpsEndpoint, HttpsTransport, TlsMaterial, Transport
from sim.validation import endpoint_kind

__all__ = ["Deliverer", "LegQueue"]


class Deliverer:
    """Holds one transport per endpoint and every leg's queue, so close() can close all."""

    def __init__(self, policy: DeliveryPolicy, faults: EventFaults, clock: Clock) -> None:
        self.policy = policy
        self.faults = faults
        self.clock = clock
        self._tls = TlsMaterial.load(policy)  # a missing file fails here, when the sandbox opens
        self._transports: dict[str, Transport] = {}
        self._https: HttpsTransport | None = None
        self._queues: set[LegQueue] = set()

    def queue(self, endpoint: str, rng: random.Random) -> LegQueue:
        queue = LegQueue(self, self._transport(endpoint), rng)
        self._queues.add(queue)
        return queue

    def _transport(self, endpoint: str) -> Transport:
        transport = self._transports.get(endpoint)
        if transport is None:
            if endpoint_kind(endpoint).startswith("http"):
                if self._https is None:
                    self._https = HttpsTransport(self._tls)
                transport = HttpsEndpoint(endpoint, self._https)
            else:
                transport = GrpcTransport(endpoint, self._tls)
            self._transports[endpoint] = transport
        return transport

    def forget(self, queue: LegQueue) -> None:
        self._queues.discard(queue)

    async def close(self) -> None:
        """Abandon undelivered events and close every channel and session."""
        for queue in list(self._queues):
            await queue.cancel()
        for transport in self._transports.values():
            await transport.close()
        self._transports.clear()
        if self._https is not None:
            await self._https.close()
            self._https = None


_CLOSE = object()  # sentinel: the leg ended, deliver what is queued and stop


class LegQueue:
    """The ordered delivery queue of one leg (or bridge)."""

    def __init__(self, deliverer: Deliverer, transport: Transport, rng: random.Random) -> None:
        self._deliverer = deliverer
        self._policy = deliverer.policy
        self._transport = transport
        self._rng = rng
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="sim-leg-delivery")

    def put(self, record: EventRecord) -> None:
        record.fate = self._deliverer.faults.draw(self._rng, record.name)
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
        loop = asyncio.get_running_loop()
        for attempt in range(1, self._policy.attempts + 1):
            started, at = loop.time(), self._deliverer.clock.now()
            record.attempts = attempt
            if record.fate.lose:
                # Lost for good: no attempt gets through (the endpoint unreachable throughout); Exotel gives up after its last.
                outcome = Attempt(False, error="UNAVAILABLE: lost in transit for good (fault)", retry=True)
            elif attempt == 1 and record.fate.drop:
                # Lost in transit: the sender only learns it when its attempt times out.
                await asyncio.sleep(self._policy.attempt_timeout_s)
                outcome = Attempt(False, error="DEADLINE_EXCEEDED: dropped in transit (fault)", retry=True)
            else:
                outcome = await self._transport.send(record.event, attempt)
            self._note(record, attempt, at, outcome)
            if outcome.ok:
                if record.fate.duplicate:
                    duplicate = await self._transport.send(record.event, attempt + 1)
                    self._note(record, attempt + 1, self._deliverer.clock.now(), duplicate)
                record.delivered = True  # only now: a report never shows a half-done duplicate
                return
            if not outcome.retry:
                break
            if attempt < self._policy.attempts:
                await asyncio.sleep(max(0.0, started + self._policy.attempt_interval_s - loop.time()))
        record.delivered = False

    def _note(self, record: EventRecord, attempt: int, at: float, outcome: Attempt) -> None:
        """Record one attempt; the first acknowledgement sets the response and the latency."""
        now = self._deliverer.clock.now()
        entry: dict[str, Any] = {"attempt": attempt, "at": at, "ok": outcome.ok}
        if outcome.ok:
            entry["response"] = outcome.response
            record.deliveries += 1
            if record.deliveries == 1:
                record.endpoint_response = outcome.response
                record.latency_ms = round((now - record.emitted_at) * 1000.0, 3)
        else:
            entry["error"] = record.error = outcome.error
        record.outcomes.append(entry)
        record.updated_at = now
