"""How lenient the sandbox is on the AgentStream wire, as Exotel is. Pure.

**Chunk rules as durations.** Exotel documents its outbound chunk rules in bytes (a
multiple of 320, at least 3,200, at most 100,000; :mod:`dialstream.exotel.agentstream`)
and those figures are 16-bit PCM at 8 kHz: 20 ms, 200 ms and 6.25 s. :class:`ChunkRules`
turns them into the byte counts of a stream's own format (mu-law 8 kHz: 160 / 1,600 /
50,000 bytes; PCM16 16 kHz: 640 / 6,400 / 200,000). Over the maximum is an error (Exotel
says it "might result in timeouts"); below the minimum or misaligned is a warning, as
Exotel plays such audio ("we may face audio issues", "might result into audio gaps"),
unless a scenario asks for strict chunks.

**camelCase ``start``.** :func:`camel_case` respells a frame's keys the way some senders do
(``streamSid``, ``callSid``, ``customParameters``, ``mediaFormat.sampleRate``...), leaving
the keys of ``custom_parameters`` (the user's own) alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dialstream.exotel.agentstream import CHUNK_ALIGN, CHUNK_MAX, CHUNK_MIN, MediaFormat

__all__ = ["REFERENCE_FORMAT", "ChunkRules", "ChunkCheck", "camel_case"]

REFERENCE_FORMAT = MediaFormat.pcm16(8000)
"""The format Exotel's byte figures are written for ("raw/slin 16-bit, 8kHz")."""


@dataclass(frozen=True)
class ChunkCheck:
    """What one bot chunk broke: ``errors`` count against the call, ``warnings`` are reported."""

    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChunkRules:
    """The outbound chunk rules in bytes of one media format."""

    content_type: str
    align: int
    minimum: int
    maximum: int
    bytes_per_ms: float

    @classmethod
    def for_format(cls, fmt: MediaFormat) -> ChunkRules:
        def scaled(reference_bytes: int) -> int:
            # Integer arithmetic: 320 bytes of PCM16 8 kHz is exactly 160 of mu-law, 640 at 16 kHz.
            return reference_bytes * fmt.bytes_per_second // REFERENCE_FORMAT.bytes_per_second

        return cls(
            content_type=fmt.to_content_type(),
            align=scaled(CHUNK_ALIGN),
            minimum=scaled(CHUNK_MIN),
            maximum=scaled(CHUNK_MAX),
            bytes_per_ms=fmt.bytes_per_second / 1000,
        )

    def check(self, nbytes: int, *, strict: bool = False) -> ChunkCheck:
        """The rules a decoded payload of ``nbytes`` breaks; ``strict`` makes every one an error."""
        errors, warnings = [], []
        if nbytes > self.maximum:
            errors.append(f"{self._size(nbytes)} is above the maximum of {self._size(self.maximum)}")
        if nbytes < self.minimum:
            warnings.append(f"{self._size(nbytes)} is below the minimum of {self._size(self.minimum)}")
        if nbytes % self.align:
            warnings.append(f"{self._size(nbytes)} is not a multiple of {self._size(self.align)}")
        if strict:
            return ChunkCheck(errors=(*errors, *warnings))
        return ChunkCheck(errors=tuple(errors), warnings=tuple(warnings))

    def _size(self, nbytes: int) -> str:
        return f"{nbytes} bytes ({nbytes / self.bytes_per_ms:g} ms of {self.content_type})"


_CAMEL = {
    "stream_sid": "streamSid",
    "call_sid": "callSid",
    "account_sid": "accountSid",
    "sequence_number": "sequenceNumber",
    "custom_parameters": "customParameters",
    "media_format": "mediaFormat",
    "sample_rate": "sampleRate",
    "bit_rate": "bitRate",
}


def camel_case(frame: dict[str, Any]) -> dict[str, Any]:
    """``frame`` with Exotel's snake_case keys in camelCase, at every level but custom parameters'."""
    out: dict[str, Any] = {}
    for key, value in frame.items():
        if isinstance(value, dict) and key != "custom_parameters":
            value = camel_case(value)
        out[_CAMEL.get(key, key)] = value
    return out

