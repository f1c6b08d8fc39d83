"""Reconciliation's decisions: when a quiet leg is looked up, and what the Legs API's answer means for it."""

from __future__ import annotations

import dataclasses

from dialstream.domain.campaign import CampaignConfig, Flow, LegTag
from dialstream.domain.leg_state import Decision, LegRecord, Outcome, Phase, StreamState, apply_event, awaits_stream
from dialstream.domain.reconcile import (
    LONGEST_LOOKUP, RECONCILED, awaits_stream_start, looked_up_after_gap, lookup_after, missing_event, recovered_events,
)  # fmt: skip
from dialstream.exotel import events as ev

TAG = LegTag("camp", "c1")
CAMPAIGN = CampaignConfig("camp", flow=Flow.GREETING_SAY, bot_url="ws://bot/media", ring_timeout=20)
CUSTOM = TAG.encode()


def record(**changes) -> LegRecord:
    return dataclasses.replace(LegRecord.new("LEG1", TAG, CAMPAIGN), **changes)


def test_an_unanswered_leg_is_looked_up_its_ring_timeout_plus_the_margin_after_its_dial_and_an_ended_one_never():
    """No event yet, or ringing: ring timeout + margin (by then it is answered or over); ended: never."""
    assert lookup_after(None, CAMPAIGN, 30, 1000.0) == 50.0
    assert lookup_after(record(phase=Phase.RINGING, ringing_at=1010.0), CAMPAIGN, 30, 1010.0) == 50.0
    assert lookup_after(record(phase=Phase.ENDED), CAMPAIGN, 30, 1010.0) is None


def test_an_answered_leg_is_looked_up_the_margin_after_its_answer_then_as_often_as_it_has_lasted():
    """A live call sends no event while it talks: it is looked up the margin after its answer,
    then after as long again as it has lasted (at most ten margins), so that a call's look-ups
    grow with the log of its length: 100 ten-minute calls cost ~6 look-ups each, not 20."""
    talking = record(phase=Phase.STREAMING, answered_at=1000.0)
    assert lookup_after(talking, CAMPAIGN, 30, 1000.0) == 30.0
    assert lookup_after(talking, CAMPAIGN, 30, 1030.0) == 30.0
    assert lookup_after(talking, CAMPAIGN, 30, 1060.0) == 60.0
    assert lookup_after(talking, CAMPAIGN, 30, 1240.0) == 240.0
    assert lookup_after(talking, CAMPAIGN, 30, 4600.0) == LONGEST_LOOKUP * 30
    at, lookups = 1000.0 + 30, 1
    while at < 1600.0:  # a ten-minute call
        at, lookups = at + lookup_after(talking, CAMPAIGN, 30, at), lookups + 1
    assert lookups <= 6


def test_when_an_ingress_is_back_every_live_leg_is_looked_up_at_once():
    """After an ingress's gap every live leg is looked up at once: a leg with no event yet or
    ringing (its answer may be lost: a callee in silence), answered with its stream asked for
    and not started (its stream_started may be lost), or talking (its end may be lost, and its
    next look-up may be minutes away); an ended leg is not. Only a leg whose stream is asked
    for and not started has its undelivered events applied as well."""
    assert looked_up_after_gap(None)
    assert looked_up_after_gap(record(phase=Phase.RINGING, ringing_at=1010.0))
    asked = record(phase=Phase.ANSWERED, answered_at=1005.0, stream=StreamState.REQUESTED)
    assert looked_up_after_gap(asked) and awaits_stream_start(asked)
    streaming = record(phase=Phase.STREAMING, answered_at=1005.0, stream=StreamState.STARTED, streams_started=1)
    assert looked_up_after_gap(streaming) and not awaits_stream_start(streaming)
    assert looked_up_after_gap(record(phase=Phase.ANSWERED, answered_at=1005.0))
    ended = record(phase=Phase.ENDED, answered_at=1005.0, stream=StreamState.REQUESTED)
    assert not looked_up_after_gap(ended) and not awaits_stream_start(ended)


def test_a_terminal_leg_whose_end_was_lost_gets_leg_terminated_and_ends_completed():
    """GET leg says terminal/completed: the streaming call ends completed at the API's end_time, and the record says it was reconciled."""
    talking = record(phase=Phase.STREAMING, answered_at=1005.0, streams_started=1)
    leg = {"state": "terminal", "terminal_status": "completed", "end_time": "2026-01-01T00:00:10Z"}
    event = missing_event(talking, leg, "LEG1", CUSTOM, now=5000.0)
    assert event is not None and event.event_name == ev.LEG_TERMINATED
    assert event.timestamp == 1767225610.0 and event.custom_param == CUSTOM
    result = apply_event(talking, event, CAMPAIGN)
    assert isinstance(result, Decision)
    assert result.record.outcome == Outcome.COMPLETED and result.record.finished
    assert any(error.startswith(f"{RECONCILED}: leg_terminated was not delivered") for error in result.record.errors)
    # Two look-ups make the same event; the real one arriving late changes nothing.
    assert missing_event(talking, leg, "LEG1", CUSTOM, now=6000.0).event_sid == event.event_sid
    assert apply_event(result.record, event, CAMPAIGN) is result.record


