"""Energy-based voice-activity detection for turn taking, without I/O.

Telephone audio at 8 kHz has little noise once the line is up, so RMS energy over
20 ms windows with two hysteresis times is enough to tell "the caller started
talking" (barge-in) from "the caller finished a turn". The clock is the audio itself:
time advances by the duration fed in, which keeps the detector deterministic.

Example::

    vad = VoiceActivity(threshold=500)
    for event in vad.feed(pcm):
        if event is SPEECH_STARTED: ...
"""

from __future__ import annotations

from dataclasses import dataclass

from dialstream.exotel.audio import INTERNAL_RATE, SAMPLE_WIDTH, energy

__all__ = ["VadSettings", "DEFAULT_VAD", "VoiceActivity", "SPEECH_STARTED", "SPEECH_ENDED"]

SPEECH_STARTED = "speech_started"
"""Voice lasted ``speech_ms``: the caller is talking (time to stop the bot's prompt)."""
SPEECH_ENDED = "speech_ended"
"""After speech, silence lasted ``silence_ms``: the caller's turn is over."""

_WINDOW_BYTES = INTERNAL_RATE * SAMPLE_WIDTH * 20 // 1000  # 20 ms


@dataclass(frozen=True, slots=True)
class VadSettings:
    """``threshold`` is RMS of 16-bit PCM (0..32767); quiet speech on a phone line is ~1000."""

    threshold: int = 500
    speech_ms: int = 200
    silence_ms: int = 700


DEFAULT_VAD = VadSettings()


class VoiceActivity:
    """Turns a stream of internal PCM into speech-started / speech-ended events."""

    def __init__(self, settings: VadSettings = DEFAULT_VAD) -> None:
        self.settings = settings
        self.speaking = False
        self._run_ms = 0  # how long the current voiced (or, while speaking, unvoiced) run is
        self._buffer = b""

    def feed(self, pcm: bytes) -> list[str]:
        """Advance by ``pcm``; return the events it completes, in order."""
        events = []
        data = self._buffer + pcm
        usable = len(data) - len(data) % _WINDOW_BYTES
        self._buffer = data[usable:]
        for offset in range(0, usable, _WINDOW_BYTES):
            voiced = energy(data[offset : offset + _WINDOW_BYTES]) >= self.settings.threshold
            # While silent we count voice; while speaking we count silence.
            self._run_ms = self._run_ms + 20 if voiced != self.speaking else 0
            if not self.speaking and self._run_ms >= self.settings.speech_ms:
                self.speaking, self._run_ms = True, 0
                events.append(SPEECH_STARTED)
            elif self.speaking and self._run_ms >= self.settings.silence_ms:
                self.speaking, self._run_ms = False, 0
                events.append(SPEECH_ENDED)
        return events
