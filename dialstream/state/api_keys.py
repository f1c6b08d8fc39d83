"""API keys of the HTTP API: created and revoked with the CLI, checked on every request.

A key is a random token shown once, at creation (``dsk_`` and 32 random bytes, URL-safe).
Redis keeps only its SHA-256: the token has 256 bits of entropy, so a fast hash is as safe
as bcrypt or argon2 here (those slow hashes exist to protect guessable passwords) and a
check costs one round trip instead of tens of milliseconds of CPU per request.

Key layout (``dialstream.state.keys``)::

    ds:apikeys                 hash key id -> {id, name, scope, created_at, revoked_at, sha256} JSON
    ds:apikeys:sha256          hash sha256 hex of the token -> key id

Scopes: ``read`` (every GET) and ``write`` (everything, read included).

Example::

    key, token = ApiKeys(client).create("write", name="crm")
    assert ApiKeys(client).verify(token).scope == "write"
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass

import redis

from dialstream.errors import ConfigurationError
from dialstream.state import keys

__all__ = ["ApiKey", "ApiKeys", "SCOPES", "TOKEN_PREFIX"]

SCOPES = ("read", "write")
TOKEN_PREFIX = "dsk_"
_KEYS = keys.api_keys()
_BY_HASH = keys.api_keys("sha256")


@dataclass(frozen=True)
class ApiKey:
    """One key as stored (never the token itself)."""

    id: str
    scope: str
    name: str = ""
    created_at: float = 0.0
    revoked_at: float | None = None
    sha256: str = ""

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        """Whether this key may do what ``scope`` needs (write includes read)."""
        return self.active and (self.scope == "write" or scope == "read")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiKeys:
    """The account's API keys over a synchronous client (``decode_responses=True``)."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def create(self, scope: str, *, name: str = "") -> tuple[ApiKey, str]:
        """A new key and its token (the only time the token exists outside its holder)."""
        if scope not in SCOPES:
            raise ConfigurationError(f"scope {scope!r}: expected one of {', '.join(SCOPES)}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(id=secrets.token_hex(4), scope=scope, name=name, created_at=time.time(), sha256=_digest(token))
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(_KEYS, key.id, json.dumps(asdict(key)))
        pipe.hset(_BY_HASH, key.sha256, key.id)
        pipe.execute()
        return key, token

    def verify(self, token: str) -> ApiKey | None:
        """The active key whose token this is, or None."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        key_id = self.redis.hget(_BY_HASH, _digest(token))
        key = self.get(key_id) if key_id else None
        return key if key is not None and key.active else None

    def get(self, key_id: str) -> ApiKey | None:
        raw = self.redis.hget(_KEYS, key_id)
        return None if raw is None else ApiKey(**json.loads(raw))

    def all(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        found = [ApiKey(**json.loads(raw)) for raw in self.redis.hvals(_KEYS)]
        return sorted(found, key=lambda key: key.created_at)

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key at once; KeyError for an unknown id. Revoking twice is harmless."""
        key = self.get(key_id)
        if key is None:
            raise KeyError(f"no API key {key_id!r}")
        if key.active:
            key = ApiKey(**{**asdict(key), "revoked_at": time.time()})
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(_KEYS, key.id, json.dumps(asdict(key)))
            pipe.hdel(_BY_HASH, key.sha256)
            pipe.execute()
        return key
