"""The sandbox's pure decisions: callee draws, rate limit, playout, timeline figures, summary, ExoML, scenarios."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from dialstream.errors import ConfigurationError
from sim.callee import ANSWERED, BUSY, FAILED_TO_CREATE, NO_ANSWER, CalleeProfile, draw
from sim.config import SandboxConfig
from sim.exoml import NotImplementedVerb, parse_exoml
from sim.faults import ApiFaults, Burst, EventFaults
from sim.playout import Playout
from sim.ratelimit import TokenBucket
from sim.scenario import Scenario, campaign_of
from sim.summary import figure_stats
from sim.timeline import Timeline
from sim.validation import BadRequest

SCENARIOS = Path(__file__).resolve().parents[2] / "sim" / "scenarios"

# Callee model


def test_answer_probability_leaves_the_rest_to_no_answer() -> None:
    """answer: 0.8 alone means the other 20 % of calls ring out."""
    mix = CalleeProfile(answer=0.8).mix()
    assert mix[ANSWERED] == pytest.approx(0.8) and mix[NO_ANSWER] == pytest.approx(0.2)


def test_default_answer_is_whatever_the_other_outcomes_leave() -> None:
    """Without answer, the answer probability is 1 minus the other outcomes."""
    mix = CalleeProfile(busy=0.1, failed=0.05).mix()
    assert mix[ANSWERED] == pytest.approx(0.85)


def test_outcome_probabilities_above_one_are_rejected() -> None:
    """A profile whose outcome probabilities add up to more than 1 is a configuration error."""
    with pytest.raises(ConfigurationError):
        CalleeProfile(answer=0.9, busy=0.2)


def test_draws_are_reproducible_from_the_seed() -> None:
    """The same seed gives the same call plans; the outcome frequencies follow the profile."""
    profile = CalleeProfile(answer=0.5, busy=0.3, create_failed=0.2)
    plans = [draw(profile, random.Random(f"7/{i}"), ring_timeout_ms=30_000) for i in range(2000)]
    again = [draw(profile, random.Random(f"7/{i}"), ring_timeout_ms=30_000) for i in range(2000)]
    assert plans == again
    share = {o: sum(p.outcome == o for p in plans) / len(plans) for o in (ANSWERED, BUSY, FAILED_TO_CREATE)}
    assert share[ANSWERED] == pytest.approx(0.5, abs=0.05)
    assert share[BUSY] == pytest.approx(0.3, abs=0.05)
    assert share[FAILED_TO_CREATE] == pytest.approx(0.2, abs=0.05)


def test_a_callee_slower_than_the_ring_timeout_is_a_no_answer() -> None:
    """Ringing longer than ring_timeout turns an answer into a no-answer that rings for exactly the timeout."""
    plan = draw(CalleeProfile(ring_ms=(5000, 5000)), random.Random(1), ring_timeout_ms=1000)
    assert plan.outcome == NO_ANSWER and plan.ring_ms == 1000


def test_amd_results_follow_machine_and_not_sure_rates() -> None:
    """machine and amd_not_sure decide the AMD result the detector reports."""
    assert draw(CalleeProfile(machine=1.0), random.Random(1), ring_timeout_ms=1e6).amd_result == "MACHINE"
    assert draw(CalleeProfile(amd_not_sure=1.0), random.Random(1), ring_timeout_ms=1e6).amd_result == "NOT_SURE"
    assert draw(CalleeProfile(), random.Random(1), ring_timeout_ms=1e6).amd_result == "HUMAN"


# Rate limit


def test_token_bucket_allows_a_minute_of_burst_then_the_average_rate() -> None:
    """200/minute allows 200 requests at once, then one more every 0.3 s, with Retry-After in whole seconds."""
    bucket = TokenBucket(200, now=0.0)
    assert all(bucket.take(0.0).allowed for _ in range(200))
    refused = bucket.take(0.0)
    assert not refused.allowed and refused.remaining == 0 and refused.retry_after_s == 1
    assert refused.reset_after_s == 60
    assert bucket.take(0.31).allowed
    assert not bucket.take(0.32).allowed


def test_token_bucket_never_refuses_what_a_sliding_window_of_the_same_budget_admits() -> None:
    """Requests the dialer's pacer admits (at most 200 in any 60 s window, however bursty, the
    window full nearly all the time) all pass the sandbox's 200/minute bucket: using 97-99 % of
    the budget through the pacer can never earn a 429 from a provider that counts this way."""
    rng = random.Random(5)
    bucket, admitted, now = TokenBucket(200, now=0.0), [], 0.0
    while now < 300.0:
        now += rng.choice((0.0,) * 6 + (0.001, 0.05, 0.3, 2.0))  # bursts, a trickle and gaps: more than the budget
        if sum(1 for at in admitted if at > now - 60.0) < 200:  # the pacer's rule (rate_limit.lua)
            admitted.append(now)
            assert bucket.take(now).allowed, f"refused at {now:.3f} s after {len(admitted) - 1} admitted"
    assert len(admitted) > 4.5 * 200  # demand above the budget kept the window nearly full for 5 minutes


# Faults


def test_api_bursts_answer_their_status_inside_the_window_only() -> None:
    """A burst answers its status for every request inside its window and nothing outside it."""
    faults = ApiFaults(bursts=(Burst(start_s=5, duration_s=2, status=503),))
    rng = random.Random(1)
    assert faults.status(rng, 4.9) is None
    assert faults.status(rng, 5.0) == 503 and faults.status(rng, 6.99) == 503
    assert faults.status(rng, 7.0) is None


def test_event_fault_draws_do_not_shift_when_a_fault_is_enabled() -> None:
    """Turning one event fault on leaves the other faults' draws unchanged (stable scenarios)."""
    off = [EventFaults(duplicate=0.3).draw(random.Random(i)) for i in range(50)]
    on = [EventFaults(duplicate=0.3, reorder=1.0).draw(random.Random(i)) for i in range(50)]
    assert [f.duplicate for f in off] == [f.duplicate for f in on]
    assert all(f.reorder for f in on)


