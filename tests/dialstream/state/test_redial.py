"""Redials: which outcomes are retried and when; the dial queue no two pollers take twice from."""

from __future__ import annotations

import multiprocessing
import threading

import pytest

from dialstream.domain.redial import DEFAULT_REDIAL_POLICY, NO_REDIALS, RedialPolicy, RedialRule
from dialstream.errors import ConfigurationError
from dialstream.state.dial_queue import CANCELED, NOT_HOLDER, SCHEDULED, DialItem, DialQueue
from tests.dialstream.engine.engine_children import redial_poller, start_children, stop_children

NOW = 1_750_000_000.0


@pytest.fixture
def queue(client, prefix):
    client.hset(f"{prefix}:campaign:c1", "state", "running")
    client.hset(f"{prefix}:campaign:camp", "state", "running")
    return DialQueue(client, prefix=prefix)


# Policy


@pytest.mark.parametrize(
    "outcome, delay",
    [("busy", 300.0), ("no_answer", 1800.0), ("no-answer", 1800.0), ("failed", 600.0), ("machine", 3600.0)],
)
def test_retryable_outcomes_are_due_after_their_delay(outcome, delay):
    """Busy, no-answer, failed and machine outcomes are redialled after their own delay."""
    assert DEFAULT_REDIAL_POLICY.next_attempt(outcome, 1, NOW) == NOW + delay


@pytest.mark.parametrize("outcome", ["invalid", "dnc", "completed", "canceled", "cancelled", "voicemail_left", "transferred", "answered_no_stream", "mystery"])
def test_some_outcomes_are_never_redialled(outcome):
    """Invalid and DNC numbers, finished or canceled calls, voicemails left, transfers and unknown outcomes get no redial by default."""
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


def test_a_policy_survives_the_round_trip_through_campaign_configuration():
    """to_dict gives what from_dict reads back into the same policy; NO_REDIALS redials nothing."""
    assert RedialPolicy.from_dict(DEFAULT_REDIAL_POLICY.to_dict()) == DEFAULT_REDIAL_POLICY
    assert RedialPolicy.from_dict(NO_REDIALS.to_dict()) == NO_REDIALS
    assert all(NO_REDIALS.next_attempt(outcome, 1, NOW) is None for outcome in ("busy", "no_answer", "failed", "machine"))


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


# The dial queue


def test_only_due_items_are_taken_earliest_first(queue):
    """pop_due returns the contacts due by now, earliest first, at most limit, each under its own token."""
    queue.add("c1", [("r2", 2, NOW + 10), ("r3", 2, NOW - 5), ("r9", 3, NOW - 10)])
    first = queue.pop_due("c1", NOW, limit=1, lease=30)
    assert [(i.contact_id, i.attempt, i.due) for i in first] == [("r9", 3, NOW - 10)] and first[0].token
    second = queue.pop_due("c1", NOW, lease=30)
    assert [(i.contact_id, i.due) for i in second] == [("r3", NOW - 5)] and second[0].token != first[0].token
    assert queue.pop_due("c1", NOW, lease=30) == []
    assert queue.pending("c1") == 1 and queue.leased("c1") == 2 and queue.next_due("c1") == NOW + 10


def test_only_a_running_campaign_gives_out_contacts(queue, client, prefix):
    """Contacts of a paused (or unknown) campaign stay queued until it runs again."""
    queue.add("c2", [("r1", 1, NOW)])
    assert queue.pop_due("c2", NOW, lease=30) == []
    client.hset(f"{prefix}:campaign:c2", "state", "paused")
    assert queue.pop_due("c2", NOW, lease=30) == [] and queue.pending("c2") == 1
    client.hset(f"{prefix}:campaign:c2", "state", "running")
    assert [i.contact_id for i in queue.pop_due("c2", NOW, lease=30)] == ["r1"]


def test_scheduling_the_same_attempt_again_moves_it(queue):
    """The same contact and attempt is one entry: scheduling it twice keeps the later time."""
    queue.schedule(DialItem("c1", "r2", 2), NOW - 5)
    queue.schedule(DialItem("c1", "r2", 2), NOW + 60)
    assert queue.pop_due("c1", NOW, lease=30) == [] and queue.pending("c1") == 1


def test_a_lease_that_runs_out_makes_the_contact_due_again_under_a_new_token(queue):
    """A contact whose taker never acknowledged it is due again when the lease ends; the old token is void."""
    queue.add("c1", [("r2", 1, NOW), ("r3", 1, NOW)])
    taken = queue.pop_due("c1", NOW, lease=30)
    assert len(taken) == 2 and queue.pop_due("c1", NOW + 29, lease=30) == []
    queue.ack(taken[:1])
    again = queue.pop_due("c1", NOW + 31, lease=30)
    assert [(i.contact_id, i.due) for i in again] == [("r3", NOW + 30)]
    assert not queue.renew(taken[1], 30, NOW + 31) and queue.renew(again[0], 30, NOW + 31)
    assert queue.pop_due("c1", NOW + 60, lease=30) == []  # the renewed lease runs to NOW + 61


def test_only_the_lease_holder_sends_a_contact_back(queue):
    """A worker whose lease was taken over cannot move the contact; the holder can, and gives the lease up."""
    queue.add("c1", [("r2", 1, NOW)])
    stale = queue.pop_due("c1", NOW, lease=10)[0]
    holder = queue.pop_due("c1", NOW + 11, lease=10)[0]
    assert queue.schedule(stale, NOW + 50, lease=stale) == NOT_HOLDER
    assert queue.schedule(holder, NOW + 50, lease=holder) == SCHEDULED
    assert queue.leased("c1") == 0 and queue.next_due("c1") == NOW + 50


def test_a_canceled_campaign_schedules_nothing_and_drains_everything(queue, client, prefix):
    """After cancel, scheduling answers CANCELED and keeps the lease (its holder gives it up once
    the contact's final result is recorded: until then the campaign is still dialing it); drain
    takes queued and leased contacts alike."""
    queue.add("c1", [("r1", 1, NOW), ("r2", 1, NOW + 3600), ("r3", 1, NOW)])
    leased = queue.pop_due("c1", NOW, limit=1, lease=30)[0]
    client.hset(f"{prefix}:campaign:c1", "state", "canceled")
    assert queue.schedule(DialItem("c1", "r1", 2), NOW, lease=leased) == CANCELED and queue.leased("c1") == 1
    queue.ack([leased])
    assert queue.leased("c1") == 0
    queue.add("c1", [("r4", 1, NOW)])
    client.hset(f"{prefix}:campaign:c1", "state", "running")
    held = queue.pop_due("c1", NOW, limit=1, lease=30)[0]
    client.hset(f"{prefix}:campaign:c1", "state", "canceled")
    drained = queue.drain("c1", limit=2) + queue.drain("c1", limit=2)
    assert {i.contact_id for i in drained} == {"r2", "r3", "r4"} and queue.drain("c1") == []
    assert not queue.renew(held, 30)


def test_concurrent_pollers_never_take_the_same_item(url, client, prefix, queue):
    """Two processes and four threads popping together take each of 3,000 contacts exactly once."""
    for n in range(0, 3000, 1000):
        queue.add("camp", [(f"r{i}", 1, NOW - i) for i in range(n, n + 1000)])
    ctx = multiprocessing.get_context("spawn")
    children = [ctx.Process(target=redial_poller, args=(url, prefix, NOW, 7)) for _ in range(2)]
    go = threading.Event()
    taken: list[str] = []
    lock = threading.Lock()

    def poll() -> None:
        go.wait(60)
        mine = []
        while items := queue.pop_due("camp", NOW, limit=7, lease=60):
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
