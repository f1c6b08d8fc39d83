"""Why a campaign is not dialling right now, in words. Pure: the facts come from its counters.

``dialstream campaign status`` and the API's status show these reasons next to the counts,
so ``pending 10 (due now 0)`` comes with "waiting for the calling window" or "the Legs API
budget is used up" instead of a silence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

__all__ = ["DialFacts", "waiting_for", "ERROR_MEMORY"]

ERROR_MEMORY = 120.0  # seconds a Legs API error on a dial is still reported as a reason


@dataclass(frozen=True)
class DialFacts:
    """What the engine knows of one campaign and the account at one moment (times: Unix s)."""

    state: str
    now: float
    pending: int = 0
    due_now: int = 0
    dialing: int = 0
    in_flight: int = 0
    next_due: float | None = None
    window: str = ""
    max_concurrent: int = 0  # 0: no campaign cap
    account_calls: int = 0
    max_calls: int = 0  # 0: no account cap
    api_used: int = 0
    dial_limit: int = 0  # requests in the window beyond which no dial is granted
    dialer_running: bool = True  # a dial poller holds its lock
    events_backlog: int = 0  # leg events waiting while the dial poller holds new dials back (0: it does not)
    last_error: str = ""
    last_error_at: float | None = None


def waiting_for(facts: DialFacts) -> tuple[str, ...]:
    """The reasons contacts wait instead of being dialled; empty when dialling goes as fast as it may."""
    if facts.state == "draft":
        return ("contacts are still being loaded",)
    if facts.state == "paused":
        return ("the campaign is paused: resume it to dial",)
    if facts.state != "running":
        return ()
    reasons: list[str] = []
    if facts.pending and not facts.due_now and facts.next_due is not None:
        why = f"outside the calling window '{facts.window}'" if facts.window else "redials wait for their delay"
        reasons.append(f"no contact is due before {_clock(facts.next_due)} UTC ({why})")
    if facts.due_now:
        if not facts.dialer_running:
            reasons.append("no dial worker is running: start one (dialstream worker --queue dial, or dialstream up)")
        if facts.max_concurrent and facts.in_flight + facts.dialing >= facts.max_concurrent:
            reasons.append(f"the campaign's cap of {facts.max_concurrent} live calls is reached")
        if facts.max_calls and facts.account_calls >= facts.max_calls:
            reasons.append(f"the account's cap of {facts.max_calls} live calls is reached")
        if facts.events_backlog:
            reasons.append(f"new dials are held back: {facts.events_backlog} leg events and in-call actions wait for the events workers")
        if facts.dial_limit and facts.api_used >= facts.dial_limit:
            reasons.append(f"the Legs API budget is used up ({facts.api_used} requests in the window)")
    if facts.last_error and facts.last_error_at is not None and facts.now - facts.last_error_at < ERROR_MEMORY:
        reasons.append(f"the Legs API failed a dial {facts.now - facts.last_error_at:.0f}s ago: {facts.last_error}")
    return tuple(reasons)


def _clock(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
