"""A call's timeline and a campaign's latency histograms, from the call records. Pure.

The dashboard draws each call as its marks on a time axis (dialled, ringing, answered,
greeting on and off, bot stream started, ended) and the campaign's answer -> stream-started
and answer -> first-audio times as histograms. All times are Exotel's event timestamps as
the workers recorded them (``dialstream.state.leg_commit.call_result``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dialstream.domain.webhooks import first_audio_ms

__all__ = ["MARKS", "call_timeline", "histogram", "LATENCY_EDGES_MS"]

# (name shown, field of the call record), in the order a call goes through them.
MARKS = (
    ("dialled", "connecting_at"),
    ("ringing", "ringing_at"),
    ("answered", "answered_at"),
    ("greeting on", "greeting_started_at"),
    ("stream started", "stream_started_at"),
    ("greeting off", "greeting_stopped_at"),
    ("ended", "ended_at"),
)
LATENCY_EDGES_MS = (0, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000)


def call_timeline(record: Mapping[str, Any]) -> dict[str, Any]:
    """One call: its ids, outcome, and each mark it reached as (name, Unix s), in time order."""
    marks = sorted(((name, float(record[key])) for name, key in MARKS if record.get(key) is not None), key=lambda mark: mark[1])
    return {
        "contact_id": record.get("contact_id", ""),
        "leg_sid": record.get("leg_sid", ""),
        "attempt": record.get("attempt", 0),
        "outcome": record.get("outcome", ""),
        "marks": [{"name": name, "at": at} for name, at in marks],
        "answered_to_stream_ms": record.get("answered_to_stream_ms"),
        "answered_to_first_audio_ms": first_audio_ms(record),
    }


def histogram(values: Iterable[float], edges: Sequence[float] = LATENCY_EDGES_MS) -> list[dict[str, Any]]:
    """Counts per bucket ``[edge, next edge)``; the last bucket is open-ended."""
    counts = [0] * len(edges)
    for value in values:
        index = max((i for i, edge in enumerate(edges) if value >= edge), default=0)
        counts[index] += 1
    return [{"from": edge, "to": edges[i + 1] if i + 1 < len(edges) else None, "count": counts[i]} for i, edge in enumerate(edges)]
