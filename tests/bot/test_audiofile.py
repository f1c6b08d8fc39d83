"""Prompt files: WAV and raw mu-law in, internal PCM out."""

from __future__ import annotations

import pytest

from bot.audiofile import read_audio, write_wav
from bot.prompts import PROMPTS, PROMPTS_DIR
from dialstream.exotel.agentstream import MediaFormat
from dialstream.exotel.audio import INTERNAL_FORMAT, duration, tone


def test_wav_round_trip(tmp_path):
    """An 8 kHz WAV reads back as the same internal PCM."""
    pcm = tone(INTERNAL_FORMAT, 440, 300)
    write_wav(tmp_path / "a.wav", pcm)
    assert read_audio(tmp_path / "a.wav") == pcm


def test_wav_at_16khz_is_resampled(tmp_path):
    """A 16 kHz WAV is resampled to the internal 8 kHz."""
    write_wav(tmp_path / "b.wav", tone(MediaFormat.pcm16(16000), 440, 500), rate=16000)
    assert duration(read_audio(tmp_path / "b.wav")) == pytest.approx(0.5, abs=0.002)


def test_ulaw_file(tmp_path):
    """A headerless .ulaw file is read as 8 kHz mu-law."""
    (tmp_path / "c.ulaw").write_bytes(tone(MediaFormat.mulaw(8000), 440, 250))
    assert duration(read_audio(tmp_path / "c.ulaw")) == 0.25


def test_other_files_are_refused(tmp_path):
    """Unknown extensions and stereo WAVs raise ValueError."""
    (tmp_path / "d.mp3").write_bytes(b"ID3")
    with pytest.raises(ValueError):
        read_audio(tmp_path / "d.mp3")
    import wave

    with wave.open(str(tmp_path / "e.wav"), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00" * 400)
    with pytest.raises(ValueError):
        read_audio(tmp_path / "e.wav")


def test_shipped_prompts_are_8khz_and_current():
    """Every shipped prompt file exists, is 8 kHz, and is as long as EspeakTTS speaks its text today."""
    from bot.tts import EspeakTTS

    for name, text in PROMPTS.items():
        # Lengths, not bytes: espeak-ng's pitch flutter carries over from the previous utterance.
        assert duration(read_audio(PROMPTS_DIR / name)) == pytest.approx(duration(EspeakTTS().render(text)), abs=0.02), (
            f"regenerate with python -m bot.prompts: {name}"
        )
