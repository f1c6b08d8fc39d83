"""The limits every campaign of the account shares: ``Settings.engine``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dialstream.domain.limits import Budget, SlotCaps
from dialstream.domain.retry import RetryPolicy, create_leg_retry_policy
from dialstream.errors import ConfigurationError
from dialstream.settings.env import env_field, read_env, write_env

if TYPE_CHECKING:
    from dialstream.domain.campaign import CampaignConfig

__all__ = ["EngineConfig"]


@dataclass(frozen=True)
class EngineConfig:
    """The limits every campaign of the account shares, enforced across every worker:
    ``Settings.engine``. Field metadata holds the environment variable and its help."""

    api_budget: int = env_field(
        "DIALSTREAM_API_BUDGET", "Legs API requests the account may make per DIALSTREAM_API_WINDOW (Exotel: 200/minute).", 200
    )
    api_window: float = env_field("DIALSTREAM_API_WINDOW", "Seconds of the Legs API budget's window.", 60.0)
    max_calls: int = env_field("DIALSTREAM_MAX_CALLS", "Live calls of the account at once (0: no cap).", 0)
    max_streams: int = env_field("DIALSTREAM_MAX_STREAMS", "Bot streams of the account at once (0: no cap).", 0)
    slot_ttl: float = env_field(
        "DIALSTREAM_SLOT_TTL",
        "Seconds a call's concurrency slot lives without a heartbeat: how long a dead worker's calls hold capacity.",
        60.0,
    )
    dial_lease: float = env_field(
        "DIALSTREAM_DIAL_LEASE",
        "Seconds a contact taken for dialing stays taken; if its worker dies, the contact is dialled after this.",
        30.0,
    )
    max_dialing: int = env_field(
        "DIALSTREAM_MAX_DIALING", "Contacts per campaign handed to dial workers and not yet placed, at most.", 100
    )
    event_backlog: int = env_field(
        "DIALSTREAM_EVENT_BACKLOG",
        "Leg events and in-call actions waiting for the events workers at which new dials stop; from half of it "
        "they slow down, so the calls already up keep their latency (0: dial whatever the backlog).",
        200,
    )
    default_region: str = env_field(
        "DIALSTREAM_DEFAULT_REGION", "Region (ISO 3166) of contact numbers written without a country code.", "IN"
    )
    dial_retry_for: float = env_field(
        "DIALSTREAM_DIAL_RETRY_FOR",
        "Seconds a create-leg failing with 5xx or a timeout is retried (with backoff) before the "
        "attempt fails; independent of the campaign's redial rules.",
        60.0,
    )
    reconcile_after: float = env_field(
        "DIALSTREAM_RECONCILE_AFTER",
        "Seconds a leg may stay quiet past its expected next event (answered or ended within its ring "
        "timeout; an answered call: any time) before it is looked up through the Legs API (GET leg) and "
        "brought to its true state; a live call is looked up again after as long as it has lasted, at most "
        "ten times this. Every live leg is also looked up when an ingress comes back.",
        30.0,
    )
    retention_days: float = env_field(
        "DIALSTREAM_RETENTION_DAYS",
        "Days a campaign's contacts, results and rejected rows are kept after its last activity "
        "(finished, canceled, or untouched that long): then they expire.",
        30.0,
    )
    rejects_kept: int = env_field(
        "DIALSTREAM_REJECTS_KEPT",
        "Rejected rows stored per campaign as samples for its report (every rejection is counted).",
        1000,
    )

    def __post_init__(self) -> None:
        _ = self.budget  # validated now
        if min(self.max_calls, self.max_streams, self.event_backlog) < 0 or self.max_dialing < 1:
            raise ConfigurationError(
                "DIALSTREAM_MAX_CALLS/MAX_STREAMS/EVENT_BACKLOG must be >= 0 and DIALSTREAM_MAX_DIALING >= 1"
            )
        if self.slot_ttl <= 0 or self.dial_lease <= 0 or self.reconcile_after <= 0:
            raise ConfigurationError("DIALSTREAM_SLOT_TTL, DIALSTREAM_DIAL_LEASE and DIALSTREAM_RECONCILE_AFTER must be positive")
        if self.dial_retry_for < 0:
            raise ConfigurationError("DIALSTREAM_DIAL_RETRY_FOR must be >= 0")
        if self.retention_days <= 0 or self.rejects_kept < 0:
            raise ConfigurationError("DIALSTREAM_RETENTION_DAYS must be positive and DIALSTREAM_REJECTS_KEPT >= 0")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EngineConfig:
        """From ``environ`` (default: ``os.environ``); unset variables keep their defaults."""
        return cls(**read_env(cls, os.environ if environ is None else environ))

    def to_env(self) -> dict[str, str]:
        """The environment that gives a child process these limits."""
        return write_env(self)

    @property
    def budget(self) -> Budget:
        # The reserve already holds each dialled call's actions until it needs no more; the
        # headroom is only for in-call requests no call reserves (a hang-up, a transfer, a
        # look-up, a stop's retry), which may take the whole budget anyway and at worst wait a
        # slot. At 5 % it sat idle whenever calls needed nothing beyond their reserve (a greeting
        # campaign at 200/min: 10 of the 11.5 requests held back from dials): 94 % of the budget
        # used. 1 % (Exotel's 200: 2) leaves dials about 98 %.
        return Budget(limit=self.api_budget, window=self.api_window, headroom=max(1, self.api_budget // 100))

    @property
    def create_leg_retry(self) -> RetryPolicy:
        """How create-leg 5xx and timeouts are retried (DIALSTREAM_DIAL_RETRY_FOR)."""
        return create_leg_retry_policy(self.dial_retry_for)

    @property
    def retention(self) -> int:
        """DIALSTREAM_RETENTION_DAYS in seconds, the TTL of a campaign's keys."""
        return max(1, round(self.retention_days * 86400))

    def slot_caps(self, campaign: CampaignConfig) -> SlotCaps:
        """The caps a call of ``campaign`` is checked against (0 means no cap)."""
        return SlotCaps(self.max_calls or None, campaign.max_concurrent or None, self.max_streams or None)
