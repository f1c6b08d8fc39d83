"""The leg state machine: the actions each event calls for, under duplicates and reordering."""

from __future__ import annotations

import itertools

import pytest

from dialstream import events as ev
from dialstream.campaign import CampaignConfig, Flow, LegTag
from dialstream.events import LegEvent
from dialstream.leg_state import Decision, GreetingState, LegRecord, Outcome, Phase, StreamState, apply_event

_sids = itertools.count(1)
TAG = LegTag("camp", "c1")


def event(name: str, at: float = 100.0, **extra) -> LegEvent:
    kind = ev.LIFECYCLE if name.startswith("leg_") else ev.ACTION
    return LegEvent(f"E{next(_sids):031d}", kind, name, at, "LEG1", **extra)


def campaign(flow: Flow) -> CampaignConfig:
    return CampaignConfig("camp", flow=flow, greeting_url="https://x/hi.wav", bot_url="ws://bot/media")


def run(flow: Flow, *events: LegEvent) -> tuple[LegRecord, list[str]]:
    """Apply events in order; return the final record and every action kind sent."""
    config = campaign(flow)
    record = LegRecord.new("LEG1", TAG, config)
    sent: list[str] = []
    for item in events:
        result = apply_event(record, item, config)
        if isinstance(result, Decision):
            record = result.record
            sent += [a.kind for a in result.actions]
    return record, sent


def test_bot_first_starts_only_the_stream():
    """Approach 1: leg_answered -> start_stream, nothing else."""
    record, sent = run(Flow.BOT_FIRST, event(ev.LEG_RINGING), event(ev.LEG_ANSWERED))
    assert sent == ["start_stream"]
    assert record.phase is Phase.ANSWERED and record.stream is StreamState.REQUESTED


@pytest.mark.parametrize("flow, start, stop", [(Flow.GREETING_SAY, "start_say", "stop_say"), (Flow.GREETING_PLAY, "start_play", "stop_play")])
def test_greeting_flow_starts_both_and_stops_greeting_on_stream_started(flow, start, stop):
    """Approach 2: stream and greeting together on answer; the greeting is stopped on stream_started."""
    greeting_started = ev.SAY_STARTED if flow is Flow.GREETING_SAY else ev.PLAY_STARTED
    record, sent = run(flow, event(ev.LEG_ANSWERED), event(greeting_started), event(ev.STREAM_STARTED, 100.3))
    assert sent == ["start_stream", start, stop]
    assert record.greeting is GreetingState.STOPPING
    assert record.phase is Phase.STREAMING and record.streams_started == 1


def test_stream_started_before_greeting_started_stops_it_as_soon_as_it_exists():
    """stream_started overtaking say_started: stop now, and again when the greeting shows up."""
    record, sent = run(Flow.GREETING_SAY, event(ev.LEG_ANSWERED), event(ev.STREAM_STARTED), event(ev.SAY_STARTED))
    assert sent == ["start_stream", "start_say", "stop_say", "stop_say"]
    assert record.greeting is GreetingState.STOPPING


def test_greeting_interrupted_is_recorded_as_stopped():
    """say_interrupted after stop_say leaves the greeting stopped with its time."""
    record, _ = run(
        Flow.GREETING_SAY, event(ev.LEG_ANSWERED), event(ev.SAY_STARTED), event(ev.STREAM_STARTED), event(ev.SAY_INTERRUPTED, 101.0)
    )
    assert record.greeting is GreetingState.STOPPED
    assert record.greeting_stopped_at == 101.0


def test_second_leg_answered_with_new_sid_starts_nothing():
    """A repeated leg_answered (new event_sid) never starts a second stream."""
    record, sent = run(Flow.GREETING_SAY, event(ev.LEG_ANSWERED), event(ev.LEG_ANSWERED))
    assert sent == ["start_stream", "start_say"]
    assert record.stream_attempts == 1


def test_duplicate_stream_started_counts_once():
    """A repeated stream_started neither counts a second stream nor stops the greeting twice."""
    record, sent = run(Flow.BOT_FIRST, event(ev.LEG_ANSWERED), event(ev.STREAM_STARTED), event(ev.STREAM_STARTED))
    assert record.streams_started == 1
    assert sent == ["start_stream"]


