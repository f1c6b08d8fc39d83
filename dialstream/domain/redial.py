"""Status-aware redials: when a contact is dialled again, if ever (pure).

:class:`RedialPolicy` is pure: given a call's outcome and the number of dials so far, it
says when the next dial is due, or None. Busy, no-answer, failed and answering-machine
outcomes each have their own attempts and delay; invalid and DNC numbers are never redialled,
nor are completed or canceled calls, a voicemail left or a call transferred to an agent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from dialstream.errors import ConfigurationError

__all__ = ["RedialRule", "RedialPolicy", "NEVER_REDIALLED", "DEFAULT_REDIAL_POLICY", "NO_REDIALS", "parse_redials"]

# Outcomes that must never lead to another dial, whatever a campaign configures.
# A voicemail left and a call handed to an agent are as final as a completed call.
NEVER_REDIALLED = frozenset({"invalid", "dnc", "completed", "canceled", "voicemail_left", "transferred"})
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

    def to_dict(self) -> dict[str, dict[str, float] | None]:
        """What :meth:`from_dict` reads back into this policy (campaign configuration is JSON)."""
        return {f.name: None if (rule := getattr(self, f.name)) is None else asdict(rule) for f in fields(self)}

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
NO_REDIALS = RedialPolicy(**{name: None for name in _OUTCOMES})




_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smh]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600}


def parse_redials(text: str) -> dict[str, Any] | None:
    """The short form people type (``--retries``, the API's ``retries`` as text): 'default',
    'none', or 'outcome=attempts/delay,...' (delay: 90, 30s, 5m, 1h; 'outcome=none': never
    redialled). Returns what ``CampaignConfig.retries`` holds; ConfigurationError on a bad value."""
    text = text.strip().lower()
    if text == "none":
        return None
    if text == "default":
        return DEFAULT_REDIAL_POLICY.to_dict()
    rules: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        outcome, _, rule = part.partition("=")
        attempts, _, delay = rule.partition("/")
        duration = _DURATION.match(delay.strip())
        if rule.strip() == "none":
            rules[outcome.strip()] = None
        elif attempts.strip().isdigit() and duration:
            rules[outcome.strip()] = {"max_attempts": int(attempts), "delay": float(duration.group(1)) * _UNIT[duration.group(2)]}
        else:
            raise ConfigurationError(f"{part!r}: expected outcome=attempts/delay (e.g. busy=3/5m) or outcome=none")
    return rules
