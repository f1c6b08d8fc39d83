"""The embedded Valkey (throw-away, and durable on a data directory) and the free-port helper every component's address comes from."""

from __future__ import annotations

import os
import signal
import socket

import pytest
import redis

from dialstream.app.embedded_redis import EmbeddedRedis, _ephemeral_range, free_port, redis_for_cli, running_url
from dialstream.domain.campaign import CampaignConfig, Contact
from dialstream.engine.campaigns import CampaignEngine
from dialstream.errors import EmbeddedRedisError
from dialstream.settings import Settings


def test_free_ports_are_distinct_bindable_and_outside_the_ephemeral_range() -> None:
    """An outgoing connection cannot take a port we handed out: none lies in the kernel's ephemeral range."""
    low, high = _ephemeral_range()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert not any(low <= port <= high for port in ports)
    for port in ports[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_embedded_server_serves_then_leaves_nothing_behind() -> None:
    """The server answers on its URL while running and its process and directory are gone after stop()."""
    server = EmbeddedRedis().start()
    client = redis.Redis.from_url(server.url)
    try:
        assert client.set("k", "v") and client.get("k") == b"v"
        process, directory = server._process, server._dir.name
    finally:
        client.close()
        server.stop()
    assert process.poll() is not None
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(server.url, socket_connect_timeout=1).ping()
    assert not os.path.exists(directory)


def test_a_taken_port_fails_with_the_server_log() -> None:
    """A port already in use is a clear EmbeddedRedisError carrying valkey's own reason, not a hang."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        server = EmbeddedRedis(port=holder.getsockname()[1], startup_timeout=5)
        with pytest.raises(EmbeddedRedisError, match="exited|not ready"):
            server.start()
    assert server._process is None


@pytest.fixture
def durable(tmp_path):
    """A durable server on a fresh data directory; stopped (and unlocked) whatever happens."""
    servers: list[EmbeddedRedis] = []

    def start() -> EmbeddedRedis:
        server = EmbeddedRedis(data_dir=tmp_path / "valkey").start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _campaign_state(server: EmbeddedRedis) -> dict:
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        engine = CampaignEngine(client, "acct")
        status = engine.status("kept", now=0)
        return {
            "state": status.state.value,
            "total": status.total,
            "done": status.done,
            "pending": status.pending,
            "contacts": sorted(c.contact_id for c in engine.store.contacts("kept")),
            "results": engine.store.results("kept"),
            "leased": engine.store.queue.leased("kept"),
        }
    finally:
        client.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_durable_server_keeps_campaigns_contacts_results_and_the_dial_queue_across_a_restart(durable, sig) -> None:
    """Stopped by SIGTERM or SIGKILL and started again on its directory, the server has every campaign, contact, result and queued dial, on the same port."""
    server = durable()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    engine = CampaignEngine(client, "acct")
    engine.submit(CampaignConfig("kept", window="any"), [Contact(f"c{i}", f"+9198123456{i:02d}") for i in range(5)], clock=lambda: 0)
    engine.store.queue.pop_due("kept", now=1, limit=1, lease=30)  # one contact handed to a dialer
    engine.store.record_result("kept", "c0", {"outcome": "completed", "attempts": 1})
    client.close()
    before = _campaign_state(server)
    assert (before["total"], before["done"], before["leased"]) == (5, 1, 1) and before["results"]["c0"]["outcome"] == "completed"

    server._process.send_signal(sig)
    server._process.wait()
    server.stop()
    assert running_url(server.data_dir) is None
    again = durable()
    assert again.url == server.url
    assert _campaign_state(again) == before


def test_one_data_directory_has_one_server_and_the_cli_finds_it(durable, tmp_path) -> None:
    """While a server holds the directory a second one is refused clearly, and running_url and the CLI's Redis point at the first."""
    server = durable()
    assert running_url(server.data_dir) == server.url
    with pytest.raises(EmbeddedRedisError, match="in use by another dialstream"):
        EmbeddedRedis(data_dir=server.data_dir, lock_timeout=0.2).start()
    settings = Settings.from_env({"DIALSTREAM_DATA_DIR": str(tmp_path)})
    with redis_for_cli(settings) as resolved:
        assert resolved.redis_url == server.url


def test_the_cli_runs_the_data_directorys_server_when_up_is_down(tmp_path, monkeypatch) -> None:
    """Without REDIS_URL and without a running up, a CLI command gets a server on the data directory an up left (the default, relative one), seeing its data; with no such data, no server."""
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    with redis_for_cli(settings) as nothing:
        assert nothing.redis_url == "" and not settings.valkey_dir.exists()
    with EmbeddedRedis(data_dir=settings.valkey_dir) as earlier:
        redis.Redis.from_url(earlier.url).set("note", "kept")
    with redis_for_cli(settings) as stored:
        assert redis.Redis.from_url(stored.redis_url).get("note") == b"kept"
        assert running_url(settings.valkey_dir) == stored.redis_url
    assert running_url(settings.valkey_dir) is None
