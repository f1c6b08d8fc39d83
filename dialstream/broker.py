"""Celery's Redis broker as dialstream uses it: two costs of kombu's publish path removed.

- :class:`Transport` is kombu's Redis transport whose channel keeps one client for its
  commands. kombu builds a new ``redis.Redis`` for every publish and every acknowledgement
  (``Channel.conn_or_acquire``); with redis-py 8 that construction costs more CPU than the
  command it sends, on every task of the hot path. The client shares the channel's
  connection pool, as the ones built per command did, and redis-py clients are thread-safe.
  Celery uses it for ``redis://`` broker URLs (:func:`transport_for`).
- :func:`task_message` is the message kombu's Redis transport pushes for
  ``app.send_task(name, args, queue=queue)``, built without I/O, so that the ingress can
  push it from a Lua script in the same atomic step as its de-duplication
  (``dialstream/lua/ingress_accept.lua``). The headers and body are Celery's own
  (``app.amqp.as_task_v2``); the envelope is kombu's (``tests/dialstream/test_broker.py``
  compares the two).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from kombu.transport import redis as kombu_redis
from kombu.utils.json import dumps

__all__ = ["Transport", "transport_for", "task_message"]


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


def task_message(app: Celery, name: str, args: Sequence[Any], *, queue: str, argsrepr: str) -> str:
    """The JSON to ``LPUSH`` onto list ``queue`` (priority 0) to send task ``name`` with ``args``."""
    task_id = str(uuid.uuid4())
    # reply_to and ignore_result as send_task gives them (None: the task's own setting).
    headers, properties, body, _ = app.amqp.as_task_v2(
        task_id, name, list(args), argsrepr=argsrepr, reply_to=app.thread_oid, ignore_result=None
    )
    properties = {
        **properties,
        "delivery_mode": 2,
        "delivery_info": {"exchange": "", "routing_key": queue},
        "priority": 0,
        "body_encoding": "base64",
        "delivery_tag": str(uuid.uuid4()),
    }
    return dumps(
        {
            "body": base64.b64encode(dumps(body).encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": properties,
        }
    )
