"""The account's bridges over time: create, join, leave, hold, stop.

Events (reference §1.8; ``bridge_*`` are ``bridge_lifecycle_event``, ``leg_*_bridge`` are
``leg_lifecycle_event``):

* ``POST /bridges {leg_sids}``: after ``timing.bridge_ms``, ``bridge_created`` on the
  bridge's endpoint, then ``leg_joined_bridge`` on each leg's own endpoint; or
  ``bridge_failed_to_create`` (a leg unknown, not answered or already in a bridge).
* ``POST /bridges {bridge_type...}``: ``bridge_created`` (state ``created``); legs come
  with ``<JoinBridge bridgeSid>`` (``leg_joined_bridge``) and go with ``<LeaveBridge/>``.
* ``PUT /bridges/{sid} {"action": "stop"}``: ``leg_left_bridge`` for each leg (the legs
  stay connected), then ``bridge_terminated`` (``bridges.terminal_event`` can make it
  ``bridge_terminal`` or both).
* A leg that hangs up leaves its bridge first; a bridge whose last leg left ends.
* ``<Dial>`` (:mod:`sim.dial`) bridges its two legs here; a Dial's bridge ends when
  either leg leaves.
* ``<Hold>`` (with an optional nested ``<StartPlay>`` for music) and ``<UnHold/>``:
  ``hold_success``/``unhold_success``; a held leg neither hears nor is heard.

While two or more legs of a bridge are not on hold, each of them hears the others: the
legs' timelines record it (``bridge_audio``, the ``bridged`` mark).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from typing import Any, Protocol

from sim.action import ActionRecord
from sim.bridge import ACTIVE, TERMINAL, Bridge, BridgeRequest
from sim.call import Call
from sim.clock import Clock
from sim.config import SandboxConfig
from sim.delivery import LegQueue
from sim.event import BRIDGE_LIFECYCLE, new_event
from sim.greeting import Greetings
from sim.ids import SidFactory
from sim.leg import CONNECTED, Leg, LegRequest
from sim.recording import Recorder, Recording

__all__ = ["Bridges", "BridgeNotFound", "BridgeNotActive", "Host", "LiveBridge"]

BRIDGE_ACTION = "bridge_action_event"  # inferred: the pages name only the lifecycle type


class BridgeNotFound(Exception):
    """No bridge with this SID on this account."""


class BridgeNotActive(Exception):
    """The bridge cannot take this request in its state (ended, full)."""


class Host(Protocol):
    """What bridges need from the account (:class:`sim.account.Account` is one)."""

    config: SandboxConfig
    clock: Clock
    sids: SidFactory
    calls: dict[str, Call]

    def event_queue(self, endpoint: str, rng: random.Random) -> LegQueue: ...

    def recorder(self, owner: Any, of: str, into: list[Recording]) -> Recorder: ...

    def create_leg(self, request: LegRequest) -> Leg: ...


class LiveBridge:
    """A bridge with its event queue, tasks and says/plays."""

    def __init__(self, host: Host, bridge: Bridge) -> None:
        self.host = host
        self.bridge = bridge
        self.clock = host.clock
        self.ended = asyncio.Event()
        self.greetings = Greetings(self, host.config.timing)
        self.recorder = host.recorder(self, bridge.bridge_sid, bridge.recordings)
        self._queue: LegQueue | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        if bridge.endpoint:
            self.refer(bridge.endpoint)

    def refer(self, endpoint: str) -> None:
        """``<Refer bridgeEventEndpoint>``: later events of the bridge go to ``endpoint``."""
        if self._queue is not None:
            self._queue.close()
        self.bridge.endpoint = endpoint
        self._queue = self.host.event_queue(endpoint, random.Random(f"{self.host.config.seed}/{self.bridge.bridge_sid}"))

    def emit(
        self, name: str, *, action: ActionRecord | None = None, detail: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        kind = BRIDGE_LIFECYCLE if name.startswith("bridge_") else BRIDGE_ACTION
        record = new_event(
            self.host.sids(), name, kind, self.clock.now(), self.bridge.snapshot(), action=action, detail=detail, error=error
        )
        self.bridge.events.append(record)
        if self._queue is not None:
            self._queue.put(record)
        else:
            record.error = "no bridge_event_endpoint: recorded, not sent"

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._queue is not None:
            await self._queue.cancel()


class Bridges:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.live: dict[str, LiveBridge] = {}

    def get(self, bridge_sid: str) -> LiveBridge:
        live = self.live.get(bridge_sid)
        if live is None:
            raise BridgeNotFound(bridge_sid)
        return live

    def reports(self) -> list[dict[str, Any]]:
        return [live.bridge.report() for live in self.live.values()]

    async def close(self) -> None:
        bridges, self.live = list(self.live.values()), {}
        await asyncio.gather(*(live.close() for live in bridges))

    # Creating and stopping

    def create(self, request: BridgeRequest) -> Bridge:
        """``POST /bridges``: the bridge exists now; its events (and its legs) follow."""
        live = self._new(request, "api", self.host.sids())
        live.spawn(self._open(live))
        return live.bridge

    def _new(self, request: BridgeRequest, origin: str, bridge_sid: str) -> LiveBridge:
        now = self.host.clock.now()
        bridge = Bridge(
            bridge_sid=bridge_sid, account_sid=self.host.config.account_sid, request=request,
            created_at=now, origin=origin, endpoint=request.bridge_event_endpoint, updated_at=now,
        )  # fmt: skip
        live = LiveBridge(self.host, bridge)
        self.live[bridge_sid] = live
        return live

    async def _open(self, live: LiveBridge) -> None:
        await asyncio.sleep(self.host.config.timing.bridge_ms / 1000)
        legs = live.bridge.request.leg_sids
        problem = next((p for p in (self._cannot_join(sid) for sid in legs) if p), None)
        if problem:
            self._terminate(live, "failed")
            error = {"error_code": "BRIDGE_CREATE_FAILED", "message": "bridge could not be created", "description": problem}
            live.emit("bridge_failed_to_create", error=error)
            return
        if legs:
            self._activate(live)
        live.emit("bridge_created")
        for leg_sid in legs:
            self._join_now(live, self.host.calls[leg_sid], None)

    def _cannot_join(self, leg_sid: str) -> str:
        call = self.host.calls.get(leg_sid)
        if call is None:
            return f"no leg {leg_sid} on this account"
        if call.leg.state != CONNECTED or call.ending:
            return f"leg {leg_sid} is {call.leg.state}, not answered"
        if call.leg.bridge_sid:
            return f"leg {leg_sid} is already in bridge {call.leg.bridge_sid}"
        return ""

    def stop(self, bridge_sid: str) -> Bridge:
        """``PUT /bridges/{sid} {"action": "stop"}``: the legs leave (and stay up), then the bridge ends."""
        live = self.get(bridge_sid)
        if not live.bridge.live:
            raise BridgeNotActive(f"bridge {bridge_sid} is already {live.bridge.state}")
        live.spawn(self._stop_after(live))
        return live.bridge

    async def _stop_after(self, live: LiveBridge) -> None:
        await asyncio.sleep(self.host.config.timing.bridge_ms / 1000)
        for leg_sid in list(live.bridge.members):
            self._leave_now(live, self.host.calls[leg_sid], None, end_when_empty=False)
        self._end(live)

    def _end(self, live: LiveBridge) -> None:
        if not live.bridge.live:
            return
        self._terminate(live, "completed")
        names = {"both": ("bridge_terminated", "bridge_terminal")}.get(
            self.host.config.bridges.terminal_event, (self.host.config.bridges.terminal_event,)
        )
        for name in names:
            live.emit(name)
        live.ended.set()

    def _terminate(self, live: LiveBridge, status: str) -> None:
        live.recorder.stop(None, at_once=True)
        bridge, now = live.bridge, self.host.clock.now()
        bridge.state, bridge.terminal_status, bridge.end_time, bridge.updated_at = TERMINAL, status, now, now
        live.ended.set()

    def _activate(self, live: LiveBridge) -> None:
        bridge, now = live.bridge, self.host.clock.now()
        if bridge.state != ACTIVE:
            bridge.state, bridge.start_time, bridge.updated_at = ACTIVE, now, now

    # Legs joining and leaving

    def check_join(self, call: Call, bridge_sid: str) -> None:
        """Raise unless ``call`` may join ``bridge_sid`` now (the API answers 404 or 409)."""
        live = self.get(bridge_sid)
        bridge = live.bridge
        if not bridge.live:
            raise BridgeNotActive(f"bridge {bridge_sid} is {bridge.state}")
        if call.leg.bridge_sid and call.leg.bridge_sid != bridge_sid:
            raise BridgeNotActive(f"leg {call.leg.leg_sid} is already in bridge {call.leg.bridge_sid}")
        if len(bridge.members) >= bridge.request.max_participants:
            raise BridgeNotActive(f"bridge {bridge_sid} is full ({bridge.request.max_participants} participants)")

    def join(self, call: Call, bridge_sid: str, action: ActionRecord) -> None:
        """``<JoinBridge bridgeSid>``, already checked by :meth:`check_join`."""
        live = self.get(bridge_sid)

        async def later() -> None:
            await asyncio.sleep(self.host.config.timing.bridge_ms / 1000)
            if call.leg.live and not call.ending and live.bridge.live and call.leg.bridge_sid is None:
                self._activate(live)
                self._join_now(live, call, action)

        call.spawn(later())

    def leave(self, call: Call, action: ActionRecord) -> None:
        """``<LeaveBridge/>``: the leg leaves its bridge (a leg in none: nothing happens)."""

        async def later() -> None:
            await asyncio.sleep(self.host.config.timing.bridge_ms / 1000)
            live = self.live.get(call.leg.bridge_sid or "")
            if live is not None:
                self._leave_now(live, call, action)

        call.spawn(later())

    def leg_ended(self, call: Call) -> None:
        """Hook run as a leg ends: it leaves its bridge."""
        live = self.live.get(call.leg.bridge_sid or "")
        if live is not None:
            self._leave_now(live, call, None)

    def bridge_dial(self, caller: Call, second: Call, bridge_sid: str, absorb_dtmf: bool, action: ActionRecord) -> LiveBridge:
        """A ``<Dial>``'s second leg answered: bridge the two now (``bridge_created``, both join)."""
        request = BridgeRequest(bridge_event_endpoint=caller.leg.request.leg_event_endpoint, absorb_dtmf=absorb_dtmf)
        live = self._new(request, "dial", bridge_sid)
        self._activate(live)
        live.emit("bridge_created")
        for party in (caller, second):
            self._join_now(live, party, action if party is caller else None)
        return live

    def _join_now(self, live: LiveBridge, call: Call, action: ActionRecord | None) -> None:
        bridge, leg, now = live.bridge, call.leg, self.host.clock.now()
        for other_sid in bridge.members:
            other = self.host.calls[other_sid].leg
            if other.location != leg.location:
                bridge.apart.append((other_sid, leg.leg_sid))
                leg.apart_from.append(other_sid)
                other.apart_from.append(leg.leg_sid)
        bridge.members[leg.leg_sid] = now
        if leg.leg_sid not in bridge.leg_sids:
            bridge.leg_sids.append(leg.leg_sid)
        bridge.updated_at = now
        leg.bridge_sid = bridge.bridge_sid
        leg.bridges.append({"bridge_sid": bridge.bridge_sid, "joined_at": now, "left_at": None, "legs": bridge.leg_sids})
        call.emit("leg_joined_bridge", action=action, detail={"bridge_sid": bridge.bridge_sid})
        if bridge.request.recording and not bridge.recordings:  # "recording": true records from the first leg on
            live.recorder.start(None)
        self.refresh(bridge)

    def _leave_now(self, live: LiveBridge, call: Call, action: ActionRecord | None, *, end_when_empty: bool = True) -> None:
        bridge, leg, now = live.bridge, call.leg, self.host.clock.now()
        bridge.members.pop(leg.leg_sid, None)
        bridge.updated_at = now
        leg.bridge_sid = None
        leg.bridges[-1]["left_at"] = now
        leg.timeline.hear("bridge", False, now)
        call.emit("leg_left_bridge", action=action, detail={"bridge_sid": bridge.bridge_sid})
        self.refresh(bridge)
        # A Dial is a conversation of two: it is over when either leaves.
        alone = bridge.origin == "dial" and len(bridge.members) == 1
        if alone:
            (last,) = bridge.members
            self._leave_now(live, self.host.calls[last], None, end_when_empty=False)
        if (end_when_empty and not bridge.members) or alone:
            self._end(live)

    def refresh(self, bridge: Bridge) -> None:
        """Who hears whom: every leg of the bridge not on hold hears the others not on hold."""
        now = self.host.clock.now()
        talking = [sid for sid in bridge.members if not self.host.calls[sid].leg.on_hold]
        for leg_sid in bridge.members:
            leg = self.host.calls[leg_sid].leg
            leg.timeline.hear("bridge", leg_sid in talking and len(talking) > 1, now)

    # Hold

    def hold(self, call: Call, action: ActionRecord, music_url: str) -> None:
        """``<Hold>``: the leg leaves the conversation; with a URL it hears music on hold."""
        leg, now = call.leg, self.host.clock.now()
        leg.on_hold = True
        leg.timeline.hear("hold", bool(music_url), now)
        call.emit("hold_success", action=action, detail={"music_url": music_url} if music_url else None)
        self._refresh_of(leg)

    def unhold(self, call: Call, action: ActionRecord) -> None:
        leg = call.leg
        leg.on_hold = False
        leg.timeline.hear("hold", False, self.host.clock.now())
        call.emit("unhold_success", action=action)
        self._refresh_of(leg)

    def _refresh_of(self, leg: Leg) -> None:
        live = self.live.get(leg.bridge_sid or "")
        if live is not None:
            self.refresh(live.bridge)

    # Bridge actions (POST /bridges/{sid}/actions)

    def run_actions(self, bridge_sid: str, verbs: list[tuple[str, dict[str, Any]]], custom_param: str) -> ActionRecord:
        """Says, plays and ``<Refer>`` on a bridge, under one action SID."""
        live = self.get(bridge_sid)
        if not live.bridge.live:
            raise BridgeNotActive(f"bridge {bridge_sid} is {live.bridge.state}")
        action_sid, now = self.host.sids(), self.host.clock.now()
        records = []
        for name, params in verbs:
            action = ActionRecord(action_sid=action_sid, name=name, custom_param=custom_param, received_at=now, params=dict(params))
            live.bridge.actions.append(action.report())
            records.append(action)
            if name in ("start_say", "start_play"):
                live.greetings.start(name[6:], action, text=params.get("text", ""), loop=params["loop"])
            elif name in ("stop_say", "stop_play"):
                live.greetings.stop(name[5:], action)
            elif name == "start_recording":
                live.recorder.start(action, params["direction"], params["format"])
            elif name == "stop_recording":
                live.recorder.stop(action)
            else:
                live.refer(params["bridge_event_endpoint"])
        return records[0]
