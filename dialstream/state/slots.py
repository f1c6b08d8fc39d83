"""Concurrency caps shared by every worker: account calls, per-campaign calls, bot streams.

A call takes a slot before it is dialled, in one atomic check of every cap that applies
(``slot_acquire.lua``), and gives it back when it ends, fails to be placed, or its holder
dies. Slots are members of sorted sets scored by their expiry on the Redis server's clock:
the holder refreshes its slot while the call lives (a heartbeat), and a slot whose holder
stopped refreshing is reclaimed on the next acquire. So a crashed worker, or a lost
terminal event, costs capacity for at most one ``ttl``, never for good.

A call slot also reserves the call's bot stream by default, since every answered call needs
one at once (and it must never wait for one); :meth:`Slots.release_stream` gives the stream
back early when the stream ends before the call does.

Key layout (``prefix`` defaults to ``ds``)::

    {prefix}:slots:{account}:calls                 sorted set: slot id -> expiry (ms)
    {prefix}:slots:{account}:campaign:{id}         sorted set: slot id -> expiry (ms)
    {prefix}:slots:{account}:streams               sorted set: slot id -> expiry (ms)
    {prefix}:slots:{account}:holders               hash: slot id -> campaign id

Example::

    slots = Slots(client, settings.account_sid)
    if slots.acquire("camp", "camp:r12:1", SlotCaps(account_calls=50, campaign_calls=10), ttl=90):
        ...  # dial; refresh("camp:r12:1", ttl) on each leg event; release(...) when it ends
"""

from __future__ import annotations

from typing import Any

import redis

from dialstream.domain.limits import SlotCaps, SlotCounts, SlotGrant
from dialstream.state import keys
from dialstream.state.scripts import script

__all__ = ["Slots", "DEFAULT_ACCOUNT"]

DEFAULT_ACCOUNT = "default"


class Slots:
    """One account's concurrency slots over a synchronous Redis client."""

    def __init__(self, client: redis.Redis, account: str = DEFAULT_ACCOUNT, *, prefix: str = "ds") -> None:
        self.redis = client
        self.calls_key = keys.slots(account, "calls", prefix)
        self.streams_key = keys.slots(account, "streams", prefix)
        self.holders_key = keys.slots(account, "holders", prefix)
        self._campaign_prefix = keys.slots(account, "campaign:", prefix)
        self._acquire = script(client, "slot_acquire.lua")
        self._refresh = script(client, "slot_refresh.lua")
        self._release = script(client, "slot_release.lua")
        self._counts = script(client, "slot_counts.lua")

    def campaign_key(self, campaign_id: str) -> str:
        return self._campaign_prefix + campaign_id

    def acquire(self, campaign_id: str, slot_id: str, caps: SlotCaps, ttl: float, *, stream: bool = True) -> SlotGrant:
        """Take a slot for ``slot_id`` if every cap has room; reclaims expired slots first.

        Acquiring a slot already held (a retried task) extends it and succeeds. ``ttl`` is
        how long the slot lives without a refresh; ``stream`` reserves a bot stream too.
        """
        if not slot_id or not campaign_id:
            raise ValueError("a slot needs a slot id and a campaign id")
        ok, blocked, calls, in_campaign, streams = self._acquire(
            keys=[self.calls_key, self.campaign_key(campaign_id), self.streams_key, self.holders_key],
            args=[
                self._campaign_prefix,
                slot_id,
                campaign_id,
                _ms(ttl),
                _cap(caps.account_calls),
                _cap(caps.campaign_calls),
                _cap(caps.streams),
                "1" if stream else "0",
            ],
        )
        return SlotGrant(bool(ok), _text(blocked), int(calls), int(in_campaign), int(streams))

    def refresh(self, slot_id: str, ttl: float, *, client: Any = None) -> bool:
        """Extend a held slot to ``ttl`` from now; False if it had already expired (and was
        possibly taken by another call): the holder then no longer counts against the caps.
        ``client`` may be a pipeline (the answer is then the pipeline's)."""
        keys = [self.calls_key, self.streams_key, self.holders_key]
        return bool(self._refresh(keys=keys, args=[self._campaign_prefix, slot_id, _ms(ttl)], client=client))

    def release(self, slot_id: str, *, client: Any = None) -> bool:
        """Give a slot back (idempotent); True if it was held and unexpired. ``client`` may be a pipeline."""
        keys = [self.calls_key, self.streams_key, self.holders_key]
        return bool(self._release(keys=keys, args=[self._campaign_prefix, slot_id], client=client))

    def release_stream(self, slot_id: str, *, client: Any = None) -> bool:
        """Give back the slot's stream only (the stream ended, the call goes on)."""
        return bool((client or self.redis).zrem(self.streams_key, slot_id))

    def counts(self, campaign_id: str = "") -> SlotCounts:
        """Live slots: the account's calls, ``campaign_id``'s calls (0 if none given), streams."""
        campaign_key = self.campaign_key(campaign_id) if campaign_id else ""
        calls, in_campaign, streams = self._counts(keys=[self.calls_key, campaign_key, self.streams_key])
        return SlotCounts(int(calls), int(in_campaign), int(streams))


def _cap(value: int | None) -> int:
    return -1 if value is None else value


def _ms(seconds: float) -> int:
    if seconds <= 0:
        raise ValueError(f"a slot ttl must be positive, got {seconds}")
    return max(1, int(round(seconds * 1000)))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
