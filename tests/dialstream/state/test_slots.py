"""Concurrency slots: every cap checked at once, slots always come back, even from a killed holder."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dialstream.domain.limits import SlotCaps, SlotCounts
from dialstream.errors import ConfigurationError
from dialstream.state.slots import Slots
from tests.dialstream.engine.engine_children import slots_hammer, start_children, stop_children
from tests.utils import MS, wait_for

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def slots(client, prefix):
    return Slots(client, "acct", prefix=prefix)


def test_the_account_cap_counts_every_campaign(slots):
    """Calls of all campaigns share the account cap, and the refusal names it."""
    caps = SlotCaps(account_calls=2)
    assert slots.acquire("a", "s1", caps, ttl=10) and slots.acquire("b", "s2", caps, ttl=10)
    refused = slots.acquire("c", "s3", caps, ttl=10)
    assert not refused and refused.blocked_by == "account_calls" and refused.account_calls == 2


def test_the_campaign_cap_counts_only_its_campaign(slots):
    """A full campaign refuses its next call while other campaigns still dial."""
    caps = SlotCaps(account_calls=10, campaign_calls=1)
    assert slots.acquire("a", "s1", caps, ttl=10)
    assert slots.acquire("a", "s2", caps, ttl=10).blocked_by == "campaign_calls"
    assert slots.acquire("b", "s3", caps, ttl=10)
    assert slots.counts("a").campaign_calls == 1 and slots.counts("b").account_calls == 2


def test_the_stream_cap_is_reserved_with_the_call(slots):
    """A call takes a bot stream with its slot, unless told not to; the stream cap refuses the excess."""
    caps = SlotCaps(streams=1)
    assert slots.acquire("a", "s1", caps, ttl=10)
    assert slots.acquire("a", "s2", caps, ttl=10).blocked_by == "streams"
    assert slots.acquire("a", "s3", caps, ttl=10, stream=False)
    assert slots.counts("a") == SlotCounts(account_calls=2, campaign_calls=2, streams=1)


def test_no_caps_means_no_limit(slots):
    """SlotCaps() with every cap None admits any number of calls, still counted."""
    for n in range(20):
        assert slots.acquire("a", f"s{n}", SlotCaps(), ttl=10)
    assert slots.counts("a").account_calls == 20


def test_a_released_slot_is_free_again_and_release_is_idempotent(slots):
    """release() gives the slot back once; a second release changes nothing."""
    caps = SlotCaps(account_calls=1)
    assert slots.acquire("a", "s1", caps, ttl=10)
    assert slots.release("s1") and not slots.release("s1")
    assert slots.acquire("a", "s2", caps, ttl=10)
    assert slots.counts("a") == SlotCounts(account_calls=1, campaign_calls=1, streams=1)


def test_acquiring_a_held_slot_again_takes_nothing_more(slots):
    """A retried dial task re-acquiring its own slot succeeds without counting twice."""
    caps = SlotCaps(account_calls=1)
    assert slots.acquire("a", "s1", caps, ttl=10)
    again = slots.acquire("a", "s1", caps, ttl=10)
    assert again and again.account_calls == 1


def test_giving_back_the_stream_early_keeps_the_call(slots):
    """release_stream() frees the stream cap while the call still counts against the call caps."""
    caps = SlotCaps(account_calls=5, streams=1)
    assert slots.acquire("a", "s1", caps, ttl=10)
    assert slots.release_stream("s1")
    assert slots.acquire("a", "s2", caps, ttl=10)
    assert slots.refresh("s1", ttl=10)  # refreshing does not take the stream back
    assert slots.counts("a").streams == 1 and slots.counts("a").account_calls == 2


def test_an_unrefreshed_slot_expires_and_is_reclaimed(slots):
    """A slot not refreshed within its ttl stops counting and is removed by the next acquire."""
    caps = SlotCaps(account_calls=1)
    assert slots.acquire("a", "stale", caps, ttl=0.2)
    assert not slots.acquire("b", "s2", caps, ttl=10)
    wait_for(lambda: slots.counts().account_calls == 0, timeout=3)
    assert not slots.refresh("stale", ttl=10)  # too late: the holder must acquire again
    assert slots.acquire("b", "s2", caps, ttl=10)
    assert slots.counts("a") == SlotCounts(account_calls=1, campaign_calls=0, streams=1)
    assert not slots.redis.hexists(slots.holders_key, "stale")


def test_refreshing_keeps_a_slot_beyond_its_first_ttl(slots):
    """A holder that refreshes keeps its slot past the ttl it was taken with."""
    assert slots.acquire("a", "s1", SlotCaps(), ttl=0.3)
    for _ in range(5):
        time.sleep(100 * MS)
        assert slots.refresh("s1", ttl=0.3)
    assert slots.counts("a").campaign_calls == 1


def test_an_acquire_removes_the_expired_slots_of_every_campaign(slots):
    """Any campaign's acquire removes the expired slots of every campaign, with their streams and holders."""
    slots.acquire("a", "s1", SlotCaps(), ttl=0.1)
    slots.acquire("b", "s2", SlotCaps(), ttl=0.1)
    slots.acquire("b", "s3", SlotCaps(), ttl=10)
    time.sleep(200 * MS)
    assert slots.acquire("c", "s4", SlotCaps(), ttl=10)
    assert slots.counts("b") == SlotCounts(account_calls=2, campaign_calls=1, streams=2)
    assert slots.redis.zcard(slots.campaign_key("a")) == 0
    assert sorted(slots.redis.hkeys(slots.holders_key)) == ["s3", "s4"]


