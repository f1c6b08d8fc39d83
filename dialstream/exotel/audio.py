"""Audio conversion between AgentStream media formats and the bot's internal PCM.

Bot logic (echo, voice-activity detection, prompts, TTS) sees ONE format,
:data:`INTERNAL_FORMAT`: 16-bit little-endian mono PCM at **8 kHz**. Why 8 kHz and not
16 kHz: the phone network delivers 300-3400 Hz audio, the Legs default stream is G.711
mu-law at 8 kHz, so 8 kHz loses nothing a call carries, needs only a table lookup (no
resampling) on the common path, and halves per-stream memory and CPU against 16 kHz. A
16/24 kHz applet stream is downsampled on the way in and upsampled on the way out.

:class:`Transcoder` is stateful per stream because resampling (``audioop.ratecv``) carries
filter state from one chunk to the next; mu-law itself is stateless. The module is pure:
no I/O, no clock.

Example::

    codec = Transcoder(MediaFormat.mulaw(8000))
    pcm = codec.decode(media.payload)        # internal PCM
    payload = codec.encode(pcm)              # back to the stream's format
"""

from __future__ import annotations

import math
import sys
import warnings
from array import array

from dialstream.exotel.agentstream import AudioEncoding, MediaFormat

# audioop is deprecated in 3.11/3.12 and gone from the stdlib in 3.13, where the
# audioop-lts package (a declared dependency) provides the same module.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = [
    "INTERNAL_RATE",
    "INTERNAL_FORMAT",
    "SAMPLE_WIDTH",
    "Transcoder",
    "mulaw_encode",
    "mulaw_decode",
    "resample",
    "silence",
    "tone",
    "energy",
    "duration",
]

INTERNAL_RATE = 8000
SAMPLE_WIDTH = 2
INTERNAL_FORMAT = MediaFormat.pcm16(INTERNAL_RATE)
"""16-bit little-endian mono PCM at 8 kHz: what every bot callback receives and sends."""

_BIG_ENDIAN = sys.byteorder == "big"

# audioop.ratecv's opaque filter state, carried from one chunk to the next.
_RateState = tuple[int, tuple[tuple[int, int], ...]]


def mulaw_encode(pcm: bytes) -> bytes:
    """16-bit PCM to G.711 mu-law (one byte per sample)."""
    return audioop.lin2ulaw(pcm, SAMPLE_WIDTH)


def mulaw_decode(data: bytes) -> bytes:
    """G.711 mu-law to 16-bit PCM."""
    return audioop.ulaw2lin(data, SAMPLE_WIDTH)


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample a complete clip of 16-bit PCM (for streams, use a :class:`Transcoder`)."""
    if from_rate == to_rate:
        return pcm
    converted, _ = audioop.ratecv(pcm, SAMPLE_WIDTH, 1, from_rate, to_rate, None)
    return converted


class Transcoder:
    """Converts one stream's payloads to internal PCM and back.

    Keep one per stream: :meth:`decode` and :meth:`encode` each carry their own
    resampler state from one chunk to the next.
    """

    __slots__ = ("media_format", "_mulaw", "_rate", "_decode_state", "_encode_state")

    def __init__(self, media_format: MediaFormat) -> None:
        self.media_format = media_format
        self._mulaw = media_format.encoding_kind is AudioEncoding.MULAW
        self._rate = media_format.sample_rate
        self._decode_state: _RateState | None = None
        self._encode_state: _RateState | None = None

    def decode(self, payload: bytes) -> bytes:
        """Stream payload to internal PCM. A trailing odd byte of PCM16 is dropped."""
        pcm = mulaw_decode(payload) if self._mulaw else payload[: len(payload) & ~1]
        if self._rate != INTERNAL_RATE:
            pcm, self._decode_state = audioop.ratecv(
                pcm, SAMPLE_WIDTH, 1, self._rate, INTERNAL_RATE, self._decode_state
            )
        return pcm

    def encode(self, pcm: bytes) -> bytes:
        """Internal PCM to the stream's payload format."""
        if self._rate != INTERNAL_RATE:
            pcm, self._encode_state = audioop.ratecv(
                pcm, SAMPLE_WIDTH, 1, INTERNAL_RATE, self._rate, self._encode_state
            )
        return mulaw_encode(pcm) if self._mulaw else pcm

    def encode_clip(self, pcm: bytes) -> bytes:
        """Encode a whole clip without touching the streaming state (for prepared prompts)."""
        pcm = resample(pcm, INTERNAL_RATE, self._rate)
        return mulaw_encode(pcm) if self._mulaw else pcm


def silence(fmt: MediaFormat, ms: float) -> bytes:
    """``ms`` milliseconds of silence in ``fmt`` (mu-law silence is ``0xFF``, not zero)."""
    return fmt.silence_sample * int(fmt.sample_rate * ms / 1000)


def tone(fmt: MediaFormat, hz: float, ms: float, *, amplitude: float = 0.3) -> bytes:
    """A sine tone of ``hz`` for ``ms`` milliseconds in ``fmt``; ``amplitude`` is 0..1 of full scale.

    The first and last 5 ms are faded to avoid clicks at the edges.
    """
    rate = fmt.sample_rate
    count = int(rate * ms / 1000)
    fade = max(1, min(count // 2, rate // 200))
    peak = 32767 * max(0.0, min(amplitude, 1.0))
    step = 2 * math.pi * hz / rate
    samples = array("h", bytes(2 * count))
    for i in range(count):
        envelope = min(1.0, i / fade, (count - 1 - i) / fade)
        samples[i] = int(peak * envelope * math.sin(step * i))
    if _BIG_ENDIAN:
        samples.byteswap()
    pcm = samples.tobytes()
    return mulaw_encode(pcm) if fmt.encoding_kind is AudioEncoding.MULAW else pcm


def energy(pcm: bytes) -> int:
    """RMS of internal PCM (0..32767): the voice-activity measure."""
    return audioop.rms(pcm, SAMPLE_WIDTH) if pcm else 0


def duration(pcm: bytes) -> float:
    """Seconds of internal PCM in ``pcm``."""
    return len(pcm) / (INTERNAL_RATE * SAMPLE_WIDTH)
