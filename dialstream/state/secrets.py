"""Secrets every process of a deployment shares, kept in its Redis when not configured.

The tag secret signs the ``custom_param`` of every leg dialstream places
(``dialstream.domain.campaign.LegTag``); the ingress checks the signature to tell events of
our calls from forged ones. Set ``DIALSTREAM_TAG_SECRET`` to choose it; unset, the first
process to need it creates a random one in Redis and every other process reads the same
value (``secret_get.lua``), so a deployment needs no configuration to be safe.
"""

from __future__ import annotations

import secrets
from typing import Any

import redis
import redis.asyncio as aioredis

from dialstream.state import keys
from dialstream.state.scripts import script

__all__ = ["shared_secret", "shared_secret_async"]


def shared_secret(client: redis.Redis, name: str, configured: str = "") -> bytes:
    """``configured`` if set, else the deployment's secret ``name`` from Redis (created once)."""
    if configured:
        return configured.encode()
    return _bytes(script(client, "secret_get.lua")(keys=[keys.secret(name)], args=[secrets.token_hex(32)]))


async def shared_secret_async(client: aioredis.Redis, name: str, configured: str = "") -> bytes:
    """:func:`shared_secret` over an asyncio client."""
    if configured:
        return configured.encode()
    return _bytes(await script(client, "secret_get.lua")(keys=[keys.secret(name)], args=[secrets.token_hex(32)]))


def _bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)
