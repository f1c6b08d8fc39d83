"""Webhook endpoints, messages and their deliveries in Redis; the workers' emit hooks.

An endpoint is a URL with its secret and the event types it wants, for the whole account or
for one campaign. Emitting a message (one Lua step, ``webhook_emit.lua``) creates one delivery
per endpoint that wants it and makes it due now; the ``webhooks`` workers' sweeper
(``workers.webhooks``) takes due deliveries under a lease and sends each as a Celery task.
A failed attempt is due again after the retry schedule's next delay; after the last one the
delivery is dead-lettered, kept for :meth:`Webhooks.replay`. Retries wait in the sorted set,
not in Celery countdowns, which the Redis transport would re-deliver after its visibility
timeout (shared/design.md).

Key layout (``dialstream.state.keys``; messages and deliveries expire after ``RETENTION``)::

    ds:wh:endpoint:{id}              hash: id, url, secret, campaign ('' for the account), events, created_at
    ds:wh:endpoints                  set of every endpoint id
    ds:wh:endpoints:account          set of the account's endpoint ids (every campaign's events)
    ds:wh:endpoints:campaign:{id}    set of one campaign's endpoint ids
    ds:wh:msg:{msg_id}               the message body (JSON), the same for every attempt
    ds:wh:delivery:{msg_id}.{ep}     hash: id, msg, endpoint, type, attempts, state, created_at,
                                     last_status, last_error, delivered_at
    ds:wh:due                        sorted set: delivery id -> when to (re)send (Unix s)
    ds:wh:dead                       sorted set: delivery id -> when it was given up

The hooks at the bottom (:func:`leg_event`, :func:`call_completed`, :func:`record_final`) are
what the workers call, one line each, where a call is answered, a call ends and a contact gets
its final record. Each emits before the fact is recorded, so a worker dying in between emits
again when its work is re-run; the stable message id makes that the same message.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis

from dialstream.domain import webhooks as wh
from dialstream.domain.campaign import Contact
from dialstream.domain.leg_state import LegRecord
from dialstream.errors import ConfigurationError
from dialstream.exotel.events import LEG_ANSWERED
from dialstream.state import keys
from dialstream.state.scripts import script
from dialstream.state.store import Store

__all__ = ["Endpoint", "Delivery", "Webhooks", "RETENTION", "leg_event", "call_completed", "record_final", "campaign_check"]

RETENTION = 7 * 24 * 3600  # seconds a message and its deliveries are kept: longer than every retry
DUE = keys.webhook("due")
DEAD = keys.webhook("dead")
_ALL = keys.webhook("endpoints")
_ACCOUNT = keys.webhook("endpoints:account")


def _endpoint_key(endpoint_id: str) -> str:
    return keys.webhook(f"endpoint:{endpoint_id}")


def _campaign_set(campaign_id: str) -> str:
    return keys.webhook(f"endpoints:campaign:{campaign_id}")


def _delivery_key(delivery_id: str) -> str:
    return keys.webhook(f"delivery:{delivery_id}")


def _message_key(msg_id: str) -> str:
    return keys.webhook(f"msg:{msg_id}")


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    secret: str
    campaign_id: str = ""  # '': the account's, for every campaign
    events: tuple[str, ...] = wh.EVENT_TYPES
    created_at: float = 0.0

    def public(self) -> dict[str, Any]:
        """What listing shows: everything but the secret."""
        return {"id": self.id, "url": self.url, "campaign_id": self.campaign_id or None, "events": list(self.events), "created_at": wh.iso(self.created_at)}


@dataclass(frozen=True)
class Delivery:
    """One message to one endpoint, with what it takes to send it."""

    id: str
    msg_id: str
    event_type: str
    state: str  # pending | delivered | dead
    attempts: int
    body: bytes | None  # None once the message expired
    endpoint: Endpoint | None  # None once the endpoint was removed
    last_status: int | None = None
    last_error: str = ""
    created_at: float = 0.0

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id, "msg_id": self.msg_id, "type": self.event_type, "state": self.state, "attempts": self.attempts,
            "endpoint": self.endpoint.url if self.endpoint else None, "last_status": self.last_status,
            "last_error": self.last_error, "created_at": wh.iso(self.created_at),
        }  # fmt: skip


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"webhook URL {url!r}: expected http(s)://host/path")
    return url


class Webhooks:
    """Endpoints and deliveries over a synchronous client (``decode_responses=True``)."""

    def __init__(self, client: redis.Redis, *, schedule: Sequence[float] = wh.DEFAULT_RETRY_SCHEDULE) -> None:
        self.redis = client
        self.schedule = tuple(schedule)
        self._take = script(client, "webhook_take.lua")

    # Endpoints

    def add_endpoint(
        self, url: str, *, campaign_id: str = "", events: Iterable[str] = wh.EVENT_TYPES, secret: str = ""
    ) -> Endpoint:
        """A new endpoint (its secret made unless given); ConfigurationError for a bad URL, event or secret."""
        events = tuple(events) or wh.EVENT_TYPES
        unknown = [e for e in events if e not in wh.EVENT_TYPES]
        if unknown:
            raise ConfigurationError(f"unknown webhook event(s) {', '.join(unknown)}: expected {', '.join(wh.EVENT_TYPES)}")
        endpoint = Endpoint(
            id="ep_" + secrets.token_hex(6), url=check_url(url), secret=wh.check_secret(secret) if secret else wh.new_secret(),
            campaign_id=campaign_id, events=events, created_at=time.time(),
        )  # fmt: skip
        stored = "*" if set(events) == set(wh.EVENT_TYPES) else ",".join(events)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(_endpoint_key(endpoint.id), mapping={
            "id": endpoint.id, "url": endpoint.url, "secret": endpoint.secret, "campaign": campaign_id,
            "events": stored, "created_at": endpoint.created_at,
        })  # fmt: skip
        pipe.sadd(_ALL, endpoint.id)
        pipe.sadd(_campaign_set(campaign_id) if campaign_id else _ACCOUNT, endpoint.id)
        pipe.execute()
        return endpoint

    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        raw = self.redis.hgetall(_endpoint_key(endpoint_id))
        return _endpoint(raw) if raw else None

    def endpoints(self, campaign_id: str | None = None) -> list[Endpoint]:
        """Every endpoint (``None``), the account's (``''``) or one campaign's, oldest first."""
        key = _ALL if campaign_id is None else _campaign_set(campaign_id) if campaign_id else _ACCOUNT
        pipe = self.redis.pipeline(transaction=False)
        for endpoint_id in self.redis.smembers(key):
            pipe.hgetall(_endpoint_key(endpoint_id))
        found = [_endpoint(raw) for raw in pipe.execute() if raw]
        return sorted(found, key=lambda e: e.created_at)

    def remove_endpoint(self, endpoint_id: str) -> None:
        """Remove an endpoint; its pending deliveries are dropped when their turn comes. KeyError if unknown."""
        endpoint = self.endpoint(endpoint_id)
        if endpoint is None:
            raise KeyError(f"no webhook endpoint {endpoint_id!r}")
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(_endpoint_key(endpoint_id))
        pipe.srem(_ALL, endpoint_id)
        pipe.srem(_campaign_set(endpoint.campaign_id) if endpoint.campaign_id else _ACCOUNT, endpoint_id)
        pipe.execute()

    # Delivering

    def take_due(self, limit: int, lease: float, now: float | None = None) -> list[str]:
        """Up to ``limit`` due delivery ids, each leased for ``lease`` seconds."""
        now = time.time() if now is None else now
        return list(self._take(keys=[DUE], args=[repr(now), limit, repr(lease)]))

    def delivery(self, delivery_id: str) -> Delivery | None:
        raw = self.redis.hgetall(_delivery_key(delivery_id))
        if not raw:
            return None
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(_message_key(raw["msg"]))
        pipe.hgetall(_endpoint_key(raw["endpoint"]))
        body, endpoint = pipe.execute()
        return Delivery(
            id=delivery_id, msg_id=raw["msg"], event_type=raw.get("type", ""), state=raw.get("state", "pending"),
            attempts=int(raw.get("attempts", 0)), body=body.encode() if body is not None else None,
            endpoint=_endpoint(endpoint) if endpoint else None,
            last_status=int(raw["last_status"]) if raw.get("last_status") else None,
            last_error=raw.get("last_error", ""), created_at=float(raw.get("created_at", 0)),
        )  # fmt: skip

    def delivered(self, delivery_id: str, status: int) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(DUE, delivery_id)
        pipe.hincrby(_delivery_key(delivery_id), "attempts", 1)
        pipe.hset(_delivery_key(delivery_id), mapping={"state": "delivered", "last_status": status, "last_error": "", "delivered_at": time.time()})
        pipe.execute()

    def failed(self, delivery_id: str, error: str, status: int | None = None) -> float | None:
        """An attempt failed: due again after the schedule's next delay, returned; None: dead-lettered."""
        key = _delivery_key(delivery_id)
        attempts = int(self.redis.hincrby(key, "attempts", 1))
        delay = wh.next_delay(attempts, self.schedule)
        now = time.time()
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"last_error": error[:500], "last_status": status or ""})
        if delay is None:
            pipe.zrem(DUE, delivery_id)
            pipe.zadd(DEAD, {delivery_id: now})
            pipe.hset(key, "state", "dead")
        else:
            pipe.zadd(DUE, {delivery_id: now + delay}, xx=True)
        pipe.execute()
        return delay

    def drop(self, delivery_id: str, reason: str) -> None:
        """Stop trying a delivery that cannot be sent (its endpoint or message is gone)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(DUE, delivery_id)
        pipe.hset(_delivery_key(delivery_id), mapping={"state": "dropped", "last_error": reason})
        pipe.execute()

    # Dead letters

    def dead(self, limit: int = 1000) -> list[Delivery]:
        """Dead-lettered deliveries, oldest first."""
        ids = self.redis.zrange(DEAD, 0, limit - 1)
        return [d for d in (self.delivery(i) for i in ids) if d is not None]

    def replay(self, delivery_ids: Iterable[str] | None = None) -> int:
        """Make dead deliveries (all of them with ``None``) due now, with a fresh schedule; returns how many."""
        ids = list(self.redis.zrange(DEAD, 0, -1) if delivery_ids is None else delivery_ids)
        now = time.time()
        replayed = 0
        for delivery_id in ids:
            if self.redis.zrem(DEAD, delivery_id):
                pipe = self.redis.pipeline(transaction=True)
                pipe.hset(_delivery_key(delivery_id), mapping={"state": "pending", "attempts": 0})
                pipe.expire(_delivery_key(delivery_id), RETENTION)
                pipe.zadd(DUE, {delivery_id: now})
                pipe.execute()
                replayed += 1
        return replayed

    def counts(self) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(DUE)
        pipe.zcard(DEAD)
        pending, dead = pipe.execute()
        return {"pending": int(pending), "dead": int(dead)}


def _endpoint(raw: Mapping[str, str]) -> Endpoint:
    events = raw.get("events", "*")
    return Endpoint(
        id=raw["id"], url=raw["url"], secret=raw["secret"], campaign_id=raw.get("campaign", ""),
        events=wh.EVENT_TYPES if events == "*" else tuple(events.split(",")), created_at=float(raw.get("created_at", 0)),
    )  # fmt: skip


def _emit(client: Any, event_type: str, campaign_id: str, msg_id: str, data: Mapping[str, Any], at: float) -> None:
    body = json.dumps(wh.message(event_type, data, at), separators=(",", ":"))
    emit = script(client, "webhook_emit.lua")  # on a pipeline, it joins the pipeline's round trip
    prefixes = [_endpoint_key(""), _delivery_key(""), _message_key("")]
    emit(keys=[_ACCOUNT, _campaign_set(campaign_id), DUE], args=[msg_id, event_type, body, repr(time.time()), RETENTION, *prefixes])


# The workers' hooks: one line each where the fact happens.


def leg_event(client: Any, event_name: str, record: LegRecord) -> None:
    """``call.answered`` when ``record`` took (or had already taken) its ``leg_answered``
    (``client`` may be the worker's pipeline)."""
    if event_name != LEG_ANSWERED or record.answered_at is None:
        return
    data = wh.call_answered(record.campaign_id, record.contact_id, record.attempt, record.leg_sid, record.answered_at)
    msg_id = wh.message_id("call.answered", record.leg_sid)
    _emit(client, "call.answered", record.campaign_id, msg_id, data, record.answered_at)


def call_completed(client: Any, campaign_id: str, result: Mapping[str, Any]) -> None:
    """``call.completed`` for an attempt that had a leg (a dial the Legs API refused had no call)."""
    if not result.get("leg_sid"):
        return
    msg_id = wh.message_id("call.completed", str(result["leg_sid"]))
    _emit(client, "call.completed", campaign_id, msg_id, wh.call_completed(campaign_id, result), result.get("ended_at") or time.time())


def record_final(
    store: Store, campaign_id: str, contact_id: str, contact: Contact | None, record: Mapping[str, Any], *, client: Any = None
) -> None:
    """Store a contact's final record (:meth:`Store.record_result`) with its ``contact.finished``
    before it and, without ``client`` (a pipeline: the caller checks after executing it),
    ``campaign.finished`` after it if it was the campaign's last."""
    phone, variables = (contact.phone, contact.variables) if contact else (str(record.get("phone", "")), {})
    data = wh.contact_finished(campaign_id, phone, variables, {**record, "contact_id": contact_id})
    msg_id = wh.message_id("contact.finished", campaign_id, contact_id)
    _emit(client if client is not None else store.redis, "contact.finished", campaign_id, msg_id, data, time.time())
    store.record_result(campaign_id, contact_id, record, client=client)
    if client is None:
        campaign_check(store, campaign_id)


def campaign_check(store: Store, campaign_id: str) -> bool:
    """``campaign.finished`` if every contact has its final record and the campaign is done
    or canceled; returns whether it is finished."""
    pipe = store.redis.pipeline(transaction=False)
    pipe.hmget(keys.campaign(campaign_id), "state", "total")
    pipe.scard(keys.campaign(campaign_id, "done"))
    pipe.hgetall(keys.campaign(campaign_id, "counts"))
    (state, total), done, counts = pipe.execute()
    if state not in ("done", "canceled") or int(done) < int(total or 0):
        return False
    config = store.campaign(campaign_id)
    outcomes = {k.removeprefix("outcome:"): int(v) for k, v in counts.items() if k.startswith("outcome:") and int(v)}
    data = wh.campaign_finished(campaign_id, config.name if config else "", state, int(total or 0), outcomes)
    _emit(store.redis, "campaign.finished", campaign_id, wh.message_id("campaign.finished", campaign_id), data, time.time())
    return True
