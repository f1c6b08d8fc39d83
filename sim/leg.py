"""A leg as the sandbox knows it: request fields, state, events, actions, streams, timeline.

Pure record-keeping. :class:`sim.call.Call` drives it through time; the API reads
:meth:`Leg.snapshot` (the ``data`` of every event), :meth:`Leg.details` (get-leg) and
:meth:`Leg.report` (``/sim/v1/calls``).

States follow the get-leg page: ``created`` -> ``ringing`` -> ``connected`` -> ``terminal``.
Terminal statuses: ``completed`` (answered, then hung up by anyone), ``busy``, ``no-answer``,
``failed`` (including leg_failed_to_create).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sim.action import ActionRecord
from sim.callee import CallPlan
from sim.clock import rfc3339
from sim.event import EventRecord
from sim.recording import Recording
from sim.stream import StreamRecord
from sim.timeline import Timeline

__all__ = ["CREATED", "RINGING", "CONNECTED", "TERMINAL", "INVARIANTS", "WARNINGS", "LegRequest", "Leg"]

CREATED = "created"
RINGING = "ringing"
CONNECTED = "connected"
TERMINAL = "terminal"

# What every call must satisfy (design.md, "Invariants users rely on"); see Leg.breaches.
INVARIANTS = (
    "answered_without_stream",
    "multiple_streams",
    "greeting_after_stream",
    "chunk_violations",
    "undelivered_events",
)
# What Exotel tolerates and the reports still point out; see Leg.cautions.
WARNINGS = ("chunk_warnings", "stop_stream_unmatched", "bridge_not_co_located", "message_over_voicemail_greeting")


@dataclass(frozen=True)
class LegRequest:
    """A validated create-leg body (times in seconds, as the API takes them)."""

    contact_uri: str
    exophone: str
    leg_event_endpoint: str
    custom_param: str = ""
    network_type: str = "pstn"
    timeout: int = 30
    ring_timeout: int = 30
    time_limit: int = 14400
    amd_enable: bool = False
    async_amd: bool = False
    priority: str = "normal"
    reference_leg_sid: str = ""  # create this leg where that one is (legs to be bridged "should be co-located")
    requested_dc_code: str = ""
    record: bool = False  # record the call from the answer (inferred name; see sim/README.md)


@dataclass(eq=False)
class Leg:
    leg_sid: str
    account_sid: str
    request: LegRequest
    plan: CallPlan
    created_at: float
    campaign: str | None = None
    state: str = CREATED
    terminal_status: str | None = None
    hangup_by: str | None = None  # callee, api, peer (the leg that dialled it ended), time_limit, ring_timeout, network
    audible_greeting: str | None = None  # "say" or "play" while a greeting is audible
    start_time: float | None = None  # answered
    end_time: float | None = None
    updated_at: float = 0.0
    timeline: Timeline = field(default_factory=Timeline)
    events: list[EventRecord] = field(default_factory=list)
    actions: list[ActionRecord] = field(default_factory=list)
    streams: list[StreamRecord] = field(default_factory=list)
    unmatched_stops: list[str] = field(default_factory=list)  # stop_stream streamSids that named no live stream
    location: str = ""  # where the leg was created: legs with the same location are co-located
    bridge_sid: str | None = None  # the bridge the leg is in now
    bridges: list[dict[str, Any]] = field(default_factory=list)  # {bridge_sid, joined_at, left_at, legs}
    apart_from: list[str] = field(default_factory=list)  # legs it was bridged with without being co-located
    on_hold: bool = False
    recording: bool = False
    recordings: list[Recording] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return self.state != TERMINAL

    @property
    def answered(self) -> bool:
        return self.start_time is not None

    def last_event(self, name: str) -> EventRecord | None:
        for record in reversed(self.events):
            if record.name == name:
                return record
        return None

    def snapshot(self) -> dict[str, Any]:
        """The leg as events carry it in ``data``."""
        return {
            "leg_sid": self.leg_sid,
            "account_sid": self.account_sid,
            "contact_uri": self.request.contact_uri,
            "exophone": self.request.exophone,
            "network_type": self.request.network_type,
            "direction": "outbound",
            "state": self.state,
            "terminal_status": self.terminal_status,
            "custom_param": self.request.custom_param,
            "start_time": rfc3339(self.start_time),
            "end_time": rfc3339(self.end_time),
            "date_created": rfc3339(self.created_at),
            "date_updated": rfc3339(self.updated_at or self.created_at),
        }

    def details(self, now: float, fields: set[str]) -> dict[str, Any]:
        """``GET /legs/{leg_sid}`` data; ``fields`` selects ``additional_info`` entries."""
        data = self.snapshot()
        data.update(
            caller_id=self.request.exophone,
            time_limit=self.request.time_limit,
            on_call_duration_ms=int(((self.end_time or now) - self.start_time) * 1000) if self.start_time else 0,
        )
        if fields:
            info = {
                "play_status": "playing" if self.audible_greeting == "play" else "idle",
                "say_status": "playing" if self.audible_greeting == "say" else "idle",
                "stream_status": "active" if any(s.active for s in self.streams) else "inactive",
                "bridge_status": "bridged" if self.bridge_sid else "not_bridged",
                "recording_status": "recording" if self.recording else "not_recording",
                "hold_status": "hold" if self.on_hold else "unhold",
                "gather_status": "inactive",
                "tx_audio_status": "enabled",
                "rx_audio_status": "enabled",
            }
            data["additional_info"] = {key: value for key, value in info.items() if key in fields}
        return data

    def breaches(self, now: float, grace_ms: float) -> dict[str, str]:
        """The invariants (:data:`INVARIANTS`) this call broke, each with a readable reason."""
        figures = self.timeline.figures(now)
        started = [s for s in self.streams if s.started_at is not None]
        # A stream still connecting when the callee hung up is no one's fault; an API hang-up
        # is a deliberate, recorded decision; a bridged leg talked to a person; a machine
        # hears no one. Any other answered call without a stream heard silence.
        connecting_at_hangup = any(s.started_at is None and s.stop_reason == "callended" for s in self.streams)
        chunk_problems = [v for s in self.streams for v in s.violations]
        chunk_count = sum(s.violation_count for s in self.streams)
        # An event the scenario lost on purpose (faults.events.lose) is the network's doing, not the endpoint's.
        undelivered = [e.name for e in self.events if e.delivered is False and not e.fate.lose]
        after = figures["greeting_after_stream_ms"]
        concurrent = _max_concurrent(self.streams, now)
        found = {
            "answered_without_stream": (
                not self.live and self.answered and not started and self.hangup_by != "api"
                and not connecting_at_hangup and not self.bridges and not self.plan.machine,
                "answered call ended without a bot stream",
            ),
            # A reconnect after a drop is a second stream, one after the other; two live at
            # once means the callee hears two bots.
            "multiple_streams": (concurrent > 1, f"{concurrent} bot streams live at once on one leg"),
            "greeting_after_stream": (
                not self.live and after is not None and after > grace_ms,
                f"greeting audible {after or 0:.0f} ms after stream_started (grace {grace_ms:.0f} ms)",
            ),
            "chunk_violations": (
                bool(chunk_problems),
                f"{chunk_count} bot chunk(s) broke the chunk rules, first: "
                + (chunk_problems[0]["problems"][0] if chunk_problems else ""),
            ),
            "undelivered_events": (bool(undelivered), f"event(s) never delivered: {', '.join(undelivered)}"),
        }
        return {name: reason for name, (broken, reason) in found.items() if broken}

    def cautions(self, now: float) -> dict[str, str]:
        """What Exotel tolerates but a careful reader should know (:data:`WARNINGS`), with reasons."""
        voicemail = self.timeline.voicemail(now)
        first = next((w for s in self.streams for w in s.warnings), None)
        count = sum(s.warning_count for s in self.streams)
        found = {
            "chunk_warnings": (
                count > 0,
                f"{count} bot chunk(s) short or misaligned, first: {first['problems'][0] if first else ''}",
            ),
            "stop_stream_unmatched": (
                bool(self.unmatched_stops),
                f"stop_stream named no live stream of this leg: {', '.join(self.unmatched_stops)}",
            ),
            "message_over_voicemail_greeting": (
                bool(voicemail and voicemail["message_over_greeting_ms"]),
                f"{voicemail['message_over_greeting_ms'] if voicemail else 0:.0f} ms of the message played over the "
                "answering machine's greeting, before the beep (not recorded)",
            ),
            "bridge_not_co_located": (
                bool(self.apart_from),
                f"bridged with leg(s) not created co-located (reference_leg_sid): {', '.join(self.apart_from)}",
            ),
        }
        return {name: reason for name, (seen, reason) in found.items() if seen}

    def report(self, now: float, grace_ms: float) -> dict[str, Any]:
        """The call as ``/sim/v1/calls`` shows it."""
        timeline = self.timeline.to_dict(now)
        breaches = self.breaches(now, grace_ms)
        return {
            "leg_sid": self.leg_sid,
            "account_sid": self.account_sid,
            "contact_uri": self.request.contact_uri,
            "exophone": self.request.exophone,
            "custom_param": self.request.custom_param,
            "campaign": self.campaign,
            "reference_leg_sid": self.request.reference_leg_sid or None,
            "bridges": self.bridges,
            "recordings": [r.report(now) for r in self.recordings],
            "state": self.state,
            "terminal_status": self.terminal_status,
            "outcome": self.terminal_status or ("in-progress" if self.answered else self.state),
            "hangup_by": self.hangup_by,
            "plan": {
                "outcome": self.plan.outcome,
                "ring_ms": round(self.plan.ring_ms, 3),
                "talk_ms": None if self.plan.talk_ms is None else round(self.plan.talk_ms, 3),
                "amd_result": self.plan.amd_result if self.request.amd_enable else None,
                "machine": self.plan.machine,
                "beep_ms": round(self.plan.beep_ms, 3) if self.plan.machine else None,
            },
            **timeline,
            "stream_requests": len(self.streams),
            "streams_started": sum(1 for s in self.streams if s.started_at is not None),
            "max_concurrent_streams": _max_concurrent(self.streams, now),
            "streams": [s.report() for s in self.streams],
            "chunk_violations": sum(s.violation_count for s in self.streams),
            "chunk_warnings": sum(s.warning_count for s in self.streams),
            "warnings": self.cautions(now),
            "invariants": list(breaches),  # in the order of "violations"
            "violations": list(breaches.values()),
            "actions": [a.report() for a in self.actions],
            "events": [e.report() for e in self.events],
        }


def _max_concurrent(streams: list[StreamRecord], now: float) -> int:
    edges = []
    for stream in streams:
        if stream.started_at is not None:
            edges += [(stream.started_at, 1), (stream.stopped_at or now, -1)]
    level = peak = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        level += step
        peak = max(peak, level)
    return peak
