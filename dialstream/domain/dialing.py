"""What the campaign engine does right before a dial and right after a call. Pure: no I/O.

The workers gather the facts (the campaign's state, the contact's zone, whether the number
is on the DNC list now, a call's outcome) and these functions decide:

- :func:`before_dial`: dial now, wait (back to the campaign's queue until a time), or stop
  for good with a final outcome (canceled, dnc);
- :func:`next_dial`: after a call (or a dial that could not be placed), when to dial the
  contact again, if ever: the campaign's redial rule for the outcome, moved into the contact's
  calling window; :func:`after_attempt` puts a callback the callee asked for first;
- :func:`callback_dial`: when to dial a contact who asked to be called back (or whose first
  attempt a CSV scheduled): the time asked for, moved into the contact's calling window;
- :func:`caller_id_wait`: when to dial a contact none of whose caller IDs may call today;
- :func:`reserve_released` and :func:`stream_released`: when a call stops needing the API
  budget reserved for its in-call actions, and when it gives its bot stream back;
- :func:`with_history`: a contact's record after one more attempt, keeping the earlier ones.

Times are Unix seconds, always passed in, so every decision can be tested at any instant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from dialstream.domain.campaign import CampaignConfig, CampaignState
from dialstream.domain.leg_state import GreetingState, LegRecord, StreamState
from dialstream.domain.windows import moment_in_zone

__all__ = [
    "Step", "DialStep", "Redial", "before_dial", "next_dial", "after_attempt", "callback_dial", "caller_id_wait",
    "reserve_released", "stream_released", "with_history", "backlog_share", "MAX_CALLBACKS",
]  # fmt: skip

_UTC = timezone.utc
_HISTORY_FIELDS = ("attempt", "outcome", "reason", "leg_sid", "ended_at", "exophone", "disposition", "callback_at")
MAX_CALLBACKS = 3  # callbacks honoured per contact: a bot that asks on every call must not call forever


class Step(StrEnum):
    DIAL = "dial"
    WAIT = "wait"  # back to the queue, not before ``at``
    STOP = "stop"  # no dial, ever: ``outcome`` is the contact's final one


@dataclass(frozen=True, slots=True)
class DialStep:
    step: Step
    at: float = 0.0
    outcome: str = ""
    reason: str = ""


def before_dial(state: CampaignState, campaign: CampaignConfig, zone: str, now: float, *, blocked: bool) -> DialStep:
    """Whether to dial a contact of ``campaign`` whose calling window is in ``zone``, now.

    A canceled campaign dials no more; any other that is not running (paused, say) sends the
    contact back to wait for it, since the pollers only take a running campaign's contacts.
    """
    if state is CampaignState.CANCELED:
        return DialStep(Step.STOP, outcome="canceled", reason="the campaign was canceled before this dial")
    if state is not CampaignState.RUNNING:
        return DialStep(Step.WAIT, at=now, reason=f"the campaign is {state.value}")
    if blocked:
        return DialStep(Step.STOP, outcome="dnc", reason="the number is on the do-not-call list")
    opens = _window_opening(campaign, zone, now)
    if opens is not None:
        return DialStep(Step.WAIT, at=opens, reason=f"outside the calling window {campaign.calling_window} ({zone})")
    return DialStep(Step.DIAL)


def next_dial(campaign: CampaignConfig, outcome: str, attempts: int, zone: str, now: float) -> float | None:
    """When to dial again after attempt number ``attempts`` ended with ``outcome``; None: never."""
    due = campaign.redial_policy.next_attempt(outcome, attempts, now)
    if due is None:
        return None
    opens = _window_opening(campaign, zone, due)
    return due if opens is None else opens


@dataclass(frozen=True, slots=True)
class Redial:
    """When to dial a contact again after an attempt (None: never), and how many callbacks
    its callee has had honoured so far, this one included."""

    at: float | None
    callbacks: int


def after_attempt(
    campaign: CampaignConfig, outcome: str, attempts: int, zone: str, now: float, *, callback_at: str = "", callbacks: int = 0
) -> Redial:
    """After attempt number ``attempts`` ended with ``outcome``: the callback its callee asked
    for (``callback_at``: ISO 8601, a wall-clock time read in ``zone``) when fewer than
    :data:`MAX_CALLBACKS` were honoured, whatever the outcome; else :func:`next_dial`."""
    if callback_at and callbacks < MAX_CALLBACKS:
        asked = moment_in_zone(callback_at, zone).timestamp()
        return Redial(callback_dial(campaign, asked, zone, now), callbacks + 1)
    return Redial(next_dial(campaign, outcome, attempts, zone, now), callbacks)


def callback_dial(campaign: CampaignConfig, asked: float, zone: str, now: float) -> float:
    """When to dial for a callback asked for at ``asked``: then (at once if that has passed),
    or when the contact's calling window next opens if it is closed then. A callback never
    calls outside the window: a callee who said "call me at 11 pm" is called at its opening."""
    due = max(asked, now)
    opens = _window_opening(campaign, zone, due)
    return due if opens is None else opens


def caller_id_wait(campaign: CampaignConfig, zone: str, reopens: float) -> DialStep:
    """Every exophone of the campaign's pool is at its daily cap: the contact waits until the
    first of them starts a new day (``reopens``, ``dialstream.domain.caller_id.pool_reopens``),
    or its calling window's next opening after that."""
    opens = _window_opening(campaign, zone, reopens)
    at = reopens if opens is None else opens
    reason = f"every caller ID of the campaign is at its daily cap: contacts wait until {datetime.fromtimestamp(at, _UTC):%Y-%m-%d %H:%M} UTC"
    return DialStep(Step.WAIT, at=at, reason=reason)


