"""The leg state machine: the actions each event calls for, under duplicates and reordering."""

from __future__ import annotations

import itertools

import pytest

from dialstream.domain.campaign import CampaignConfig, Flow, LegTag
from dialstream.domain.leg_state import (
    FALLBACK_GRACE,
    Action,
    Decision,
    Ending,
    GreetingState,
    LegRecord,
    Outcome,
    Phase,
    StreamState,
    apply_event,
    apply_failure,
    apply_timer,
    decides_nothing,
    hangs_up_after,
    record_progress,
    timers_for,
)
from dialstream.errors import LegsApiClientError, LegsApiServerError, NoBotAvailable
from dialstream.exotel import events as ev
from dialstream.exotel.actions import ActionKind
from dialstream.exotel.events import LegEvent

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


def test_progress_recorded_beside_the_record_folds_in_as_its_events_would():
    """record_progress gives the record leg_connecting and leg_ringing would have given it, in any order of arrival."""
    config = campaign(Flow.BOT_FIRST)
    stamps = {ev.LEG_RINGING: 102.0, ev.LEG_CONNECTING: 101.0}
    folded = record_progress(LegRecord.new("LEG1", TAG, config), stamps)
    replayed, _ = run(Flow.BOT_FIRST, event(ev.LEG_CONNECTING, 101.0), event(ev.LEG_RINGING, 102.0))
    assert folded == replayed and folded.phase is Phase.RINGING and folded.connecting_at == 101.0


def test_progress_folded_into_an_answered_or_ended_leg_keeps_its_phase():
    """A stamp folded in after the answer fills the timeline but does not move the phase back; an ended leg takes none."""
    answered, _ = run(Flow.BOT_FIRST, event(ev.LEG_ANSWERED))
    folded = record_progress(answered, {ev.LEG_RINGING: 99.0})
    assert folded.phase is Phase.ANSWERED and folded.ringing_at == 99.0
    ended, _ = run(Flow.BOT_FIRST, event(ev.LEG_TERMINATED, data={"terminal_status": "busy"}))
    assert record_progress(ended, {ev.LEG_RINGING: 99.0}) == ended


def test_only_events_no_rule_reads_decide_nothing():
    """recording_started and dial_success change no record; every event with a rule (a transfer's
    included, and stream_initiated, whose stream_sid stops a superseded attempt) does not qualify."""
    assert decides_nothing("recording_started") and decides_nothing("dial_success")
    names = (ev.LEG_ANSWERED, ev.LEG_RINGING, ev.STREAM_INITIATED, ev.STREAM_STARTED, ev.SAY_COMPLETED, ev.RECORDING_AVAILABLE)
    for name in (*names, "leg_joined_bridge"):
        assert not decides_nothing(name), name


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


def test_answered_without_stream_is_its_own_outcome_with_a_reason():
    """A call hung up before its stream came up ends as answered_no_stream, with that reason."""
    record, _ = run(Flow.BOT_FIRST, event(ev.LEG_ANSWERED), event(ev.LEG_TERMINATED, data={"terminal_status": "completed"}))
    assert record.outcome == Outcome.ANSWERED_NO_STREAM.value
    assert record.reason == "the call ended before the bot stream started"


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


# Failover, fallback and answering machines


def step(record: LegRecord, config: CampaignConfig, item) -> tuple[LegRecord, list]:
    """Apply an event, or a timer id given as a string."""
    result = apply_timer(record, item, config) if isinstance(item, str) else apply_event(record, item, config)
    if isinstance(result, Decision):
        return result.record, list(result.actions)
    return record, []


def drive(config: CampaignConfig, *items) -> tuple[LegRecord, list]:
    return drive_from(LegRecord.new("LEG1", TAG, config), config, *items)


def kinds(actions) -> list[str]:
    return [a.kind for a in actions]


