"""The campaign engine's pacer loop: a worker bootstep that decides when to dial.

Every worker node that serves the ``dial`` queue runs a :class:`DialPollerStep` thread; one
of them at a time (a Redis lock, taken over within seconds if its node dies) runs
:class:`DialPoller` rounds. Each round looks at the room left (the account's API budget,
the account's and each campaign's call and stream caps, minus the dials already handed out
and not yet placed), takes at most that many due contacts from the running campaigns' queues,
in turn so that no campaign starves another, and enqueues a ``dial_contact`` task for each.
The task then takes the real slot and budget grant (atomic, so a round that saw stale counts
costs a short wait, never a broken limit).

Back-pressure: each round also reads how many leg events and in-call actions wait in the
``events`` queue. Past half of ``DIALSTREAM_EVENT_BACKLOG`` fewer dials go out, and none from
it on (``dialstream.domain.dialing.backlog_share``): the calls already up keep their promises
(a stop on time, a stream at once) before a new call adds its events to the wait. While every
dial is held back, the campaigns' status says so (``keys.dials_held``).

A taken contact is leased (``dialstream.domain.redial``): if the task is lost with its worker, the
contact is due again when the lease runs out. Nothing sleeps in a Celery countdown.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from celery import bootsteps
from redis.exceptions import LockError

from dialstream.broker.celery_app import DIAL_CONTACT, DIAL_QUEUE, EVENTS_QUEUE, queue_keys
from dialstream.broker.messages import task_argsrepr
from dialstream.domain.dialing import backlog_share
from dialstream.settings import EngineConfig, Settings
from dialstream.state import keys
from dialstream.state.client import connect_settings
from dialstream.state.dial_queue import DialItem, DialQueue
from dialstream.state.pacing import Pacer
from dialstream.state.slots import Slots
from dialstream.state.store import Store
from workers.runtime import campaign_clock

__all__ = ["DialPoller", "DialPollerStep", "POLL_INTERVAL"]

log = logging.getLogger("dialstream.poller")

POLL_INTERVAL = 0.05  # seconds between rounds that dialled nothing: bounds a due contact's wait
MAX_IDLE_WAIT = 1.0  # the longest nap, even when the budget says "not for a while"
BATCH = 100  # contacts taken from one campaign per round, at most
LEADER_TTL = 3.0  # seconds a dead poller's lock outlives it
EVENTS_KEYS = queue_keys(EVENTS_QUEUE)  # the events queue's lists, one per priority: its backlog is their sum
HELD_TTL = 3  # seconds "dials held back" stays in the status after the last round that held them


class DialPoller:
    """One round at a time of taking due contacts and handing them to ``send``. Celery-free."""

    def __init__(
        self,
        client: redis.Redis,
        account: str,
        engine: EngineConfig,
        send: Callable[[list[DialItem]], None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self.engine = engine
        self.store = Store(client)
        self.queue = DialQueue(client)
        self.slots = Slots(client, account)
        self.pacer = Pacer(client, account, engine.budget)
        self.send = send
        self.clock = clock
        self._turn = 0
        self._held = False  # the last round held every dial back for the events backlog

    def poll(self) -> tuple[int, float]:
        """One round: returns (contacts handed out, seconds until another round is worth it)."""
        campaigns = self.store.running_campaigns()
        if not campaigns:
            return 0, POLL_INTERVAL
        self._turn = (self._turn + 1) % len(campaigns)
        campaigns = campaigns[self._turn :] + campaigns[: self._turn]
        budget, wait = self.pacer.dial_room()
        now = self.clock()
        pipe = self.redis.pipeline(transaction=False)
        for key in EVENTS_KEYS:
            pipe.llen(key)
        for campaign_id in campaigns:
            # Live leases only: an expired one (its worker died) goes back to the queue on the next pop.
            pipe.zcount(self.queue.keys(campaign_id)[1], f"({now!r}", "+inf")
        counted = [int(n) for n in pipe.execute()]
        backlog, leased = sum(counted[: len(EVENTS_KEYS)]), counted[len(EVENTS_KEYS) :]
        counts = [self.slots.counts(campaign_id) for campaign_id in campaigns]
        handed_out = sum(leased)  # taken, not yet placed: each will use a slot and a grant
        budget -= handed_out
        share = backlog_share(backlog, self.engine.event_backlog)
        if share < 1:
            budget = min(budget, int(BATCH * share))
        self._note_backlog(held=share == 0, backlog=backlog)
        account_room = _room(self.engine.max_calls, counts[0].account_calls + handed_out)  # account-wide in every count
        stream_room = _room(self.engine.max_streams, counts[0].streams + handed_out)
        sent = 0
        for campaign_id, in_flight, count in zip(campaigns, leased, counts):
            config = self.store.campaign(campaign_id)
            if config is None:
                continue
            room = min(
                budget,
                account_room,
                stream_room,
                _room(config.max_concurrent, count.campaign_calls + in_flight),
                self.engine.max_dialing - in_flight,
                BATCH,
            )
            if room <= 0:
                continue
            items = self.queue.pop_due(campaign_id, now, room, lease=self.engine.dial_lease)
            if items:
                self.send(items)
            sent += len(items)
            budget, account_room, stream_room = budget - len(items), account_room - len(items), stream_room - len(items)
        if sent:
            return sent, 0.0
        return 0, min(MAX_IDLE_WAIT, max(POLL_INTERVAL, wait if budget <= 0 else POLL_INTERVAL))


    def _note_backlog(self, *, held: bool, backlog: int) -> None:
        """Keep the campaigns' status told while the events backlog holds every new dial back."""
        if held:
            if not self._held:
                log.warning("new dials held back: %d leg events and in-call actions wait for the events workers", backlog)
            self.redis.set(keys.dials_held(), backlog, ex=HELD_TTL)
        elif self._held:
            self.redis.delete(keys.dials_held())
        self._held = held


