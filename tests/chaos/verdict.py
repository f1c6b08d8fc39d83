"""What a chaos run did and whether the invariants held: counts per fault, broken invariants.

Pure: it reads the contacts' final records (dialstream's view), the sandbox's per-call
timelines and summary (what the callee heard, what the wire did) and the kill plan.

The invariants (issue 12, design.md "Invariants users rely on"):

- every contact has a final record (zero lost contacts), and the campaign finishes;
- no answered call is silent for more than :data:`SILENCE_MS` without a recorded reason:
  silence is time between the answer and the hang-up when the callee hears nothing (no
  greeting, no bot audio, no bridged party, no hold music); a reason is an error or a reason
  in the call's final record (a bot that dropped, a stream that had to be retried);
- never two bot streams live at once on a call;
- no greeting heard over the bot for more than the sandbox's grace (300 ms) after the
  stream started;
- an answered call got a bot stream, or was hung up with a recorded reason;
- the record agrees with the sandbox on whether the call was answered (a lost event was
  made up for with the truth, not a guess).

Both are bounds on time, and two kinds of lateness are not dialstream's to avoid, so they are
counted apart (``excused``), never hidden: while a part is down (from its kill, less
:data:`KILL_INFLIGHT_S` for the events then in flight, until it is ready again, plus
:data:`KILL_SETTLE_S` for what it left to be rescued) an event cannot be
handled at once: Redis is gone, or the ingress, or the worker that held the task. And
dialstream can act on an event only once Exotel delivers it. When Exotel itself delivered
``leg_answered`` or ``stream_started`` late (a delayed, held-back or retried event: the
sandbox's faults), the silence or the greeting is measured from the delivery, and what lay
before it is counted apart, not as a broken invariant. An event never delivered gets no
such allowance outside a kill. On a loaded machine ``DIALSTREAM_TESTS_TIMEOUT_FACTOR``
stretches both bounds, as it stretches every timeout of the tests (:data:`tests.utils.MS`).
Everything else (lost contacts, two streams, a call without a stream or a reason, a record
at odds with the sandbox) is a broken invariant whatever was down.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from tests.chaos.rig import KillPlan
from tests.utils import MS

__all__ = ["SILENCE_MS", "GREETING_OVER_BOT_MS", "INVARIANTS", "Verdict", "judge", "print_verdict"]

SILENCE_MS = 1000.0 * MS * 1000  # MS: a millisecond, stretched on a loaded machine
GREETING_OVER_BOT_MS = 300.0 * MS * 1000  # the sandbox's timing.greeting_grace_ms
KILL_SETTLE_S = 3.0  # after a part is back: Exotel's retries, the rescue timers, the backlog
# Before a kill: an event emitted then may still be in delivery (Exotel's 3 attempts about 1 s
# apart, the first one lost or held back by the sandbox's faults) and die with the ingress.
KILL_INFLIGHT_S = 3.0
EVENT_FAULTS = ("duplicate", "reorder", "delay", "drop")
INVARIANTS = (
    "lost contacts", "campaign unfinished", "silence", "two streams", "greeting over bot", "no stream",
    "record vs sandbox",
)  # fmt: skip


@dataclass
class Verdict:
    kills: Counter[str] = field(default_factory=Counter)
    back_after_s: dict[str, float] = field(default_factory=dict)  # component -> slowest return
    events: Counter[str] = field(default_factory=Counter)  # emitted, each fault, lost
    api_errors: Counter[str] = field(default_factory=Counter)  # "429", "5xx"
    outcomes: Counter[str] = field(default_factory=Counter)
    explained_silences: int = 0  # answered calls silent over SILENCE_MS with a recorded reason
    # "silence"/"greeting" over its bound only because Exotel was late ("... Exotel late") or
    # a part was down ("... during a kill")
    excused: Counter[str] = field(default_factory=Counter)
    violations: dict[str, list[str]] = field(default_factory=dict)  # invariant -> "contact (leg): detail"

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    def broken(self, invariant: str, where: str) -> None:
        self.violations.setdefault(invariant, []).append(where)


def judge(
    contact_ids: Sequence[str],
    results: Mapping[str, Mapping[str, Any]],
    timelines: Mapping[str, Mapping[str, Any]],
    summary: Mapping[str, Any],
    plan: KillPlan,
    campaign_state: str,
) -> Verdict:
    """The counts of a run and every invariant it broke."""
    verdict = Verdict()
    windows = [
        (kill.killed_at - KILL_INFLIGHT_S, kill.back_at + KILL_SETTLE_S) for kill in plan.kills if kill.killed_at and kill.back_at
    ]
    for kill in plan.kills:
        if kill.back_after_s is not None:
            verdict.kills[kill.component] += 1
            verdict.back_after_s[kill.component] = max(verdict.back_after_s.get(kill.component, 0.0), kill.back_after_s)
    events = [event for call in timelines.values() for event in call["events"]]
    verdict.events["emitted"] = len(events)
    for event in events:
        verdict.events.update(event["faults"])
        verdict.events["lost"] += event["delivered"] is False
    for status, count in summary.get("api_errors", {}).items():
        verdict.api_errors["429" if status == "429" else "5xx" if status.startswith("5") else "4xx"] += count
    for key in INVARIANTS:
        verdict.violations[key] = []
    if campaign_state != "done":
        verdict.broken("campaign unfinished", f"campaign is {campaign_state!r}")
    for contact_id in contact_ids:
        result = results.get(contact_id)
        if result is None or not result.get("final"):
            verdict.broken("lost contacts", f"{contact_id}: {'no record' if result is None else 'no final record'}")
            continue
        verdict.outcomes[str(result.get("outcome"))] += 1
        timeline = timelines.get(str(result.get("leg_sid", "")))
        if timeline is not None:
            _judge_call(verdict, f"{contact_id} ({result['leg_sid']})", result, timeline, windows)
    return verdict


# Outcomes of a call the callee picked up (dialstream.domain.leg_state).
_ANSWERED = frozenset({"completed", "answered_no_stream", "machine", "voicemail_left", "transferred"})


Windows = list[tuple[float, float]]  # (a part was killed, it was back and settled), Unix seconds


def _judge_call(
    verdict: Verdict, where: str, result: Mapping[str, Any], timeline: Mapping[str, Any], windows: Windows
) -> None:
    answered = timeline["timeline"]["answered"] is not None
    if answered != (result.get("answered_at") is not None or result.get("outcome") in _ANSWERED):
        verdict.broken("record vs sandbox", f"{where}: sandbox answered={answered}, record {result.get('outcome')}")
    if timeline["max_concurrent_streams"] > 1:
        verdict.broken("two streams", f"{where}: {timeline['max_concurrent_streams']} streams live at once")
    starts = [stream["started_at"] for stream in timeline["streams"] if stream["started_at"] is not None]

    def during_kill(*moments: float) -> bool:
        return any(start <= moment <= end for start, end in windows for moment in moments)

    over = greeting_over_bot_ms(timeline, told=False)
    if over > GREETING_OVER_BOT_MS:
        ours = greeting_over_bot_ms(timeline, told=True)
        if ours <= GREETING_OVER_BOT_MS:
            verdict.excused["greeting, Exotel late"] += 1
        elif during_kill(*starts):  # stream_started could not be handled at once
            verdict.excused["greeting, during a kill"] += 1
        else:
            verdict.broken("greeting over bot", f"{where}: greeting heard {ours:.0f} ms after stream_started came")
    reason = "; ".join([*result.get("errors", ()), result.get("reason", "")]).strip("; ")
    if "answered_without_stream" in timeline["invariants"] and not (result.get("outcome") != "completed" and reason):
        verdict.broken("no stream", f"{where}: answered, no bot stream, outcome {result.get('outcome')}")
    silent = longest_silence_ms(timeline, told=False)
    if silent > SILENCE_MS:
        ours = longest_silence_ms(timeline, told=True)
        if ours <= SILENCE_MS:
            verdict.excused["silence, Exotel late"] += 1
        elif reason:
            verdict.explained_silences += 1
        elif during_kill(timeline["timeline"]["answered"], *starts):  # leg_answered or a stream start held up
            verdict.excused["silence, during a kill"] += 1
        else:
            verdict.broken("silence", f"{where}: silent {ours:.0f} ms with no reason recorded")


def delivered_at(timeline: Mapping[str, Any], name: str, after: float) -> float | None:
    """When the first event ``name`` emitted at or after ``after`` reached dialstream (None: never)."""
    for event in timeline["events"]:
        if event["event_name"] == name and event["emitted_at"] >= after - 1e-3:
            return event["emitted_at"] + event["latency_ms"] / 1000.0 if event["delivered"] else None
    return None


def greeting_over_bot_ms(timeline: Mapping[str, Any], *, told: bool) -> float:
    """The longest time a greeting was heard while a bot stream was live, from the stream's
    start (``told``: from when its ``stream_started`` reached dialstream, if it ever did)."""
    end = timeline["timeline"]["hung_up"]
    worst = 0.0
    for stream in timeline["streams"]:
        live_from, live_until = stream["started_at"], stream["stopped_at"] or end
        if live_from is None or live_until is None:
            continue
        if told:
            live_from = max(live_from, delivered_at(timeline, "stream_started", live_from) or live_from)
        for heard_from, heard_until in timeline["greeting_audio"]:
            worst = max(worst, min(heard_until, live_until) - max(heard_from, live_from))
    return worst * 1000.0


def longest_silence_ms(timeline: Mapping[str, Any], *, told: bool = False) -> float:
    """The longest stretch between answer and hang-up with nothing audible to the callee
    (``told``: from when ``leg_answered`` reached dialstream, if it ever did)."""
    marks = timeline["timeline"]
    start, end = marks["answered"], marks["hung_up"]
    if start is None or end is None:
        return 0.0
    if told:
        start = max(start, delivered_at(timeline, "leg_answered", start) or start)
    audible = ("greeting_audio", "bot_audio", "bridge_audio", "hold_audio")
    heard = sorted(interval for name in audible for interval in timeline[name])
    longest, cursor = 0.0, start
    for heard_from, heard_until in heard:
        if heard_from > cursor:
            longest = max(longest, min(heard_from, end) - cursor)
        cursor = max(cursor, heard_until)
        if cursor >= end:
            break
    longest = max(longest, end - cursor)
    return longest * 1000.0


def print_verdict(verdict: Verdict, console: Console, title: str) -> None:
    """One table: the faults injected and survived, the contacts' outcomes, the invariants."""
    table = Table(title=title)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("note")
    for component, count in sorted(verdict.kills.items()):
        table.add_row(f"SIGKILL {component}", str(count), f"back within {verdict.back_after_s[component]:.1f}s")
    for name in ("emitted", *EVENT_FAULTS, "lost"):
        note = {"drop": "first attempt lost, retried", "lost": "every attempt failed (a kill)"}.get(name, "")
        table.add_row(f"events {name}", str(verdict.events[name]), note)
    for status in ("429", "5xx", "4xx"):
        table.add_row(f"API {status} served", str(verdict.api_errors[status]), "")
    for outcome, count in sorted(verdict.outcomes.items()):
        table.add_row(f"contacts {outcome}", str(count), "")
    table.add_row("silences > 1 s, reason recorded", str(verdict.explained_silences), "")
    notes = {"Exotel late": "the event that said so came late from Exotel", "during a kill": "a part was down"}
    for what in ("silence", "greeting"):
        for why, note in notes.items():
            table.add_row(f"{what} over its bound, {why}", str(verdict.excused[f"{what}, {why}"]), note)
    for invariant, where in verdict.violations.items():
        style = "red" if where else None
        table.add_row(f"violated: {invariant}", str(len(where)), where[0] if where else "", style=style)
    console.print(table)
