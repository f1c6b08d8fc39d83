"""Shared fixtures: a real Redis-compatible server, never the machine's own 6379.

``REDIS_URL`` in the environment points the suite at an existing server (tests use key
prefixes and separate databases so they do not collide); otherwise one embedded Valkey
is started for the whole session and stopped at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from dialstream.app.embedded_redis import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a Redis server for this test session."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    with EmbeddedRedis() as server:
        yield server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the session's server; the connection is closed after the test."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5, decode_responses=True)
    yield client
    client.close()
