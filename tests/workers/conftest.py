"""Fixtures of the worker tests that run a task or a timer in this process, on the suite's Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Task

from dialstream.settings import Settings
from dialstream.state import keys
from dialstream.state.store import Store
from workers import runtime as worker_runtime_module
from workers.runtime import Runtime, app, runtime

DB = 13  # the database of the worker tests that run tasks in this process


@pytest.fixture
def worker_runtime(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """The worker process's clients on this suite's Redis, so a task runs here with ``.apply()``."""
    own = app.conf.dialstream_settings
    # The Legs API at a closed local port: no test here may reach a real one.
    environ = {"REDIS_URL": redis_url.rsplit("/", 1)[0] + f"/{DB}", "EXOTEL_API_BASE_URL": "http://127.0.0.1:9"}
    app.conf.dialstream_settings = Settings.from_env(environ)
    monkeypatch.setattr(worker_runtime_module, "_runtime", None)
    clients = runtime()
    try:
        yield clients
    finally:
        app.conf.dialstream_settings = own
        clients.legs.close()
        clients.store.redis.close()


@pytest.fixture
def rival_wins_first_run(monkeypatch: pytest.MonkeyPatch) -> Callable[[Task], None]:
    """Call it with a task: from then on, another writer wins every compare-and-set of the
    task's first run (ConcurrentUpdate), and its retries commit as usual."""

    def install(task: Task) -> None:
        save_leg = Store.save_leg

        def save_after_a_rival(self: Store, record: Any, expected_version: int, event_sid: str = "") -> int:
            if task.request.retries == 0:
                self.redis.hincrby(keys.leg(record.leg_sid), "version", 1)  # the rival's write lands first
            return save_leg(self, record, expected_version, event_sid)

        monkeypatch.setattr(Store, "save_leg", save_after_a_rival)

    return install
