"""Reading and writing prompt files as internal PCM.

Two formats, both in the standard library's reach: WAV with 16-bit mono PCM at any
rate (resampled to 8 kHz), and headerless G.711 mu-law at 8 kHz (``.ulaw``), the Legs
stream's own format. Files are read once per process and kept: prompts are small and
reused by every call.
"""

from __future__ import annotations

import functools
import os
import wave
from pathlib import Path

from dialstream.exotel.audio import INTERNAL_RATE, SAMPLE_WIDTH, mulaw_decode, resample

__all__ = ["read_audio", "write_wav"]


def read_audio(path: str | os.PathLike[str]) -> bytes:
    """Internal PCM from a ``.wav`` (16-bit mono) or ``.ulaw`` (mu-law, 8 kHz) file.

    Raises:
        ValueError: the file is not one of those formats.
        OSError: it cannot be read.
    """
    return _read(str(Path(path).resolve()))


@functools.lru_cache(maxsize=128)
def _read(path: str) -> bytes:
    if path.endswith(".ulaw"):
        return mulaw_decode(Path(path).read_bytes())
    if not path.endswith(".wav"):
        raise ValueError(f"{path}: expected a .wav or .ulaw file")
    try:
        with wave.open(path, "rb") as wav:
            if wav.getnchannels() != 1 or wav.getsampwidth() != SAMPLE_WIDTH:
                raise ValueError(f"{path}: expected 16-bit mono PCM WAV")
            rate = wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except wave.Error as exc:
        raise ValueError(f"{path}: {exc}") from None
    return resample(frames, rate, INTERNAL_RATE)


def write_wav(path: str | os.PathLike[str], pcm: bytes, *, rate: int = INTERNAL_RATE) -> None:
    """Write 16-bit mono PCM as a WAV file."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(rate)
        wav.writeframes(pcm)
