"""kombu's Redis transport with one cost of its publish path removed.

- :class:`Transport` is kombu's Redis transport whose channel keeps one client for its
  commands. kombu builds a new ``redis.Redis`` for every publish and every acknowledgement
  (``Channel.conn_or_acquire``); with redis-py 8 that construction costs more CPU than the
  command it sends, on every task of the hot path. The client shares the channel's
  connection pool, as the ones built per command did, and redis-py clients are thread-safe.
  Celery uses it for ``redis://`` broker URLs (:func:`transport_for`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from kombu.transport import redis as kombu_redis

__all__ = ["Transport", "transport_for"]


class Channel(kombu_redis.Channel):
    @cached_property
    def _shared_client(self) -> Any:
        return self._create_client()

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        yield client or self._shared_client


class Transport(kombu_redis.Transport):
    Channel = Channel


def transport_for(broker_url: str) -> str | None:
    """The ``broker_transport`` setting for ``broker_url``: ours for plain ``redis://``; kombu's
    own choice (None) for TLS, Sentinel and sockets, whose URL schemes pick their transports."""
    return f"{__name__}:Transport" if urlsplit(broker_url).scheme == "redis" else None
