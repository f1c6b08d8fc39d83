"""Whether a live call's concurrency slot heartbeat beats on. Pure, no I/O.

A call holds a slot (``dialstream.state.slots``) that lapses unless refreshed; a timer beats
for it while the call lives, so a worker that dies mid-call leaves no slot held for good."""

from __future__ import annotations

from enum import StrEnum

from dialstream.domain.leg_record import LegRecord

__all__ = ["Beat", "heartbeat", "beat_interval", "BEATS_PER_TTL"]

BEATS_PER_TTL = 3  # slot heartbeats per slot lifetime: a late beat or two does not lose the slot


class Beat(StrEnum):
    """What a call's slot heartbeat does."""

    RELEASE = "released"  # the call ended: give its slot back
    EXPIRE = "expired"  # the call outlived any time limit: beat no more, the slot lapses by itself
    REFRESH = "refreshed"  # the call lives: keep its slot (counted again if it lapsed) and beat again


def heartbeat(record: LegRecord | None, now: float, until: float) -> Beat:
    """The heartbeat of the slot of a call whose leg is ``record`` (None: no event yet),
    beating until ``until`` (Unix seconds, past the call's ring and time limits)."""
    if record is not None and record.finished:
        return Beat.RELEASE
    if now > until:
        return Beat.EXPIRE
    return Beat.REFRESH


def beat_interval(slot_ttl: float) -> float:
    """Seconds between two heartbeats of a slot that lives ``slot_ttl`` seconds unrefreshed."""
    return slot_ttl / BEATS_PER_TTL
