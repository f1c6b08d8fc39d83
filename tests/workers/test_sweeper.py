"""The timer sweeper against a real Redis: every due timer is fired, whatever another one does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from dialstream.state.timers import TimerQueue, leg_timer
from workers.sweeper import sweep


@pytest.fixture
def timers(redis_client: redis.Redis) -> Iterator[TimerQueue]:
    """A timer set of this test's own."""
    queue = TimerQueue(redis_client, key=f"t{uuid.uuid4().hex[:12]}:timers")
    yield queue
    redis_client.delete(queue.key)


def test_a_timer_that_raises_does_not_drop_the_rest_of_its_batch(timers: TimerQueue):
    """The first due timer raises when fired: the others of the same batch are fired all the same."""
    timers.arm(leg_timer("camp", "L1", "broken"), -1)  # due first
    for timer_id in ("deadline", "heartbeat"):
        timers.arm(leg_timer("camp", "L1", timer_id), 0)
    fired: list[str] = []

    def fire(timer: dict[str, Any]) -> None:
        if timer["timer"] == "broken":
            raise RuntimeError("firing failed")
        fired.append(timer["timer"])

    sweep(timers, fire)
    assert sorted(fired) == ["deadline", "heartbeat"]