def _room(cap: int, used: int) -> int:
    """Room under a cap (0: no cap)."""
    return cap - used if cap else BATCH


class DialPollerStep(bootsteps.StartStopStep):
    """Runs the poller on a node that serves the ``dial`` queue, while it holds the leader lock."""

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, worker: Any) -> None:
        if DIAL_QUEUE not in worker.app.amqp.queues.consume_from:
            return  # an events node: its threads are for in-call work
        self._thread = threading.Thread(target=self._run, args=(worker.app,), name="dial-poller", daemon=True)
        self._thread.start()

    def stop(self, worker: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _run(self, app: Any) -> None:
        settings: Settings = app.conf.dialstream_settings
        client = connect_settings(settings)

        def send(items: list[DialItem]) -> None:
            # One round trip for the whole batch; Flower shows the contact, not the lease token.
            with app.producer_or_acquire() as producer, producer.batch():
                for item in items:
                    args = [item.campaign_id, item.contact_id, item.attempt, item.token]
                    argsrepr = task_argsrepr(DIAL_CONTACT, args)
                    app.send_task(DIAL_CONTACT, args=args, queue=DIAL_QUEUE, producer=producer, argsrepr=argsrepr)

        poller = DialPoller(client, settings.account_sid, settings.engine, send, clock=campaign_clock(app))
        leader = client.lock(keys.dialer_leader(), timeout=LEADER_TTL, blocking=False, thread_local=False)
        leading = False
        while not self._stop.is_set():
            wait = LEADER_TTL / 3
            try:
                if leading:
                    leader.reacquire()  # raises if the lock ran out meanwhile (a long stall)
                leading = leading or leader.acquire(blocking=False)
                if leading:
                    _, wait = poller.poll()
            except LockError:
                leading = False
                log.warning("dial poller lost its lock; another node's poller carries on")
            except Exception:  # noqa: BLE001 - a Redis or broker hiccup must not kill the poller
                log.exception("dial poll failed; retrying")
                wait = MAX_IDLE_WAIT
            if wait:
                self._stop.wait(wait)
        if leading:
            with contextlib.suppress(LockError):  # it may have run out during the last nap
                leader.release()
