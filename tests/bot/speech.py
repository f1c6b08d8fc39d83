"""What tells speech from other sound, measured on internal PCM (8 kHz, 16-bit) with numpy.

No speech recogniser: pocketsphinx's wheel ships an English model, but it recognised about a
third of espeak-ng's words at telephone bandwidth, too few to assert on. These measures are
the ones a recogniser relies on: a syllabic energy envelope with pauses at phrase breaks, a
voice pitch that moves, and formants that move the spectrum from sound to sound. The bounds
leave a margin both ways: over 30 renderings of every shipped text, espeak-ng measured a
periodic share of 0.49-0.95, a spectral spread of 153-483 Hz and 15-24 % of its energy above
1 kHz; a tone per syllable measures 1.0, 0-79 Hz and 0 %.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

RATE = 8000
_FRAME = 160  # 20 ms: the energy envelope
_WINDOW = 320  # 40 ms: pitch and spectrum
_LOUD = 0.1  # a frame is sound when its RMS is above this share of the loudest frame's


@dataclass(frozen=True)
class SpeechFeatures:
    seconds: float
    pauses: int  # silences of 80 ms or more between sounds
    periodic_share: float  # loud windows with a clear pitch (vowels); speech also has unvoiced ones
    pitch_hz: float  # median pitch of the periodic windows
    pitch_spread_hz: float  # intonation: a standard deviation
    centroid_spread_hz: float  # how far the spectrum's centre moves between windows (formants)
    voice_band_share: float  # energy between 80 and 3,400 Hz
    above_1khz_share: float  # harmonics and consonants, where a plain tone has nothing

    def looks_like_speech(self, text: str) -> list[str]:
        """Why this is not ``text`` spoken; empty when it looks like it."""
        wrong = []
        words = len(text.split())
        if not 0.2 <= self.seconds / words <= 0.7:
            wrong.append(f"{self.seconds / words:.2f} s per word")
        if self.pauses < 1 and re.search(r"[.,;:!?]\s+\S", text):
            wrong.append("no pause between phrases")
        if not 0.3 <= self.periodic_share <= 0.98:
            wrong.append(f"{self.periodic_share:.0%} of the sound is periodic (vowels and consonants mix)")
        if not 70 <= self.pitch_hz <= 300:
            wrong.append(f"pitch {self.pitch_hz:.0f} Hz is not a voice's")
        if self.pitch_spread_hz < 3:
            wrong.append("a monotone pitch")
        if self.centroid_spread_hz < 110:
            wrong.append(f"the spectrum hardly moves ({self.centroid_spread_hz:.0f} Hz)")
        if self.voice_band_share < 0.9 or self.above_1khz_share < 0.05:
            wrong.append(f"energy not spread over the voice band ({self.voice_band_share:.0%}, {self.above_1khz_share:.1%} above 1 kHz)")
        return wrong


def speech_features(pcm: bytes) -> SpeechFeatures:
    samples = np.frombuffer(pcm, "<i2").astype(float)
    frames = len(samples) // _FRAME
    rms = np.sqrt((samples[: frames * _FRAME].reshape(frames, _FRAME) ** 2).mean(axis=1))
    threshold = _LOUD * rms.max()
    loud = np.flatnonzero(rms > threshold)
    gaps = np.diff(loud) - 1  # quiet frames between two loud ones
    pitches, centroids = [], []
    band = np.zeros(3)  # all, 80-3,400 Hz, above 1 kHz
    freqs = np.fft.rfftfreq(1024, 1 / RATE)
    window = np.hanning(_WINDOW)
    for start in range(0, len(samples) - _WINDOW, _WINDOW // 2):
        chunk = samples[start : start + _WINDOW] * window
        if np.sqrt((chunk**2).mean()) < threshold:
            continue
        power = np.abs(np.fft.rfft(chunk, 1024)) ** 2
        centroids.append((power * freqs).sum() / power.sum())
        band += (power.sum(), power[(freqs >= 80) & (freqs <= 3400)].sum(), power[freqs > 1000].sum())
        correlation = np.correlate(chunk, chunk, "full")[_WINDOW - 1 :]
        low, high = RATE // 300, RATE // 70
        lag = low + int(np.argmax(correlation[low:high]))
        if correlation[lag] > 0.5 * correlation[0]:
            pitches.append(RATE / lag)
    total = max(band[0], 1e-9)
    return SpeechFeatures(
        seconds=len(samples) / RATE,
        pauses=int((gaps >= 4).sum()),
        periodic_share=len(pitches) / max(1, len(centroids)),
        pitch_hz=float(np.median(pitches)) if pitches else 0.0,
        pitch_spread_hz=float(np.std(pitches)) if pitches else 0.0,
        centroid_spread_hz=float(np.std(centroids)) if centroids else 0.0,
        voice_band_share=float(band[1] / total),
        above_1khz_share=float(band[2] / total),
    )
