"""Call recording on a leg or a bridge, and the recordings the sandbox serves.

``<StartRecording direction format .../>`` (or create-leg ``record: true``, from the answer)
emits ``recording_started {recording_sid, direction, format}``; ``<StopRecording/>`` emits
``recording_stopped {recording_sid, duration_ms}`` and, ``timing.recording_ready_ms``
later, ``recording_available {status: "completed", recording_sid, url, duration_ms}``. A
hang-up (or the end of a bridge) stops a recording with both events at once, before
``leg_terminated``. The URL serves a WAV file (16-bit PCM, 8 kHz, mono) of the recorded
length (``GET /sim/v1/recordings/{recording_sid}.wav``, :func:`wav`).
"""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sim.action import ActionRecord
from sim.config import Timing
from sim.owner import Owner

__all__ = ["Recording", "Recorder", "wav", "MAX_SERVED_S"]

MAX_SERVED_S = 600.0  # longest audio a served recording holds; the report keeps the true length
_RATE = 8000


@dataclass(eq=False)
class Recording:
    recording_sid: str
    of: str  # the leg or bridge SID
    direction: str
    format: str
    started_at: float
    url: str
    stopped_at: float | None = None
    available: bool = False

    def duration_ms(self, now: float) -> int:
        return round(((self.stopped_at or now) - self.started_at) * 1000)

    def report(self, now: float) -> dict[str, Any]:
        return {
            "recording_sid": self.recording_sid,
            "direction": self.direction,
            "format": self.format,
            "started_at": self.started_at,
            "stopped_at": self.stopped_at,
            "duration_ms": self.duration_ms(now),
            "url": self.url,
            "available": self.available,
        }


class Recorder:
    """At most one recording at a time on one leg or bridge; every one is kept (``kept``, ``into``)."""

    def __init__(
        self, owner: Owner, of: str, timing: Timing, sids: Callable[[], str], url: Callable[[str], str],
        kept: dict[str, Recording], into: list[Recording], on_change: Callable[[bool], None] | None = None,
    ) -> None:  # fmt: skip
        self._owner, self._of, self._timing, self._sids, self._url = owner, of, timing, sids, url
        self._kept = kept  # the account's recordings, by SID: what the sandbox serves
        self._into = into  # the leg's (or bridge's) own list, for its report
        self._on_change = on_change or (lambda recording: None)
        self.current: Recording | None = None

    def start(self, action: ActionRecord | None, direction: str = "both", fmt: str = "wav") -> None:
        """Start recording; a second start while recording changes nothing (one recording at a time)."""
        if self.current is not None:
            return
        sid = self._sids()
        recording = Recording(sid, self._of, direction, fmt, self._owner.clock.now(), self._url(sid))
        self.current = recording
        self._into.append(recording)
        self._kept[sid] = recording
        self._on_change(True)
        self._owner.emit("recording_started", action=action, detail={"recording_sid": sid, "direction": direction, "format": fmt})

    def stop(self, action: ActionRecord | None, *, at_once: bool = False) -> None:
        """Stop the recording in progress, if any; it becomes available later, or ``at_once`` (the end)."""
        recording, self.current = self.current, None
        if recording is None:
            return
        now = self._owner.clock.now()
        recording.stopped_at = now
        self._on_change(False)
        detail = {"recording_sid": recording.recording_sid, "duration_ms": recording.duration_ms(now)}
        self._owner.emit("recording_stopped", action=action, detail=detail)
        if at_once:
            self._available(recording, action)
        else:
            self._owner.spawn(self._available_later(recording, action))

    async def _available_later(self, recording: Recording, action: ActionRecord | None) -> None:
        await asyncio.sleep(self._timing.recording_ready_ms / 1000)
        self._available(recording, action)

    def _available(self, recording: Recording, action: ActionRecord | None) -> None:
        recording.available = True
        detail = {
            "status": "completed",
            "recording_sid": recording.recording_sid,
            "url": recording.url,
            "duration_ms": recording.duration_ms(self._owner.clock.now()),
        }
        self._owner.emit("recording_available", action=action, detail=detail)


def wav(recording: Recording, now: float) -> bytes:
    """The recording as a WAV file of silence, as long as it was (at most :data:`MAX_SERVED_S`)."""
    seconds = min(recording.duration_ms(now) / 1000, MAX_SERVED_S)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(_RATE)
        out.writeframes(b"\x00\x00" * int(seconds * _RATE))
    return buffer.getvalue()
