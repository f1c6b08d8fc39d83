"""The ingress's spool: events acknowledged while Redis is down are durable on disk and published when it is back."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import grpc
import pytest
import redis
import redis.asyncio as aioredis

from dialstream.app.embedded_redis import EmbeddedRedis, free_port
from dialstream.app.supervisor import ProcessSpec, Supervisor
from dialstream.broker.celery_app import EVENTS_QUEUE, NEW_CALL_PRIORITY, queue_key, queue_keys
from dialstream.domain.campaign import LegTag
from dialstream.errors import EventPublishError
from dialstream.exotel import events as ev
from dialstream.exotel.events import LegEvent
from dialstream.exotel.proto import CallbackServiceStub, message_from_dict
from dialstream.settings import SANDBOX_ACCOUNT_SID, Settings
from ingress.core import ACCEPTED, DUPLICATE, SPOOLED, EventIngress
from ingress.spool import EventSpool, SpoolFull
from tests.utils import wait_for

QUEUE = "test:spool:events"
ANSWERS = queue_key(QUEUE, NEW_CALL_PRIORITY)  # where a leg_answered waits
SECRET = "spool-secret"
TAG = LegTag("camp", "c1").encode(SECRET.encode())


def event() -> LegEvent:
    return LegEvent(
        uuid.uuid4().hex, ev.LIFECYCLE, ev.LEG_ANSWERED, time.time(), f"Lspool{uuid.uuid4().hex[:8]}",
        account_sid=SANDBOX_ACCOUNT_SID, custom_param=TAG,
    )  # fmt: skip


def ingress_over(url: str, spool: EventSpool | None) -> tuple[EventIngress, aioredis.Redis]:
    client = aioredis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    ingress = EventIngress(
        client, lambda payload, priority: json.dumps(payload), queue=QUEUE, account_sid=SANDBOX_ACCOUNT_SID,
        tag_secret=SECRET, dedupe_ttl=60, rescue_after=30, spool=spool,
    )  # fmt: skip
    return ingress, client


def run(url: str, spool: EventSpool | None, *events: LegEvent, replay: bool = False) -> list[object]:
    async def go() -> list[object]:
        ingress, client = ingress_over(url, spool)
        try:
            results: list[object] = [await ingress.accept(e) for e in events]
            if replay:
                results.append(await ingress.replay())
            return results
        finally:
            await client.aclose()

    return asyncio.run(go())


@pytest.fixture(autouse=True)
def clean(redis_client: redis.Redis):
    yield
    redis_client.delete(QUEUE, ANSWERS)


def test_a_spooled_event_is_on_disk_whole_and_read_back_in_order(tmp_path: Path):
    """append writes one file per event; pending returns them oldest first; remove forgets one."""
    spool = EventSpool(tmp_path, max_events=5)
    for n in range(3):
        spool.append({"n": n})
    assert len(spool) == 3 and [p["n"] for _, p in spool.pending()] == [0, 1, 2]
    first, _ = next(spool.pending())
    spool.remove(first)
    assert [p["n"] for _, p in EventSpool(tmp_path).pending()] == [1, 2]  # a new process sees the same


def test_a_half_written_file_is_not_an_event(tmp_path: Path):
    """A write cut by a crash leaves a temporary file, never a partial event."""
    (tmp_path / ".123-abcd.tmp").write_bytes(b'{"n": ')
    assert list(EventSpool(tmp_path).pending()) == []


def test_the_spool_is_bounded(tmp_path: Path):
    """At max_events, append raises SpoolFull and writes nothing."""
    spool = EventSpool(tmp_path, max_events=1)
    spool.append({"n": 0})
    with pytest.raises(SpoolFull):
        spool.append({"n": 1})
    assert len(list(tmp_path.iterdir())) == 1


def test_without_redis_an_event_is_spooled_and_published_when_redis_answers(tmp_path, redis_url, redis_client):
    """Redis unreachable: SPOOLED (acknowledged); replay over a Redis that answers publishes it once."""
    spool = EventSpool(tmp_path)
    answered = event()
    assert run(f"redis://127.0.0.1:{free_port()}/0", spool, answered) == [SPOOLED]
    assert redis_client.llen(ANSWERS) == 0 and len(spool) == 1
    assert run(redis_url, spool, replay=True) == [1]
    assert len(spool) == 0
    assert [json.loads(m)["event_sid"] for m in redis_client.lrange(ANSWERS, 0, -1)] == [answered.event_sid]
    # Exotel's own retry of the same event after Redis came back is a duplicate, not a second task.
    assert run(redis_url, spool, answered) == [DUPLICATE]


def test_without_a_spool_redis_down_is_an_error_the_sender_retries(redis_url):
    """No spool configured: EventPublishError (UNAVAILABLE at the door), as before."""
    with pytest.raises(EventPublishError):
        run(f"redis://127.0.0.1:{free_port()}/0", None, event())


def test_a_full_spool_refuses_rather_than_acknowledging(tmp_path):
    """Spool full and Redis down: EventPublishError, so the event is never acknowledged and lost."""
    spool = EventSpool(tmp_path, max_events=1)
    spool.append({"placeholder": True})
    with pytest.raises(EventPublishError, match="spool"):
        run(f"redis://127.0.0.1:{free_port()}/0", spool, event())


def test_the_ingress_process_acknowledges_through_a_redis_restart_and_loses_nothing(tmp_path):
    """A real ingress: Redis stopped, events sent and acknowledged, Redis started again on the same
    port and data: every event reaches the queue, each once."""
    broker = EmbeddedRedis(port=free_port())
    port = free_port()
    env = Settings.from_env(
        {"REDIS_URL": broker.url, "DIALSTREAM_TAG_SECRET": SECRET, "DIALSTREAM_INGRESS_SPOOL_DIR": str(tmp_path / "spool")}
    ).to_env()
    sent = [event() for _ in range(5)]
    with broker, Supervisor(tmp_path / "logs") as supervisor:
        supervisor.start(ProcessSpec("ingress", Supervisor.python("-m", "ingress", "--bind", f"127.0.0.1:{port}"), env, ready_port=port))
        supervisor.wait_ready()
        client = redis.Redis.from_url(broker.url, decode_responses=True)
        broker.stop()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = CallbackServiceStub(channel)
            answers = [stub.TriggerCallbackEvent(message_from_dict(e.to_dict()), timeout=10).message for e in sent]
        assert answers == [SPOOLED] * 5
        broker.start()
        queued = wait_for(lambda: _queued(client, sent), timeout=20)
        assert sorted(queued) == sorted(e.event_sid for e in sent)
        client.close()


def _queued(client: redis.Redis, sent: list[LegEvent]) -> list[str] | None:
    try:
        messages = [m for key in queue_keys(EVENTS_QUEUE) for m in client.lrange(key, 0, -1)]
    except redis.RedisError:
        return None
    sids = {e.event_sid for e in sent}
    found = [sid for sid in (_event_sid(m) for m in messages) if sid in sids]
    return found if len(found) == len(sent) else None


def _event_sid(message: str) -> str:
    import base64

    body = json.loads(message)["body"]
    return json.loads(base64.b64decode(body))[0][0]["event_sid"]


def test_accepted_is_what_a_reachable_redis_gives(tmp_path, redis_url, redis_client):
    """With Redis up the spool is not touched."""
    spool = EventSpool(tmp_path)
    assert run(redis_url, spool, event()) == [ACCEPTED]
    assert len(spool) == 0
