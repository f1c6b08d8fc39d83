"""The per-leg state machine: which Legs API actions a leg event calls for. Pure, no I/O.

``apply_event(record, event, campaign)`` returns the leg's next record and the actions to
send. The workers persist the record atomically (compare-and-set on ``version``, see
``dialstream.state.store``) *before* sending anything, with the actions kept in the record's
``outbox`` until they are dispatched; so a worker that dies in between leaves the actions
for the re-delivered event to send, and an event applied twice has no second effect.

Phases only move forward::

    created -> connecting -> ringing -> answered -> streaming -> ended

The greeting (approach 2) has its own state::

    none -> requested -> playing -> stopping -> stopped
                  \\-> stop_pending (stream started before the greeting did) -/

Events may arrive duplicated or out of order; each rule below says what it does then.

Timers are decisions too: ``apply_timer`` handles "``stream_started`` did not arrive in
time" (try another bot, with a hold message so the callee is not left in silence) and
"the fallback message never finished" (hang up anyway). After ``max_stream_attempts``
(a bot dropping mid-call counts as one), the callee hears the fallback message and the
call is hung up with the reason recorded.

Parts of a call have rules of their own, which the handlers here hand events to:
answering machines (the verdict, the beep, the voicemail's end) are
``dialstream.domain.voicemail``'s; a hand-off to a human agent, from its request to the
bridge, and every event of the agent's leg, ``dialstream.domain.transfer``'s.

One decision outside the leg's events is here too: what a failed action calls for
(``apply_failure`` and ``hangs_up_after``). Whether a call's slot heartbeat beats on is
``dialstream.domain.slot_heartbeat``'s; the record itself is defined in ``dialstream.domain.leg_record``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from dialstream.domain import recording, transfer, voicemail
from dialstream.domain.campaign import CampaignConfig, Flow
from dialstream.domain.leg_actions import (
    add_action,
    callee_hears_something,
    give_up,
    hangup,
    latest_stream,
    start_greeting,
    start_stream,
    stop_greeting,
)
from dialstream.domain.leg_record import Action, Decision, Ending, GreetingState, LegRecord, Outcome, Phase, StreamState
from dialstream.domain.reconcile import RECONCILED
from dialstream.errors import LegsApiError, NoBotAvailable
from dialstream.exotel import events as ev
from dialstream.exotel.actions import ActionKind

# The record's types are re-exported: callers of the state machine need them alongside.
__all__ = [
    "Phase", "GreetingState", "StreamState", "Ending", "Action", "LegRecord", "Decision", "Outcome",
    "apply_event", "apply_timer", "awaits_stream", "timers_for", "apply_failure", "hangs_up_after",
    "PROGRESS_ONLY", "record_progress", "decides_nothing", "GREETING_STARTED", "GREETING_ENDED", "CALL_ENDED_REASONS",
]  # fmt: skip


_PHASE_ORDER = {phase: index for index, phase in enumerate(Phase)}


_TERMINAL_STATUS_OUTCOMES = {
    "busy": Outcome.BUSY,
    "no-answer": Outcome.NO_ANSWER,
    "no_answer": Outcome.NO_ANSWER,
    "failed": Outcome.FAILED,
    "canceled": Outcome.CANCELED,
    "cancelled": Outcome.CANCELED,
}

# stream_stopped reasons that mean the call itself is ending (AgentStream `stop` reasons);
# and the bot ending it: closing its WebSocket normally (1000) is how a bot hangs up (the
# sandbox's wording: Exotel documents none).
CALL_ENDED_REASONS = ("callended", "caller_hangup")
_BOT_HUNG_UP = ("bot closed (1000)",)
FALLBACK_TIMER = "fallback"
FALLBACK_GRACE = 20.0  # seconds a fallback/voicemail message may take before we hang up anyway
NO_BOT = "no bot available"  # the reason of a call with no bot to stream to
GREETING_STARTED = frozenset({ev.SAY_STARTED, ev.PLAY_STARTED})
GREETING_ENDED = frozenset({ev.SAY_COMPLETED, ev.SAY_INTERRUPTED, ev.PLAY_COMPLETED, ev.PLAY_INTERRUPTED, ev.PLAY_FAILED_TO_START})


def apply_event(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    """Apply ``event`` to ``record``.

    Returns the same ``record`` object when the event has no effect (a duplicate, a late
    event for a dead leg, an event we do not act on); otherwise a :class:`Decision`.
    """
    if record.transfer is not None or event.leg_sid != record.leg_sid:
        taken = transfer.apply_event(record, event, campaign)  # an agent's leg, or a call being transferred
        if taken is not None:
            return taken
    handler = _HANDLERS.get(event.event_name)
    if handler is None:
        return record
    result = handler(record, event, campaign)
    if isinstance(result, Decision) and (why := event.detail.get(RECONCILED)):
        # An event the reconciler made (dialstream.domain.reconcile): the record says why.
        result = Decision(dataclasses.replace(result.record, errors=(*result.record.errors, f"{RECONCILED}: {why}")), result.actions)
    ended = isinstance(result, Decision) and result.record.finished and not record.finished
    return transfer.finish(result) if ended and record.transfer is not None else result


def timers_for(record: LegRecord, actions: tuple[Action, ...], campaign: CampaignConfig) -> list[tuple[str, float]]:
    """(timer id, seconds) to arm after dispatching ``actions``: each stream start is
    watched for ``stream_started``; a fallback or voicemail message for its end; a machine's
    verdict for its beep (``dialstream.domain.voicemail``); an agent's dial and a bridge
    (``dialstream.domain.transfer``)."""
    timers = [(a.action_id, campaign.stream_start_timeout) for a in actions if a.kind is ActionKind.START_STREAM]
    if any(a.action_id == record.ending_action_id for a in actions):
        timers.append((FALLBACK_TIMER, FALLBACK_GRACE))
    return timers + voicemail.timers_for(record, actions) + transfer.timers_for(record, actions, campaign)


def apply_timer(record: LegRecord, timer_id: str, campaign: CampaignConfig) -> LegRecord | Decision:
    """A timer armed by :func:`timers_for` fired. A stale timer returns ``record`` unchanged."""
    if record.phase is Phase.ENDED or record.ending is Ending.HANGUP:
        return record
    if timer_id == FALLBACK_TIMER:
        return hangup(record) if record.ending is not Ending.NONE else record
    if timer_id == voicemail.BEEP_TIMER:
        return voicemail.beep_deadline(record, campaign)
    if timer_id in (transfer.AGENT_TIMER, transfer.BRIDGE_TIMER):
        return transfer.apply_timer(record, timer_id, campaign)
    if not awaits_stream(record, timer_id):
        return record  # that attempt was superseded, or its stream is up
    why = f"no stream_started within {campaign.stream_start_timeout:g}s ({timer_id})"
    return _recover(record, campaign, why, superseded=record.stream_sids.get(timer_id, ""))


def awaits_stream(record: LegRecord, timer_id: str) -> bool:
    """Whether the stream attempt ``timer_id`` is the leg's latest and still awaits its
    ``stream_started``: when its timer fires, another bot is tried."""
    waiting = record.stream is StreamState.REQUESTED and record.ending is Ending.NONE and not record.finished
    return waiting and timer_id == latest_stream(record)


def apply_failure(record: LegRecord, action: Action, error: Exception, campaign: CampaignConfig) -> LegRecord | Decision:
    """``action`` failed for good (retrying would not help, or its retries are spent): the
    record keeps the error. A stream that could not be started also becomes the call's
    reason; the leg's pending stream with no bot to go to takes the fallback path (the
    fallback message, then the hang-up) at once, since another attempt would find none either."""
    if action.kind.stops:
        return record  # a failed stop of a greeting that already ended is expected (the race with say_completed)
    failed = dataclasses.replace(record, errors=(*record.errors, f"{action.action_id}: {error}"))
    if action.on_leg or action.kind in (ActionKind.CREATE_LEG, ActionKind.CREATE_BRIDGE):
        return transfer.apply_failure(failed, action, error, campaign)
    if action.kind is not ActionKind.START_STREAM:
        return Decision(failed)
    if not isinstance(error, NoBotAvailable):
        return Decision(dataclasses.replace(failed, reason="bot stream could not be started"))
    pending = action.action_id == latest_stream(record) and record.stream is StreamState.REQUESTED
    if pending and record.ending is Ending.NONE and not record.finished:
        return give_up(failed, campaign, NO_BOT)
    return Decision(failed)  # a superseded attempt, or a call already being wound down


def hangs_up_after(action: Action, error: Exception) -> bool:
    """Whether ``action`` failing calls for a hang-up at once: an answered call whose stream
    cannot start is hung up, not left silent; a leg no longer up (409: the callee hung up
    first) has nothing to hang up, and one with no bot hears the fallback message first."""
    if action.kind is not ActionKind.START_STREAM or isinstance(error, NoBotAvailable):
        return False
    return not (isinstance(error, LegsApiError) and error.status == 409)


# Events that decide nothing: all they do is stamp the call's timeline and move its phase. The
# ingress records them beside the leg's record rather than spend a worker task on each, and
# whoever loads the record next folds them in (record_progress).
PROGRESS_ONLY = frozenset({ev.LEG_CONNECTING, ev.LEG_RINGING})


def record_progress(record: LegRecord, stamps: Mapping[str, float]) -> LegRecord:
    """``record`` with the progress-only events recorded beside it (event name -> its
    timestamp) applied, as :func:`apply_event` would have applied them."""
    for name in sorted(stamps, key=lambda name: name != ev.LEG_CONNECTING):
        result = _progressed(record, name, stamps[name])
        record = result.record if isinstance(result, Decision) else result
    return record


def decides_nothing(event_name: str) -> bool:
    """Whether an event of a callee's own leg leaves its record as it is whatever the record
    holds: neither this state machine nor a transfer has a rule for it (``recording_started``,
    ``dial_success`` ...). An agent's leg's events are the transfer's to judge, always."""
    return event_name not in _HANDLERS and event_name not in transfer.OWN_LEG_EVENTS


