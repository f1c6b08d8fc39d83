"""The timer sweeper against a real Redis: every due timer is fired, whatever another one does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from dialstream.state.timers import TimerQueue, leg_timer
from tests.utils import wait_for
from workers.sweeper import sweep

LEASE = 0.3  # seconds a claimed timer stays claimed (short: the tests wait for it to run out)


class WorkerDied(BaseException):
    """The sweeper's worker dies while firing (nothing after this line runs, as under SIGKILL)."""


@pytest.fixture
def timers(redis_client: redis.Redis) -> Iterator[TimerQueue]:
    """A timer set of this test's own."""
    queue = TimerQueue(redis_client, key=f"t{uuid.uuid4().hex[:12]}:timers", lease=LEASE)
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


def test_a_timer_whose_sweeper_died_while_firing_it_is_fired_by_another_after_the_lease(redis_client: redis.Redis, timers: TimerQueue):
    """A sweeper dies firing a timer: another sweeper fires it once its lease runs out, then acks it, so it never fires again."""
    timers.arm(leg_timer("camp", "L1", "start_stream#1"), 0)

    def die(timer: dict[str, Any]) -> None:
        raise WorkerDied

    with pytest.raises(WorkerDied):
        sweep(timers, die)
    other = TimerQueue(redis_client, key=timers.key, lease=LEASE)  # another worker node's sweeper
    fired: list[str] = []
    assert sweep(other, lambda timer: fired.append(timer["timer"])) == 0  # still claimed by the dead one
    wait_for(lambda: sweep(other, lambda timer: fired.append(timer["timer"])), timeout=10)
    assert fired == ["start_stream#1"]
    assert redis_client.zcard(timers.key) == 0  # acked: gone for good


def test_a_timer_that_raised_is_fired_again_after_its_lease(timers: TimerQueue):
    """A timer whose firing raised is not acked: it is due again once its lease runs out."""
    timers.arm(leg_timer("camp", "L1", "fallback"), 0)
    attempts: list[str] = []

    def fail_once(timer: dict[str, Any]) -> None:
        attempts.append(timer["timer"])
        if len(attempts) == 1:
            raise RuntimeError("Redis went away")

    sweep(timers, fail_once)
    wait_for(lambda: sweep(timers, fail_once), timeout=10)
    assert attempts == ["fallback", "fallback"]
    assert timers.claim_due() == []