def test_stream_timeout_tries_another_bot_with_a_hold_message():
    """No stream_started in time: start_stream again (avoiding tried bots) and a hold message, since the greeting ended."""
    config = campaign(Flow.GREETING_SAY)
    record, sent = drive(
        config, event(ev.LEG_ANSWERED), event(ev.SAY_STARTED, action_custom_parameter="start_say#1"),
        event(ev.SAY_COMPLETED, action_custom_parameter="start_say#1"), "start_stream#1",
    )  # fmt: skip
    assert kinds(sent) == ["start_stream", "start_say", "start_stream", "start_say"]
    assert sent[2].params["avoid_tried_bots"] is True
    assert sent[3].params["text"] == config.hold_message
    assert record.stream_attempts == 2 and record.errors


def test_stream_timeout_keeps_a_greeting_that_is_still_playing():
    """If the callee still hears the greeting when the stream times out, only the stream is retried."""
    record, sent = drive(campaign(Flow.GREETING_SAY), event(ev.LEG_ANSWERED), event(ev.SAY_STARTED), "start_stream#1")
    assert kinds(sent) == ["start_stream", "start_say", "start_stream"]


def test_timer_of_a_started_or_superseded_stream_does_nothing():
    """A stream timer fires after its stream started, or after a newer attempt: no effect."""
    config = campaign(Flow.BOT_FIRST)
    record, _ = drive(config, event(ev.LEG_ANSWERED), event(ev.STREAM_STARTED, action_custom_parameter="start_stream#1"))
    assert apply_timer(record, "start_stream#1", config) is record
    record, _ = drive(config, event(ev.LEG_ANSWERED), "start_stream#1")
    assert apply_timer(record, "start_stream#1", config) is record


def test_all_attempts_failed_plays_fallback_then_hangs_up_with_reason():
    """After max attempts the fallback message plays; when it completes the call is hung up, reason recorded."""
    config = campaign(Flow.BOT_FIRST)
    record, sent = drive(config, event(ev.LEG_ANSWERED), "start_stream#1", "start_stream#2")
    assert kinds(sent) == ["start_stream", "start_stream", "start_say", "stop_say", "start_say"]
    assert sent[-1].params["text"] == config.fallback_message
    assert record.ending is Ending.FALLBACK and "no bot stream after 2 attempt(s)" in record.reason
    record, more = drive_from(record, config, event(ev.SAY_STARTED, action_custom_parameter=sent[-1].action_id),
                              event(ev.SAY_COMPLETED, action_custom_parameter=sent[-1].action_id))  # fmt: skip
    assert kinds(more) == ["hangup"]
    record, _ = drive_from(record, config, event(ev.LEG_TERMINATED, data={"terminal_status": "completed"}))
    assert record.outcome == Outcome.ANSWERED_NO_STREAM.value and record.reason


def test_fallback_timer_hangs_up_if_the_message_never_ends():
    """The fallback grace timer hangs up a call whose fallback message never completed."""
    config = campaign(Flow.BOT_FIRST)
    record, sent = drive(config, event(ev.LEG_ANSWERED), "start_stream#1", "start_stream#2")
    assert ("fallback", FALLBACK_GRACE) in timers_for(record, tuple(sent[-3:]), config)
    record, more = drive_from(record, config, "fallback")
    assert kinds(more) == ["hangup"]


def test_bot_that_comes_up_during_the_fallback_rescues_the_call():
    """A late stream_started during the fallback message cancels the fallback and stops the message."""
    config = campaign(Flow.BOT_FIRST)
    record, _ = drive(config, event(ev.LEG_ANSWERED), "start_stream#1", "start_stream#2", event(ev.SAY_STARTED))
    record, more = drive_from(record, config, event(ev.STREAM_STARTED, event_data={"data": {"stream_sid": "S2"}}))
    assert kinds(more) == ["stop_say"]
    assert record.ending is Ending.NONE and record.streams_started == 1


