"""A 3 s Redis outage at the ingress: how many leg events are lost with the spool, and without it
(an honest ``UNAVAILABLE``), when they are delivered as Exotel documents (3 attempts about 1 s
apart: the sandbox's own delivery, :mod:`sim.delivery`, with its default policy).

A real ingress (its own process) on a durable embedded Valkey gets one event per leg, 40 legs a
second for 9 s; Valkey is stopped 3 s in and started again 3 s later. An event is lost when every
attempt was refused (Exotel gives up on it), or when it was acknowledged but never reached the
events queue. Nothing else runs: the queue keeps what was published, to be counted.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis

from dialstream.app.embedded_redis import EmbeddedRedis, free_port
from dialstream.app.supervisor import ProcessSpec, Supervisor
from dialstream.broker.celery_app import EVENTS_QUEUE
from dialstream.domain.campaign import LegTag
from dialstream.exotel import events as ev
from dialstream.exotel.events import LegEvent
from dialstream.settings import SANDBOX_ACCOUNT_SID, Settings
from sim.clock import Clock
from sim.config import DeliveryPolicy
from sim.delivery import Deliverer
from sim.event import EventRecord
from sim.faults import EventFaults

__all__ = ["run"]

RATE = 40  # legs (one event each) a second
SENDING_S = 9.0
OUTAGE_AT_S = 3.0
OUTAGE_S = 3.0
_SECRET = "outage-bench"


def run() -> dict[str, Any]:
    return {"outage_s": OUTAGE_S, "spool": _measure(spool=True), "unavailable": _measure(spool=False)}


def _measure(*, spool: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ds-outage-") as tmp:
        broker = EmbeddedRedis(port=free_port(), data_dir=Path(tmp) / "valkey")
        port = free_port()
        spool_dir = str(Path(tmp) / "spool") if spool else ""  # empty: no spool, UNAVAILABLE while Redis is down
        env = {"REDIS_URL": broker.url, "DIALSTREAM_TAG_SECRET": _SECRET, "DIALSTREAM_INGRESS_SPOOL_DIR": spool_dir}
        argv = Supervisor.python("-m", "ingress", "--bind", f"127.0.0.1:{port}")
        with broker, Supervisor(Path(tmp) / "logs") as supervisor:
            supervisor.start(ProcessSpec("ingress", argv, Settings.from_env(env).to_env(), ready_port=port))
            supervisor.wait_ready()
            records, down_for = asyncio.run(_deliver(f"grpc://127.0.0.1:{port}", broker))
            acknowledged = {r.event["event_sid"] for r in records if r.delivered}
            queued = _settled_queue(broker.url, acknowledged)
    refused = [r for r in records if not r.delivered]
    return {
        "redis_down_s": round(down_for, 2),
        "events": len(records),
        "needed_a_retry": sum(1 for r in records if r.delivered and r.attempts > 1),
        "refused_for_good": len(refused),
        "acknowledged_not_queued": len(acknowledged - queued),
        "lost": len(refused) + len(acknowledged - queued),
    }


async def _deliver(endpoint: str, broker: EmbeddedRedis) -> tuple[list[EventRecord], float]:
    """Send the legs' events through the sandbox's delivery while Valkey goes down and up;
    (their records, how long Valkey was unreachable)."""
    clock = Clock()
    deliverer = Deliverer(DeliveryPolicy(), EventFaults(), clock)
    tag = LegTag("outage", "c1").encode(_SECRET.encode())
    records: list[EventRecord] = []
    queues = []
    outage = asyncio.create_task(_outage(broker))
    started = time.monotonic()
    for n in range(int(RATE * SENDING_S)):
        await asyncio.sleep(max(0.0, started + n / RATE - time.monotonic()))
        leg_sid = f"Loutage{uuid.uuid4().hex[:20]}00000"
        sid, now, account = uuid.uuid4().hex, clock.now(), SANDBOX_ACCOUNT_SID
        event = LegEvent(sid, ev.LIFECYCLE, ev.LEG_RINGING, now, leg_sid, account_sid=account, custom_param=tag)
        record = EventRecord(event=event.to_dict(), emitted_at=clock.now())
        queue = deliverer.queue(endpoint, random.Random(n))
        queue.put(record)
        queue.close()
        queues.append(queue)
        records.append(record)
    down_for = await outage
    for queue in queues:
        await queue.drained()
    await deliverer.close()
    return records, down_for


async def _outage(broker: EmbeddedRedis) -> float:
    """Stop Valkey for OUTAGE_S; returns how long it was unreachable (its restart included)."""
    await asyncio.sleep(OUTAGE_AT_S)
    down = time.monotonic()
    await asyncio.to_thread(broker.stop)
    await asyncio.sleep(OUTAGE_S)
    await asyncio.to_thread(broker.start)
    return time.monotonic() - down


def _settled_queue(url: str, acknowledged: set[str], *, within: float = 30.0) -> set[str]:
    """The event sids on the events queue once every acknowledged one is there (the spool
    replays on its own), or whatever is there after ``within`` seconds."""
    client = redis.Redis.from_url(url, decode_responses=True)
    deadline = time.monotonic() + within
    try:
        while True:
            queued = {_event_sid(message) for message in client.lrange(EVENTS_QUEUE, 0, -1)}
            if acknowledged <= queued or time.monotonic() > deadline:
                return queued
            time.sleep(0.2)
    finally:
        client.close()


def _event_sid(message: str) -> str:
    """The event sid of one Celery message of the events queue (its body: args, kwargs, embed)."""
    return json.loads(base64.b64decode(json.loads(message)["body"]))[0][0]["event_sid"]
