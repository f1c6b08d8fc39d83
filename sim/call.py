"""Acts out one leg over time: dial progress, the callee, greetings, streams, hang-up.

A :class:`Call` owns its leg's tasks and its ordered delivery queue. Every event goes
through :meth:`Call.emit`, which stamps it, records it on the leg and queues it; the
sandbox's REST handlers call the action methods (``start_greeting``, ``start_stream``...)
after validating the request.

Event order per leg: ``leg_connecting``, ``leg_ringing``, then ``leg_answered`` or
``leg_terminated`` (busy, no-answer; ``failed`` comes straight after ``leg_connecting``);
``leg_failed_to_create`` alone when the leg could not be created. Streams and greetings
are cut off by the hang-up: each open stream emits ``stream_stopped`` before the final
``leg_terminated``; greetings end silently.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from dialstream.exotel.agentstream import MediaFormat
from dialstream.exotel.events import ACTION, LIFECYCLE
from sim.action import ActionRecord
from sim.callee import ANSWERED, BUSY, FAILED, FAILED_TO_CREATE, NO_ANSWER, CallPlan
from sim.clock import Clock
from sim.config import SandboxConfig
from sim.delivery import LegQueue
from sim.event import EventRecord, new_event
from sim.greeting import Greetings
from sim.ids import SidFactory
from sim.leg import CONNECTED, RINGING, TERMINAL, Leg
from sim.media import Stream
from sim.recording import Recorder

__all__ = ["Call", "TRIGGERS"]

# The event each action is the documented reaction to; its latency is measured from it.
# Other actions (hangup, stop_stream) are measured from the leg's latest event.
TRIGGERS = {
    "start_stream": "leg_answered",
    "start_say": "leg_answered",
    "start_play": "leg_answered",
    "stop_say": "stream_started",
    "stop_play": "stream_started",
}
_STREAM_STOP_TIMEOUT_S = 2.0  # how long a hang-up waits for a stream's stop frame and close


class Call:
    def __init__(
        self, config: SandboxConfig, clock: Clock, sids: SidFactory, leg: Leg, rng: random.Random, queue: LegQueue,
        recorder: Callable[[Call], Recorder],
    ) -> None:  # fmt: skip
        self.config = config
        self.clock = clock
        self.sids = sids
        self.leg = leg
        self.rng = rng  # this leg's own random stream: callee, faults
        self.queue = queue
        self.greetings = Greetings(self, config.timing, leg.timeline, on_audible=self._audible)
        self.streams: list[Stream] = []  # the live side of leg.streams
        self.answered = asyncio.Event()  # leg_answered emitted
        self.ended = asyncio.Event()  # leg_terminated (or leg_failed_to_create) emitted
        # Called as the leg ends, before leg_terminated (its bridge lets it go: leg_left_bridge).
        self.on_end: Callable[[Call], None] | None = None
        self.recorder = recorder(self)  # the account's, so that it serves the recordings
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ending = False

    @property
    def plan(self) -> CallPlan:
        return self.leg.plan

    @property
    def ending(self) -> bool:
        """Hanging up: the leg is still connected while its streams close, but takes no actions."""
        return self._ending

    def start(self) -> None:
        self.spawn(self._progress())

    # Events

    def emit(
        self,
        name: str,
        *,
        action: ActionRecord | None = None,
        detail: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> EventRecord:
        kind = LIFECYCLE if name.startswith(("leg_", "amd_")) else ACTION
        record = new_event(
            self.sids(), name, kind, self.clock.now(), self.leg.snapshot(), action=action, detail=detail, error=error
        )
        self.leg.events.append(record)
        self.queue.put(record)
        return record

    # Dial progress and the callee

    async def _progress(self) -> None:
        timing, plan, leg = self.config.timing, self.plan, self.leg
        await _sleep_ms(timing.connecting_ms)
        if plan.outcome == FAILED_TO_CREATE:
            self._set_terminal(FAILED, "network", self.clock.now())
            error = {"error_code": "LEG_CREATE_FAILED", "message": "leg could not be created", "description": "simulated network failure (scenario)"}
            self.emit("leg_failed_to_create", error=error)
            self.queue.close()
            self.ended.set()
            return
        self.emit("leg_connecting")
        await _sleep_ms(timing.setup_ms)
        if plan.outcome == FAILED:
            await self._end(FAILED, "network")
            return
        self._set_state(RINGING)
        leg.timeline.mark("ringing", self.clock.now())
        self.emit("leg_ringing")
        await _sleep_ms(plan.ring_ms)
        if plan.outcome in (BUSY, NO_ANSWER):
            await self._end(plan.outcome, "callee" if plan.outcome == BUSY else "ring_timeout")
            return
        assert plan.outcome == ANSWERED
        picked_up = leg.start_time = self.clock.now()
        leg.timeline.mark("answered", picked_up)
        if plan.machine:
            self.spawn(self._voicemail())
        amd, asynchronous = leg.request.amd_enable, leg.request.async_amd
        if amd and not asynchronous:
            await _sleep_ms(plan.amd_ms)  # synchronous AMD: the answer waits for the verdict
        self._set_state(CONNECTED)
        self.emit("leg_answered")
        self.answered.set()
        if leg.request.record:
            self.recorder.start(None)
        if amd and asynchronous:
            self.spawn(self._detect_machine())
        elif amd:
            self.emit("amd_result_success", detail={"result": plan.amd_result})
        early = self.config.scenario.faults.callee.hangup_after(self.rng)
        limit_ms = leg.request.time_limit * 1000.0
        talk_ms = early if early is not None else plan.talk_ms
        by = "time_limit" if talk_ms is None or talk_ms >= limit_ms else "callee"
        await _sleep_ms(min(limit_ms, talk_ms if talk_ms is not None else limit_ms) - (self.clock.now() - picked_up) * 1000)
        await self._end("completed", by)

    async def _detect_machine(self) -> None:
        """Asynchronous AMD: the verdict arrives as an event while the call goes on."""
        await _sleep_ms(self.plan.amd_ms - (self.clock.now() - self.leg.start_time) * 1000)  # type: ignore[operator]
        self.emit("amd_result_success", detail={"result": self.plan.amd_result})

    async def _voicemail(self) -> None:
        """A machine answered: its greeting plays until the beep, then it records."""
        timeline, picked_up = self.leg.timeline, self.leg.start_time
        assert picked_up is not None
        timeline.machine_greeting(picked_up)
        await _sleep_ms(self.plan.beep_ms)
        timeline.machine_beep(self.clock.now())
        await self.answered.wait()  # with synchronous AMD, leg_answered may still be due
        if self.leg.request.amd_enable:
            # Not in Exotel's pages: the sandbox's name for it (sim/README.md, "AMD").
            self.emit("amd_beep_detected", detail={"beep_ms": round(self.plan.beep_ms)})

    # Actions (validated by the API; the leg is connected unless noted)

    def accept(self, name: str, custom_param: str, params: dict[str, Any], action_sid: str | None = None) -> ActionRecord:
        """Record an action request and how long after its triggering event it arrived."""
        now = self.clock.now()
        trigger_name = TRIGGERS.get(name)
        trigger = self.leg.last_event(trigger_name) if trigger_name else (self.leg.events[-1] if self.leg.events else None)
        action = ActionRecord(
            action_sid=action_sid or self.sids(),
            name=name,
            custom_param=custom_param,
            received_at=now,
            trigger=trigger.name if trigger else None,
            latency_ms=round((now - trigger.emitted_at) * 1000.0, 3) if trigger else None,
            params=dict(params),
        )
        self.leg.actions.append(action)
        if action.latency_ms is not None:
            self.leg.timeline.action(name, action.latency_ms)
        return action

    def start_stream(self, action: ActionRecord, url: str, direction: str, media_format: MediaFormat) -> Stream:
        self.leg.timeline.mark("stream_requested", action.received_at)
        stream = Stream(self, self.sids(), action, url, direction, media_format)
        self.leg.streams.append(stream)
        self.streams.append(stream)
        self._tasks.add(stream.task)
        stream.task.add_done_callback(self._tasks.discard)
        return stream

    def stop_streams(self, action: ActionRecord, stream_sid: str = "") -> None:
        """Stop the stream named ``stream_sid``, or every stream without one.

        A stop naming a stream that is not live on this leg (already stopped, another leg's,
        made up) stops nothing: the live stream is left alone and the leg notes it.
        """
        named = [s for s in self.streams if s.active and (not stream_sid or s.stream_sid == stream_sid)]
        for stream in named:
            stream.stop("stopped", action)
        if stream_sid and not named:
            self.leg.unmatched_stops.append(stream_sid)

    def hangup(self, action: ActionRecord | None = None, *, by: str = "api") -> None:
        """``<Hangup/>``: allowed before the answer too (the call is then canceled).

        ``by`` says who asked: ``api``, or ``peer`` when the leg that dialled this one ended.
        """
        status = "completed" if self.leg.answered else "canceled"
        self.spawn(self._hangup_after(self.config.timing.hangup_ms, status, by))

    async def _hangup_after(self, ms: float, status: str, by: str) -> None:
        await _sleep_ms(ms)
        await self._end(status, by)

    # The end

    async def _end(self, status: str, by: str) -> None:
        """Hang up: stop greetings and streams, then emit leg_terminated and close the queue."""
        if self._ending:
            return
        self._ending = True
        now = self.clock.now()  # the hang-up moment; tearing the streams down takes a little longer
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current and not any(task is s.task for s in self.streams):
                task.cancel()
        self.greetings.silence_all(now)
        streams = [s for s in self.streams if s.active]
        for stream in streams:
            stream.stop("callended")
        if streams:
            await asyncio.wait([s.task for s in streams], timeout=_STREAM_STOP_TIMEOUT_S)
        self.recorder.stop(None, at_once=True)
        if self.on_end is not None:
            self.on_end(self)
        self._set_terminal(status, by, now)
        self.emit("leg_terminated")
        self.queue.close()
        self.ended.set()

    def _set_state(self, state: str) -> None:
        self.leg.state = state
        self.leg.updated_at = self.clock.now()

    def _set_terminal(self, status: str, by: str, now: float) -> None:
        self.leg.terminal_status, self.leg.hangup_by, self.leg.end_time = status, by, now
        self.leg.timeline.mark("hung_up", now)
        self._set_state(TERMINAL)

    async def cancel(self) -> None:
        """Sandbox shutdown: stop every task of this call without further events."""
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.queue.cancel()

    def _audible(self, kind: str | None) -> None:
        self.leg.audible_greeting = kind

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run ``coro`` as one of this call's tasks (cancelled when the call is dropped)."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


async def _sleep_ms(ms: float) -> None:
    await asyncio.sleep(ms / 1000.0)
