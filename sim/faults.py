"""Faults injected on demand, as declared in a scenario's ``faults:`` section.

Pure: each ``*Faults`` class holds probabilities and ranges, and its methods turn a
seeded ``random.Random`` into a decision. The I/O modules (delivery, api, media, call)
ask before acting, so every fault is reproducible with ``--seed``.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field

from dialstream.errors import ConfigurationError
from sim.schema import Range, probability

__all__ = ["EventFaults", "EventFate", "Burst", "ApiFaults", "StreamFaults", "CalleeFaults", "Faults"]


def _chance(rng: random.Random, p: float) -> bool:
    # Draw even when p is 0 so that enabling one fault does not shift every later draw.
    return rng.random() < p


def _sometime(rng: random.Random, p: float, after_ms: Range) -> float | None:
    """With probability ``p`` a time drawn from ``after_ms``, else None (drawn either way, as above)."""
    happens = _chance(rng, p)
    after = rng.uniform(*after_ms)
    return after if happens else None


@dataclass(frozen=True)
class EventFaults:
    """Event delivery faults, drawn per event."""

    duplicate: float = 0.0  # the event is delivered a second time (same event_sid)
    reorder: float = 0.0  # the event swaps places with the leg's next event
    drop: float = 0.0  # the first attempt is lost in transit; a retry delivers it
    delay: float = 0.0  # the event is held back for a while before delivery
    delay_ms: Range = (100.0, 500.0)
    lose: float = 0.0  # the event is lost for good: every attempt fails, as if the endpoint were down throughout
    lose_names: tuple[str, ...] = ()  # the events ``lose`` applies to (empty: every event)

    def __post_init__(self) -> None:
        for name in ("duplicate", "reorder", "drop", "delay", "lose"):
            probability(getattr(self, name), f"faults.events.{name}")

    def draw(self, rng: random.Random, name: str = "") -> EventFate:
        """The fate of the event ``name``."""
        delayed = _chance(rng, self.delay)
        fate = EventFate(
            duplicate=_chance(rng, self.duplicate),
            reorder=_chance(rng, self.reorder),
            drop=_chance(rng, self.drop),
            delay_ms=rng.uniform(*self.delay_ms) if delayed else 0.0,
        )
        if not self.lose:
            return fate  # no draw: scenarios without the fault keep the draws their seeds always gave
        lost = _chance(rng, self.lose) and (not self.lose_names or name in self.lose_names)
        return dataclasses.replace(fate, lose=lost)


@dataclass(frozen=True)
class EventFate:
    """What the faults do to one event."""

    duplicate: bool = False
    reorder: bool = False
    drop: bool = False
    delay_ms: float = 0.0
    lose: bool = False


@dataclass(frozen=True)
class Burst:
    """Legs API requests in ``[start_s, start_s + duration_s)`` after start answer ``status``:
    every one (an outage), or a ``share`` of them drawn per request (a storm)."""

    start_s: float
    duration_s: float
    status: int = 503
    share: float = 1.0

    def __post_init__(self) -> None:
        if self.status not in (429, 500, 502, 503, 504):
            raise ConfigurationError(f"faults.api.bursts: status must be 429 or 5xx, got {self.status}")
        probability(self.share, "faults.api.bursts.share")

    def hits(self, rng: random.Random, elapsed_s: float) -> bool:
        """Whether a request ``elapsed_s`` after start meets this burst (an outage draws nothing)."""
        inside = self.start_s <= elapsed_s < self.start_s + self.duration_s
        return inside and (self.share >= 1.0 or _chance(rng, self.share))


@dataclass(frozen=True)
class ApiFaults:
    """Legs API faults: random errors per request and scheduled error bursts."""

    rate_429: float = 0.0
    rate_5xx: float = 0.0
    status_5xx: int = 503
    bursts: tuple[Burst, ...] = ()

    def __post_init__(self) -> None:
        probability(self.rate_429, "faults.api.rate_429")
        probability(self.rate_5xx, "faults.api.rate_5xx")

    def status(self, rng: random.Random, elapsed_s: float) -> int | None:
        """The error status to answer a request with ``elapsed_s`` after start, or None."""
        for burst in self.bursts:
            if burst.hits(rng, elapsed_s):
                return burst.status
        too_many, broken = _chance(rng, self.rate_429), _chance(rng, self.rate_5xx)
        if too_many:
            return 429
        return self.status_5xx if broken else None


@dataclass(frozen=True)
class StreamFaults:
    """Media-leg faults, drawn per WebSocket handshake attempt or per stream."""

    handshake_fail: float = 0.0  # the attempt fails before reaching the bot (Exotel retries once)
    handshake_delay: float = 0.0  # the attempt is slowed down (network, TLS)
    handshake_delay_ms: Range = (500.0, 2000.0)
    disconnect: float = 0.0  # the connection drops mid-stream
    disconnect_after_ms: Range = (500.0, 2000.0)  # after stream_started

    def __post_init__(self) -> None:
        for name in ("handshake_fail", "handshake_delay", "disconnect"):
            probability(getattr(self, name), f"faults.streams.{name}")

    def attempt(self, rng: random.Random) -> tuple[bool, float]:
        """(fail, delay_ms) for one handshake attempt."""
        fail, slow = _chance(rng, self.handshake_fail), _chance(rng, self.handshake_delay)
        return fail, rng.uniform(*self.handshake_delay_ms) if slow else 0.0

    def disconnect_after(self, rng: random.Random) -> float | None:
        """Milliseconds after stream_started at which the connection drops, or None."""
        return _sometime(rng, self.disconnect, self.disconnect_after_ms)


@dataclass(frozen=True)
class CalleeFaults:
    """The callee hangs up unexpectedly, overriding the profile's talk time."""

    hangup: float = 0.0
    hangup_after_ms: Range = (0.0, 1000.0)  # after leg_answered

    def __post_init__(self) -> None:
        probability(self.hangup, "faults.callee.hangup")

    def hangup_after(self, rng: random.Random) -> float | None:
        return _sometime(rng, self.hangup, self.hangup_after_ms)


@dataclass(frozen=True)
class Faults:
    """All faults of a scenario; the defaults inject nothing."""

    events: EventFaults = field(default_factory=EventFaults)
    api: ApiFaults = field(default_factory=ApiFaults)
    streams: StreamFaults = field(default_factory=StreamFaults)
    callee: CalleeFaults = field(default_factory=CalleeFaults)
