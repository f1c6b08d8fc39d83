"""Webhook delivery by a real Celery worker on the ``webhooks`` queue to a real HTTP receiver:
signed per Standard Webhooks (checked by its authors' verifier), retried while the receiver is
down, all delivered once it is back; dead-lettered after the schedule and replayed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from dialstream.app import cli
from dialstream.app.stack import StackConfig, worker_argv
from dialstream.app.supervisor import ProcessSpec, Supervisor
from dialstream.broker.celery_app import WEBHOOKS_QUEUE
from dialstream.state.webhooks import Webhooks, call_completed
from tests.api.receiver import Receiver
from tests.utils import settings_free_env, wait_for

pytestmark = pytest.mark.e2e

DB = 15
SCHEDULE = "0.3,0.3,0.5,0.5,1,1,1,1,1,1,1,1"  # seconds: the hours of production, shrunk


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + f"/{DB}", decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def worker(client: redis.Redis, tmp_path) -> Iterator[None]:
    """One webhooks worker on the test's database, with the short retry schedule."""
    url = client.connection_pool.connection_kwargs
    env = settings_free_env()
    env.update(REDIS_URL=f"redis://{url['host']}:{url['port']}/{DB}", DIALSTREAM_WEBHOOK_RETRY_SCHEDULE=SCHEDULE, DIALSTREAM_WEBHOOK_TIMEOUT="2")
    with Supervisor(tmp_path / "logs", base_env=env) as supervisor:
        supervisor.start(ProcessSpec("webhooks-0", worker_argv(WEBHOOKS_QUEUE, "webhooks-0", StackConfig(concurrency=4)), ready_text=" ready."))
        supervisor.wait_ready()
        yield


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


def emit(client: redis.Redis, count: int) -> None:
    for i in range(count):
        call_completed(client, "camp", {"contact_id": f"r{i}", "leg_sid": f"leg-{i}", "attempt": 1, "outcome": "completed"})


def test_webhooks_sent_while_the_receiver_is_down_all_arrive_signed_once_it_is_back(client, worker, receiver):
    """Five call.completed emitted with the receiver down: each is retried, then all five arrive with valid signatures."""
    webhooks = Webhooks(client)
    receiver.secret = webhooks.add_endpoint(receiver.url).secret
    emit(client, 5)
    # Down long enough that every delivery failed at least twice.
    wait_for(lambda: all(int(client.hget(f"ds:wh:delivery:{d}", "attempts") or 0) >= 2 for d in client.zrange("ds:wh:due", 0, -1)), timeout=30)
    receiver.start()
    wait_for(lambda: len(receiver.messages) == 5, timeout=30)
    assert receiver.invalid == []
    assert sorted(m["data"]["leg_sid"] for m in receiver.messages.values()) == [f"leg-{i}" for i in range(5)]
    wait_for(lambda: webhooks.counts() == {"pending": 0, "dead": 0}, timeout=10)


def test_a_receiver_failing_every_attempt_dead_letters_and_replay_delivers(client, worker, receiver, monkeypatch, capsys):
    """HTTP 500 on every attempt of the schedule: the delivery is dead (dialstream webhook dead lists it); replayed
    with dialstream webhook replay once the receiver is fixed, it arrives with the same id."""
    webhooks = Webhooks(client)
    receiver.secret = webhooks.add_endpoint(receiver.url).secret
    receiver.status = 500
    receiver.start()
    emit(client, 1)
    wait_for(lambda: webhooks.counts()["dead"] == 1, timeout=60)
    (dead,) = webhooks.dead()
    assert dead.attempts == len(SCHEDULE.split(",")) + 1 and dead.last_error == "HTTP 500" and receiver.messages == {}
    receiver.status = 204
    kwargs = client.connection_pool.connection_kwargs
    monkeypatch.setenv("REDIS_URL", f"redis://{kwargs['host']}:{kwargs['port']}/{DB}")
    assert cli.main(["webhook", "dead"]) == 0 and dead.id in capsys.readouterr().out
    assert cli.main(["webhook", "replay"]) == 0 and "1 delivery(ies) due again" in capsys.readouterr().out
    wait_for(lambda: len(receiver.messages) == 1, timeout=30)
    assert list(receiver.messages) == [dead.msg_id] and receiver.invalid == []
