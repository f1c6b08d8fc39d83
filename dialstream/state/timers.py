"""Leg timers in Redis: armed by anyone, fired by whichever live worker sees them first.

A timer is a JSON member of one sorted set scored by its due time on the Redis server's
clock. Nothing is held in a worker's memory, so a worker (or a whole machine) that dies
loses no timer: the sweepers of the remaining workers fire it. Three kinds:

- ``{"kind": "event", "event": {...}}``: re-apply a leg event a moment after the ingress
  published it. Applying an event is idempotent, so this is a no-op when the
  worker that took the event did its job, and the rescue when it died doing it.
- ``{"kind": "leg", "campaign": ..., "leg": ..., "timer": ...}``: a deadline of the leg
  state machine (``dialstream.domain.leg_state.apply_timer``).
- ``{"kind": "slot", ...}``: the heartbeat that keeps a live call's concurrency slot.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from dialstream.state import keys
from dialstream.state.scripts import script

__all__ = ["TimerQueue", "event_timer", "leg_timer", "slot_timer"]



def event_timer(payload: Mapping[str, Any]) -> str:
    return json.dumps({"kind": "event", "event": dict(payload)}, separators=(",", ":"))


def leg_timer(campaign_id: str, leg_sid: str, timer_id: str) -> str:
    return _armed({"kind": "leg", "campaign": campaign_id, "leg": leg_sid, "timer": timer_id})


def slot_timer(campaign_id: str, leg_sid: str, call_id: str, until: float) -> str:
    """The next heartbeat of a live call's concurrency slot, beating until ``until`` (Unix s)."""
    return _armed({"kind": "slot", "campaign": campaign_id, "leg": leg_sid, "call": call_id, "until": until})


def _armed(member: dict[str, Any]) -> str:
    # The nonce keeps two armings of the same deadline distinct members (ZADD would merge them).
    return json.dumps({**member, "n": uuid.uuid4().hex[:8]}, separators=(",", ":"))


class TimerQueue:
    """The sorted set of armed timers, over a synchronous Redis client."""

    def __init__(self, client: Any, key: str = keys.timers()) -> None:
        self.key = key
        self._client = client
        self._add = script(client, "timers_add.lua")
        self._pop = script(client, "timers_pop.lua")

    def arm(self, member: str, seconds: float, *, client: Any = None) -> None:
        """Fire ``member`` ``seconds`` from now (``client`` may be a pipeline)."""
        self._add(keys=[self.key], args=[member, seconds], client=client)

    def disarm(self, member: str, *, client: Any = None) -> None:
        """Cancel ``member`` if it has not fired (``client`` may be a pipeline)."""
        (client if client is not None else self._client).zrem(self.key, member)

    def pop_due(self, limit: int = 100) -> list[dict[str, Any]]:
        """Take up to ``limit`` due timers; each is returned to exactly one caller."""
        return [json.loads(member) for member in self._pop(keys=[self.key], args=[limit])]
