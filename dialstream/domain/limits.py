"""The account's limits as values: the Legs API budget and the concurrency caps (pure).

:class:`Budget` and :class:`SlotCaps` are what the settings configure; :class:`Grant`,
:class:`SlotGrant` and :class:`SlotCounts` are the answers of the Redis-side enforcers,
``dialstream.state.pacing`` and ``dialstream.state.slots``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialstream.errors import ConfigurationError

__all__ = ["Budget", "Grant", "SlotCaps", "SlotGrant", "SlotCounts"]


@dataclass(frozen=True)
class Budget:
    """The account's request budget and the share of it kept for in-call actions."""

    limit: int = 200  # requests ...
    window: float = 60.0  # ... in any window of this many seconds (Exotel: 200/minute)
    actions_per_call: int = 3  # in-call requests a dialled call still needs (stream, say, stop_say)
    headroom: int = 10  # always kept free of dials, whatever the number of awaiting calls
    awaiting_ttl: float = 120.0  # seconds a dialled call holds its reserve unless settled earlier
    # Grants are timed at Redis, requests counted on arrival at Exotel: a request granted at
    # 0.000 s may arrive after one granted at 60.000 s. Enforcing a slightly longer window
    # absorbs that spread of transit times (0.4 % of the budget at the defaults).
    latency_guard: float = 0.25

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0:
            raise ConfigurationError(f"pacing budget {self.limit}/{self.window}s: both must be positive")
        if not 0 <= self.headroom < self.limit:
            raise ConfigurationError(f"pacing headroom {self.headroom} must be >= 0 and below the limit {self.limit}")
        if self.actions_per_call < 0 or self.awaiting_ttl <= 0 or self.latency_guard < 0:
            raise ConfigurationError("pacing actions_per_call and latency_guard must be >= 0, awaiting_ttl positive")

    @property
    def enforced_window(self) -> float:
        """The window the limiter keeps: the provider's plus the latency guard."""
        return self.window + self.latency_guard


@dataclass(frozen=True)
class Grant:
    """The answer to one request for budget. True when granted."""

    ok: bool
    wait: float = 0.0  # seconds until a slot could free for this kind (a hint; 0 when granted)
    at_us: int = 0  # the Redis server's time of the decision, in microseconds
    used: int = 0  # grants in the window ending at ``at_us``, this one included
    reserve: int = 0  # requests held back from dials at that moment (0 for actions)

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class SlotCaps:
    """Limits checked together when a slot is taken; None means no limit."""

    account_calls: int | None = None  # live calls of the account (Exotel: Starter 10, Growth 50)
    campaign_calls: int | None = None  # live calls of this campaign
    streams: int | None = None  # bot streams (Exotel's max streams, or the bot fleet's capacity)

    def __post_init__(self) -> None:
        for name in ("account_calls", "campaign_calls", "streams"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigurationError(f"slot cap {name}={value} must be >= 0 (or None for no cap)")


@dataclass(frozen=True)
class SlotGrant:
    """The answer to :meth:`Slots.acquire`; True when the slot is held."""

    ok: bool
    blocked_by: str = ""  # the first cap that was full: account_calls | campaign_calls | streams
    account_calls: int = 0  # live slots after the decision
    campaign_calls: int = 0
    streams: int = 0

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class SlotCounts:
    """Live (unexpired) slots."""

    account_calls: int = 0
    campaign_calls: int = 0
    streams: int = 0