def _progress(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    return _progressed(record, event.event_name, event.timestamp)


def _progressed(record: LegRecord, event_name: str, timestamp: float) -> LegRecord | Decision:
    target = Phase.CONNECTING if event_name == ev.LEG_CONNECTING else Phase.RINGING
    changes: dict[str, Any] = {}
    stamp = "connecting_at" if target is Phase.CONNECTING else "ringing_at"
    if getattr(record, stamp) is None and not record.finished:
        changes[stamp] = timestamp  # for the call's timeline, even when a later event overtook it
    if _PHASE_ORDER[record.phase] < _PHASE_ORDER[target]:
        changes["phase"] = target
    if not changes:
        return record  # a duplicate, or late for a leg that ended
    return Decision(dataclasses.replace(record, **changes))


def _answered(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    if _PHASE_ORDER[record.phase] >= _PHASE_ORDER[Phase.ANSWERED]:
        # A second leg_answered (even with a new event_sid) must not start a second stream;
        # after leg_terminated nothing may be started on the dead leg.
        return record
    record = dataclasses.replace(record, phase=Phase.ANSWERED, answered_at=event.timestamp)
    record, stream = start_stream(record, campaign)
    if not campaign.flow.has_greeting:
        return Decision(record, (stream,))
    if campaign.flow is Flow.GREETING_SAY:
        record, greeting = start_greeting(record, "say", {"text": campaign.greeting_text})
    else:
        record, greeting = start_greeting(record, "play", {"url": campaign.greeting_url})
    return Decision(record, (stream, greeting))


def _stream_started(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    stream_sid = str(event.detail.get("stream_sid") or "")
    if record.phase is Phase.ENDED or record.ending in (Ending.VOICEMAIL, Ending.HANGUP, Ending.BOT_HANGUP) or record.machine:
        return record
    attempt = event.action_custom_parameter
    if stream_sid and attempt != latest_stream(record) and record.stream_sids.get(attempt) == stream_sid:
        return record  # a superseded attempt, stopped by its sid when it was superseded: it does not stay
    if record.stream is StreamState.STARTED:
        if not stream_sid or stream_sid == record.stream_sid:
            return record  # a duplicate of the live stream's event
        # A superseded attempt came up after all: stop it, so the leg keeps exactly one stream.
        record, stop = add_action(record, ActionKind.STOP_STREAM, {"stream_sid": stream_sid})
        return Decision(record, (stop,))
    record = dataclasses.replace(
        record,
        phase=Phase.STREAMING,
        stream=StreamState.STARTED,
        streams_started=record.streams_started + 1,
        stream_started_at=record.stream_started_at or event.timestamp,
        stream_sid=stream_sid,
        stream_action_id=event.action_custom_parameter,
        # A bot that comes up while the fallback message plays rescues the call.
        ending=Ending.NONE,
        ending_action_id="",
        reason="",
    )
    if record.greeting is GreetingState.PLAYING:
        return stop_greeting(record, GreetingState.STOPPING)
    if record.greeting is GreetingState.REQUESTED:
        # The greeting was asked for but has not started (or its event is late): ask Exotel to
        # stop it now, and again when say_started/play_started shows it exists.
        return stop_greeting(record, GreetingState.STOP_PENDING)
    return Decision(record)


def _stream_initiated(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    """A stream attempt has its sid (it connects to the bot now): kept, so that the attempt can
    be stopped by it if superseded; an attempt superseded already is stopped at once."""
    attempt, stream_sid = event.action_custom_parameter, str(event.detail.get("stream_sid") or "")
    if not attempt or not stream_sid or attempt in record.stream_sids or record.finished:
        return record
    record = dataclasses.replace(record, stream_sids={**record.stream_sids, attempt: stream_sid})
    superseded = attempt != latest_stream(record) and attempt != record.stream_action_id
    if not superseded:
        return Decision(record)
    record, stop = add_action(record, ActionKind.STOP_STREAM, {"stream_sid": stream_sid})
    return Decision(record, (stop,))


def _greeting_started(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    if record.greeting not in (GreetingState.REQUESTED, GreetingState.STOP_PENDING) or _superseded(record, event):
        return record
    record = dataclasses.replace(record, greeting_started_at=record.greeting_started_at or event.timestamp)
    if record.greeting is GreetingState.STOP_PENDING:
        return stop_greeting(record, GreetingState.STOPPING)
    return Decision(dataclasses.replace(record, greeting=GreetingState.PLAYING))


def _greeting_ended(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    if record.greeting in (GreetingState.NONE, GreetingState.STOPPED) or _superseded(record, event):
        return record
    record = dataclasses.replace(record, greeting=GreetingState.STOPPED, greeting_stopped_at=event.timestamp)
    if record.ending is Ending.VOICEMAIL:
        return voicemail.message_ended(record, event)
    return hangup(record) if record.ending is Ending.FALLBACK else Decision(record)


def _superseded(record: LegRecord, event: ev.LegEvent) -> bool:
    """A say/play event of an earlier greeting (a hold message replaced by the fallback, say)."""
    started_by = event.action_custom_parameter
    return started_by.startswith("start_") and started_by != record.greeting_action_id


def _stream_stopped(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    latest = latest_stream(record)
    if record.stream is StreamState.REQUESTED and event.action_custom_parameter == latest and record.ending is Ending.NONE:
        # The latest attempt failed before it started (handshake refused): no need to wait for its timer.
        return _recover(record, campaign, f"stream {latest} failed: {event.detail.get('reason') or 'stopped'}")
    if record.stream is not StreamState.STARTED:
        return record
    if event.action_custom_parameter and record.stream_action_id and event.action_custom_parameter != record.stream_action_id:
        return record  # a superseded attempt's stream (stopped by us) ended
    stream_sid = str(event.detail.get("stream_sid") or "")
    if stream_sid and record.stream_sid and stream_sid != record.stream_sid:
        return record
    record = dataclasses.replace(record, stream=StreamState.STOPPED)
    call_ending = event.detail.get("reason") in CALL_ENDED_REASONS or event.data.get("state") in ("terminal", "completed")
    if call_ending or record.phase is Phase.ENDED or record.ending is not Ending.NONE or record.machine:
        return Decision(record)
    if event.detail.get("reason") in _BOT_HUNG_UP:
        return hangup(record, Ending.BOT_HANGUP)
    return _recover(record, campaign, f"the bot stream stopped while the call was up ({event.detail.get('reason') or 'no reason'})")


def _ended(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    if record.phase is Phase.ENDED:
        return record
    status = str(event.data.get("terminal_status") or event.detail.get("terminal_status") or "")
    reason = record.reason
    if event.event_name == ev.LEG_FAILED_TO_CREATE:
        outcome, reason = Outcome.FAILED, str(event.error.get("message") or "leg failed to create")
    elif record.machine:
        outcome = Outcome.MACHINE if record.voicemail_left_at is None else Outcome.VOICEMAIL_LEFT
    elif record.answered_at is not None or status == "completed":
        gave_up = record.ending in (Ending.FALLBACK, Ending.HANGUP)  # machines were handled above
        outcome = Outcome.COMPLETED if record.streams_started and not gave_up else Outcome.ANSWERED_NO_STREAM
        if outcome is Outcome.ANSWERED_NO_STREAM and not reason:
            reason = "the call ended before the bot stream started"
    else:
        outcome, reason = _TERMINAL_STATUS_OUTCOMES.get(status, Outcome.FAILED), reason or status
    return Decision(
        dataclasses.replace(
            record,
            phase=Phase.ENDED,
            ended_at=event.timestamp,
            terminal_status=status,
            outcome=outcome.value,
            reason=reason,
            # Anything not yet sent would act on a dead leg.
            outbox=(),
        )
    )


_HANDLERS = {
    ev.LEG_CONNECTING: _progress,
    ev.LEG_RINGING: _progress,
    ev.LEG_ANSWERED: _answered,
    ev.STREAM_INITIATED: _stream_initiated,
    ev.STREAM_STARTED: _stream_started,
    ev.STREAM_STOPPED: _stream_stopped,
    ev.AMD_RESULT_SUCCESS: voicemail.machine_answered,
    ev.AMD_BEEP_DETECTED: voicemail.beep,
    ev.RECORDING_AVAILABLE: recording.available,
    ev.LEG_TERMINATED: _ended,
    ev.LEG_FAILED_TO_CREATE: _ended,
    **{name: _greeting_started for name in GREETING_STARTED},
    **{name: _greeting_ended for name in GREETING_ENDED},
}


def _recover(record: LegRecord, campaign: CampaignConfig, why: str, *, superseded: str = "") -> Decision:
    """The bot stream is not up: try another bot with a hold message, or give up gracefully.

    ``superseded``: the stream sid of the attempt given up on, still connecting: it is stopped
    by its sid, so that it cannot come up beside the new one (two bots on one call)."""
    record = dataclasses.replace(record, errors=(*record.errors, why))
    if record.stream_attempts < campaign.max_stream_attempts:
        record, stream = start_stream(record, campaign, avoid_tried_bots=True)
        actions: tuple[Action, ...] = (stream,)
        if superseded:
            record, stop = add_action(record, ActionKind.STOP_STREAM, {"stream_sid": superseded})
            actions += (stop,)
        if callee_hears_something(record):
            return Decision(record, actions)
        record, hold = start_greeting(record, "say", {"text": campaign.hold_message})
        return Decision(record, (*actions, hold))
    return give_up(record, campaign, f"no bot stream after {record.stream_attempts} attempt(s): {why}")