# Playout


def test_playout_queues_chunks_back_to_back() -> None:
    """A chunk arriving while audio plays starts where the queued audio ends."""
    playout = Playout()
    assert playout.push_audio(10.0, 0.4) == (10.0, 10.4)
    assert playout.push_audio(10.1, 0.4) == (10.4, 10.8)
    assert playout.push_audio(20.0, 0.2) == (20.0, 20.2)


def test_mark_is_due_when_the_audio_before_it_has_played() -> None:
    """A mark is due at the end of the queued audio, or immediately on an idle buffer."""
    playout = Playout()
    playout.push_audio(0.0, 0.4)
    assert playout.push_mark(0.1, "a") == pytest.approx(0.4)
    assert playout.due_marks(0.39) == []
    assert playout.due_marks(0.4) == ["a"]
    assert playout.push_mark(1.0, "b") == 1.0


def test_clear_keeps_the_playing_chunk_and_drops_the_rest() -> None:
    """clear drops the chunks that have not started and the marks after them."""
    playout = Playout()
    for i in range(3):
        playout.push_audio(0.0, 0.4)
    playout.push_mark(0.0, "end")
    kept_until, dropped = playout.clear(0.5)
    assert kept_until == pytest.approx(0.8) and dropped == ["end"]
    assert playout.push_audio(0.6, 0.4) == pytest.approx((0.8, 1.2))


def test_playout_delay_applies_to_an_idle_buffer() -> None:
    """With a jitter-buffer delay, audio arriving at an idle buffer becomes audible that much later."""
    assert Playout(delay_s=0.05).push_audio(1.0, 0.1) == pytest.approx((1.05, 1.15))


# Timeline


def _timeline() -> Timeline:
    t = Timeline()
    t.mark("dialed", 100.0)
    t.mark("answered", 101.0)
    greeting = t.greeting_on(101.1)
    t.mark("stream_requested", 101.02)
    t.stream_on(101.3)
    t.bot_audio_add(101.5, 101.9)
    t.greeting_off(greeting, 101.6)
    t.mark("hung_up", 103.0)
    return t


