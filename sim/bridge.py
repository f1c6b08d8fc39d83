"""A bridge as the sandbox knows it: its legs, state, events and reports. Pure record-keeping.

:mod:`sim.bridges` drives bridges through time. States follow the bridge pages (reference
§1.8): ``created`` (no leg yet) -> ``active`` (a leg joined) -> ``terminal`` (stopped, every
leg gone, or it failed to create). ``terminal_status`` is ``completed`` or ``failed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sim.clock import rfc3339
from sim.event import EventRecord
from sim.recording import Recording

__all__ = ["CREATED", "ACTIVE", "TERMINAL", "BridgeRequest", "Bridge"]

CREATED = "created"
ACTIVE = "active"
TERMINAL = "terminal"


@dataclass(frozen=True)
class BridgeRequest:
    """A validated create-bridge body (either documented shape)."""

    leg_sids: tuple[str, ...] = ()  # shape (a): bridge these legs at once
    bridge_event_endpoint: str = ""
    absorb_dtmf: bool = False
    bridge_type: str = "audio"  # shape (b): an empty bridge legs join with <JoinBridge>
    max_participants: int = 10
    recording: bool = False


@dataclass(eq=False)
class Bridge:
    bridge_sid: str
    account_sid: str
    request: BridgeRequest
    created_at: float
    origin: str = "api"  # api (POST /bridges) or dial (<Dial> on a leg)
    endpoint: str = ""  # where bridge events go ("" until <Refer> names one, for shape (b))
    state: str = CREATED
    terminal_status: str | None = None
    start_time: float | None = None  # first leg joined
    end_time: float | None = None
    updated_at: float = 0.0
    members: dict[str, float] = field(default_factory=dict)  # leg_sid -> joined_at, legs in the bridge now
    leg_sids: list[str] = field(default_factory=list)  # every leg that ever joined, in order
    events: list[EventRecord] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    apart: list[tuple[str, str]] = field(default_factory=list)  # pairs of legs bridged without co-location
    recordings: list[Recording] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return self.state != TERMINAL

    def snapshot(self) -> dict[str, Any]:
        """The bridge as bridge events carry it in ``data``."""
        return {
            "bridge_sid": self.bridge_sid,
            "account_sid": self.account_sid,
            "state": self.state,
            "terminal_status": self.terminal_status,
            "active_legs": list(self.members),
            "leg_sids": list(self.leg_sids),
            "date_created": rfc3339(self.created_at),
            "date_updated": rfc3339(self.updated_at or self.created_at),
        }

    def details(self) -> dict[str, Any]:
        """``GET /bridges/{bridge_sid}`` data (the get-bridge page's fields): the :meth:`snapshot`,
        its SID as ``sid``, with the bridge's times and what it was created as."""
        snapshot = self.snapshot()
        return {
            "sid": snapshot.pop("bridge_sid"),
            **snapshot,
            "start_time": rfc3339(self.start_time),
            "end_time": rfc3339(self.end_time),
            "bridge_type": self.request.bridge_type,
            "max_participants": self.request.max_participants,
        }

    def warnings(self) -> dict[str, str]:
        if not self.apart:
            return {}
        pairs = ", ".join(f"{a}+{b}" for a, b in self.apart)
        return {"bridge_not_co_located": f"legs bridged without being co-located (reference_leg_sid): {pairs}"}

    def report(self) -> dict[str, Any]:
        """The bridge as ``/sim/v1/bridges`` shows it."""
        return {
            **self.details(),
            "bridge_sid": self.bridge_sid,
            "origin": self.origin,
            "bridge_event_endpoint": self.endpoint or None,
            "absorb_dtmf": self.request.absorb_dtmf,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "warnings": self.warnings(),
            "recordings": [r.report(self.end_time or self.updated_at) for r in self.recordings],
            "actions": self.actions,
            "events": [e.report() for e in self.events],
        }
