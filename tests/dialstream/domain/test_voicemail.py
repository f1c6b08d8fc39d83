"""Answering machines with a voicemail to leave: the message waits for the beep, or for the deadline (pure)."""

from __future__ import annotations

from dialstream.domain.campaign import CampaignConfig, Flow
from dialstream.domain.leg_state import Ending, Outcome, timers_for
from dialstream.domain.voicemail import BEEP_TIMER, BEEP_WAIT
from dialstream.exotel import events as ev
from dialstream.exotel.actions import ActionKind
from tests.dialstream.domain.test_leg_state import drive, drive_from, event, kinds

VOICEMAIL = CampaignConfig("camp", flow=Flow.GREETING_SAY, bot_url="ws://b/m", amd_enable=True, async_amd=True,
                           amd_action="voicemail", voicemail_message="Please call Acme Finance back.")  # fmt: skip
MACHINE = event(ev.AMD_RESULT_SUCCESS, event_data={"data": {"result": "MACHINE"}})


def answered_by_a_machine():
    """An answered greeting-flow leg whose AMD verdict (asynchronous) is MACHINE."""
    return drive(VOICEMAIL, event(ev.LEG_ANSWERED), event(ev.SAY_STARTED, action_custom_parameter="start_say#1"), MACHINE)


def test_a_machine_stops_the_bot_and_the_greeting_and_waits_for_its_beep():
    """The verdict stops the stream and the greeting and starts nothing; its stop_stream arms the beep deadline."""
    record, sent = answered_by_a_machine()
    assert kinds(sent) == ["start_stream", "start_say", "stop_stream", "stop_say"]
    assert record.machine and record.ending is Ending.VOICEMAIL and not record.ending_action_id
    assert (BEEP_TIMER, BEEP_WAIT) in timers_for(record, tuple(sent[2:]), VOICEMAIL)
    record, more = drive_from(record, VOICEMAIL, event(ev.SAY_INTERRUPTED, action_custom_parameter="start_say#1"))
    assert more == []  # the greeting's end is not the message's


def test_the_message_starts_at_the_beep_and_a_completed_message_is_a_voicemail_left():
    """amd_beep_detected starts the voicemail message; its say_completed hangs up; the outcome is voicemail_left."""
    record, _ = answered_by_a_machine()
    record, sent = drive_from(record, VOICEMAIL, event(ev.AMD_BEEP_DETECTED, event_data={"data": {"beep_ms": 4200}}))
    assert kinds(sent) == ["start_say"] and sent[0].params == {"text": "Please call Acme Finance back."}
    message = sent[0].action_id
    record, more = drive_from(record, VOICEMAIL, event(ev.AMD_BEEP_DETECTED), event(ev.SAY_STARTED, action_custom_parameter=message),
                              event(ev.SAY_COMPLETED, 109.0, action_custom_parameter=message))  # fmt: skip
    assert kinds(more) == ["hangup"]  # a second beep changes nothing
    record, _ = drive_from(record, VOICEMAIL, event(ev.LEG_TERMINATED, data={"terminal_status": "completed"}))
    assert record.outcome == Outcome.VOICEMAIL_LEFT.value and record.voicemail_left_at == 109.0


def test_without_a_beep_the_message_is_left_after_the_deadline_and_a_cut_message_is_only_a_machine():
    """The beep timer leaves the message anyway (noted in the errors); an interrupted message ends as machine."""
    record, _ = answered_by_a_machine()
    record, sent = drive_from(record, VOICEMAIL, BEEP_TIMER)
    assert kinds(sent) == ["start_say"] and "no beep within" in record.errors[-1]
    record, more = drive_from(record, VOICEMAIL, BEEP_TIMER, event(ev.AMD_BEEP_DETECTED),
                              event(ev.SAY_INTERRUPTED, action_custom_parameter=sent[0].action_id))  # fmt: skip
    assert kinds(more) == ["hangup"]
    record, _ = drive_from(record, VOICEMAIL, event(ev.LEG_TERMINATED, data={"terminal_status": "completed"}))
    assert record.outcome == Outcome.MACHINE.value


def test_a_machine_with_the_hangup_policy_is_hung_up_and_never_waits_for_a_beep():
    """amd_action hangup: stop the stream, hang up, no beep deadline; a beep afterwards does nothing."""
    config = CampaignConfig("camp", flow=Flow.BOT_FIRST, bot_url="ws://b/m", amd_enable=True)
    record, sent = drive(config, event(ev.LEG_ANSWERED), MACHINE, event(ev.AMD_BEEP_DETECTED))
    assert kinds(sent) == [ActionKind.START_STREAM, ActionKind.STOP_STREAM, ActionKind.HANGUP]
    assert all(timer != BEEP_TIMER for timer, _ in timers_for(record, tuple(sent), config))