def test_greeting_between_two_streams_is_not_after_a_stream() -> None:
    """A hold message played after a bot dropped and before the next stream counts only while a stream is live."""
    t = Timeline()
    t.mark("answered", 100.0)
    first = t.stream_on(100.3)
    t.stream_off(first, 101.0)
    hold = t.greeting_on(101.05)
    second = t.stream_on(102.0)
    t.greeting_off(hold, 102.1)
    t.stream_off(second, 103.0)
    t.mark("hung_up", 103.0)
    assert t.figures(now=200.0)["greeting_after_stream_ms"] == pytest.approx(100)  # 102.0 .. 102.1


def test_timeline_figures() -> None:
    """Dead air, overlap, silence before the bot and the other figures follow from the marks and intervals."""
    f = _timeline().figures(now=200.0)
    assert f["time_to_answer_ms"] == pytest.approx(1000)
    assert f["answer_to_first_audio_ms"] == pytest.approx(100)
    assert f["dead_air_ms"] == pytest.approx(100)
    assert f["overlap_ms"] == pytest.approx(100)  # 101.5 .. 101.6
    assert f["silence_before_bot_ms"] == pytest.approx(100)  # 101.0 .. 101.1
    assert f["dispatch_latency_ms"] == pytest.approx(20)
    assert f["stream_setup_ms"] == pytest.approx(280)
    assert f["bot_first_audio_ms"] == pytest.approx(200)
    assert f["greeting_after_stream_ms"] == pytest.approx(300)
    assert f["talk_time_ms"] == pytest.approx(2000)


def test_a_silent_call_is_all_dead_air() -> None:
    """An answered call that never heard anything counts its whole length as dead air."""
    t = Timeline()
    t.mark("answered", 10.0)
    t.mark("hung_up", 12.5)
    f = t.figures(now=99.0)
    assert f["answer_to_first_audio_ms"] is None
    assert f["dead_air_ms"] == pytest.approx(2500)


def test_clear_and_hang_up_cut_the_bot_audio() -> None:
    """Audio cut by a clear never counts, nor audio scheduled after the hang-up."""
    t = Timeline()
    t.mark("answered", 0.0)
    t.bot_audio_add(1.0, 1.4)
    t.bot_audio_add(1.4, 3.0)
    t.bot_audio_cut(2.0)
    assert t.bot_audio == [[1.0, 2.0]]
    t.bot_audio_add(5.0, 9.0)
    t.mark("hung_up", 6.0)
    assert t.to_dict(now=99.0)["bot_audio"] == [[1.0, 2.0], [5.0, 6.0]]


def test_figure_stats_use_nearest_rank() -> None:
    """p50/p95/p99 are nearest-rank percentiles; an empty set has no values."""
    stats = figure_stats(float(v) for v in range(1, 101))
    assert (stats["p50"], stats["p95"], stats["p99"], stats["max"], stats["count"]) == (50, 95, 99, 100, 100)
    assert figure_stats([])["p50"] is None


# ExoML


def test_exoml_verbs_map_to_actions() -> None:
    """Every simulated verb becomes its named action with validated parameters, in document order."""
    verbs = parse_exoml(
        '<?xml version="1.0" encoding="UTF-8"?><Flow>'
        '<StartSay loop="2">Hello</StartSay><Say>Hi</Say><StartPlay>https://x/y.wav</StartPlay>'
        '<StartStream streamType="bidirectional" streamUrl="wss://bot/m" contentType="audio/L16;rate=16000"/>'
        "<StopSay/><StopPlay/><StopStream/><Hangup/></Flow>"
    )
    assert [name for name, _ in verbs] == [
        "start_say", "start_say", "start_play", "start_stream", "stop_say", "stop_play", "stop_stream", "hangup",
    ]  # fmt: skip
    assert verbs[0][1] == {"text": "Hello", "loop": 2}
    assert verbs[2][1] == {"url": "https://x/y.wav", "loop": 0}
    assert verbs[3][1] == {"url": "wss://bot/m", "direction": "bidirectional", "content_type": "audio/L16;rate=16000"}