def reserve_released(record: LegRecord) -> bool:
    """The call needs no more of the budget reserved for its in-call actions: it ended, or its
    bot stream is up and no greeting is left to stop (a stop already sent is covered by the
    budget's fixed headroom)."""
    if record.finished:
        return True
    return record.stream is StreamState.STARTED and record.greeting in (
        GreetingState.NONE,
        GreetingState.STOPPING,
        GreetingState.STOPPED,
    )


def stream_released(record: LegRecord) -> bool:
    """The call goes on without a bot stream and will not start another (it is being wound
    down): its stream slot can serve another call."""
    return not record.finished and record.stream is StreamState.STOPPED


def backlog_share(backlog: int, limit: int) -> float:
    """The share of its usual pace at which the dialer may place new calls while ``backlog`` leg
    events and in-call actions wait for the events workers: an answered call's next action
    matters more than the next dial, whose events would only lengthen the wait. Full speed up
    to half of ``limit``, then slower and slower, nothing from ``limit`` on (0: no limit)."""
    if not limit or backlog * 2 <= limit:
        return 1.0
    return max(0.0, (limit - backlog) / (limit - limit / 2))


def with_history(previous: Mapping[str, Any] | None, result: Mapping[str, Any], *, final: bool, next_at: float | None = None) -> dict[str, Any]:
    """``result`` (this attempt's record) as the contact's record: earlier attempts in
    ``history``, ``attempts`` dialled so far, and when the next dial is due if not ``final``."""
    history: list[dict[str, Any]] = []
    attempts = int(result.get("attempt") or 0)
    if previous:
        history = list(previous.get("history") or ())
        if previous.get("leg_sid") or previous.get("attempt"):
            history.append({name: previous.get(name) for name in _HISTORY_FIELDS})
        attempts = max(attempts, int(previous.get("attempts") or 0))
    record = {**result, "history": history, "attempts": attempts, "final": final}
    if not final:
        record["next_attempt_at"] = next_at
    return record


def _window_opening(campaign: CampaignConfig, zone: str, moment: float) -> float | None:
    """When the calling window next opens after ``moment``; None if it is open then."""
    at = datetime.fromtimestamp(moment, _UTC)
    opens = campaign.calling_window.next_allowed(at, zone)
    # Compared as datetimes: the float round trip through microseconds is not exact.
    return None if opens == at else opens.timestamp()
