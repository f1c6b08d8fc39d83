"""Task events cost a worker CPU on every task, so a worker sends them only while someone
watches: Flower asks for them (``enable_events``, every 5 s), a stack that runs Flower starts
its workers with them on. What is seen is seen by Celery's own event receiver, as Flower sees it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from dialstream.app.stack import StackConfig, worker_argv
from dialstream.app.supervisor import ProcessSpec, Supervisor
from dialstream.broker.celery_app import EVENTS_QUEUE, HANDLE_LEG_EVENT, create_app
from dialstream.settings import Settings
from tests.utils import database_url, emptied, settings_free_env, wait_for

pytestmark = pytest.mark.e2e

DB = 12


class Watcher:
    """Celery's event receiver (Flower's) in a thread: every task event it gets, by task id."""

    def __init__(self, app: Any, client: redis.Redis) -> None:
        self.events: list[dict[str, Any]] = []
        self._connection = app.connection_for_read()
        self._receiver = app.events.Receiver(self._connection, handlers={"*": self._got})
        patterns = client.pubsub_numpat()
        self._thread = threading.Thread(target=self._receiver.capture, kwargs={"limit": None, "wakeup": False}, daemon=True)
        self._thread.start()
        # kombu subscribes (PSUBSCRIBE) on its first poll: events published before are not seen.
        wait_for(lambda: client.pubsub_numpat() > patterns, timeout=10)

    def _got(self, event: dict[str, Any]) -> None:
        if event["type"].startswith("task-"):
            self.events.append(event)

    def of(self, task_id: str) -> list[str]:
        return [event["type"] for event in self.events if event.get("uuid") == task_id]

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self._receiver.should_stop = True
        self._thread.join(10)
        self._connection.release()


@pytest.fixture
def url(redis_url: str) -> str:
    return emptied(database_url(redis_url, DB))


def run_worker(url: str, tmp_path: Any, config: StackConfig) -> Supervisor:
    env = settings_free_env()
    supervisor = Supervisor(tmp_path / "logs", base_env={**env, "REDIS_URL": url})
    supervisor.start(ProcessSpec("events-0", worker_argv(EVENTS_QUEUE, "events-0", config), ready_text=" ready."))
    supervisor.wait_ready()
    return supervisor


@pytest.fixture
def app(url: str) -> Iterator[Any]:
    app = create_app(Settings.from_env({"REDIS_URL": url}))
    yield app
    app.close()


def run_task(app: Any, client: redis.Redis) -> str:
    """A task the worker runs and drops at once (its payload is not a leg event); its id, once it ran."""
    task_id = uuid.uuid4().hex
    app.send_task(HANDLE_LEG_EVENT, args=({},), task_id=task_id)
    wait_for(lambda: client.llen(EVENTS_QUEUE) == 0 and client.hlen("unacked") == 0, timeout=20)
    return task_id


def test_a_worker_sends_no_task_events_until_flower_asks_for_them(url, app, tmp_path):
    """Without a watcher a task leaves no event; after the broadcast Flower sends every 5 s, each task does."""
    client = redis.Redis.from_url(url)
    with run_worker(url, tmp_path, StackConfig(concurrency=2)):
        with Watcher(app, client) as watcher:
            unwatched = run_task(app, client)
            app.control.enable_events()  # what Flower broadcasts while it runs
            watched = wait_for(lambda: (task_id := run_task(app, client)) and watcher.of(task_id) and task_id, timeout=20)
            wait_for(lambda: "task-succeeded" in watcher.of(watched), timeout=10)
    client.close()
    assert watcher.of(unwatched) == []
    assert {"task-received", "task-started", "task-succeeded"} <= set(watcher.of(watched))


def test_a_stack_with_flower_runs_its_workers_with_task_events_from_the_first_task(url, app, tmp_path):
    """Flower alone would ask 5 s after it starts: the calls of those 5 s would be missing from it."""
    client = redis.Redis.from_url(url)
    with run_worker(url, tmp_path, StackConfig(concurrency=2, flower=True)):
        with Watcher(app, client) as watcher:
            first = run_task(app, client)
            wait_for(lambda: "task-succeeded" in watcher.of(first), timeout=10)
    client.close()
    assert watcher.of(first)[0] == "task-received"
