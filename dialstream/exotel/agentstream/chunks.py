"""Exotel's rules for the size of a bot's outbound ``media`` payloads (``exotel.md`` §4.4), and a cutter that keeps them.

"Minimum chunk size: 3.2k", "Maximum chunk size: 100k", "Chunk size should always be in
multiple of 320 bytes": sizes of the decoded payload, whatever the encoding.
"""

from __future__ import annotations

__all__ = ["CHUNK_ALIGN", "CHUNK_MIN", "CHUNK_MAX", "chunk_violations", "split_into_chunks"]

CHUNK_ALIGN = 320
"""Outbound payloads must be a multiple of 320 bytes; otherwise Exotel waits 20 ms after the short tail."""
CHUNK_MIN = 3200
"""Smallest outbound payload; smaller ones risk audio issues from network jitter."""
CHUNK_MAX = 100_000
"""Largest outbound payload; larger ones "might result in timeouts"."""


def chunk_violations(nbytes: int) -> list[str]:
    """Which outbound chunk rules a decoded payload of ``nbytes`` breaks; empty if none."""
    problems = []
    if nbytes % CHUNK_ALIGN:
        problems.append(f"{nbytes} bytes is not a multiple of {CHUNK_ALIGN}")
    if nbytes < CHUNK_MIN:
        problems.append(f"{nbytes} bytes is below the minimum of {CHUNK_MIN}")
    if nbytes > CHUNK_MAX:
        problems.append(f"{nbytes} bytes is above the maximum of {CHUNK_MAX}")
    return problems


def split_into_chunks(audio: bytes, *, chunk_bytes: int = CHUNK_MIN, silence: bytes) -> list[bytes]:
    """Cut ``audio`` into payloads that satisfy every chunk rule.

    Every chunk is ``chunk_bytes`` long except the last, which is padded with ``silence``
    (one sample of the encoding's silence, see :attr:`MediaFormat.silence_sample`) up to a
    multiple of 320 bytes and at least :data:`CHUNK_MIN`. A short tail is merged into the
    chunk before it when that stays within :data:`CHUNK_MAX`, so less silence is added.

    Raises:
        ValueError: ``chunk_bytes`` itself breaks the rules, or ``silence`` does not fit
            a 320-byte frame a whole number of times.
    """
    if chunk_violations(chunk_bytes):
        raise ValueError(f"chunk_bytes={chunk_bytes}: {'; '.join(chunk_violations(chunk_bytes))}")
    if not silence or CHUNK_ALIGN % len(silence):
        raise ValueError(f"silence must be 1 or 2 bytes (one sample), got {len(silence)}")
    if not audio:
        return []
    chunks = [audio[offset : offset + chunk_bytes] for offset in range(0, len(audio), chunk_bytes)]
    tail = chunks[-1]
    if len(tail) < CHUNK_MIN and len(chunks) > 1 and len(chunks[-2]) + _padded_length(len(tail), 0) <= CHUNK_MAX:
        tail = chunks.pop(-2) + chunks.pop()
        chunks.append(tail)
    chunks[-1] = tail + _silence(silence, _padded_length(len(tail), CHUNK_MIN) - len(tail))
    return chunks


def _padded_length(nbytes: int, minimum: int) -> int:
    return max(-(-nbytes // CHUNK_ALIGN) * CHUNK_ALIGN, minimum)


def _silence(sample: bytes, nbytes: int) -> bytes:
    return (sample * (nbytes // len(sample) + 1))[:nbytes]
