"""The queue every dial of a campaign waits in.

:class:`DialQueue` holds each campaign's pending dials in one Redis sorted set scored by the
time before which they must not be dialled: new contacts (now, or when their calling window
opens), redials (when their delay is over) and contacts sent back to wait (a closed window,
a full cap, an exhausted API budget). Nothing waits as a Celery countdown, which the Redis
transport re-delivers after its visibility timeout.

The dial poller takes due contacts atomically (``dial_pop.lua``), so two pollers never
take the same one, and only from a running campaign, so pause and cancel act at once. A
taken contact is *leased* under a token until its leg exists (:meth:`DialQueue.ack`) or it is
sent back (:meth:`DialQueue.schedule` with the token); if its worker dies first, the lease
runs out and the contact is due again. Only the token's holder can renew or send back a
lease, so a worker that lost its lease (it stalled past it) never dials the contact a second
time under another worker: (campaign, contact, attempt) is the dial's idempotency key.

Key layout (``prefix`` defaults to ``ds``; the campaign hash is ``dialstream.state.store``'s)::

    {prefix}:campaign:{id}            hash: the field ``state`` gates taking and scheduling
    {prefix}:campaign:{id}:due        sorted set: ["contact",attempt] -> not-before time (Unix s)
    {prefix}:campaign:{id}:leased     sorted set: same members -> lease expiry (Unix s)
    {prefix}:campaign:{id}:leases     hash: member -> lease token
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

from dialstream.state import keys
from dialstream.state.scripts import script

__all__ = ["SCHEDULED", "NOT_HOLDER", "CANCELED", "ORDER_STEP", "in_order", "DialItem", "_member", "DialQueue", "_item"]


# A sorted set orders members with equal scores by their text: '["r10",1]' before '["r2",1]'.
# Contacts due at the same moment are queued a microsecond apart in submission order instead,
# so a batch is dialled in file order (a million rows shift the last by a second).
ORDER_STEP = 1e-6


def in_order(due: float, position: int) -> float:
    """The score of the ``position``-th contact of a batch (0-based) due at ``due``."""
    return due + position * ORDER_STEP


# DialQueue.schedule's answers.
SCHEDULED = 1


NOT_HOLDER = 0  # the lease named is no longer the caller's: someone else has the contact


CANCELED = -1  # the campaign was canceled: nothing is scheduled, the contact's dialing is over (the lease is kept)


@dataclass(frozen=True, slots=True)
class DialItem:
    """One pending dial: ``attempt`` is the number of the dial to make (1 for the first).

    ``token`` is set on an item taken with a lease: it proves which taker holds it.
    """

    campaign_id: str
    contact_id: str
    attempt: int = 1
    due: float = 0.0
    token: str = ""

    @property
    def member(self) -> str:
        return _member(self.contact_id, self.attempt)


def _member(contact_id: str, attempt: int) -> str:
    return json.dumps([contact_id, attempt], separators=(",", ":"))


class DialQueue:
    """Every campaign's pending dials in Redis, over a synchronous client."""

    def __init__(self, client: redis.Redis, *, prefix: str = "ds") -> None:
        self.redis = client
        self.prefix = prefix
        self._pop = script(client, "dial_pop.lua")
        self._schedule = script(client, "dial_schedule.lua")
        self._renew = script(client, "dial_renew.lua")
        self._drain = script(client, "dial_drain.lua")

    def keys(self, campaign_id: str) -> list[str]:
        """[due, leased, leases, campaign hash] of one campaign."""
        base = keys.campaign(campaign_id, prefix=self.prefix)
        return [f"{base}:due", f"{base}:leased", f"{base}:leases", base]

    def add(self, campaign_id: str, entries: Iterable[tuple[str, int, float]], *, client: Any = None) -> None:
        """Queue (contact id, attempt, not-before time) entries as they are, whatever the
        campaign's state: how a batch is loaded. ``client`` may be a pipeline."""
        mapping = {_member(contact_id, attempt): due for contact_id, attempt, due in entries}
        if mapping:
            (client or self.redis).zadd(self.keys(campaign_id)[0], mapping)

    def schedule(self, item: DialItem, due: float, *, lease: DialItem | None = None) -> int:
        """Dial ``item`` at ``due`` (moving it if it is queued), unless its campaign was canceled.

        ``lease`` (a leased item with its token: the same contact and attempt to send it back,
        or the attempt that just failed) is given up in the same step, by its holder only.
        Returns :data:`SCHEDULED`, :data:`NOT_HOLDER` (nothing done) or :data:`CANCELED`
        (nothing scheduled; the lease is kept for its holder to give up once the contact's
        final result is recorded).
        """
        held = lease.member if lease is not None else ""
        token = lease.token if lease is not None else ""
        args = [item.member, repr(float(due)), token, held]
        return int(self._schedule(keys=self.keys(item.campaign_id), args=args))

    def pop_due(self, campaign_id: str, now: float | None = None, limit: int = 100, *, lease: float) -> list[DialItem]:
        """Take up to ``limit`` contacts due by ``now`` (default: this machine's clock), earliest
        first, leased for ``lease`` seconds; nothing unless the campaign is running.

        Contacts whose lease ran out first become due again, at the lease's end.
        """
        now = time.time() if now is None else now
        if limit <= 0:
            return []
        args = [repr(float(now)), int(limit), repr(float(lease)), secrets.token_hex(6)]
        flat = self._pop(keys=self.keys(campaign_id), args=args)
        return [_item(campaign_id, flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)]

    def renew(self, item: DialItem, lease: float, now: float | None = None, *, client: Any = None) -> bool:
        """Extend ``item``'s lease to ``lease`` seconds from ``now``; False if it is not held with
        ``item.token`` any more (its lease ran out and the contact was taken again, or drained).
        ``client`` may be a pipeline (the answer is then the pipeline's)."""
        now = time.time() if now is None else now
        keys = self.keys(item.campaign_id)[1:3]
        return bool(self._renew(keys=keys, args=[item.member, item.token, repr(float(now + lease))], client=client))

    def ack(self, items: Iterable[DialItem], *, client: Any = None) -> None:
        """The leased ``items`` were dialled: forget their leases. ``client`` may be a pipeline."""
        pipe = client or self.redis.pipeline(transaction=True)
        for item in items:
            _, leased, leases, _ = self.keys(item.campaign_id)
            pipe.zrem(leased, item.member)
            pipe.hdel(leases, item.member)
        if client is None:
            pipe.execute()

    def drain(self, campaign_id: str, limit: int = 1000) -> list[DialItem]:
        """Take up to ``limit`` queued or leased contacts whatever their time (a canceled
        campaign's); a drained lease's holder then finds it lost."""
        flat = self._drain(keys=self.keys(campaign_id)[:3], args=[int(limit)])
        return [_item(campaign_id, flat[i], flat[i + 1], "") for i in range(0, len(flat), 2)]

    def pending(self, campaign_id: str) -> int:
        """Contacts waiting to be dialled (due or not), leased ones excluded."""
        return int(self.redis.zcard(self.keys(campaign_id)[0]))

    def leased(self, campaign_id: str) -> int:
        """Contacts taken for dialing whose leg does not exist yet."""
        return int(self.redis.zcard(self.keys(campaign_id)[1]))

    def next_due(self, campaign_id: str) -> float | None:
        """The earliest not-before time, or None when nothing waits."""
        first = self.redis.zrange(self.keys(campaign_id)[0], 0, 0, withscores=True)
        return float(first[0][1]) if first else None


def _item(campaign_id: str, member: str | bytes, due: Any, token: Any) -> DialItem:
    contact_id, attempt = json.loads(member)
    return DialItem(campaign_id, contact_id, int(attempt), float(due), token.decode() if isinstance(token, bytes) else str(token))
