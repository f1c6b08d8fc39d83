"""Text-to-speech adapters: espeak-ng speech, the beeps the server still defaults to, the cache."""

from __future__ import annotations

import asyncio

import pytest

from bot.bots import GreeterBot
from bot.prompts import PROMPTS, PROMPTS_DIR
from bot.tts import TTS, CachedTTS, EspeakTTS
from dialstream.domain.campaign import CampaignConfig
from dialstream.errors import ConfigurationError
from dialstream.exotel.audio import INTERNAL_FORMAT, duration, silence, tone
from tests.bot.speech import speech_features

_DEFAULTS = CampaignConfig("defaults")


def test_the_demo_greeting_is_speech():
    """The greeter's greeting, spoken by espeak-ng, has the envelope, pitch and spectrum of speech."""
    pcm = EspeakTTS().render(GreeterBot.greeting)
    features = speech_features(pcm)
    assert features.looks_like_speech(GreeterBot.greeting) == [], features
    assert features.pauses >= 2  # "Hello!" and "dialstream." end phrases


@pytest.mark.parametrize("text", [*PROMPTS.values(), _DEFAULTS.hold_message, _DEFAULTS.fallback_message])
def test_prompts_hold_and_fallback_messages_are_speech(text):
    """The scripted demo's prompts and the campaign's hold and fallback messages are speech-like."""
    features = speech_features(EspeakTTS().render(text))
    assert features.looks_like_speech(text) == [], features


def test_the_check_tells_tones_from_speech():
    """The same measures reject a tone per word (what the bots once said), so they do tell speech apart."""
    words = GreeterBot.greeting.split()
    beeps = b"".join(tone(INTERNAL_FORMAT, 400 + 40 * (i % 5), 110 * len(w) // 3 + 110) + silence(INTERNAL_FORMAT, 90) for i, w in enumerate(words))
    wrong = speech_features(beeps).looks_like_speech(GreeterBot.greeting)
    assert any("spectrum hardly moves" in why for why in wrong) and any("periodic" in why for why in wrong), wrong


def test_espeak_speech_is_8khz_pcm_as_long_as_the_text():
    """Speech is whole 16-bit samples at 8 kHz, and a longer text takes proportionally longer."""
    tts = EspeakTTS()
    short, long = tts.render("Goodbye!"), tts.render(_DEFAULTS.fallback_message)
    # espeak-ng's pitch flutter runs on from one utterance to the next: lengths agree, bytes may not.
    again = asyncio.run(tts.synthesize("Goodbye!"))
    assert len(short) % 2 == 0 and duration(again) == pytest.approx(duration(short), abs=0.01)
    ratio = duration(long) / duration(short)
    assert 5 <= ratio <= 20  # 14 words against 1, minus the edges' silence
    assert tts.render("") == b""


def test_voices_speeds_and_bad_settings():
    """Another voice or speed sounds different and names itself apart; an unknown voice fails at once."""
    fast, slow = EspeakTTS(words_per_minute=220), EspeakTTS(words_per_minute=120)
    assert duration(slow.render("One moment please.")) > duration(fast.render("One moment please.")) * 1.4
    assert EspeakTTS("en").voice != EspeakTTS("en-us").voice
    with pytest.raises(ConfigurationError, match="no voice"):
        EspeakTTS("xx-none")
    with pytest.raises(ConfigurationError, match="wpm"):
        EspeakTTS(words_per_minute=20)


def test_shipped_prompt_files_are_espeak_speech():
    """The scripted demo plays espeak-ng speech from its WAV files, not tones."""
    from bot.audiofile import read_audio

    pcm = read_audio(PROMPTS_DIR / "welcome.wav")
    assert speech_features(pcm).looks_like_speech(PROMPTS["welcome.wav"]) == []


def test_cache_synthesises_once_per_voice_and_text_and_answers_synchronously():
    """CachedTTS calls the adapter once per (voice, text) and then answers get() without awaiting."""
    calls = []

    class Counting(TTS):
        voice = "a"

        async def synthesize(self, text: str) -> bytes:
            calls.append((self.voice, text))
            return f"{self.voice}:{text}".encode()

    inner = Counting()
    cache = CachedTTS(inner, max_entries=3)
    assert cache.get("a") is None
    asyncio.run(cache.prepare(["a", "b", "a"]))
    assert calls == [("a", "a"), ("a", "b")]
    assert cache.get("a") == b"a:a"
    inner.voice = "b"  # another voice: its own entries
    assert cache.get("a") is None
    asyncio.run(cache.synthesize("a"))
    assert cache.get("a") == b"b:a" and cache.voice == "b"
    asyncio.run(cache.synthesize("c"))  # evicts the least recently used, ("a", "b")
    inner.voice = "a"
    assert cache.get("b") is None and cache.get("a") == b"a:a"