def test_bad_arguments_are_refused(slots):
    """Negative caps, a non-positive ttl and an empty slot id raise before touching Redis."""
    with pytest.raises(ConfigurationError):
        SlotCaps(account_calls=-1)
    with pytest.raises(ValueError):
        slots.acquire("a", "s1", SlotCaps(), ttl=0)
    with pytest.raises(ValueError):
        slots.acquire("a", "", SlotCaps(), ttl=1)


def test_processes_sharing_the_caps_never_exceed_them(url, client, prefix):
    """Three processes of four threads taking and releasing slots never hold more than any cap allows."""
    caps = {
        "a": {"account_calls": 4, "campaign_calls": 2, "streams": 3},
        "b": {"account_calls": 4, "campaign_calls": 3, "streams": 3},
    }
    ctx = multiprocessing.get_context("spawn")
    children = [ctx.Process(target=slots_hammer, args=(url, prefix, ["a", "b"], caps, 2.0, 4)) for _ in range(3)]
    try:
        start_children(client, prefix, children)
    finally:
        stop_children(children)
    assert all(child.exitcode == 0 for child in children)
    reports = [json.loads(item) for item in client.lrange(f"{prefix}:test:stats", 0, -1)]
    assert len(reports) == 3 and all(r["acquired"] > 0 for r in reports)
    highest: dict[str, int] = {}
    for report in reports:
        for name, value in report["highest"].items():
            highest[name] = max(highest.get(name, 0), value)
    assert highest["a"] <= 2 and highest["b"] <= 3 and highest["streams"] <= 3 and highest["account"] <= 4
    assert highest["streams"] == 3  # the caps were reached, so the bound above was tested
    assert sum(r["refused"] for r in reports) > 0
    assert Slots(client, "acct", prefix=prefix).counts() == SlotCounts()


HOLDER = """
import sys, time
import redis
from dialstream.state.slots import Slots
from dialstream.domain.limits import SlotCaps

slots = Slots(redis.Redis.from_url(sys.argv[1]), "acct", prefix=sys.argv[2])
assert slots.acquire("camp", "holder", SlotCaps(account_calls=1), ttl=1.0)
print("held", flush=True)
while True:
    time.sleep(0.1)
    slots.refresh("holder", ttl=1.0)
"""


def test_a_holder_killed_with_sigkill_loses_its_slot_after_the_ttl(url, prefix, slots):
    """A heartbeating holder keeps its slot past the ttl; killed with SIGKILL, its slot is reclaimed within the ttl."""
    caps = SlotCaps(account_calls=1)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url, prefix], stdout=subprocess.PIPE, cwd=REPO, env=env)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        time.sleep(1.5)  # longer than the ttl: only the heartbeat keeps the slot
        assert slots.acquire("other", "mine", caps, ttl=10).blocked_by == "account_calls"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        assert not slots.acquire("other", "mine", caps, ttl=10)  # its last refresh still runs
        wait_for(lambda: slots.acquire("other", "mine", caps, ttl=10), timeout=1.0 + 3.0)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()
    assert holder.returncode == -signal.SIGKILL
    assert slots.counts("camp").campaign_calls == 0 and slots.counts("other").account_calls == 1
