"""Leg timers in Redis: armed by anyone, fired by whichever live worker claims them first.

A timer is a JSON member of one sorted set scored by its due time on the Redis server's
clock. Nothing is held in a worker's memory, so a worker (or a whole machine) that dies
loses no timer: the sweepers of the remaining workers fire it. A sweeper claims a due timer
(``timers_claim.lua``: it stays in the set, due again when the claim's lease runs out) and
acks it once fired (``timers_ack.lua``), so a sweeper that dies while firing loses none
either. Five kinds:

- ``{"kind": "event", "event": {...}}``: re-apply a leg event a moment after the ingress
  published it (armed by ``ingress_accept.lua``). Applying an event is idempotent, so this
  is a no-op when the worker that took the event did its job, and the rescue when it died
  doing it.
- ``{"kind": "leg", "campaign": ..., "leg": ..., "timer": ...}``: a deadline of the leg
  state machine (``dialstream.domain.leg_state.apply_timer``).
- ``{"kind": "slot", "campaign": ..., "leg": ..., "call": ..., "until": ..., "beat": n}``:
  the heartbeat that keeps a live call's concurrency slot (``dialstream.domain.slot_heartbeat``).

- ``{"kind": "reconcile", "campaign": ..., "contact": ..., "attempt": n, "leg": ...}``: look the
  leg up through the Legs API when its events are overdue (``dialstream.domain.reconcile``).
  One member per leg: arming it again moves it (and a claimed one moved is not acked away).
- ``{"kind": "gap", "back_at": ..., "n": ...}``: an ingress is back (it started, or Redis
  answers it again): the events sent while it was away may be lost, so every live leg is
  looked up at once (its reconcile timer is moved to now).
  Armed by the ingress (:func:`gap_timer`): one sweeper fires it, and fires it again if it dies.

What a fired timer does is ``workers.timers``'s.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dialstream.state import keys
from dialstream.state.scripts import script

__all__ = [
    "TimerQueue", "Claim", "event_timer", "leg_timer", "slot_timer", "reconcile_timer", "gap_timer", "TIMER_LEASE",
]  # fmt: skip

# Seconds a claimed timer stays claimed: far longer than firing one takes (a few Redis round
# trips and a Celery publish), short enough that a dead sweeper's timers are barely late.
TIMER_LEASE = 10.0


def event_timer(payload: Mapping[str, Any]) -> str:
    return json.dumps({"kind": "event", "event": dict(payload)}, separators=(",", ":"))


def leg_timer(campaign_id: str, leg_sid: str, timer_id: str) -> str:
    return _armed({"kind": "leg", "campaign": campaign_id, "leg": leg_sid, "timer": timer_id})


def slot_timer(campaign_id: str, leg_sid: str, call_id: str, until: float, beat: int = 1) -> str:
    """Heartbeat number ``beat`` of a live call's concurrency slot, beating until ``until`` (Unix s).

    Numbered rather than given a nonce: a beat fired twice (by a sweeper that stalled past
    its claim's lease, and by another) arms the same next beat, so a call keeps one heartbeat.
    """
    member = {"kind": "slot", "campaign": campaign_id, "leg": leg_sid, "call": call_id, "until": until, "beat": beat}
    return json.dumps(member, separators=(",", ":"))


def reconcile_timer(campaign_id: str, contact_id: str, attempt: int, leg_sid: str) -> str:
    """The leg's look-up: the same member whoever arms it, so that arming it again (its answer,
    each look-up) moves the one timer the leg has."""
    member = {"kind": "reconcile", "campaign": campaign_id, "contact": contact_id, "attempt": attempt, "leg": leg_sid}
    return json.dumps(member, separators=(",", ":"))


def gap_timer(back_at: float) -> str:
    """An ingress was away and is back at ``back_at`` (Unix s): look up its gap's legs."""
    return _armed({"kind": "gap", "back_at": back_at})


def _armed(member: dict[str, Any]) -> str:
    # The nonce keeps two armings of the same deadline distinct members (ZADD would merge them).
    return json.dumps({**member, "n": uuid.uuid4().hex[:8]}, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Claim:
    """A due timer claimed by one sweeper: fire ``timer``, then :meth:`TimerQueue.ack` it."""

    timer: dict[str, Any]
    member: str | bytes  # as stored: the ack removes exactly this member ...
    lease: str | bytes  # ... if it is still under this claim's lease (its score as stored)


class TimerQueue:
    """The sorted set of armed timers, over a synchronous Redis client. A claimed timer that
    is not acked within ``lease`` seconds is due again (its claimer died, or failed to fire it)."""

    def __init__(self, client: Any, key: str = keys.timers(), *, lease: float = TIMER_LEASE) -> None:
        self.key = key
        self.lease = lease
        self._client = client
        self._add = script(client, "timers_add.lua")
        self._claim = script(client, "timers_claim.lua")
        self._ack = script(client, "timers_ack.lua")

    def arm(self, member: str, seconds: float, *, client: Any = None) -> None:
        """Fire ``member`` ``seconds`` from now (``client`` may be a pipeline)."""
        self._add(keys=[self.key], args=[member, seconds], client=client)

    def disarm(self, member: str, *, client: Any = None) -> None:
        """Cancel ``member`` if it has not fired (``client`` may be a pipeline)."""
        (client if client is not None else self._client).zrem(self.key, member)

    def armed(self, kind: str) -> list[str | bytes]:
        """The armed timers of ``kind`` (due or not), as stored: arming one of them again moves it."""
        pattern = '{"kind":"' + kind + '",*'
        return [member for member, _ in self._client.zscan_iter(self.key, match=pattern, count=1000)]

    def claim_due(self, limit: int = 100) -> list[Claim]:
        """Claim up to ``limit`` due timers for ``lease`` seconds; each is claimed by one caller at a time."""
        flat = self._claim(keys=[self.key], args=[limit, self.lease])
        return [Claim(json.loads(member), member, lease) for member, lease in zip(flat[::2], flat[1::2], strict=True)]

    def ack(self, claims: Sequence[Claim]) -> None:
        """The claimed timers fired: remove those still under their claim's lease (one round trip)."""
        if claims:
            self._ack(keys=[self.key], args=[value for claim in claims for value in (claim.member, claim.lease)])
