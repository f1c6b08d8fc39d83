"""Energy-based voice-activity detection."""

from __future__ import annotations

from bot.vad import SPEECH_ENDED, SPEECH_STARTED, VadSettings, VoiceActivity
from dialstream.exotel.audio import INTERNAL_FORMAT, silence, tone

LOUD = 0.3


def test_speech_starts_after_speech_ms_and_ends_after_silence_ms():
    """Voice longer than speech_ms starts a turn; silence longer than silence_ms ends it."""
    vad = VoiceActivity(VadSettings(threshold=500, speech_ms=200, silence_ms=400))
    assert vad.feed(tone(INTERNAL_FORMAT, 300, 180, amplitude=LOUD)) == []
    assert vad.feed(tone(INTERNAL_FORMAT, 300, 100, amplitude=LOUD)) == [SPEECH_STARTED]
    assert vad.speaking
    assert vad.feed(silence(INTERNAL_FORMAT, 300)) == []
    assert vad.feed(silence(INTERNAL_FORMAT, 200)) == [SPEECH_ENDED]
    assert not vad.speaking


def test_short_noise_and_short_pauses_are_ignored():
    """A blip shorter than speech_ms is not speech, and a pause shorter than silence_ms does not end a turn."""
    vad = VoiceActivity(VadSettings(threshold=500, speech_ms=200, silence_ms=400))
    assert vad.feed(tone(INTERNAL_FORMAT, 300, 100, amplitude=LOUD) + silence(INTERNAL_FORMAT, 100)) == []
    events = vad.feed(tone(INTERNAL_FORMAT, 300, 300, amplitude=LOUD) + silence(INTERNAL_FORMAT, 300))
    events += vad.feed(tone(INTERNAL_FORMAT, 300, 100, amplitude=LOUD))
    assert events == [SPEECH_STARTED]


def test_quiet_audio_is_silence():
    """Audio under the threshold never counts as speech."""
    vad = VoiceActivity(VadSettings(threshold=5000))
    assert vad.feed(tone(INTERNAL_FORMAT, 300, 1000, amplitude=0.05)) == []


def test_frames_of_any_size_give_the_same_events():
    """Feeding audio in odd-sized pieces gives the same events as feeding it whole."""
    audio = tone(INTERNAL_FORMAT, 300, 500, amplitude=LOUD) + silence(INTERNAL_FORMAT, 1000)
    whole = VoiceActivity().feed(audio)
    pieces = VoiceActivity()
    split = [event for offset in range(0, len(audio), 222) for event in pieces.feed(audio[offset : offset + 222])]
    assert whole == split == [SPEECH_STARTED, SPEECH_ENDED]
