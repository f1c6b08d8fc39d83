"""AgentStream media formats: what a stream's payloads contain, in every spelling senders use.

A Legs ``start_stream`` names the format as a ``content_type`` (``audio/x-mulaw;rate=8000``,
the default, or ``audio/L16;rate=16000``); a ``start`` frame as ``media_format``
(``{"encoding": "raw", "sample_rate": "8000", ...}``, reference: ``exotel.md`` §4.2, §4.4).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AudioEncoding",
    "MediaFormat",
    "DEFAULT_MEDIA_FORMAT",
    "SUPPORTED_SAMPLE_RATES",
    "EXTERNAL_BOT_FORMATS",
    "parse_format",
    "choose_content_type",
]


class AudioEncoding(enum.Enum):
    """The two sample encodings AgentStream carries."""

    MULAW = "mulaw"  # G.711 mu-law, 1 byte per sample: the Legs start_stream default
    PCM16 = "pcm16"  # 16-bit little-endian signed, mono: the Voicebot applet's "raw/slin"


# Anything naming mu-law is mu-law; every other spelling is 16-bit PCM ("raw", "audio/x-raw",
# "linear16", "base64", "slin", "audio/L16"... in Exotel's pages and in the wild, §4.2).
_MULAW_MARKERS = ("mulaw", "ulaw", "pcmu")

SUPPORTED_SAMPLE_RATES = (8000, 16000, 24000)


@dataclass(frozen=True, slots=True)
class MediaFormat:
    """The ``start.media_format`` object: what the payloads of a stream contain.

    ``encoding`` keeps the sender's spelling (``"audio/x-mulaw"``, ``"raw"``, ``"linear16"``,
    ...); :attr:`encoding_kind` normalises it. ``bit_rate`` is informational text (Exotel's
    pages disagree on its unit). Unknown encodings count as 16-bit PCM, the documented
    applet format ("raw/slin 16-bit ... little-endian").

    Example::

        MediaFormat.from_content_type("audio/x-mulaw;rate=8000")   # the Legs default
        MediaFormat.from_content_type("audio/L16;rate=16000")
    """

    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000
    bit_rate: str = "64"

    @classmethod
    def from_content_type(cls, content_type: str) -> MediaFormat:
        """Parse a Legs ``start_stream`` ``content_type`` such as ``audio/x-mulaw;rate=8000``.

        Raises:
            ValueError: the rate is not a positive integer.
        """
        mime, _, params = content_type.partition(";")
        rate = 8000
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "rate":
                rate = _positive_int(value.strip(), "rate")
        encoding = mime.strip()
        kind = _encoding_kind(encoding)
        return cls(encoding=encoding, sample_rate=rate, bit_rate=_kbps(kind, rate))

    @classmethod
    def pcm16(cls, sample_rate: int = 8000) -> MediaFormat:
        """16-bit PCM as the Voicebot applet announces it (``encoding: "raw"``)."""
        return cls(encoding="raw", sample_rate=sample_rate, bit_rate=_kbps(AudioEncoding.PCM16, sample_rate))

    @classmethod
    def mulaw(cls, sample_rate: int = 8000) -> MediaFormat:
        """G.711 mu-law (``encoding: "audio/x-mulaw"``)."""
        return cls(encoding="audio/x-mulaw", sample_rate=sample_rate, bit_rate=_kbps(AudioEncoding.MULAW, sample_rate))

    @property
    def encoding_kind(self) -> AudioEncoding:
        return _encoding_kind(self.encoding)

    def to_content_type(self) -> str:
        """The Legs ``content_type`` spelling: ``audio/x-mulaw;rate=8000`` or ``audio/L16;rate=16000``."""
        mime = "audio/x-mulaw" if self.encoding_kind is AudioEncoding.MULAW else "audio/L16"
        return f"{mime};rate={self.sample_rate}"

    @property
    def sample_width(self) -> int:
        """Bytes per sample: 1 for mu-law, 2 for PCM16."""
        return 1 if self.encoding_kind is AudioEncoding.MULAW else 2

    @property
    def bytes_per_second(self) -> int:
        return self.sample_rate * self.sample_width

    @property
    def silence_sample(self) -> bytes:
        """One sample of silence: ``0xFF`` is mu-law's zero, PCM16's is two zero bytes."""
        return b"\xff" if self.encoding_kind is AudioEncoding.MULAW else b"\x00\x00"

    def duration(self, nbytes: int) -> float:
        """Seconds of audio in ``nbytes`` of payload."""
        return nbytes / self.bytes_per_second

    def bytes_for(self, seconds: float) -> int:
        """Payload bytes for ``seconds`` of audio, rounded down to whole samples."""
        return int(seconds * self.sample_rate) * self.sample_width


def _encoding_kind(encoding: str) -> AudioEncoding:
    lowered = encoding.strip().lower()
    if any(marker in lowered for marker in _MULAW_MARKERS):
        return AudioEncoding.MULAW
    return AudioEncoding.PCM16


def _kbps(kind: AudioEncoding, rate: int) -> str:
    return str(rate * (8 if kind is AudioEncoding.MULAW else 16) // 1000)


DEFAULT_MEDIA_FORMAT = MediaFormat.mulaw(8000)
"""The Legs ``start_stream`` default, ``audio/x-mulaw;rate=8000`` (§4.4)."""


EXTERNAL_BOT_FORMATS = ("audio/L16;rate=8000",)
"""What a bot we did not write is assumed to accept: 16-bit PCM at 8 kHz, the applet's format,
which pipecat's ExotelFrameSerializer, bolna and Exotel's own samples expect (§4.4)."""

_SHORT_NAMES = {"pcm16": AudioEncoding.PCM16, "l16": AudioEncoding.PCM16, "mulaw": AudioEncoding.MULAW, "ulaw": AudioEncoding.MULAW}


def parse_format(text: str) -> MediaFormat:
    """A format as a user writes it: a content type (``audio/L16;rate=16000``) or
    ``ENCODING[:RATE]`` (``pcm16:16000``, ``mulaw``; the rate defaults to 8000).

    Raises:
        ValueError: an unknown encoding, or a rate AgentStream does not carry.
    """
    text = text.strip()
    if "/" in text:
        fmt = MediaFormat.from_content_type(text)
    else:
        name, _, rate = text.partition(":")
        kind = _SHORT_NAMES.get(name.strip().lower())
        if kind is None:
            raise ValueError(f"{text!r}: expected a content type or one of {', '.join(sorted(_SHORT_NAMES))}[:RATE]")
        sample_rate = _positive_int(rate.strip(), "rate") if rate else 8000
        fmt = MediaFormat.mulaw(sample_rate) if kind is AudioEncoding.MULAW else MediaFormat.pcm16(sample_rate)
    if fmt.sample_rate not in SUPPORTED_SAMPLE_RATES:
        raise ValueError(f"{text!r}: rate {fmt.sample_rate}; AgentStream carries {', '.join(map(str, SUPPORTED_SAMPLE_RATES))}")
    return fmt


def choose_content_type(accepted: Sequence[str], preferred: str) -> str:
    """The ``content_type`` a ``start_stream`` asks for, given what the chosen bot accepts.

    ``preferred`` (the campaign's) when the bot accepts it, or declares nothing (an
    unregistered static URL: the campaign knows best). Otherwise the accepted format
    closest to it: the same encoding at another rate, else the same rate in another
    encoding, else the bot's first; in the Legs spelling (``audio/L16;rate=8000``).
    """
    if not accepted:
        return preferred
    want = MediaFormat.from_content_type(preferred)
    formats = [MediaFormat.from_content_type(text) for text in accepted]

    def rank(fmt: MediaFormat) -> tuple[bool, bool]:
        return fmt.encoding_kind is not want.encoding_kind, fmt.sample_rate != want.sample_rate

    best = min(formats, key=rank)  # min keeps the first of equals: the bot's own order
    return preferred if rank(best) == (False, False) else best.to_content_type()


def _positive_int(text: str, name: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"{name}={text!r}: expected a positive integer")
    return int(text)
