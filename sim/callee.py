"""The callee model: who answers, after how long, for how long they talk, what they press.

Pure: :func:`draw` turns a :class:`CalleeProfile` and a seeded ``random.Random`` into a
:class:`CallPlan` that the call driver then acts out. Outcome probabilities are
per-call; whatever ``answer`` leaves unassigned is no-answer, so ``answer: 0.8`` alone
means one call in five rings out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from dialstream.errors import ConfigurationError
from sim.schema import Range, probability

__all__ = [
    "ANSWERED",
    "BUSY",
    "NO_ANSWER",
    "FAILED",
    "FAILED_TO_CREATE",
    "OUTCOMES",
    "OUTCOME_KEYS",
    "AMD_RESULTS",
    "Digit",
    "CalleeProfile",
    "CallPlan",
    "draw",
]

ANSWERED = "answered"
BUSY = "busy"
NO_ANSWER = "no-answer"
FAILED = "failed"  # the network could not reach the callee (after leg_connecting)
FAILED_TO_CREATE = "failed-to-create"  # Exotel refused the leg: leg_failed_to_create only
OUTCOMES = (ANSWERED, BUSY, NO_ANSWER, FAILED, FAILED_TO_CREATE)

# Profile keys that assign outcome probabilities: an override naming any of them replaces
# the whole outcome mix of the profile it overrides (see sim.scenario).
OUTCOME_KEYS = frozenset({"outcome", "answer", "busy", "no_answer", "failed", "create_failed"})

AMD_RESULTS = ("HUMAN", "MACHINE", "NOT_SURE")


@dataclass(frozen=True)
class Digit:
    """A key the callee presses ``after_ms`` after the bot's stream started."""

    digit: str
    after_ms: float = 1000.0
    duration_ms: int = 100

    def __post_init__(self) -> None:
        if self.digit not in "0123456789*#" or len(self.digit) != 1:
            raise ConfigurationError(f"dtmf digit must be one of 0-9, * or #, got {self.digit!r}")


@dataclass(frozen=True)
class CalleeProfile:
    """How one callee (or every callee of a campaign) behaves. Times are milliseconds."""

    outcome: str | None = None  # shorthand: this outcome every time, e.g. "busy"
    answer: float | None = None  # None: 1 - (busy + no_answer + failed + create_failed)
    busy: float = 0.0
    no_answer: float = 0.0
    failed: float = 0.0
    create_failed: float = 0.0
    ring_ms: Range = (300.0, 800.0)  # leg_ringing -> leg_answered (busy: -> leg_terminated)
    talk_ms: Range | None = (2000.0, 4000.0)  # pickup -> callee hangs up (synchronous AMD listens in it); None: never
    machine: float = 0.0  # probability an answering machine picks up
    amd_not_sure: float = 0.0  # probability the detector cannot tell
    amd_ms: Range = (500.0, 1000.0)  # pickup -> amd_result_success
    beep_ms: Range = (3000.0, 6000.0)  # a machine's greeting: pickup -> the beep (then it records)
    dtmf: tuple[Digit, ...] = ()
    caller_audio: str = "silence"  # what the callee "says" on the stream: silence | tone

    def __post_init__(self) -> None:
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise ConfigurationError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")
        for name in ("busy", "no_answer", "failed", "create_failed", "machine", "amd_not_sure"):
            probability(getattr(self, name), name)
        if self.answer is not None:
            probability(self.answer, "answer")
        if sum(self.mix().values()) > 1.0 + 1e-9:
            raise ConfigurationError(f"outcome probabilities add up to more than 1: {self.mix()}")
        if self.caller_audio not in ("silence", "tone"):
            raise ConfigurationError(f"caller_audio must be silence or tone, got {self.caller_audio!r}")

    def mix(self) -> dict[str, float]:
        """Probability of each outcome (they add up to 1)."""
        if self.outcome is not None:
            return {o: float(o == self.outcome) for o in OUTCOMES}
        others = {BUSY: self.busy, FAILED: self.failed, FAILED_TO_CREATE: self.create_failed}
        rest = 1.0 - sum(others.values()) - self.no_answer
        answer = rest if self.answer is None else self.answer
        return {ANSWERED: answer, NO_ANSWER: self.no_answer + max(0.0, rest - answer), **others}


@dataclass(frozen=True)
class CallPlan:
    """What will happen on one leg, decided when it is created."""

    outcome: str
    ring_ms: float  # how long it rings before the outcome (no-answer: the ring timeout)
    talk_ms: float | None  # answered: how long until the callee hangs up
    amd_result: str = "HUMAN"  # what the detector says (NOT_SURE when it cannot tell)
    amd_ms: float = 0.0
    machine: bool = False  # what really answered: a machine plays a greeting, then beeps
    beep_ms: float = 0.0
    dtmf: tuple[Digit, ...] = field(default=())
    caller_audio: str = "silence"


def draw(profile: CalleeProfile, rng: random.Random, *, ring_timeout_ms: float) -> CallPlan:
    """Decide one call. A callee slower to answer than ``ring_timeout_ms`` is a no-answer."""
    mix = profile.mix()
    outcome = rng.choices(list(mix), weights=list(mix.values()))[0]
    ring_ms = rng.uniform(*profile.ring_ms)
    if outcome == ANSWERED and ring_ms > ring_timeout_ms:
        outcome = NO_ANSWER
    if outcome == NO_ANSWER:
        ring_ms = ring_timeout_ms
    talk_ms = rng.uniform(*profile.talk_ms) if profile.talk_ms is not None else None
    unsure = rng.random() < profile.amd_not_sure
    machine = rng.random() < profile.machine
    amd_result = "NOT_SURE" if unsure else ("MACHINE" if machine else "HUMAN")
    return CallPlan(
        outcome=outcome,
        ring_ms=ring_ms,
        talk_ms=talk_ms,
        amd_result=amd_result,
        amd_ms=rng.uniform(*profile.amd_ms),
        machine=machine and outcome == ANSWERED,
        beep_ms=rng.uniform(*profile.beep_ms),
        dtmf=profile.dtmf,
        caller_audio=profile.caller_audio,
    )
