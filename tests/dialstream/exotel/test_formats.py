"""Which content_type a start_stream asks for, from the bot's formats and the campaign's preference."""

from __future__ import annotations

import pytest

from dialstream.exotel.agentstream import EXTERNAL_BOT_FORMATS, MediaFormat, choose_content_type, parse_format

MULAW = "audio/x-mulaw;rate=8000"
BUILTIN = (MULAW, "audio/L16;rate=8000", "audio/L16;rate=16000", "audio/L16;rate=24000")


def test_preference_kept_when_the_bot_accepts_it_or_declares_nothing():
    """A bot that accepts the campaign's format, or declares none, gets exactly what the campaign asked for."""
    assert choose_content_type(BUILTIN, MULAW) == MULAW
    assert choose_content_type(BUILTIN, "audio/L16;rate=16000") == "audio/L16;rate=16000"
    assert choose_content_type((), "audio/x-mulaw;rate=8000") == MULAW


def test_a_pcm_only_bot_gets_pcm_for_a_mulaw_campaign():
    """A pipecat-style bot (PCM16 8 kHz only) gets PCM16 although the campaign prefers mu-law."""
    assert choose_content_type(EXTERNAL_BOT_FORMATS, MULAW) == "audio/L16;rate=8000"


def test_closest_format_same_encoding_first_then_same_rate():
    """Same encoding at another rate beats another encoding at the same rate; otherwise the bot's first."""
    accepted = ("audio/x-mulaw;rate=8000", "audio/L16;rate=24000")
    assert choose_content_type(accepted, "audio/L16;rate=16000") == "audio/L16;rate=24000"
    assert choose_content_type(("audio/L16;rate=8000", "audio/L16;rate=16000"), MULAW) == "audio/L16;rate=8000"
    assert choose_content_type(("audio/L16;rate=16000", "audio/L16;rate=24000"), MULAW) == "audio/L16;rate=16000"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pcm16", MediaFormat.pcm16(8000)),
        ("PCM16:16000", MediaFormat.pcm16(16000)),
        ("mulaw", MediaFormat.mulaw(8000)),
        ("audio/L16;rate=24000", MediaFormat.from_content_type("audio/L16;rate=24000")),
    ],
)
def test_parse_format_short_and_content_type_spellings(text, expected):
    """Users may write a content type or ENCODING[:RATE]."""
    assert parse_format(text) == expected


@pytest.mark.parametrize("text", ["opus", "pcm16:44100", "pcm16:fast", "audio/L16;rate=11025"])
def test_parse_format_refuses_what_agentstream_does_not_carry(text):
    """Unknown encodings and rates other than 8, 16 and 24 kHz are a clear ValueError."""
    with pytest.raises(ValueError):
        parse_format(text)
