"""The engine's decisions around a dial, at any instant: windows across zones, DNC, state, redials, history."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dialstream.domain.campaign import CampaignConfig, CampaignState, Flow, LegTag
from dialstream.domain.dialing import (
    MAX_CALLBACKS,
    Redial,
    Step,
    after_attempt,
    before_dial,
    caller_id_wait,
    next_dial,
    reserve_released,
    stream_released,
    with_history,
)
from dialstream.domain.leg_state import GreetingState, LegRecord, Phase, StreamState
from dialstream.errors import ConfigurationError
from dialstream.settings import EngineConfig

RETRIES = {"busy": {"max_attempts": 3, "delay": 300}, "no_answer": {"max_attempts": 2, "delay": 3600}}
CAMPAIGN = CampaignConfig("camp", window="mon-sat 09:00-20:00", retries=RETRIES)


def at(*args: int) -> float:
    return datetime(*args, tzinfo=timezone.utc).timestamp()


def test_one_instant_is_inside_the_window_in_kolkata_and_outside_in_new_york():
    """At 10:00 UTC on a Wednesday Kolkata (15:30) is dialled; New York (06:00) waits for 09:00 its time."""
    now = at(2026, 6, 3, 10, 0)
    assert before_dial(CampaignState.RUNNING, CAMPAIGN, "Asia/Kolkata", now, blocked=False).step is Step.DIAL
    wait = before_dial(CampaignState.RUNNING, CAMPAIGN, "America/New_York", now, blocked=False)
    assert wait.step is Step.WAIT and wait.at == at(2026, 6, 3, 13, 0)  # 09:00 EDT
    assert "America/New_York" in wait.reason


def test_the_window_follows_daylight_saving_and_the_days_of_the_week():
    """New York's 09:00 is 14:00 UTC in winter and 13:00 in summer; Saturday evening waits for Monday."""
    winter = before_dial(CampaignState.RUNNING, CAMPAIGN, "America/New_York", at(2026, 1, 14, 12, 0), blocked=False)
    assert winter.at == at(2026, 1, 14, 14, 0)
    saturday_night = at(2026, 6, 6, 20, 0)  # 16:00 in New York on Saturday, 01:30 Sunday in Kolkata
    assert before_dial(CampaignState.RUNNING, CAMPAIGN, "America/New_York", saturday_night, blocked=False).step is Step.DIAL
    kolkata = before_dial(CampaignState.RUNNING, CAMPAIGN, "Asia/Kolkata", saturday_night, blocked=False)
    assert kolkata.at == at(2026, 6, 8, 3, 30)  # Monday 09:00 IST


@pytest.mark.parametrize(
    "state, blocked, step, outcome",
    [
        (CampaignState.CANCELED, False, Step.STOP, "canceled"),
        (CampaignState.PAUSED, False, Step.WAIT, ""),
        (CampaignState.RUNNING, True, Step.STOP, "dnc"),
        (CampaignState.CANCELED, True, Step.STOP, "canceled"),
    ],
)
def test_state_and_dnc_come_before_the_window(state, blocked, step, outcome):
    """Cancel stops a dial for good, pause sends it back at once, a DNC number ends as dnc."""
    decision = before_dial(state, CAMPAIGN, "Asia/Kolkata", at(2026, 6, 3, 10, 0), blocked=blocked)
    assert (decision.step, decision.outcome) == (step, outcome)


def test_redials_follow_the_rule_of_each_outcome():
    """Busy is redialled after 5 minutes up to 3 dials, no-answer after an hour up to 2, failed by its default rule; DNC, invalid, completed, canceled never."""
    now = at(2026, 6, 3, 10, 0)
    assert next_dial(CAMPAIGN, "busy", 1, "Asia/Kolkata", now) == now + 300
    assert next_dial(CAMPAIGN, "busy", 3, "Asia/Kolkata", now) is None
    assert next_dial(CAMPAIGN, "no_answer", 1, "Asia/Kolkata", now) == now + 3600
    assert next_dial(CAMPAIGN, "no_answer", 2, "Asia/Kolkata", now) is None
    assert next_dial(CAMPAIGN, "failed", 1, "Asia/Kolkata", now) == now + 600  # not named: the default rule
    for outcome in ("completed", "dnc", "invalid_number", "canceled", "answered_no_stream"):
        assert next_dial(CAMPAIGN, outcome, 1, "Asia/Kolkata", now) is None, outcome


def test_a_redial_due_outside_the_window_waits_for_it_to_open():
    """A busy call at 19:58 in Kolkata is redialled when the window opens next morning, not at 20:03."""
    now = at(2026, 6, 3, 14, 28)  # 19:58 IST
    assert next_dial(CAMPAIGN, "busy", 1, "Asia/Kolkata", now) == at(2026, 6, 4, 3, 30)


def test_a_contact_without_a_caller_id_waits_for_the_pools_new_day_inside_its_window():
    """The pool reopens at 18:30 UTC (midnight in Kolkata): a Kolkata contact waits for 09:00 there, a New York one (14:30 there) for the reopening."""
    reopens = at(2026, 6, 3, 18, 30)
    kolkata = caller_id_wait(CAMPAIGN, "Asia/Kolkata", reopens)
    assert (kolkata.step, kolkata.at) == (Step.WAIT, at(2026, 6, 4, 3, 30))
    assert "daily cap" in kolkata.reason and "2026-06-04 03:30 UTC" in kolkata.reason
    assert caller_id_wait(CAMPAIGN, "America/New_York", reopens).at == reopens