def test_terminated_before_answered_starts_nothing_on_the_dead_leg():
    """leg_terminated processed before a late leg_answered: nothing is started."""
    terminated = event(ev.LEG_TERMINATED, data={"terminal_status": "completed"})
    record, sent = run(Flow.GREETING_SAY, terminated, event(ev.LEG_ANSWERED))
    assert sent == []
    assert record.phase is Phase.ENDED


def test_ringing_after_answered_does_not_move_backwards():
    """A late leg_ringing does not take an answered leg back to ringing."""
    record, _ = run(Flow.BOT_FIRST, event(ev.LEG_ANSWERED), event(ev.LEG_RINGING))
    assert record.phase is Phase.ANSWERED


@pytest.mark.parametrize(
    "status, outcome",
    [("busy", Outcome.BUSY), ("no-answer", Outcome.NO_ANSWER), ("failed", Outcome.FAILED), ("canceled", Outcome.CANCELED)],
)
def test_unanswered_outcomes_come_from_terminal_status(status, outcome):
    """An unanswered leg's outcome is its terminal_status."""
    record, _ = run(Flow.BOT_FIRST, event(ev.LEG_RINGING), event(ev.LEG_TERMINATED, data={"terminal_status": status}))
    assert record.outcome == outcome.value


def test_answered_and_streamed_call_is_completed():
    """An answered call that streamed ends as completed with its timings."""
    record, _ = run(
        Flow.BOT_FIRST,
        event(ev.LEG_ANSWERED, 100.0),
        event(ev.STREAM_STARTED, 100.25),
        event(ev.STREAM_STOPPED, 103.0),
        event(ev.LEG_TERMINATED, 103.0, data={"terminal_status": "completed"}),
    )
    assert record.outcome == Outcome.COMPLETED.value
    assert record.stream_started_at - record.answered_at == pytest.approx(0.25)


def test_answered_without_stream_is_its_own_outcome():
    """A call answered but never streamed ends as answered_no_stream, not completed."""
    record, _ = run(Flow.BOT_FIRST, event(ev.LEG_ANSWERED), event(ev.LEG_TERMINATED, data={"terminal_status": "completed"}))
    assert record.outcome == Outcome.ANSWERED_NO_STREAM.value


def test_failed_to_create_carries_the_error_message():
    """leg_failed_to_create ends the leg as failed with Exotel's error message."""
    failed = event(ev.LEG_FAILED_TO_CREATE, event_data={"error": {"error_code": 3001, "message": "invalid number"}})
    record, _ = run(Flow.BOT_FIRST, failed)
    assert (record.outcome, record.reason) == ("failed", "invalid number")


def test_ending_clears_unsent_actions():
    """Actions still in the outbox when the leg ends are dropped: they would hit a dead leg."""
    record, _ = run(Flow.GREETING_SAY, event(ev.LEG_ANSWERED), event(ev.LEG_TERMINATED, data={"terminal_status": "completed"}))
    assert record.outbox == ()


def test_action_ids_are_unique_per_kind():
    """Two stop_say actions on one leg get different ids, so both can be sent once each."""
    config = campaign(Flow.GREETING_SAY)
    record = LegRecord.new("LEG1", TAG, config)
    ids = []
    for item in (event(ev.LEG_ANSWERED), event(ev.STREAM_STARTED), event(ev.SAY_STARTED)):
        result = apply_event(record, item, config)
        record = result.record
        ids += [a.action_id for a in result.actions]
    assert ids == ["start_stream#1", "start_say#1", "stop_say#1", "stop_say#2"]


def test_unhandled_events_return_the_record_unchanged():
    """Events the machine does not act on return the very same record."""
    config = campaign(Flow.BOT_FIRST)
    record = LegRecord.new("LEG1", TAG, config)
    assert apply_event(record, event("recording_available"), config) is record


def test_record_round_trips_through_json_form():
    """LegRecord.to_dict/from_dict preserve every field, including the outbox."""
    record, _ = run(Flow.GREETING_SAY, event(ev.LEG_ANSWERED))
    assert LegRecord.from_dict(record.to_dict()) == record