@pytest.mark.parametrize(
    "exoml",
    ["<Flow><Hangup/>", "<Response><Hangup/></Response>", "<Flow></Flow>", "<Flow><Dance/></Flow>", "", None,
     '<Flow><StartStream streamType="bidirectional"/></Flow>'],
)  # fmt: skip
def test_malformed_exoml_is_a_bad_request(exoml: object) -> None:
    """Broken XML, a wrong root, no verbs, unknown verbs or invalid attributes are 400s."""
    with pytest.raises(BadRequest):
        parse_exoml(exoml)


def test_documented_but_unsimulated_verbs_are_not_implemented() -> None:
    """Documented verbs the sandbox does not simulate (Gather, Mute...) are reported as such (501)."""
    with pytest.raises(NotImplementedVerb) as info:
        parse_exoml("<Flow><Gather numDigits='1'/></Flow>")
    assert info.value.verb == "Gather"


# Scenarios


def test_number_profiles_override_campaign_and_default() -> None:
    """A number's profile wins over its campaign's, which wins over the default; outcome keys replace the mix."""
    scenario = Scenario.from_mapping(
        {
            "callee": {"busy": 0.5, "ring_ms": [1, 2]},
            "campaigns": {"sales": {"talk_ms": [9, 9]}},
            "numbers": {"+91 98 1": "no-answer", "+9198002": {"campaign": "sales", "answer": 1.0}},
        }
    )
    assert scenario.contacts == ("+91981", "+9198002")
    assert scenario.profile_for("+91981").outcome == NO_ANSWER
    assert scenario.profile_for("+9198002").mix()[ANSWERED] == 1.0
    assert scenario.profile_for("+9198002").talk_ms == (9, 9)
    assert scenario.profile_for("+9100", "sales:row-1").talk_ms == (9, 9)
    assert scenario.profile_for("+9100", "sales:row-1").busy == 0.5
    assert scenario.profile_for("+9100", "other").talk_ms == (2000, 4000)


@pytest.mark.parametrize(
    ("custom_param", "campaign"),
    [("sales", "sales"), ("sales:42", "sales"), ("sales/42", "sales"), ('{"campaign_id": "sales"}', "sales"),
     ("salesforce", None), ("", None), ("{bad json", None)],
)  # fmt: skip
def test_campaign_is_read_from_custom_param(custom_param: str, campaign: str | None) -> None:
    """A leg belongs to a campaign by its custom_param: the name, name:..., name/..., or JSON campaign/campaign_id."""
    assert campaign_of(custom_param, {"sales": None}) == campaign


@pytest.mark.parametrize(
    "raw",
    [{"callee": {"answr": 1}}, {"callee": {"ring_ms": [5, 1]}}, {"callee": {"answer": 2}}, {"seed": "x"},
     {"faults": {"events": {"duplicate": 1.5}}}, {"numbers": {"+91": {"campaign": "nope"}}}, {"colour": 1},
     {"callee": {"dtmf": [{"digit": "x"}]}}, {"faults": {"api": {"bursts": [{"start_s": 1, "duration_s": 1, "status": 404}]}}}],
)  # fmt: skip
def test_invalid_scenarios_are_configuration_errors(raw: dict) -> None:
    """Typos, bad ranges, bad probabilities and unknown references are refused with ConfigurationError."""
    with pytest.raises(ConfigurationError):
        SandboxConfig.from_mapping(raw)


def test_shipped_scenarios_load() -> None:
    """demo.yaml lists the demo's 20 contacts; faults.yaml turns faults on."""
    demo = SandboxConfig.from_yaml(SCENARIOS / "demo.yaml")
    assert demo.scenario.contacts == tuple(f"+9198{i:08d}" for i in range(1, 21))
    outcomes = [p.outcome for p in demo.scenario.numbers.values()]
    assert outcomes.count(BUSY) == 2 and outcomes.count(NO_ANSWER) == 1
    faults = SandboxConfig.from_yaml(SCENARIOS / "faults.yaml", port=9999)
    assert faults.port == 9999 and faults.scenario.faults.events.duplicate > 0
