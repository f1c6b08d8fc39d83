"""What the callee experienced on one call, and the figures derived from it.

Pure: the call driver records moments (Unix seconds from :class:`sim.clock.Clock`) and
audible intervals; :meth:`Timeline.figures` turns them into milliseconds. Intervals still
open are closed at the hang-up, or at ``now`` for a live call.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MARKS", "FIGURES", "Timeline", "overlap_ms", "uncovered_ms"]

MARKS = (
    "dialed",  # create-leg request received
    "ringing",  # leg_ringing emitted
    "answered",  # the callee picked up (leg_answered; with synchronous AMD it is emitted after detection)
    "first_greeting_audio",  # say_started / play_started: the greeting becomes audible
    "stream_requested",  # first start_stream request received
    "stream_started",  # first stream_started emitted (socket open, connected+start sent)
    "first_bot_audio",  # the first bot chunk starts playing to the callee
    "greeting_stopped",  # the greeting last stopped being audible (stop or completion)
    "bridged",  # the callee first heard another party over a bridge
    "hung_up",  # the leg ended, for whatever reason
)

FIGURES = (
    "time_to_answer_ms",  # dialed -> answered
    "answer_to_first_audio_ms",  # answered -> greeting, bot, hold music or a bridged party, whichever first
    "dead_air_ms",  # answered -> first audio; a call that never heard anything: answered -> hung_up
    "silence_before_bot_ms",  # time between answered and first bot audio with no greeting audible
    "overlap_ms",  # greeting and bot audio audible at the same time
    "dispatch_latency_ms",  # leg_answered emitted -> start_stream received
    "stream_setup_ms",  # start_stream received -> stream_started
    "bot_first_audio_ms",  # stream_started -> first bot audio (the bot's own latency)
    "greeting_after_stream_ms",  # greeting still audible after a bot stream went live, while it was live
    "talk_time_ms",  # answered -> hung_up
)

Interval = list[float]  # [start, end]; end is None while still audible


class Timeline:
    def __init__(self) -> None:
        self.marks: dict[str, float | None] = dict.fromkeys(MARKS)
        self.greeting_audio: list[list[Any]] = []
        self.bot_audio: list[list[Any]] = []
        self.streams_live: list[list[Any]] = []  # [started, stopped] of each bot stream
        # What else the callee heard: another party over a bridge, hold music.
        self.heard: dict[str, list[list[Any]]] = {"bridge": [], "hold": []}
        # An answering machine's side: its greeting from pickup, then the beep.
        self.machine: dict[str, float | None] | None = None
        # First request of each action name -> ms since the event that should trigger it.
        self.action_latency_ms: dict[str, float] = {}

    def mark(self, name: str, at: float) -> None:
        """Record the first occurrence of ``name``."""
        if self.marks[name] is None:
            self.marks[name] = at

    def greeting_on(self, at: float) -> list[Any]:
        """A greeting became audible; returns its interval, to pass to :meth:`greeting_off`."""
        return self._open(self.greeting_audio, "first_greeting_audio", at)

    def greeting_off(self, interval: list[Any], at: float) -> None:
        _close(interval, at)
        if all(end is not None for _, end in self.greeting_audio):
            self.marks["greeting_stopped"] = max(end for _, end in self.greeting_audio)

    def stream_on(self, at: float) -> list[Any]:
        """A bot stream went live; returns its interval, to pass to :meth:`stream_off`."""
        return self._open(self.streams_live, "stream_started", at)

    def stream_off(self, interval: list[Any], at: float) -> None:
        _close(interval, at)

    def _open(self, intervals: list[list[Any]], mark: str, at: float) -> list[Any]:
        """Record ``mark`` and open a new interval in ``intervals`` at ``at``."""
        self.mark(mark, at)
        interval = [at, None]
        intervals.append(interval)
        return interval

    def hear(self, kind: str, on: bool, at: float) -> None:
        """The callee starts (``on``) or stops hearing ``kind`` (``bridge`` or ``hold``) at ``at``."""
        intervals = self.heard[kind]
        open_ = bool(intervals) and intervals[-1][1] is None
        if on and not open_:
            intervals.append([at, None])
            if kind == "bridge":
                self.mark("bridged", at)
        elif not on and open_:
            intervals[-1][1] = at

    def machine_greeting(self, at: float) -> None:
        """An answering machine picked up at ``at`` and plays its greeting."""
        self.machine = {"greeting_from": at, "beep_at": None}

    def machine_beep(self, at: float) -> None:
        """The machine's greeting ended with the beep: from now on it records."""
        if self.machine is not None:
            self.machine["beep_at"] = at

    def voicemail(self, now: float) -> dict[str, Any] | None:
        """On a machine: how much of the leg's message (greeting or bot audio) played over the
        machine's greeting, and how much after the beep, where it is recorded."""
        if self.machine is None:
            return None
        end = self.marks["hung_up"] if self.marks["hung_up"] is not None else now
        start, beep = self.machine["greeting_from"], self.machine["beep_at"]
        assert start is not None
        message = _union(_closed(self.greeting_audio, end) + _closed(self.bot_audio, end))
        over = overlap_ms(message, [[start, beep if beep is not None else end]])
        after = overlap_ms(message, [[beep, end]]) if beep is not None and beep < end else 0.0
        return {
            "greeting_from": start,
            "beep_at": beep,
            "message_over_greeting_ms": round(over, 3),
            "message_after_beep_ms": round(after, 3),
            "voicemail_left": after > 0,
        }

    def bot_audio_add(self, start: float, end: float) -> None:
        """Bot audio is scheduled to play over ``[start, end]``; contiguous chunks merge."""
        self.mark("first_bot_audio", start)
        last = self.bot_audio[-1] if self.bot_audio else None
        if last is not None and abs(last[1] - start) < 1e-6:
            last[1] = end
        else:
            self.bot_audio.append([start, end])

    def bot_audio_cut(self, at: float) -> None:
        """Audio scheduled after ``at`` will never play (``clear``, stream or call ended)."""
        self.bot_audio = [[s, min(e, at)] for s, e in self.bot_audio if s < at]

    def action(self, name: str, latency_ms: float) -> None:
        self.action_latency_ms.setdefault(name, latency_ms)

    def figures(self, now: float) -> dict[str, float | None]:
        """Every figure in :data:`FIGURES` (ms, None when it does not apply yet)."""
        m = self.marks
        end = m["hung_up"] if m["hung_up"] is not None else now
        greeting = _union(_closed(self.greeting_audio, end))
        bot = _closed(self.bot_audio, end)
        answered = m["answered"]
        heard = [intervals[0][0] for intervals in self.heard.values() if intervals]
        first_audio = _earliest(m["first_greeting_audio"], m["first_bot_audio"], *heard)
        dead_air = _ms(answered, first_audio)
        if dead_air is None and answered is not None and m["hung_up"] is not None:
            dead_air = _ms(answered, m["hung_up"])
        silence = None
        if answered is not None and (m["first_bot_audio"] is not None or m["hung_up"] is not None):
            until = m["first_bot_audio"] if m["first_bot_audio"] is not None else m["hung_up"]
            silence = uncovered_ms(answered, until, greeting)
        after_stream = None
        if m["stream_started"] is not None:
            after_stream = _greeting_after_stream(greeting, _closed(self.streams_live, end))
        figures = {
            "time_to_answer_ms": _ms(m["dialed"], answered),
            "answer_to_first_audio_ms": _ms(answered, first_audio),
            "dead_air_ms": dead_air,
            "silence_before_bot_ms": silence,
            "overlap_ms": overlap_ms(greeting, bot) if answered is not None else None,
            "dispatch_latency_ms": _ms(answered, m["stream_requested"]),
            "stream_setup_ms": _ms(m["stream_requested"], m["stream_started"]),
            "bot_first_audio_ms": _ms(m["stream_started"], m["first_bot_audio"]),
            "greeting_after_stream_ms": after_stream,
            "talk_time_ms": _ms(answered, m["hung_up"]),
        }
        return {name: None if value is None else round(value, 3) for name, value in figures.items()}

    def to_dict(self, now: float) -> dict[str, Any]:
        """``timeline`` (the marks), ``figures``, ``action_latency_ms`` and the audible intervals."""
        end = self.marks["hung_up"] if self.marks["hung_up"] is not None else now
        return {
            "timeline": dict(self.marks),
            "figures": self.figures(now),
            "action_latency_ms": dict(self.action_latency_ms),
            "greeting_audio": _union(_closed(self.greeting_audio, end)),
            "bot_audio": _closed(self.bot_audio, end),
            "bridge_audio": _closed(self.heard["bridge"], end),
            "hold_audio": _closed(self.heard["hold"], end),
            "voicemail": self.voicemail(now),
        }


