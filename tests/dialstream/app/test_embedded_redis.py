"""The embedded Valkey and the free-port helper every component's address comes from."""

from __future__ import annotations

import os
import socket

import pytest
import redis

from dialstream.app.embedded_redis import EmbeddedRedis, _ephemeral_range, free_port
from dialstream.errors import EmbeddedRedisError


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
