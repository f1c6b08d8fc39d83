"""Status-aware redials: whether and when to call a contact again, and the schedule in Redis.

:class:`RedialPolicy` is pure: given a call's outcome and the number of dials so far, it
says when the next dial is due, or None. Busy, no-answer, failed and answering-machine
outcomes each have their own attempts and delay; invalid and DNC numbers are never redialled,
nor are completed or canceled calls.

:class:`RedialSchedule` keeps due redials in one Redis sorted set scored by due time (never
as Celery countdowns, which the Redis transport re-delivers after its visibility timeout).
A periodic task polls :meth:`RedialSchedule.pop_due`, which takes due items atomically
(``lua/redial_pop.lua``), so two pollers never take the same one. With ``lease=`` the items
are only leased until :meth:`RedialSchedule.ack`, so a poller that dies before enqueueing
them loses nothing: they become due again when the lease runs out.

Key layout (``prefix`` defaults to ``ds``)::

    {prefix}:redial:due       sorted set: ["campaign","contact",attempt] -> due time (Unix s)
    {prefix}:redial:leased    sorted set: same members -> lease expiry (Unix s)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import redis

from dialstream.errors import ConfigurationError
from dialstream.lua import script

__all__ = ["RedialRule", "RedialPolicy", "RedialItem", "RedialSchedule", "NEVER_REDIALLED", "DEFAULT_REDIAL_POLICY"]

# Outcomes that must never lead to another dial, whatever a campaign configures.
NEVER_REDIALLED = frozenset({"invalid", "dnc", "completed", "canceled"})
_ALIASES = {"no-answer": "no_answer", "noanswer": "no_answer", "cancelled": "canceled", "amd_machine": "machine"}


@dataclass(frozen=True)
class RedialRule:
    """How often and how soon to redial after one kind of outcome."""

    max_attempts: int = 3  # dials in all for the contact, the first one included
    delay: float = 600.0  # seconds from the end of the attempt to the next dial
    backoff: float = 1.0  # each further redial waits this many times longer

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.delay < 0 or self.backoff < 1:
            raise ConfigurationError(
                f"redial rule {self}: max_attempts must be >= 1, delay >= 0 and backoff >= 1"
            )


@dataclass(frozen=True)
class RedialPolicy:
    """Per-outcome redial rules; None for an outcome means it is never redialled."""

    busy: RedialRule | None = RedialRule(max_attempts=3, delay=300.0)
    no_answer: RedialRule | None = RedialRule(max_attempts=3, delay=1800.0)
    failed: RedialRule | None = RedialRule(max_attempts=2, delay=600.0)
    machine: RedialRule | None = RedialRule(max_attempts=2, delay=3600.0)  # answering machine (AMD)
    answered_no_stream: RedialRule | None = None  # the bot never came up: a person heard nothing

    def rule_for(self, outcome: str) -> RedialRule | None:
        name = _ALIASES.get(outcome, outcome)
        if name in NEVER_REDIALLED or name not in _OUTCOMES:
            return None
        return getattr(self, name)

    def next_attempt(self, outcome: str, attempts_so_far: int, now: float) -> float | None:
        """When to dial again (Unix seconds), or None when the contact is done.

        ``attempts_so_far`` counts every dial already made, the one that just ended included;
        the rule of the latest outcome caps the total.
        """
        if attempts_so_far < 1:
            raise ValueError(f"attempts_so_far={attempts_so_far}: the call that ended was attempt 1 or later")
        rule = self.rule_for(outcome)
        if rule is None or attempts_so_far >= rule.max_attempts:
            return None
        return now + rule.delay * rule.backoff ** (attempts_so_far - 1)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RedialPolicy:
        """From campaign configuration: ``{"busy": {"max_attempts": 3, "delay": 300}, "machine": null}``.

        Outcomes not named keep their defaults; naming a never-redialled outcome is an error.
        """
        rules: dict[str, RedialRule | None] = {}
        for outcome, value in raw.items():
            name = _ALIASES.get(outcome, outcome)
            if name in NEVER_REDIALLED:
                raise ConfigurationError(f"redial: {outcome!r} numbers are never redialled")
            if name not in _OUTCOMES:
                raise ConfigurationError(f"redial: unknown outcome {outcome!r}; expected one of {sorted(_OUTCOMES)}")
            if value is None or value is False:
                rules[name] = None
            elif isinstance(value, Mapping):
                try:
                    rules[name] = RedialRule(**value)
                except TypeError as exc:
                    raise ConfigurationError(f"redial {outcome!r}: {exc}") from None
            else:
                raise ConfigurationError(f"redial {outcome!r}: expected a mapping or null, got {value!r}")
        return cls(**rules)  # type: ignore[arg-type]


_OUTCOMES = frozenset(f.name for f in fields(RedialPolicy))
DEFAULT_REDIAL_POLICY = RedialPolicy()


@dataclass(frozen=True, slots=True)
class RedialItem:
    """One scheduled dial: ``attempt`` is the number of the dial to make (2 for the first redial)."""

    campaign_id: str
    contact_id: str
    attempt: int
    due: float = 0.0

    @property
    def member(self) -> str:
        return json.dumps([self.campaign_id, self.contact_id, self.attempt], separators=(",", ":"))

    @classmethod
    def from_member(cls, member: str | bytes, due: float) -> RedialItem:
        campaign_id, contact_id, attempt = json.loads(member)
        return cls(campaign_id, contact_id, int(attempt), due)


class RedialSchedule:
    """Due redials in Redis, for every campaign of one deployment."""

    def __init__(self, client: redis.Redis, *, prefix: str = "ds") -> None:
        self.redis = client
        self.due_key = f"{prefix}:redial:due"
        self.leased_key = f"{prefix}:redial:leased"
        self._pop = script(client, "redial_pop.lua")

    def schedule(self, campaign_id: str, contact_id: str, attempt: int, due: float) -> None:
        """Dial ``contact_id`` (attempt ``attempt``) at ``due``; scheduling it again moves it."""
        item = RedialItem(campaign_id, contact_id, attempt, due)
        self.redis.zadd(self.due_key, {item.member: due})

    def pop_due(self, now: float | None = None, limit: int = 100, *, lease: float = 0.0) -> list[RedialItem]:
        """Take up to ``limit`` items due by ``now`` (default: this machine's clock), oldest first.

        ``lease`` > 0 keeps them leased until :meth:`ack`; an unacknowledged item is offered
        again ``lease`` seconds later. Without a lease they are gone once returned.
        """
        now = time.time() if now is None else now
        if limit <= 0:
            return []
        flat = self._pop(keys=[self.due_key, self.leased_key], args=[repr(float(now)), int(limit), repr(float(lease))])
        return [RedialItem.from_member(flat[i], float(flat[i + 1])) for i in range(0, len(flat), 2)]

    def ack(self, items: Iterable[RedialItem]) -> int:
        """The leased ``items`` were handed on (enqueued as dial tasks): forget them."""
        members = [item.member for item in items]
        return int(self.redis.zrem(self.leased_key, *members)) if members else 0

    def cancel(self, campaign_id: str, contact_id: str | None = None) -> int:
        """Drop the scheduled redials of a campaign (or of one of its contacts); returns how many."""
        head = json.dumps([campaign_id] if contact_id is None else [campaign_id, contact_id], separators=(",", ":"))
        pattern = _glob_escape(head[:-1]) + ",*"  # '["camp",*' or '["camp","r12",*'
        removed = 0
        for key in (self.due_key, self.leased_key):
            members = [member for member, _ in self.redis.zscan_iter(key, match=pattern, count=1000)]
            for start in range(0, len(members), 1000):
                removed += int(self.redis.zrem(key, *members[start : start + 1000]))
        return removed

    def pending(self) -> int:
        """Redials waiting (due or not), leased ones excluded."""
        return int(self.redis.zcard(self.due_key))

    def next_due(self) -> float | None:
        """The earliest due time, or None when nothing is scheduled."""
        first = self.redis.zrange(self.due_key, 0, 0, withscores=True)
        return float(first[0][1]) if first else None


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