def overlap_ms(a: list[list[float]], b: list[list[float]]) -> float:
    """Total milliseconds covered by both interval lists (each list non-overlapping)."""
    total = 0.0
    for s1, e1 in a:
        for s2, e2 in b:
            total += max(0.0, min(e1, e2) - max(s1, s2))
    return total * 1000.0


def uncovered_ms(start: float, end: float, covered: list[list[float]]) -> float:
    """Milliseconds of ``[start, end]`` not covered by ``covered``."""
    inside = overlap_ms([[start, end]], covered) if end > start else 0.0
    return max(0.0, (end - start) * 1000.0 - inside)


def _close(interval: list[Any], at: float) -> None:
    """End an open interval at ``at``; one already ended keeps its end."""
    if interval[1] is None:
        interval[1] = at


def _closed(intervals: list[list[Any]], end: float) -> list[list[float]]:
    return [[s, max(s, min(e, end)) if e is not None else max(s, end)] for s, e in intervals if s <= end]


def _union(intervals: list[list[float]]) -> list[list[float]]:
    """Merge overlapping intervals (a say and a play can be audible together)."""
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def _greeting_after_stream(greeting: list[list[float]], streams: list[list[float]]) -> float:
    """How long (ms) the greeting stayed audible after a bot stream went live, while it was live.

    A hold or fallback message between two streams (after a bot dropped) is not counted:
    the callee hears no bot then.
    """
    worst = 0.0
    for live_from, live_until in streams:
        for heard_from, heard_until in greeting:
            if heard_from < live_until and heard_until > live_from:
                worst = max(worst, (min(heard_until, live_until) - live_from) * 1000.0)
    return worst


def _earliest(*moments: float | None) -> float | None:
    present = [m for m in moments if m is not None]
    return min(present) if present else None


def _ms(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start) * 1000.0
