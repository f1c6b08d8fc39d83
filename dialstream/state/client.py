"""The one place dialstream builds Redis clients, so every process talks to Redis alike.

Every client gets a socket timeout for connecting and for each command (a Redis that stops
answering fails a call after ``timeout`` seconds instead of hanging a worker thread or the
ingress), TCP keep-alive, and, unless asked for bytes, ``str`` replies.

Example::

    client = connect_settings(settings)                 # a process's own Redis
    client = connect("redis://127.0.0.1:6390/0", timeout=1.0)
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis

from dialstream.settings import Settings

__all__ = ["connect", "connect_async", "connect_settings"]


def _options(timeout: float, decode_responses: bool) -> dict[str, Any]:
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "socket_keepalive": True,
        "decode_responses": decode_responses,
    }


def connect(url: str, *, timeout: float = 5.0, decode_responses: bool = True) -> redis.Redis:
    """A synchronous client (thread-safe, pooled) for ``url``."""
    return redis.Redis.from_url(url, **_options(timeout, decode_responses))


def connect_async(url: str, *, timeout: float = 5.0, decode_responses: bool = True) -> aioredis.Redis:
    """An asyncio client for ``url``."""
    return aioredis.Redis.from_url(url, **_options(timeout, decode_responses))


def connect_settings(settings: Settings, *, decode_responses: bool = True) -> redis.Redis:
    """A synchronous client for the process's ``REDIS_URL`` with its ``DIALSTREAM_REDIS_SOCKET_TIMEOUT``."""
    return connect(settings.redis_url, timeout=settings.redis_socket_timeout, decode_responses=decode_responses)
