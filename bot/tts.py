"""Text-to-speech adapters.

A bot says text through a :class:`TTS`: one ``async synthesize(text) -> PCM`` method
returning internal PCM (16-bit, 8 kHz, mono; :data:`dialstream.exotel.audio.INTERNAL_FORMAT`).
Write one adapter per vendor; the server wraps whatever it is given in a
:class:`CachedTTS`, so prompts known in advance are synthesised once per process,
before the first call arrives.

:class:`BeepTTS` is the built-in: dependency-free and offline. It renders each syllable
as a short tone, so a listener (or a test) hears the rhythm of the sentence. It is
meant for demos and tests, not for callers.

Example::

    class MyVendorTTS(TTS):
        async def synthesize(self, text: str) -> bytes:
            audio = await my_client.speak(text, rate=8000)
            return audio.pcm16
"""

from __future__ import annotations

import re
import zlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable

from dialstream.exotel.audio import INTERNAL_FORMAT, silence, tone

__all__ = ["TTS", "BeepTTS", "CachedTTS"]


class TTS(ABC):
    """A text-to-speech adapter."""

    @abstractmethod
    async def synthesize(self, text: str) -> bytes:
        """Speech for ``text`` as internal PCM (16-bit little-endian, 8 kHz, mono)."""


_WORD = re.compile(r"[A-Za-z0-9']+|[.,;:!?]")
_VOWEL_GROUPS = re.compile(r"[aeiouy]+")


class BeepTTS(TTS):
    """One tone per syllable, a pause per word and a longer one per punctuation mark.

    Each word keeps a stable pitch (from a hash of the word) so repeated prompts sound
    the same; a question mark raises the last word's pitch.
    """

    def __init__(self, *, syllable_ms: int = 110, gap_ms: int = 30, word_gap_ms: int = 90, pause_ms: int = 250) -> None:
        self.syllable_ms = syllable_ms
        self.gap_ms = gap_ms
        self.word_gap_ms = word_gap_ms
        self.pause_ms = pause_ms

    async def synthesize(self, text: str) -> bytes:
        return self.render(text)

    def render(self, text: str) -> bytes:
        """The same audio :meth:`synthesize` returns, synchronously (for prompt files)."""
        tokens = _WORD.findall(text)
        parts: list[bytes] = []
        for index, token in enumerate(tokens):
            if not token[0].isalnum():
                parts.append(silence(INTERNAL_FORMAT, self.pause_ms))
                continue
            pitch = 220.0 + zlib.crc32(token.lower().encode()) % 220
            if index + 1 < len(tokens) and tokens[index + 1] == "?":
                pitch *= 1.3
            for _ in range(_syllables(token)):
                parts.append(tone(INTERNAL_FORMAT, pitch, self.syllable_ms, amplitude=0.25))
                parts.append(silence(INTERNAL_FORMAT, self.gap_ms))
            parts.append(silence(INTERNAL_FORMAT, self.word_gap_ms))
        return b"".join(parts)


def _syllables(word: str) -> int:
    if word.isdigit():
        return len(word)
    groups = len(_VOWEL_GROUPS.findall(word.lower()))
    if word.lower().endswith("e") and groups > 1:
        groups -= 1  # a silent final e: "prepare", "here"
    return max(1, groups)


class CachedTTS(TTS):
    """Remembers the last ``max_entries`` synthesised texts of another adapter.

    :meth:`get` answers synchronously from the cache, which is how a prepared prompt
    leaves within milliseconds of ``start`` instead of waiting for a synthesis.
    """

    def __init__(self, inner: TTS, *, max_entries: int = 256) -> None:
        self.inner = inner
        self.max_entries = max_entries
        self._cache: OrderedDict[str, bytes] = OrderedDict()

    def get(self, text: str) -> bytes | None:
        audio = self._cache.get(text)
        if audio is not None:
            self._cache.move_to_end(text)
        return audio

    async def synthesize(self, text: str) -> bytes:
        audio = self.get(text)
        if audio is None:
            audio = await self.inner.synthesize(text)
            self._cache[text] = audio
            if len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return audio

    async def prepare(self, texts: Iterable[str]) -> None:
        """Synthesise ``texts`` now so that later calls find them cached."""
        for text in texts:
            await self.synthesize(text)
