"""Events the ingress keeps beside a leg's record instead of running a worker task. Pure, no I/O.

A worker task costs the event path as much CPU as the rest of what an event does (``make
bench``). An event that, given the record as it stands, would only be recorded (its rule
calls for no action) need not wait for a worker: each saved record names those events
(:func:`quiet_events`); the ingress's accept script keeps one it names beside the record and
bumps the record's version, so that a worker's compare-and-set begun before reads again; and
whoever loads the record next applies what was kept (:func:`apply_kept`) by the state
machine's own rules. The next record saved carries their effect, and the save removes them.

Which events: a stream attempt's ``stream_initiated`` (it brings the attempt's sid, to stop
the attempt by should it be superseded); a greeting's start and end while they call for
nothing: its start while no stop waits for it, its end unless it is a fallback or voicemail
message (whose end hangs up); and the live stream's ``stream_stopped`` because the call ended
(the ``leg_terminated`` that follows does what the end calls for). A call being transferred
or answered by a machine keeps none.
"""

from __future__ import annotations

from collections.abc import Iterable

from dialstream.domain.campaign import CampaignConfig
from dialstream.domain.leg_actions import latest_stream
from dialstream.domain.leg_record import Decision, Ending, GreetingState, LegRecord, StreamState
from dialstream.domain.leg_state import CALL_ENDED_REASONS, GREETING_ENDED, GREETING_STARTED, apply_event
from dialstream.exotel import events as ev
from dialstream.exotel.actions import ActionKind

__all__ = ["KEEPABLE", "quiet_events", "quiet_key", "apply_kept"]

KEEPABLE = frozenset({ev.STREAM_INITIATED, ev.STREAM_STOPPED, *GREETING_STARTED, *GREETING_ENDED})

_STILL_TO_END = (GreetingState.REQUESTED, GreetingState.PLAYING, GreetingState.STOPPING, GreetingState.STOP_PENDING)


def quiet_key(event: ev.LegEvent) -> str:
    """How :func:`quiet_events` names ``event``: by its name and the action it reports on (and
    a stream_stopped by its reason too)."""
    reason = str(event.detail.get("reason") or "") if event.event_name == ev.STREAM_STOPPED else ""
    return _key(event.event_name, event.action_custom_parameter, reason)


def _key(event_name: str, action_custom_parameter: str, reason: str = "") -> str:
    return f"{event_name} {action_custom_parameter} {reason}" if reason else f"{event_name} {action_custom_parameter}"


def quiet_events(record: LegRecord) -> tuple[str, ...]:
    """The keepable events (:func:`quiet_key`) that, arriving now, would call for no action."""
    if record.finished or record.transfer is not None or record.machine:
        return ()
    quiet = []
    if record.action_counts.get(ActionKind.START_STREAM):
        quiet.append(_key(ev.STREAM_INITIATED, latest_stream(record)))
    if record.stream is StreamState.STARTED and record.stream_action_id:
        quiet += [_key(ev.STREAM_STOPPED, record.stream_action_id, reason) for reason in CALL_ENDED_REASONS]
    greeting = record.greeting_action_id
    if greeting and record.ending is Ending.NONE:
        if record.greeting is GreetingState.REQUESTED:  # STOP_PENDING: its start calls for the stop
            quiet += [_key(name, greeting) for name in GREETING_STARTED]
        if record.greeting in _STILL_TO_END:
            quiet += [_key(name, greeting) for name in GREETING_ENDED]
    return tuple(sorted(quiet))


def apply_kept(record: LegRecord, kept: Iterable[ev.LegEvent], campaign: CampaignConfig) -> LegRecord:
    """``record`` with the events kept beside it applied in the order they happened, as
    :func:`~dialstream.domain.leg_state.apply_event` applies them. Each was quiet when kept,
    and nothing has been saved since without it (the version bump): what they call for is
    recorded, and an action one might call for would stay in the outbox for the next commit."""
    for event in sorted(kept, key=lambda event: event.timestamp):
        result = apply_event(record, event, campaign)
        if isinstance(result, Decision):
            record = result.record
    return record
