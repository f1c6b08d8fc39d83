"""Fleet registration and selection, against the session's real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from bot.bots import EchoBot
from bot.config import BUILTIN_FORMATS, BotServerConfig, Registration
from bot.server import BotServer
from dialstream.errors import NoBotAvailable
from dialstream.state import fleet, keys
from dialstream.state.fleet import BotRecord, choose_bot, select_bot
from tests.bot.exotel import run, streaming
from tests.utils import MS, wait_for


@pytest.fixture
def prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    value = f"test-{uuid.uuid4().hex[:8]}"
    yield value
    leftovers = list(redis_client.scan_iter(f"{value}:*"))
    if leftovers:
        redis_client.delete(*leftovers)


# --- The pure decision ---------------------------------------------------------------


def test_choose_most_free_capacity():
    """The bot with the most free capacity wins, whatever its size."""
    bots = [BotRecord("ws://a", 100, 90), BotRecord("ws://b", 50, 10), BotRecord("ws://c", 500, 480)]
    assert choose_bot(bots) == BotRecord("ws://b", 50, 10)


def test_choose_skips_full_bots():
    """Full (or over-full) bots are never chosen; none left means None."""
    assert choose_bot([BotRecord("ws://a", 10, 10), BotRecord("ws://b", 10, 12)]) is None
    assert choose_bot([]) is None


def test_choose_prefers_live_over_static_and_breaks_ties_by_url():
    """Heartbeating bots come before static entries; equal candidates are ordered by URL."""
    bots = [BotRecord("ws://static", 1000, 0, static=True), BotRecord("ws://b", 10, 5), BotRecord("ws://a", 10, 5)]
    assert choose_bot(bots).url == "ws://a"
    assert choose_bot([BotRecord("ws://static", 1000, 0, static=True)]).url == "ws://static"


def test_choose_avoids_tried_bots_unless_nothing_else_has_room():
    """URLs to avoid lose to any other bot with room but still win over no bot at all."""
    bots = [BotRecord("ws://a", 100, 0), BotRecord("ws://b", 10, 9)]
    assert choose_bot(bots, avoid={"ws://a"}).url == "ws://b"
    assert choose_bot(bots, avoid={"ws://a", "ws://b"}).url == "ws://a"


# --- Redis ---------------------------------------------------------------------------


def test_heartbeat_registers_and_select_returns_it(redis_client, prefix):
    """A bot's heartbeat makes it selectable, with the key layout the docs describe."""
    fleet.heartbeat(redis_client, "ws://bot1:8765/", capacity=10, load=3, prefix=prefix)
    assert fleet.live_bots(redis_client, prefix=prefix) == [BotRecord("ws://bot1:8765/", 10, 3)]
    assert select_bot(redis_client, prefix=prefix, reserve=False).url == "ws://bot1:8765/"
    entry = redis_client.hgetall(f"{prefix}:bot:ws://bot1:8765/")
    assert (entry["capacity"], entry["load"], entry["static"], entry["formats"]) == ("10", "3", "0", "")
    assert 0 < redis_client.pttl(f"{prefix}:bot:ws://bot1:8765/") <= 5000
    assert redis_client.zscore(f"{prefix}:bots", "ws://bot1:8765/") > time.time() * 1000


def test_select_spreads_load_by_reserving(redis_client, prefix):
    """Successive selections between heartbeats count up the chosen bot's load and spread out."""
    fleet.heartbeat(redis_client, "ws://a", capacity=4, load=0, prefix=prefix)
    fleet.heartbeat(redis_client, "ws://b", capacity=4, load=1, prefix=prefix)
    picks = [select_bot(redis_client, prefix=prefix).url for _ in range(7)]
    assert sorted(picks) == ["ws://a"] * 4 + ["ws://b"] * 3
    with pytest.raises(NoBotAvailable):
        select_bot(redis_client, prefix=prefix)
    # The next heartbeat replaces the estimate with the measured load.
    fleet.heartbeat(redis_client, "ws://a", capacity=4, load=1, prefix=prefix)
    assert select_bot(redis_client, prefix=prefix).url == "ws://a"


def test_a_reservation_given_a_pipeline_counts_once_the_pipeline_runs(redis_client, prefix):
    """select_bot(pipe=...) adds the chosen bot's reservation to the caller's pipeline: counted when it executes."""
    fleet.heartbeat(redis_client, "ws://a", capacity=4, load=0, prefix=prefix)
    pipe = redis_client.pipeline(transaction=False)
    assert select_bot(redis_client, prefix=prefix, pipe=pipe).url == "ws://a"
    assert fleet.live_bots(redis_client, prefix=prefix)[0].load == 0
    pipe.execute()
    assert fleet.live_bots(redis_client, prefix=prefix)[0].load == 1