def test_superseded_stream_that_starts_late_is_stopped():
    """Two streams came up (the timed-out attempt after all): the second is stopped by its stream_sid."""
    config = campaign(Flow.BOT_FIRST)
    record, _ = drive(config, event(ev.LEG_ANSWERED), "start_stream#1",
                      event(ev.STREAM_STARTED, event_data={"data": {"stream_sid": "S2"}}, action_custom_parameter="start_stream#2"))  # fmt: skip
    record, more = drive_from(record, config, event(ev.STREAM_STARTED, event_data={"data": {"stream_sid": "S1"}}))
    assert kinds(more) == ["stop_stream"] and more[0].params == {"stream_sid": "S1"}
    assert record.streams_started == 1 and record.stream_sid == "S2"
    record, after = drive_from(record, config, event(ev.STREAM_STOPPED, event_data={"data": {"stream_sid": "S1"}}))
    assert after == [] and record.stream is StreamState.STARTED


def test_an_attempt_superseded_while_connecting_is_stopped_by_its_own_stream_sid():
    """stream_initiated gave attempt 1 its sid; its timer fires before stream_started: attempt 2
    starts and attempt 1 is stopped by that sid (never two bots on the call); attempt 1's
    stream_started, if it raced the stop, is not taken as the live stream; attempt 2's is."""
    config = campaign(Flow.BOT_FIRST)
    initiated = lambda sid, attempt: event(ev.STREAM_INITIATED, event_data={"data": {"stream_sid": sid}}, action_custom_parameter=attempt)  # noqa: E731
    started = lambda sid, attempt: event(ev.STREAM_STARTED, event_data={"data": {"stream_sid": sid}}, action_custom_parameter=attempt)  # noqa: E731
    record, sent = drive(config, event(ev.LEG_ANSWERED), initiated("S1", "start_stream#1"), "start_stream#1")
    assert kinds(sent) == ["start_stream", "start_stream", "stop_stream", "start_say"]
    assert sent[2].params == {"stream_sid": "S1"}
    record, more = drive_from(record, config, started("S1", "start_stream#1"))
    assert more == [] and record.stream is StreamState.REQUESTED
    record, more = drive_from(record, config, started("S2", "start_stream#2"))
    assert kinds(more) == ["stop_say"] and record.stream_sid == "S2" and record.streams_started == 1


def test_an_attempt_whose_sid_arrives_after_it_was_superseded_is_stopped_then():
    """The timer superseded attempt 1 before its stream_initiated came: its late stream_initiated stops it by its sid."""
    config = campaign(Flow.BOT_FIRST)
    record, sent = drive(config, event(ev.LEG_ANSWERED), "start_stream#1")
    assert "stop_stream" not in kinds(sent)
    late = event(ev.STREAM_INITIATED, event_data={"data": {"stream_sid": "S1"}}, action_custom_parameter="start_stream#1")
    record, more = drive_from(record, config, late, late)
    assert kinds(more) == ["stop_stream"] and more[0].params == {"stream_sid": "S1"}
    current = event(ev.STREAM_INITIATED, event_data={"data": {"stream_sid": "S2"}}, action_custom_parameter="start_stream#2")
    record, more = drive_from(record, config, current)
    assert more == [] and record.stream_sids == {"start_stream#1": "S1", "start_stream#2": "S2"}


def test_bot_drop_mid_call_reconnects_once_then_falls_back():
    """A bot dropping mid-call gets one reconnect (with a hold message); a second drop plays the fallback."""
    config = campaign(Flow.BOT_FIRST)
    started = lambda sid: event(ev.STREAM_STARTED, event_data={"data": {"stream_sid": sid}})  # noqa: E731
    stopped = lambda sid: event(ev.STREAM_STOPPED, event_data={"data": {"stream_sid": sid}})  # noqa: E731
    record, sent = drive(config, event(ev.LEG_ANSWERED), started("S1"), stopped("S1"))
    assert kinds(sent) == ["start_stream", "start_stream", "start_say"]
    record, more = drive_from(record, config, started("S2"), stopped("S2"))
    assert kinds(more) == ["stop_say", "start_say"]
    assert record.ending is Ending.FALLBACK
    record, _ = drive_from(record, config, event(ev.SAY_COMPLETED), event(ev.LEG_TERMINATED, data={"terminal_status": "completed"}))
    assert record.outcome == Outcome.ANSWERED_NO_STREAM.value and "no bot stream after 2" in record.reason