def test_a_callback_the_callee_asked_for_comes_before_the_redial_rule_a_few_times_per_contact():
    """A completed call whose callee asked for 17:00 local is dialled then; a busy one too rather than after its delay;
    after MAX_CALLBACKS honoured callbacks the redial rule alone decides."""
    now = at(2026, 6, 3, 10, 0)  # 15:30 in Kolkata
    asked = after_attempt(CAMPAIGN, "completed", 1, "Asia/Kolkata", now, callback_at="2026-06-03T17:00:00")
    assert asked == Redial(at(2026, 6, 3, 11, 30), 1)
    assert after_attempt(CAMPAIGN, "busy", 1, "Asia/Kolkata", now, callback_at="2026-06-03T17:00:00+05:30", callbacks=1).at == at(2026, 6, 3, 11, 30)
    assert after_attempt(CAMPAIGN, "completed", 4, "Asia/Kolkata", now, callback_at="2026-06-03T17:00:00", callbacks=MAX_CALLBACKS) == Redial(
        None, MAX_CALLBACKS
    )
    assert after_attempt(CAMPAIGN, "busy", 1, "Asia/Kolkata", now) == Redial(now + 300, 0)


def test_campaigns_dial_once_unless_they_ask_for_redials():
    """Without retries no outcome is redialled; a bad window or rule fails when the campaign is built."""
    plain = CampaignConfig("plain")
    assert next_dial(plain, "busy", 1, "Asia/Kolkata", 0.0) is None
    with pytest.raises(ConfigurationError):
        CampaignConfig("bad", window="9-5")
    with pytest.raises(ConfigurationError):
        CampaignConfig("bad", retries={"dnc": {"max_attempts": 2}})


def test_campaign_configuration_survives_json():
    """Dialing options come back from the stored JSON as given."""
    config = CampaignConfig("c", max_concurrent=5, window="09:00-18:00", retries=RETRIES, stream_variables=("name", "due"))
    again = CampaignConfig.from_json(config.to_json())
    assert again == config and again.stream_variables == ("name", "due") and again.redial_policy == config.redial_policy


def test_the_engine_config_reads_the_environment_and_caps_each_campaign():
    """DIALSTREAM_* variables set the account's budget and caps; 0 means no cap."""
    engine = EngineConfig.from_env({"DIALSTREAM_API_BUDGET": "120", "DIALSTREAM_MAX_CALLS": "50", "DIALSTREAM_SLOT_TTL": "9.5"})
    assert engine.budget.limit == 120 and engine.slot_ttl == 9.5
    assert EngineConfig.from_env(engine.to_env()) == engine
    caps = engine.slot_caps(CampaignConfig("c", max_concurrent=10))
    assert (caps.account_calls, caps.campaign_calls, caps.streams) == (50, 10, None)
    with pytest.raises(ConfigurationError):
        EngineConfig.from_env({"DIALSTREAM_MAX_CALLS": "many"})


def record(**changes) -> LegRecord:
    base = LegRecord.new("leg1", LegTag("camp", "r2"), CampaignConfig("camp", flow=Flow.GREETING_SAY))
    return base.__class__(**{**base.__dict__, **changes})


def test_a_call_gives_its_reserve_back_once_its_stream_is_up_and_greeting_stopped():
    """The API reserve is held while a greeting may still need stopping, given back after, or when the call ends."""
    assert not reserve_released(record(phase=Phase.ANSWERED, stream=StreamState.REQUESTED, greeting=GreetingState.PLAYING))
    assert not reserve_released(record(phase=Phase.STREAMING, stream=StreamState.STARTED, greeting=GreetingState.PLAYING))
    assert reserve_released(record(phase=Phase.STREAMING, stream=StreamState.STARTED, greeting=GreetingState.STOPPING))
    assert reserve_released(record(phase=Phase.STREAMING, stream=StreamState.STARTED))  # bot first
    assert reserve_released(record(phase=Phase.ENDED))


def test_a_call_gives_its_stream_slot_back_when_it_goes_on_without_a_stream():
    """A stopped stream on a live call frees the stream slot; a stream being retried or a call that ended does not."""
    assert stream_released(record(phase=Phase.STREAMING, stream=StreamState.STOPPED))
    assert not stream_released(record(phase=Phase.ANSWERED, stream=StreamState.REQUESTED))
    assert not stream_released(record(phase=Phase.ENDED, stream=StreamState.STOPPED))


def test_each_attempt_goes_to_the_history_of_the_next():
    """A contact's record counts its attempts and lists the earlier ones (with their caller ID and what the bot told); an interim record says when the next is due."""
    first = with_history(None, {"attempt": 1, "outcome": "busy", "leg_sid": "L1", "ended_at": 10.0, "exophone": "+918030752400"}, final=False, next_at=310.0)
    assert first["attempts"] == 1 and first["history"] == [] and first["next_attempt_at"] == 310.0
    second = with_history(first, {"attempt": 2, "outcome": "completed", "leg_sid": "L2"}, final=True)
    assert second["attempts"] == 2 and second["final"] and "next_attempt_at" not in second
    assert second["history"] == [{"attempt": 1, "outcome": "busy", "reason": None, "leg_sid": "L1", "ended_at": 10.0,
                                  "exophone": "+918030752400", "disposition": None, "callback_at": None}]  # fmt: skip
    canceled = with_history(second | {"final": False}, {"attempt": 0, "outcome": "canceled", "leg_sid": ""}, final=True)
    assert canceled["attempts"] == 2 and [h["outcome"] for h in canceled["history"]] == ["busy", "completed"]
