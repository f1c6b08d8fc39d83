"""What the sandbox knows about one bot stream, without I/O: the record the reports read.

:class:`sim.media.Stream` moves the frames and fills this record in; the leg keeps the
records (:attr:`sim.leg.Leg.streams`) so its reports and invariants need no socket.
"""

from __future__ import annotations

from typing import Any

from dialstream.exotel.agentstream import MediaFormat
from sim.action import ActionRecord
from sim.wire import ChunkCheck

__all__ = ["StreamRecord", "KEEP"]

KEEP = 20  # detailed problem records kept per stream (counts stay exact): a broken bot can err 10 times a second


class StreamRecord:
    """One accepted ``start_stream``: its identity, its life and what the bot sent."""

    def __init__(self, stream_sid: str, action: ActionRecord, url: str, direction: str, fmt: MediaFormat) -> None:
        self.stream_sid = stream_sid
        self.action = action
        self.url = url
        self.direction = direction
        self.format = fmt
        self.requested_at = action.received_at
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self.stop_reason: str | None = None
        self.error: str | None = None
        self.handshake_errors: list[str] = []
        self.frames_sent = 0
        self.bot_chunks = 0
        self.bot_bytes = 0
        self.marks_echoed: list[str] = []
        self.clears = 0
        self.dtmf_sent: list[str] = []
        self.ignored_frames = 0  # bot frames on a unidirectional stream
        self.protocol_errors: list[str] = []
        self.protocol_error_count = 0
        self.violations: list[dict[str, Any]] = []  # chunks over the rules' errors (see sim.wire)
        self.violation_count = 0
        self.warnings: list[dict[str, Any]] = []  # chunks Exotel plays but warns about
        self.warning_count = 0

    @property
    def active(self) -> bool:
        """Requested and not yet stopped: what counts against the account's stream limit."""
        return self.stopped_at is None

    def protocol_error(self, reason: str) -> None:
        self.protocol_error_count += 1
        if len(self.protocol_errors) < KEEP:
            self.protocol_errors.append(reason)

    def chunk(self, at: float, nbytes: int, check: ChunkCheck) -> None:
        """Count one bot chunk and whatever rules it broke."""
        self.bot_chunks += 1
        self.bot_bytes += nbytes
        for problems, kept, count in ((check.errors, self.violations, "violation_count"), (check.warnings, self.warnings, "warning_count")):
            if problems:
                setattr(self, count, getattr(self, count) + 1)
                if len(kept) < KEEP:
                    kept.append({"at": at, "bytes": nbytes, "problems": list(problems)})

    def report(self) -> dict[str, Any]:
        return {
            "stream_sid": self.stream_sid,
            "action_sid": self.action.action_sid,
            "url": self.url,
            "direction": self.direction,
            "content_type": self.format.to_content_type(),
            "requested_at": self.requested_at,
            "started_at": self.started_at,
            "stopped_at": self.stopped_at,
            "stop_reason": self.stop_reason,
            "error": self.error,
            "handshake_attempts": len(self.handshake_errors) + (self.started_at is not None),
            "handshake_errors": self.handshake_errors,
            "frames_sent": self.frames_sent,
            "bot_chunks": self.bot_chunks,
            "bot_bytes": self.bot_bytes,
            "bot_audio_ms": round(self.format.duration(self.bot_bytes) * 1000, 3),
            "marks_echoed": self.marks_echoed,
            "clears": self.clears,
            "dtmf_sent": self.dtmf_sent,
            "ignored_frames": self.ignored_frames,
            "protocol_errors": self.protocol_errors,
            "protocol_error_count": self.protocol_error_count,
            "violations": self.violations,
            "violation_count": self.violation_count,
            "warnings": self.warnings,
            "warning_count": self.warning_count,
        }
