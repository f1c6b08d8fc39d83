"""Says and plays (``start_say``, ``start_play`` and their stops) on a leg or a bridge.

At most one say and one play at a time: a second start interrupts the first ("stopped by
another action"). ``say_started``/``play_started`` once the TTS or the file is ready, then
``*_completed`` after the audible length, or ``*_interrupted`` (carrying the stopping
action and ``interrupted_action_sid``) when stopped. A hang-up silences them without an event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sim.action import ActionRecord
from sim.config import Timing
from sim.owner import Owner
from sim.timeline import Timeline

__all__ = ["Greeting", "Greetings"]


@dataclass(eq=False)
class Greeting:
    """A say or a play in progress."""

    kind: str  # "say" or "play"
    action: ActionRecord
    seconds: float  # audible length of all loops
    task: asyncio.Task[None] | None = None
    audible: bool = False
    interval: list[Any] | None = None  # the timeline interval while audible


class Greetings:
    def __init__(
        self, owner: Owner, timing: Timing, timeline: Timeline | None = None, on_audible: Callable[[str | None], None] | None = None
    ) -> None:
        self._owner = owner
        self._timing = timing
        self._timeline = timeline  # a leg's: what its callee heard (a bridge has none of its own)
        self._on_audible = on_audible or (lambda kind: None)
        self._current: dict[str, Greeting] = {}

    def start(self, kind: str, action: ActionRecord, *, text: str = "", loop: int = 0) -> None:
        once_ms = len(text) * self._timing.say_ms_per_char if kind == "say" else self._timing.play_ms
        previous = self._current.get(kind)
        if previous is not None:
            self._interrupt(previous, action)  # "stopped by another action"
        greeting = Greeting(kind, action, once_ms * max(1, loop) / 1000.0)
        self._current[kind] = greeting
        greeting.task = self._owner.spawn(self._play(greeting))

    def stop(self, kind: str, action: ActionRecord) -> None:
        """Interrupt the say or play in progress, if any (a stop with nothing to stop is a no-op)."""
        greeting = self._current.get(kind)
        if greeting is not None:
            self._interrupt(greeting, action)

    def silence_all(self, at: float) -> None:
        """The call ended at ``at``: every greeting stops being audible, without an event."""
        for greeting in list(self._current.values()):
            if greeting.task is not None:
                greeting.task.cancel()
            self._silence(greeting, at)

    async def _play(self, greeting: Greeting) -> None:
        start_ms = self._timing.say_start_ms if greeting.kind == "say" else self._timing.play_start_ms
        await asyncio.sleep(start_ms / 1000)
        if self._timeline is not None:
            greeting.interval = self._timeline.greeting_on(self._owner.clock.now())
        greeting.audible = True
        self._on_audible(greeting.kind)
        self._owner.emit(f"{greeting.kind}_started", action=greeting.action)
        await asyncio.sleep(greeting.seconds)
        self._silence(greeting)
        self._owner.emit(f"{greeting.kind}_completed", action=greeting.action)

    def _interrupt(self, greeting: Greeting, action: ActionRecord) -> None:
        if greeting.task is not None:
            greeting.task.cancel()
        self._silence(greeting)
        detail = {"interrupted_action_sid": greeting.action.action_sid}
        self._owner.emit(f"{greeting.kind}_interrupted", action=action, detail=detail)

    def _silence(self, greeting: Greeting, at: float | None = None) -> None:
        if self._current.get(greeting.kind) is greeting:
            del self._current[greeting.kind]
        if greeting.interval is not None and self._timeline is not None:
            self._timeline.greeting_off(greeting.interval, self._owner.clock.now() if at is None else at)
        if greeting.audible:
            greeting.audible = False
            self._on_audible(next((g.kind for g in self._current.values() if g.audible), None))
