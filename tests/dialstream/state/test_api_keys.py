"""API keys: shown once, kept as hashes, scoped, revoked at once."""

from __future__ import annotations

import hashlib

import pytest

from dialstream.errors import ConfigurationError
from dialstream.state.api_keys import ApiKeys
from tests.utils import database_url, emptied

DB = 14  # the webhook and key tests' database (their keys have no per-test prefix: flushed per test)


@pytest.fixture
def url(redis_url):
    return emptied(database_url(redis_url, DB))


def test_a_key_is_stored_only_as_its_hash_and_verifies(client):
    """The token appears nowhere in Redis, only its SHA-256; it verifies with its scope."""
    keys = ApiKeys(client)
    key, token = keys.create("write", name="crm")
    dump = " ".join(f"{k} {client.hgetall(k)}" for k in client.scan_iter("*"))
    assert token not in dump and hashlib.sha256(token.encode()).hexdigest() in dump
    assert keys.verify(token) == key and key.allows("write") and key.allows("read")
    assert keys.verify(token + "x") is None and keys.verify("not-a-key") is None


def test_read_keys_read_and_revoked_keys_do_nothing(client):
    """A read key may not write; a revoked key no longer verifies and is listed as revoked."""
    keys = ApiKeys(client)
    reader, token = keys.create("read")
    assert reader.allows("read") and not reader.allows("write")
    revoked = keys.revoke(reader.id)
    assert keys.verify(token) is None and not revoked.active
    assert [k.revoked_at is not None for k in keys.all()] == [True]
    with pytest.raises(KeyError):
        keys.revoke("nope")
    with pytest.raises(ConfigurationError):
        keys.create("admin")
