"""Redials: which outcomes are retried and when, and a schedule no two pollers take twice from."""

from __future__ import annotations

import multiprocessing
import threading
import uuid

import pytest
import redis

from dialstream.errors import ConfigurationError
from dialstream.redial import DEFAULT_REDIAL_POLICY, RedialItem, RedialPolicy, RedialRule, RedialSchedule
from tests.dialstream.engine_children import redial_poller, start_children, stop_children

DB = 7  # the campaign-engine tests' database on the session's server
NOW = 1_750_000_000.0


@pytest.fixture
def url(redis_url):
    return redis_url.rsplit("/", 1)[0] + f"/{DB}"


@pytest.fixture
def client(url):
    client = redis.Redis.from_url(url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def prefix(client):
    prefix = f"t{uuid.uuid4().hex[:12]}"
    yield prefix
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


@pytest.fixture
def schedule(client, prefix):
    return RedialSchedule(client, prefix=prefix)


# Policy


@pytest.mark.parametrize(
    "outcome, delay",
    [("busy", 300.0), ("no_answer", 1800.0), ("no-answer", 1800.0), ("failed", 600.0), ("machine", 3600.0)],
)
def test_retryable_outcomes_are_due_after_their_delay(outcome, delay):
    """Busy, no-answer, failed and machine outcomes are redialled after their own delay."""
    assert DEFAULT_REDIAL_POLICY.next_attempt(outcome, 1, NOW) == NOW + delay


@pytest.mark.parametrize("outcome", ["invalid", "dnc", "completed", "canceled", "cancelled", "answered_no_stream", "mystery"])
def test_some_outcomes_are_never_redialled(outcome):
    """Invalid and DNC numbers, finished or canceled calls and unknown outcomes get no redial by default."""
    assert DEFAULT_REDIAL_POLICY.next_attempt(outcome, 1, NOW) is None


def test_attempts_stop_at_the_outcomes_maximum():
    """max_attempts counts every dial, the first included: busy x3 means two redials."""
    policy = RedialPolicy(busy=RedialRule(max_attempts=3, delay=60))
    assert policy.next_attempt("busy", 1, NOW) == NOW + 60
    assert policy.next_attempt("busy", 2, NOW) == NOW + 60
    assert policy.next_attempt("busy", 3, NOW) is None


def test_backoff_lengthens_each_further_delay():
    """With backoff 2 the delays run 60, 120, 240 seconds."""
    policy = RedialPolicy(no_answer=RedialRule(max_attempts=5, delay=60, backoff=2))
    assert [policy.next_attempt("no_answer", n, 0.0) for n in (1, 2, 3)] == [60, 120, 240]


def test_attempts_so_far_must_count_the_call_that_ended():
    """Asking about attempt 0 is a caller bug and raises."""
    with pytest.raises(ValueError):
        DEFAULT_REDIAL_POLICY.next_attempt("busy", 0, NOW)


def test_policy_from_campaign_configuration():
    """from_dict overrides the named outcomes, null disables one, and the rest keep their defaults."""
    policy = RedialPolicy.from_dict({"busy": {"max_attempts": 5, "delay": 30}, "machine": None, "no-answer": {"delay": 90}})
    assert policy.busy == RedialRule(5, 30) and policy.machine is None
    assert policy.no_answer == RedialRule(3, 90) and policy.failed == DEFAULT_REDIAL_POLICY.failed


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"dnc": {"delay": 1}}, "never redialled"),
        ({"invalid": None}, "never redialled"),
        ({"voicemail": {}}, "unknown outcome"),
        ({"busy": {"tries": 2}}, "unexpected keyword"),
        ({"busy": 3}, "expected a mapping"),
        ({"busy": {"max_attempts": 0}}, "max_attempts"),
    ],
)
def test_bad_policy_configuration_is_refused(raw, message):
    """A policy that names a never-redialled or unknown outcome, or a malformed rule, raises ConfigurationError."""
    with pytest.raises(ConfigurationError, match=message):
        RedialPolicy.from_dict(raw)


# Schedule


def test_only_due_items_are_taken_earliest_first(schedule):
    """pop_due returns items due by now, oldest first, at most limit, and removes them."""
    schedule.schedule("c1", "r2", 2, NOW + 10)
    schedule.schedule("c1", "r3", 2, NOW - 5)
    schedule.schedule("c2", "r9", 3, NOW - 10)
    assert schedule.pop_due(NOW, limit=1) == [RedialItem("c2", "r9", 3, NOW - 10)]
    assert schedule.pop_due(NOW) == [RedialItem("c1", "r3", 2, NOW - 5)]
    assert schedule.pop_due(NOW) == []
    assert schedule.pending() == 1 and schedule.next_due() == NOW + 10


def test_scheduling_the_same_attempt_again_moves_it(schedule):
    """The same (campaign, contact, attempt) is one entry: scheduling it twice keeps the later due time."""
    schedule.schedule("c1", "r2", 2, NOW - 5)
    schedule.schedule("c1", "r2", 2, NOW + 60)
    assert schedule.pop_due(NOW) == [] and schedule.pending() == 1


def test_a_leased_item_comes_back_unless_acknowledged(schedule):
    """With a lease, an item a poller took but never acknowledged is due again when the lease ends."""
    schedule.schedule("c1", "r2", 2, NOW)
    schedule.schedule("c1", "r3", 2, NOW)
    taken = schedule.pop_due(NOW, lease=30)
    assert len(taken) == 2 and schedule.pop_due(NOW + 29, lease=30) == []
    assert schedule.ack(taken[:1]) == 1
    assert schedule.pop_due(NOW + 31) == [RedialItem("c1", "r3", 2, NOW + 30)]
    assert schedule.pop_due(NOW + 100) == []


def test_cancel_drops_a_campaigns_or_a_contacts_redials(schedule):
    """cancel() removes due and leased items of one campaign (or contact), even with glob characters in ids."""
    for campaign, contact in [("c*1", "r1"), ("c*1", 'r"2'), ("c*1x", "r1"), ("c2", "r1")]:
        schedule.schedule(campaign, contact, 2, NOW)
    schedule.pop_due(NOW, limit=1, lease=60)  # one of c*1's is now leased
    assert schedule.cancel("c*1", 'r"2') + schedule.cancel("c*1") == 2
    assert {(i.campaign_id, i.contact_id) for i in schedule.pop_due(NOW)} == {("c*1x", "r1"), ("c2", "r1")}


def test_concurrent_pollers_never_take_the_same_item(url, client, prefix, schedule):
    """Two processes and four threads popping together take each of 3,000 items exactly once."""
    pipe = client.pipeline(transaction=False)
    for n in range(3000):
        pipe.zadd(schedule.due_key, {RedialItem(f"c{n % 7}", f"r{n}", 2).member: NOW - n})
    pipe.execute()
    ctx = multiprocessing.get_context("spawn")
    children = [ctx.Process(target=redial_poller, args=(url, prefix, NOW, 7)) for _ in range(2)]
    go = threading.Event()
    taken: list[str] = []
    lock = threading.Lock()

    def poll() -> None:
        go.wait(60)
        mine = []
        while items := schedule.pop_due(NOW, limit=7):
            mine += [item.member for item in items]
        with lock:
            taken.extend(mine)

    threads = [threading.Thread(target=poll) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        start_children(client, prefix, children)
    finally:
        go.set()
        for thread in threads:
            thread.join()
        stop_children(children)
    by_children = client.lrange(f"{prefix}:test:taken", 0, -1)
    everything = taken + by_children
    assert len(everything) == 3000 and len(set(everything)) == 3000
    assert by_children and taken  # both processes and threads really competed
