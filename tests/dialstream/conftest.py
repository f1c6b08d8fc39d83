"""Fixtures of the campaign-engine tests: their own database, and a key prefix per test."""

from __future__ import annotations

import uuid

import pytest
import redis

from tests.utils import database_url

DB = 7  # the campaign-engine tests' database on the session's server


@pytest.fixture
def url(redis_url):
    return database_url(redis_url, DB)


@pytest.fixture
def client(url):
    client = redis.Redis.from_url(url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def prefix(client):
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    yield prefix
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
