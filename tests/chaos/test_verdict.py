"""The chaos verdict on hand-made call timelines: what counts as silence, as a greeting over
the bot, and what Exotel's own lateness excuses."""

from __future__ import annotations

from typing import Any

from tests.chaos.rig import Kill, KillPlan
from tests.chaos.verdict import greeting_over_bot_ms, judge, longest_silence_ms

T0 = 1_000_000.0  # the answer


Spans = list[list[float]]


def call(*, greeting: Spans, bot: Spans, stream: tuple[float, float], events: list[dict[str, Any]]) -> dict[str, Any]:
    """A sandbox call report (the fields the verdict reads), times in seconds after the answer;
    each event ``{"name", "at", "late_ms" (delivery latency), "delivered"}``."""
    streams = [{"started_at": T0 + stream[0], "stopped_at": T0 + stream[1]}]
    return {
        "timeline": {"answered": T0, "hung_up": T0 + 10.0},
        "greeting_audio": [[T0 + a, T0 + b] for a, b in greeting],
        "bot_audio": [[T0 + a, T0 + b] for a, b in bot],
        "bridge_audio": [],
        "hold_audio": [],
        "streams": streams,
        "max_concurrent_streams": len(streams),
        "invariants": [],
        "events": [
            {
                "event_name": e["name"], "emitted_at": T0 + e["at"], "latency_ms": e.get("late_ms", 0.0),
                "delivered": e.get("delivered", True), "faults": [],
            }  # fmt: skip
            for e in events
        ],
    }


def greeting_until(end: float, **stream_started: Any) -> dict[str, Any]:
    """A call whose greeting is heard until ``end`` s, over a bot stream live from 2 s."""
    events = [{"name": "stream_started", "at": 2.0, **stream_started}]
    return call(greeting=[[0.1, end]], bot=[[2.0, 10.0]], stream=(2.0, 10.0), events=events)


def test_silence_is_the_longest_stretch_with_nothing_audible_and_exotels_late_answer_is_not_counted() -> None:
    """A gap between greeting and bot is silence; the time before Exotel delivered leg_answered is not dialstream's."""
    answered_late = [{"name": "leg_answered", "at": 0.0, "late_ms": 1100.0}]
    timeline = call(greeting=[[1.2, 2.0]], bot=[[3.5, 10.0]], stream=(3.5, 10.0), events=answered_late)
    assert round(longest_silence_ms(timeline)) == 1500  # 2.0 -> 3.5
    timeline = call(greeting=[[1.2, 3.0]], bot=[[3.0, 10.0]], stream=(3.0, 10.0), events=answered_late)
    assert round(longest_silence_ms(timeline)) == 1200 and round(longest_silence_ms(timeline, told=True)) == 100


def test_a_greeting_over_the_bot_counts_from_when_stream_started_reached_dialstream_unless_it_never_did() -> None:
    """Greeting heard 0.5 s into the stream: all of it is dialstream's when stream_started came at once,
    none when Exotel delivered it 0.45 s late, all again when it was never delivered."""
    def with_stream_started(**event: Any) -> dict[str, Any]:
        return greeting_until(2.5, **event)

    assert round(greeting_over_bot_ms(with_stream_started(), told=True)) == 500
    assert round(greeting_over_bot_ms(with_stream_started(late_ms=450.0), told=True)) == 50
    assert round(greeting_over_bot_ms(with_stream_started(delivered=False), told=True)) == 500


def test_the_verdict_counts_lost_contacts_and_apart_exotels_lateness_from_broken_invariants() -> None:
    """A contact without a final record and a greeting over the bot by dialstream's doing are
    violations; one Exotel made late is counted apart."""
    late, slow = greeting_until(2.5, late_ms=450.0), greeting_until(2.5)
    results = {
        "a": {"final": True, "outcome": "completed", "answered_at": T0, "leg_sid": "L1"},
        "b": {"final": True, "outcome": "completed", "answered_at": T0, "leg_sid": "L2"},
        "c": {"final": False, "outcome": "", "leg_sid": "L3"},
    }
    summary = {"api_errors": {"429": 3, "503": 2}}
    verdict = judge(["a", "b", "c", "d"], results, {"L1": late, "L2": slow}, summary, KillPlan([]), "done")
    assert verdict.excused["greeting, Exotel late"] == 1
    assert [len(verdict.violations[name]) for name in ("greeting over bot", "lost contacts", "silence")] == [1, 2, 0]
    assert verdict.api_errors == {"429": 3, "5xx": 2} and not verdict.ok


def test_a_greeting_over_the_bot_while_a_part_was_down_is_counted_apart() -> None:
    """A stream that started while Redis was down (or within the settle time after) could not be
    stopped at once: counted as excused by the kill; the same call with nothing down is a violation."""
    slow = greeting_until(2.9)
    results = {"a": {"final": True, "outcome": "completed", "answered_at": T0, "leg_sid": "L1"}}
    redis_down = KillPlan([Kill("redis", 0.5, killed_at=T0 + 1.0, back_at=T0 + 1.5)])
    verdict = judge(["a"], results, {"L1": slow}, {}, redis_down, "done")
    assert verdict.ok and verdict.excused["greeting, during a kill"] == 1
    long_ago = KillPlan([Kill("redis", 0.5, killed_at=T0 - 60.0, back_at=T0 - 59.0)])
    assert judge(["a"], results, {"L1": slow}, {}, long_ago, "done").violations["greeting over bot"]
