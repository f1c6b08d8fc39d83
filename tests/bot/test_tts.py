"""Text-to-speech adapters: the offline beeps and the cache."""

from __future__ import annotations

import asyncio

from bot.tts import TTS, BeepTTS, CachedTTS
from dialstream.exotel.audio import duration, energy


def test_beep_tts_is_deterministic_audible_pcm():
    """BeepTTS renders the same text to the same audible internal PCM every time."""
    tts = BeepTTS()
    audio = asyncio.run(tts.synthesize("Hello, world!"))
    assert audio == tts.render("Hello, world!")
    assert len(audio) % 2 == 0 and energy(audio) > 1000


def test_beep_tts_length_follows_syllables():
    """More syllables and punctuation make longer speech."""
    tts = BeepTTS(syllable_ms=100, gap_ms=0, word_gap_ms=0, pause_ms=200)
    assert duration(tts.render("cat")) == 0.1
    assert duration(tts.render("banana")) == 0.3
    assert duration(tts.render("cat.")) == 0.3
    assert duration(tts.render("42")) == 0.2


def test_cache_synthesises_once_and_answers_synchronously():
    """CachedTTS calls the adapter once per text and then answers get() without awaiting."""
    calls = []

    class Counting(TTS):
        async def synthesize(self, text: str) -> bytes:
            calls.append(text)
            return text.encode()

    cache = CachedTTS(Counting(), max_entries=2)
    assert cache.get("a") is None
    asyncio.run(cache.prepare(["a", "b", "a"]))
    assert calls == ["a", "b"]
    assert cache.get("a") == b"a"
    asyncio.run(cache.synthesize("c"))  # evicts the least recently used, "b"
    assert cache.get("b") is None and cache.get("a") == b"a"