def test_an_unanswered_leg_that_ended_busy_with_no_event_at_all_ends_busy():
    """No record (no event ever arrived), GET leg says busy: the attempt ends busy, at the look-up's time when the API gives no end_time."""
    event = missing_event(None, {"state": "terminal", "terminal_status": "busy"}, "LEG1", CUSTOM, now=5000.0)
    result = apply_event(record(), event, CAMPAIGN)
    assert result.record.outcome == Outcome.BUSY and result.record.ended_at == 5000.0


def test_a_terminal_leg_without_a_status_completed_if_it_was_answered_else_failed():
    """terminal_status missing: a start_time means the call was answered and completed; none, that it failed."""
    answered = missing_event(None, {"state": "terminal", "start_time": "2026-01-01T00:00:03Z"}, "LEG1", CUSTOM, now=5.0)
    unanswered = missing_event(None, {"state": "terminal"}, "LEG1", CUSTOM, now=5.0)
    assert answered.data["terminal_status"] == "completed" and unanswered.data["terminal_status"] == "failed"


def test_a_leg_the_api_does_not_know_ends_failed():
    """404 on GET leg: the leg ended before it began; its contact is not held."""
    event = missing_event(record(phase=Phase.CONNECTING), None, "LEG1", CUSTOM, now=5000.0)
    assert apply_event(record(phase=Phase.CONNECTING), event, CAMPAIGN).record.outcome == Outcome.FAILED


def test_a_connected_leg_whose_answer_was_lost_is_answered_and_gets_its_bot():
    """GET leg says connected, the record never saw leg_answered: the callee is there, so the stream (and greeting) start now."""
    ringing = record(phase=Phase.RINGING, ringing_at=1001.0)
    event = missing_event(ringing, {"state": "connected", "start_time": "2026-01-01T00:00:03Z"}, "LEG1", CUSTOM, now=5000.0)
    assert event is not None and event.event_name == ev.LEG_ANSWERED
    result = apply_event(ringing, event, CAMPAIGN)
    assert [a.kind for a in result.actions] == ["start_stream", "start_say"]


def test_a_leg_in_step_with_the_api_needs_nothing():
    """Ringing while the record says ringing, or connected while it streams: no event is made."""
    assert missing_event(record(phase=Phase.RINGING), {"state": "ringing"}, "LEG1", CUSTOM, now=1.0) is None
    streaming = record(phase=Phase.STREAMING, answered_at=1.0)
    assert missing_event(streaming, {"state": "connected"}, "LEG1", CUSTOM, now=2.0) is None
    assert missing_event(record(phase=Phase.ENDED), {"state": "terminal"}, "LEG1", CUSTOM, now=2.0) is None


def test_undelivered_external_events_become_leg_events_in_their_order():
    """external-events entries not delivered (endpoint_response false) are the events to apply,
    oldest first, with their own event_sid; delivered ones and unreadable ones are skipped."""
    def entry(sid: str, name: str, seconds: int, delivered: bool, **data) -> dict:
        info = {
            "event_sid": sid, "event_type": ev.ACTION, "event_name": name,
            "event_timestamp": {"seconds": seconds, "nanos": 0}, "action_custom_parameter": "start_stream#1",
            "data": {"data": data},
        }  # fmt: skip
        return {"endpoint_response": delivered, "error": None if delivered else "UNAVAILABLE", "event_info": info}

    history = [
        entry("S3", ev.STREAM_STOPPED, 1003, False),
        entry("S1", ev.LEG_ANSWERED, 1000, True),
        entry("S2", ev.STREAM_STARTED, 1002, False, stream_sid="MZ1"),
        {"endpoint_response": False, "event_info": {"event_name": "no sid"}},
    ]
    events = recovered_events(history, "LEG1", CUSTOM)
    assert [(e.event_sid, e.event_name) for e in events] == [("S2", ev.STREAM_STARTED), ("S3", ev.STREAM_STOPPED)]
    assert events[0].detail["stream_sid"] == "MZ1" and events[0].leg_sid == "LEG1" and events[0].custom_param == CUSTOM
    # Delivered but perhaps not applied yet (spooled through a Redis outage): taken too when asked.
    everything = recovered_events(history, "LEG1", CUSTOM, delivered=True)
    assert [e.event_sid for e in everything] == ["S1", "S2", "S3"]


def test_a_stream_started_recovered_before_the_timer_makes_the_timer_stale():
    """The stream attempt's timer would try another bot; its recovered stream_started keeps the one that is up."""
    answered = apply_event(record(), ev.LegEvent("A", ev.LIFECYCLE, ev.LEG_ANSWERED, 1.0, "LEG1"), CAMPAIGN).record
    assert awaits_stream(answered, "start_stream#1")
    started = ev.LegEvent("S", ev.ACTION, ev.STREAM_STARTED, 2.0, "LEG1", event_data={"data": {"stream_sid": "MZ1"}},
                          action_custom_parameter="start_stream#1")  # fmt: skip
    assert not awaits_stream(apply_event(answered, started, CAMPAIGN).record, "start_stream#1")