def test_stream_stopped_after_the_call_ended_does_not_reconnect():
    """stream_stopped arriving after leg_terminated is recorded, nothing is started."""
    config = campaign(Flow.BOT_FIRST)
    record, sent = drive(config, event(ev.LEG_ANSWERED), event(ev.STREAM_STARTED),
                         event(ev.LEG_TERMINATED, data={"terminal_status": "completed"}), event(ev.STREAM_STOPPED))  # fmt: skip
    assert kinds(sent) == ["start_stream"]


def test_machine_with_hangup_policy_stops_the_stream_and_hangs_up():
    """amd MACHINE with amd_action hangup: the stream is stopped and the leg hung up; outcome machine."""
    config = CampaignConfig("camp", flow=Flow.BOT_FIRST, bot_url="ws://b/m", amd_enable=True)
    record, sent = drive(config, event(ev.LEG_ANSWERED), event(ev.AMD_RESULT_SUCCESS, event_data={"data": {"result": "MACHINE"}}))
    assert kinds(sent) == ["start_stream", "stop_stream", "hangup"]
    record, _ = drive_from(record, config, event(ev.LEG_TERMINATED, data={"terminal_status": "completed"}))
    assert record.outcome == Outcome.MACHINE.value


def test_human_amd_result_changes_nothing():
    """amd HUMAN (or NOT_SURE) leaves the call to the bot."""
    config = CampaignConfig("camp", flow=Flow.BOT_FIRST, bot_url="ws://b/m", amd_enable=True)
    record, sent = drive(config, event(ev.LEG_ANSWERED), event(ev.AMD_RESULT_SUCCESS, event_data={"data": {"result": "HUMAN"}}))
    assert kinds(sent) == ["start_stream"] and not record.machine


def drive_from(record: LegRecord, config: CampaignConfig, *items) -> tuple[LegRecord, list]:
    sent = []
    for item in items:
        record, actions = step(record, config, item)
        sent += actions
    return record, sent


def test_stream_stopped_because_the_caller_hung_up_does_not_reconnect():
    """stream_stopped with reason callended (arriving before leg_terminated) is the call ending, not a bot drop."""
    config = campaign(Flow.BOT_FIRST)
    record, sent = drive(config, event(ev.LEG_ANSWERED), event(ev.STREAM_STARTED),
                         event(ev.STREAM_STOPPED, event_data={"data": {"reason": "callended"}}))  # fmt: skip
    assert kinds(sent) == ["start_stream"]
    assert record.stream is StreamState.STOPPED and not record.errors


def test_a_bot_that_closes_its_stream_normally_ends_the_call():
    """stream_stopped with the bot's normal close (1000) is its hang-up: the leg is hung up, and the call completed with its bot."""
    config = campaign(Flow.BOT_FIRST)
    record, sent = drive(config, event(ev.LEG_ANSWERED), event(ev.STREAM_STARTED),
                         event(ev.STREAM_STOPPED, event_data={"data": {"reason": "bot closed (1000)"}}))  # fmt: skip
    assert kinds(sent) == ["start_stream", "hangup"] and record.ending is Ending.BOT_HANGUP
    record, _ = drive_from(record, config, event(ev.LEG_TERMINATED, data={"terminal_status": "completed"}))
    assert record.outcome == Outcome.COMPLETED.value and not record.errors


def test_failed_stream_attempt_recovers_without_waiting_for_its_timer():
    """stream_stopped (failed) for the pending attempt tries the next bot at once."""
    config = campaign(Flow.BOT_FIRST)
    failed = event(ev.STREAM_STOPPED, event_data={"data": {"reason": "failed"}}, action_custom_parameter="start_stream#1")
    record, sent = drive(config, event(ev.LEG_ANSWERED), failed)
    assert kinds(sent) == ["start_stream", "start_stream", "start_say"]
    assert "start_stream#1 failed" in record.errors[0]


