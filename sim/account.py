"""The sandbox's Exotel account, without HTTP: its legs, limits, budget and reports.

The HTTP door (:mod:`sim.api`) translates requests into calls on an :class:`Account`;
:class:`sim.sandbox.Sandbox` is an account with that door open on a port.

The account keeps every leg until :meth:`Account.reset` or :meth:`Account.close`, so that
reports cover a whole run. Randomness is split into independent seeded streams: one for
API faults, and one per leg derived from (seed, contact_uri, how many times that number was
dialled), so a callee's outcome does not depend on the order in which legs are created.
SIDs are never seeded (see :class:`sim.ids.SidFactory`).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from sim.action import ActionRecord
from sim.bridges import Bridges
from sim.call import Call
from sim.callee import draw
from sim.clock import Clock
from sim.config import SandboxConfig
from sim.delivery import Deliverer, LegQueue
from sim.dial import Dials
from sim.ids import SidFactory
from sim.leg import CONNECTED, Leg, LegRequest
from sim.owner import Owner
from sim.ratelimit import Decision, TokenBucket
from sim.recording import Recorder, Recording
from sim.scenario import campaign_of
from sim.summary import summarize
from sim.validation import BadRequest, exophone_of, media_format

__all__ = ["Account", "LimitExceeded", "LegNotFound", "LegNotActive"]


class LimitExceeded(Exception):
    """An account limit (``concurrent_legs``, ``active_streams``) is reached."""

    def __init__(self, limit: str, value: int) -> None:
        super().__init__(f"{limit} limit of {value} reached")
        self.limit = limit
        self.value = value


class LegNotFound(Exception):
    """No leg with this SID on this account."""


class LegNotActive(Exception):
    """The action needs an answered leg; this one is ``state``."""

    def __init__(self, leg_sid: str, state: str, action: str) -> None:
        super().__init__(f"leg {leg_sid} is {state}; {action} needs an answered (connected) leg")
        self.state = state


class Account:
    """One Exotel account: create legs, run actions, report. Open it inside an event loop."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.seed = self.config.seed if self.config.seed is not None else random.SystemRandom().randrange(2**31)
        self.clock = Clock()
        self.sids = SidFactory()
        self.calls: dict[str, Call] = {}
        self.recordings: dict[str, Recording] = {}  # every recording, by SID (the sandbox serves them)
        self.public_url = ""  # where the account's HTTP door listens, once it does (recording URLs)
        self.bridges = Bridges(self)
        self.dials = Dials(self.bridges)
        self._deliverer: Deliverer | None = None
        self._reset_state()

    def open(self) -> None:
        """Ready to deliver events (needs a running event loop)."""
        self._deliverer = Deliverer(self.config.delivery, self.config.scenario.faults.events, self.clock)

    async def close(self) -> None:
        """End every call without further events and close the delivery channels."""
        await self._forget_calls()
        if self._deliverer is not None:
            await self._deliverer.close()
            self._deliverer = None

    async def reset(self) -> None:
        """Forget every call (live ones are dropped silently) and restart every seeded random stream."""
        await self._forget_calls()
        self._reset_state()

    def _reset_state(self) -> None:
        self.api_rng = random.Random(f"{self.seed}/api")
        self.started_at = self.clock.now()
        limit = self.config.limits.requests_per_minute
        self._bucket = TokenBucket(limit, self.clock.now()) if limit else None
        self._dialled: Counter[str] = Counter()
        self.errors_served: Counter[int] = Counter()  # Legs and Bridges API error answers, by HTTP status

    async def _forget_calls(self) -> None:
        calls, self.calls = list(self.calls.values()), {}
        self.recordings.clear()
        await asyncio.gather(*(call.cancel() for call in calls))
        await self.bridges.close()
        self.dials.forget()

    def event_queue(self, endpoint: str, rng: random.Random) -> LegQueue:
        """An ordered delivery queue to a leg's or a bridge's event endpoint."""
        assert self._deliverer is not None, "Account.open() first"
        return self._deliverer.queue(endpoint, rng)

    # Account limits

    def admit(self) -> Decision | None:
        """Spend one request of the per-minute budget (None when unlimited)."""
        return self._bucket.take(self.clock.now()) if self._bucket else None

    def api_fault(self) -> int | None:
        """An injected HTTP error status for this request, or None."""
        return self.config.scenario.faults.api.status(self.api_rng, self.clock.now() - self.started_at)

    # Legs

    def create_leg(self, request: LegRequest) -> Leg:
        exophone_of(request.exophone, self.config.caller_ids)
        limit = self.config.limits.concurrent_legs
        if limit and sum(1 for call in self.calls.values() if call.leg.live) >= limit:
            raise LimitExceeded("concurrent_legs", limit)
        reference = self.calls.get(request.reference_leg_sid) if request.reference_leg_sid else None
        if request.reference_leg_sid and reference is None:
            raise BadRequest("invalid reference_leg_sid", f"no leg {request.reference_leg_sid!r} on this account")
        scenario = self.config.scenario
        profile = scenario.profile_for(request.contact_uri, request.custom_param)
        attempt = self._dialled[request.contact_uri]
        self._dialled[request.contact_uri] += 1
        rng = random.Random(f"{self.seed}/{request.contact_uri}/{attempt}")
        plan = draw(profile, rng, ring_timeout_ms=min(request.ring_timeout, request.timeout) * 1000.0)
        now = self.clock.now()
        leg = Leg(
            leg_sid=self.sids(),
            account_sid=self.config.account_sid,
            request=request,
            plan=plan,
            created_at=now,
            campaign=campaign_of(request.custom_param, scenario.campaigns),
            updated_at=now,
        )
        # Co-located legs share a location: the reference leg's, or the requested data centre's.
        if reference is not None:
            leg.location = reference.leg.location
        else:
            leg.location = f"dc:{request.requested_dc_code}" if request.requested_dc_code else leg.leg_sid
        leg.timeline.mark("dialed", now)
        queue = self.event_queue(request.leg_event_endpoint, rng)

        def recorder(call: Call) -> Recorder:
            return self.recorder(call, leg.leg_sid, leg.recordings, on_change=lambda on: setattr(leg, "recording", on))

        call = Call(self.config, self.clock, self.sids, leg, rng, queue, recorder)
        call.on_end = self._leg_ended
        self.calls[leg.leg_sid] = call
        call.start()
        return leg

    def recorder(
        self, owner: Owner, of: str, into: list[Recording], on_change: Callable[[bool], None] | None = None
    ) -> Recorder:
        """A recorder for a leg or a bridge whose recordings the sandbox serves."""
        return Recorder(owner, of, self.config.timing, self.sids, self.recording_url, self.recordings, into, on_change)

    def recording_url(self, recording_sid: str) -> str:
        return f"{self.public_url}/sim/v1/recordings/{recording_sid}.wav"

    def _leg_ended(self, call: Call) -> None:
        self.bridges.leg_ended(call)
        self.dials.leg_ended(call)

    def leg(self, leg_sid: str) -> Leg:
        call = self.calls.get(leg_sid)
        if call is None:
            raise LegNotFound(leg_sid)
        return call.leg

    def run_actions(self, leg_sid: str, verbs: list[tuple[str, dict[str, Any]]], custom_param: str) -> ActionRecord:
        """Run actions (one named action, or an ExoML flow's verbs) under one action SID."""
        call = self.calls.get(leg_sid)
        if call is None:
            raise LegNotFound(leg_sid)
        for name, params in verbs:
            # A hang-up may cancel a ringing leg; everything else needs an answered leg.
            if call.ending or not call.leg.live:
                raise LegNotActive(leg_sid, "terminating" if call.leg.live else call.leg.state, name)
            if name != "hangup" and call.leg.state != CONNECTED:
                raise LegNotActive(leg_sid, call.leg.state, name)
            if name == "join_bridge":
                self.bridges.check_join(call, params["bridge_sid"])
            if name == "dial" and params["exophone"]:
                exophone_of(params["exophone"], self.config.caller_ids)
        streams = self.config.limits.active_streams
        if streams and any(name == "start_stream" for name, _ in verbs):
            active = sum(1 for c in self.calls.values() for s in c.leg.streams if s.active)
            if active >= streams:
                raise LimitExceeded("active_streams", streams)
        legs = self.config.limits.concurrent_legs
        dials = sum(1 for name, _ in verbs if name == "dial")
        if legs and dials and sum(1 for c in self.calls.values() if c.leg.live) + dials > legs:
            raise LimitExceeded("concurrent_legs", legs)
        action_sid = self.sids()
        records = [call.accept(name, custom_param, params, action_sid) for name, params in verbs]
        for (name, params), action in zip(verbs, records):
            if name == "start_stream":
                call.start_stream(action, params["url"], params["direction"], media_format(params["content_type"]))
            elif name == "stop_stream":
                call.stop_streams(action, params.get("stream_sid", ""))
            elif name in ("start_say", "start_play"):
                call.greetings.start(name[6:], action, text=params.get("text", ""), loop=params["loop"])
            elif name in ("stop_say", "stop_play"):
                call.greetings.stop(name[5:], action)
            elif name == "join_bridge":
                self.bridges.join(call, params["bridge_sid"], action)
            elif name == "leave_bridge":
                self.bridges.leave(call, action)
            elif name == "hold":
                self.bridges.hold(call, action, params.get("music_url", ""))
            elif name == "unhold":
                self.bridges.unhold(call, action)
            elif name == "dial":
                self.dials.dial(call, params, action)
            elif name == "start_recording":
                call.recorder.start(action, params["direction"], params["format"])
            elif name == "stop_recording":
                call.recorder.stop(action)
            else:
                call.hangup(action)
        return records[0]

    # Reports

    def report(self, leg_sid: str) -> dict[str, Any]:
        return self.leg(leg_sid).report(self.clock.now(), self.config.timing.greeting_grace_ms)

    def reports(self) -> list[dict[str, Any]]:
        now, grace = self.clock.now(), self.config.timing.greeting_grace_ms
        return [call.leg.report(now, grace) for call in self.calls.values()]

    def summary(self) -> dict[str, Any]:
        summary = summarize(self.reports(), seed=self.seed)
        summary["api_errors"] = {str(status): count for status, count in sorted(self.errors_served.items())}
        return summary