def test_dead_bot_expires_from_selection(redis_client, prefix):
    """A bot that stops sending heartbeats drops out once its TTL passes."""
    fleet.heartbeat(redis_client, "ws://dying", capacity=10, load=0, ttl=200 * MS, prefix=prefix)
    fleet.heartbeat(redis_client, "ws://alive", capacity=10, load=9, ttl=5.0, prefix=prefix)
    assert select_bot(redis_client, prefix=prefix, reserve=False).url == "ws://dying"
    time.sleep(300 * MS)
    assert select_bot(redis_client, prefix=prefix, reserve=False).url == "ws://alive"
    assert redis_client.zrange(f"{prefix}:bots", 0, -1) == ["ws://alive"]


def test_reservation_never_revives_an_expired_bot(redis_client, prefix):
    """Reserving a bot whose hash expired does not recreate it without a TTL."""
    fleet.heartbeat(redis_client, "ws://gone", capacity=10, load=0, ttl=100 * MS, prefix=prefix)
    time.sleep(150 * MS)
    fleet._run(redis_client, "reserve", [keys.bot("ws://gone", prefix)], [])
    assert not redis_client.exists(keys.bot("ws://gone", prefix))


def test_external_fleet_never_expires_keeps_its_formats_and_deregister_removes(redis_client, prefix):
    """An external registration has no TTL, carries its formats to selection, and stays until deregistered."""
    formats = ("audio/L16;rate=8000", "audio/L16;rate=16000")
    fleet.register_external(redis_client, "wss://vendor.example/stream", capacity=50, formats=formats, prefix=prefix)
    assert redis_client.pttl(keys.bot("wss://vendor.example/stream", prefix)) == -1
    chosen = select_bot(redis_client, prefix=prefix)
    assert (chosen.url, chosen.capacity, chosen.static, chosen.formats) == ("wss://vendor.example/stream", 50, True, formats)
    assert fleet.live_bots(redis_client, prefix=prefix)[0].load == 0  # static entries are not reserved
    fleet.deregister(redis_client, "wss://vendor.example/stream", prefix=prefix)
    assert fleet.live_bots(redis_client, prefix=prefix) == []


def test_select_excludes_tried_bots(redis_client, prefix):
    """select_bot passes exclude on: a retry goes to another bot when one has room."""
    fleet.heartbeat(redis_client, "ws://a", capacity=10, load=0, prefix=prefix)
    fleet.heartbeat(redis_client, "ws://b", capacity=10, load=5, prefix=prefix)
    assert select_bot(redis_client, prefix=prefix, exclude={"ws://a"}, reserve=False).url == "ws://b"


def test_static_urls_are_the_last_resort(redis_client, prefix):
    """With nothing registered, select_bot falls back to the configured static URLs, avoiding excluded ones."""
    fallback = select_bot(redis_client, prefix=prefix, static_urls=("ws://fallback",))
    assert (fallback.url, fallback.formats) == ("ws://fallback", ())  # formats unknown: the campaign's go unchanged
    static = ("ws://s1", "ws://s2")
    assert {select_bot(redis_client, prefix=prefix, static_urls=static, exclude={"ws://s1"}).url for _ in range(5)} == {
        "ws://s2"
    }
    with pytest.raises(NoBotAvailable):
        select_bot(redis_client, prefix=prefix)


def test_works_with_a_bytes_client(redis_url, prefix):
    """A client without decode_responses (Celery's kind) gets the same records."""
    client = redis.Redis.from_url(redis_url)
    try:
        fleet.heartbeat(client, "ws://b", capacity=2, load=1, prefix=prefix)
        assert fleet.live_bots(client, prefix=prefix) == [BotRecord("ws://b", 2, 1)]
    finally:
        client.close()


def test_server_registers_reports_load_and_deregisters(redis_url, redis_client, prefix):
    """A running server heartbeats its load, and drain removes it from selection at once."""
    registration = Registration(redis_url=redis_url, key_prefix=prefix, heartbeat=50 * MS, ttl=1.0)

    async def scenario() -> None:
        config = BotServerConfig(port=0, registration=registration)
        server = BotServer(EchoBot, config)
        await server.start()
        try:
            assert fleet.live_bots(redis_client, prefix=prefix) == [BotRecord(server.url, 500, 0, formats=BUILTIN_FORMATS)]
            async with streaming(server.url):
                loads = lambda: [b.load for b in fleet.live_bots(redis_client, prefix=prefix)]  # noqa: E731
                await asyncio.to_thread(wait_for, lambda: loads() == [1], 2.0)
        finally:
            await server.drain(timeout=0)
        assert fleet.live_bots(redis_client, prefix=prefix) == []

    run(scenario())