def failed(kind: str, error: Exception) -> tuple[LegRecord, bool]:
    """An answered bot-first leg whose first ``kind`` action failed with ``error``: the record after, and whether to hang up."""
    config = campaign(Flow.BOT_FIRST)
    record, sent = drive(config, event(ev.LEG_ANSWERED))
    action = next((a for a in sent if a.kind == kind), None) or Action(f"{kind}#1", ActionKind(kind))
    result = apply_failure(record, action, error, config)
    return (result.record if isinstance(result, Decision) else result), hangs_up_after(action, error)


def test_a_stream_that_cannot_start_is_recorded_as_the_reason_and_the_call_hung_up():
    """start_stream refused (4xx): the error is kept, the reason says the bot stream could not be started, and the call is hung up."""
    record, hang_up = failed("start_stream", LegsApiClientError(400, "bad url"))
    assert record.reason == "bot stream could not be started"
    assert record.errors == ("start_stream#1: Legs API 400: bad url",)
    assert hang_up


def test_a_stream_refused_because_the_leg_is_gone_is_not_hung_up():
    """start_stream answered 409 (the callee hung up first): the error is kept, there is nothing to hang up."""
    record, hang_up = failed("start_stream", LegsApiClientError(409, "leg not active"))
    assert record.reason == "bot stream could not be started" and not hang_up


def test_a_failed_greeting_is_recorded_without_a_reason_or_a_hangup():
    """start_say failing for good keeps its error; the call goes on (the bot may still come)."""
    record, hang_up = failed("start_say", LegsApiServerError(503, "unavailable"))
    assert record.errors == ("start_say#1: Legs API 503: unavailable",) and record.reason == ""
    assert not hang_up


def test_a_failed_stop_is_expected_and_leaves_the_record_alone():
    """stop_say failing (the greeting already ended: the race with say_completed) records nothing."""
    config = campaign(Flow.BOT_FIRST)
    record, _ = drive(config, event(ev.LEG_ANSWERED))
    assert apply_failure(record, Action("stop_say#1", ActionKind.STOP_SAY), LegsApiClientError(404, "nothing playing"), config) is record
    assert not hangs_up_after(Action("stop_say#1", ActionKind.STOP_SAY), LegsApiClientError(404, "nothing playing"))


def test_a_stream_with_no_bot_to_go_to_takes_the_fallback_path():
    """start_stream with no bot available: the reason says so, the greeting stops, the fallback message plays, then the hang-up."""
    config = campaign(Flow.GREETING_SAY)
    record, sent = drive(config, event(ev.LEG_ANSWERED), event(ev.SAY_STARTED, action_custom_parameter="start_say#1"))
    result = apply_failure(record, sent[0], NoBotAvailable("no bot registered"), config)
    assert isinstance(result, Decision) and kinds(result.actions) == ["stop_say", "start_say"]
    record = result.record
    assert record.reason == "no bot available" and record.ending is Ending.FALLBACK
    assert record.errors == ("start_stream#1: no bot registered",)
    assert not hangs_up_after(sent[0], NoBotAvailable("no bot registered"))
    message = result.actions[-1].action_id
    record, more = drive_from(record, config, event(ev.SAY_COMPLETED, action_custom_parameter=message))
    assert kinds(more) == ["hangup"]


def test_a_superseded_stream_attempt_with_no_bot_only_records_its_error():
    """An earlier attempt's start_stream finding no bot changes nothing but the errors: the latest attempt is what counts."""
    config = campaign(Flow.BOT_FIRST)
    record, sent = drive(config, event(ev.LEG_ANSWERED), "start_stream#1")
    result = apply_failure(record, sent[0], NoBotAvailable("no bot registered"), config)
    assert isinstance(result, Decision) and result.actions == ()
    assert result.record.ending is Ending.NONE and result.record.errors[-1] == "start_stream#1: no bot registered"
