"""Code run in child processes by the pacing, slots and redial tests (spawned: importable).

Each child makes its own Redis client, waits for the parent's start signal so that every
process hammers at once, and reports what it saw in a Redis list the parent reads.
"""

from __future__ import annotations

import json
import os
import threading
import time

import redis

from dialstream.domain.limits import Budget, SlotCaps
from dialstream.state.dial_queue import DialQueue
from dialstream.state.pacing import Pacer
from dialstream.state.slots import Slots


def _ready_then_wait(client: redis.Redis, prefix: str) -> None:
    client.rpush(f"{prefix}:test:ready", 1)
    client.blpop([f"{prefix}:test:go"], timeout=60)


def start_children(client: redis.Redis, prefix: str, processes: list, timeout: float = 60.0) -> None:
    """Start ``processes`` and release them together once every one is ready."""
    for process in processes:
        process.start()
    deadline = time.monotonic() + timeout
    while int(client.llen(f"{prefix}:test:ready")) < len(processes):
        if time.monotonic() > deadline or not all(p.is_alive() for p in processes):
            raise AssertionError("child processes did not become ready")
        time.sleep(0.02)
    client.rpush(f"{prefix}:test:go", *[1] * len(processes))


def stop_children(processes: list, timeout: float = 30.0) -> None:
    """Join every child; terminate (then kill) any that overstays."""
    for process in processes:
        process.join(timeout)
        if process.is_alive():
            process.terminate()
            process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)


def pacing_hammer(url: str, prefix: str, limit: int, window: float, headroom: int, seconds: float, threads: int, kinds: list[str]) -> None:
    """Threads acquiring budget of the given kinds in a loop (default latency guard); grant times go to a list."""
    client = redis.Redis.from_url(url, decode_responses=True)
    pacer = Pacer(client, "acct", Budget(limit=limit, window=window, headroom=headroom), prefix=prefix)
    _ready_then_wait(client, prefix)
    hammer_pacer(pacer, client, prefix, seconds, threads, kinds)
    client.close()


def hammer_pacer(pacer: Pacer, client: redis.Redis, prefix: str, seconds: float, threads: int, kinds: list[str]) -> None:
    """Run ``threads`` threads for ``seconds``, each acquiring ``kinds[i % len(kinds)]``."""
    deadline = time.monotonic() + seconds
    granted: list[int] = []
    lock = threading.Lock()

    def run(kind: str) -> None:
        mine = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            grant = pacer.acquire(kind, timeout=left)
            if grant.ok:
                mine.append(grant.at_us)
        with lock:
            granted.extend(mine)

    workers = [threading.Thread(target=run, args=(kinds[i % len(kinds)],)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if granted:
        client.rpush(f"{prefix}:test:grants", *granted)


def slots_hammer(url: str, prefix: str, campaigns: list[str], caps: dict[str, dict[str, int]], seconds: float, threads: int) -> None:
    """Threads taking and giving back slots; while holding one, each counts itself in a
    per-cap counter and notes the highest value it saw (never above the cap if the caps hold)."""
    client = redis.Redis.from_url(url, decode_responses=True)
    slots = Slots(client, "acct", prefix=prefix)
    _ready_then_wait(client, prefix)
    deadline = time.monotonic() + seconds
    stats = {"acquired": 0, "refused": 0}
    highest: dict[str, int] = {}  # the most holders each counter ever showed
    lock = threading.Lock()

    def run(index: int) -> None:
        campaign = campaigns[index % len(campaigns)]
        cap = SlotCaps(**caps[campaign])
        n = 0
        while time.monotonic() < deadline:
            n += 1
            slot_id = f"{campaign}:{os.getpid()}:{index}:{n}"
            if not slots.acquire(campaign, slot_id, cap, ttl=10):
                with lock:
                    stats["refused"] += 1
                time.sleep(0.001)
                continue
            counters = [f"{prefix}:test:held:account", f"{prefix}:test:held:{campaign}", f"{prefix}:test:held:streams"]
            pipe = client.pipeline(transaction=False)
            for counter in counters:
                pipe.incr(counter)
            seen = pipe.execute()
            with lock:
                for name, value in zip(("account", campaign, "streams"), seen):
                    highest[name] = max(highest.get(name, 0), int(value))
            time.sleep(0.002)
            pipe = client.pipeline(transaction=False)
            for counter in counters:
                pipe.decr(counter)
            pipe.execute()
            slots.release(slot_id)
            with lock:
                stats["acquired"] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    client.rpush(f"{prefix}:test:stats", json.dumps({**stats, "highest": highest}))
    client.close()


def redial_poller(url: str, prefix: str, now: float, batch: int) -> None:
    """Take campaign "camp"'s contacts due by ``now`` until none are left; report every item taken."""
    client = redis.Redis.from_url(url, decode_responses=True)
    queue = DialQueue(client, prefix=prefix)
    _ready_then_wait(client, prefix)
    taken = []
    while True:
        items = queue.pop_due("camp", now, limit=batch, lease=60)
        if not items:
            break
        taken += [item.member for item in items]
    if taken:
        client.rpush(f"{prefix}:test:taken", *taken)
    client.close()
