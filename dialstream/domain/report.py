"""A campaign's per-call report and summary. Pure: it combines records, it fetches nothing.

Each row joins the worker's final call record (outcome, timings from event timestamps)
with the sandbox's timeline of the same leg when there is one (what the callee heard) and
the disposition the bot set for the leg, if any.
``problems`` lists every call that broke an invariant users rely on; the demo exits
non-zero when it is not empty.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from dialstream.domain.call_outcome import Disposition

__all__ = ["CallRow", "CampaignReport", "build_report", "percentile", "mask_phone"]


def mask_phone(phone: str) -> str:
    """``+919812345678`` -> ``+9198*****678``: enough to tell calls apart in a log."""
    if len(phone) <= 7:
        return phone
    return phone[:5] + "*" * (len(phone) - 8) + phone[-3:]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class CallRow:
    contact_id: str
    phone: str
    outcome: str
    disposition: str = ""  # the business outcome the bot set (dialstream.domain.call_outcome)
    disposition_data: Mapping[str, Any] = field(default_factory=dict)
    leg_sid: str = ""
    exophone: str = ""  # the caller ID the callee saw
    reason: str = ""
    answered_to_stream_ms: float | None = None
    answered_to_first_audio_ms: float | None = None
    dead_air_ms: float | None = None
    overlap_ms: float | None = None
    streams: int | None = None
    errors: tuple[str, ...] = ()  # recovered from (a bot that did not answer, a retried API call)
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class CampaignReport:
    campaign_id: str
    flow: str
    rows: tuple[CallRow, ...]
    outcomes: Mapping[str, int]
    figures: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    dispositions: Mapping[str, int] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        return [f"{row.contact_id} ({row.leg_sid or 'no leg'}): {p}" for row in self.rows for p in row.problems]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "flow": self.flow,
            "ok": self.ok,
            "outcomes": dict(self.outcomes),
            "dispositions": dict(self.dispositions),
            "figures": {name: dict(stats) for name, stats in self.figures.items()},
            "problems": self.problems,
            "calls": [asdict(row) for row in self.rows],
        }


def build_report(
    campaign_id: str,
    flow: str,
    contact_ids: Sequence[str],
    results: Mapping[str, Mapping[str, Any]],
    timelines: Mapping[str, Mapping[str, Any]] | None = None,
    dispositions: Mapping[str, Disposition] | None = None,
) -> CampaignReport:
    """Rows in ``contact_ids`` order; a contact without a final record is itself a problem.
    ``timelines`` and ``dispositions`` are by leg sid."""
    timelines = timelines or {}
    dispositions = dispositions or {}
    rows = []
    for contact_id in contact_ids:
        result = results.get(contact_id)
        if result is None:
            rows.append(CallRow(contact_id, "", "missing", problems=("no final record",)))
            continue
        timeline = timelines.get(result.get("leg_sid", ""), {})
        disposition = dispositions.get(result.get("leg_sid", ""))
        figures = timeline.get("figures", {})
        streams = timeline.get("streams_started", result.get("streams_started"))
        rows.append(
            CallRow(
                contact_id=contact_id,
                phone=str(result.get("phone", "")),
                outcome=str(result.get("outcome", "")),
                disposition=disposition.code if disposition else "",
                disposition_data=dict(disposition.data) if disposition else {},
                leg_sid=str(result.get("leg_sid", "")),
                exophone=str(result.get("exophone", "")),
                reason=str(result.get("reason", "")),
                answered_to_stream_ms=result.get("answered_to_stream_ms"),
                answered_to_first_audio_ms=figures.get("answer_to_first_audio_ms"),
                dead_air_ms=figures.get("dead_air_ms"),
                overlap_ms=figures.get("overlap_ms"),
                streams=streams,
                errors=tuple(result.get("errors", ())),
                problems=tuple(_problems(result, timeline, streams)),
            )
        )
    stats = {
        name: _stats([getattr(row, name) for row in rows if getattr(row, name) is not None])
        for name in ("answered_to_stream_ms", "answered_to_first_audio_ms", "dead_air_ms", "overlap_ms")
    }
    codes = Counter(row.disposition for row in rows if row.disposition)
    return CampaignReport(campaign_id, flow, tuple(rows), dict(Counter(row.outcome for row in rows)), stats, dict(codes))


def _problems(result: Mapping[str, Any], timeline: Mapping[str, Any], streams: Any) -> list[str]:
    """Broken invariants only; errors that were recovered from are notes, not problems.

    With a sandbox timeline its view of the wire is authoritative (streams live at once, a
    greeting audible after the stream started); without one, dialstream's own record is.
    """
    problems = []
    answered = result.get("answered_at") is not None
    outcome = result.get("outcome")
    if outcome == "answered_no_stream" and not result.get("reason"):
        problems.append("answered call got no bot stream and no recorded reason")
    if answered and outcome == "completed" and not streams:
        problems.append("answered call completed without a bot stream")
    if timeline:
        broken = zip(timeline.get("invariants", ()), timeline.get("violations", ()), strict=True)
        problems += [f"sandbox: {text}" for name, text in broken if not _explained(name, result)]
    elif answered and result.get("greeting_state") in ("requested", "playing", "stop_pending", "stopping"):
        problems.append(f"greeting left in state {result['greeting_state']} after the call")
    return problems


def _explained(invariant: str, result: Mapping[str, Any]) -> bool:
    """An answered call without a stream is fine when it was hung up on purpose with a reason
    (no bot could be reached, an answering machine)."""
    return invariant == "answered_without_stream" and result.get("outcome") in ("answered_no_stream", "machine", "voicemail_left") and bool(
        result.get("reason")
    )


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "count": float(len(values)),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
    }
