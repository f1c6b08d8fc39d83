"""Every spelling of a start frame senders use parses to the same Start; bot frames may carry Exotel's numbering."""

from __future__ import annotations

import json

import pytest

from dialstream.exotel.agentstream import (
    MediaFormat,
    OutboundMark,
    OutboundMedia,
    Start,
    encode,
    parse_from_bot,
    parse_from_exotel,
)

FULL = Start(
    stream_sid="s1",
    call_sid="c1",
    account_sid="a1",
    from_="+919876543210",
    to="+911234567890",
    custom_parameters={"lead": "42"},
    media_format=MediaFormat(encoding="raw", sample_rate=16000, bit_rate="256"),
)
SNAKE = {
    "stream_sid": "s1",
    "call_sid": "c1",
    "account_sid": "a1",
    "from": "+919876543210",
    "to": "+911234567890",
    "custom_parameters": {"lead": "42"},
    "media_format": {"encoding": "raw", "sample_rate": "16000", "bit_rate": "256"},
}
CAMEL = {
    "streamSid": "s1",
    "callSid": "c1",
    "accountSid": "a1",
    "from": "+919876543210",
    "to": "+911234567890",
    "customParameters": {"lead": 42},
    "mediaFormat": {"encoding": "raw", "sampleRate": 16000, "bitRate": 256},
}


@pytest.mark.parametrize(
    "frame",
    [
        {"event": "start", "start": SNAKE},  # nested, as documented
        {"event": "start", **SNAKE},  # flat, beside event
        {"event": "start", "start": CAMEL},  # camelCase, numbers as ints
        {"Event": "start", **CAMEL},  # Event key, flat and camelCase
        {"event": "START", "stream_sid": "s1", "start": {k: v for k, v in SNAKE.items() if k != "stream_sid"}},
    ],
    ids=["nested", "flat", "camel", "Event-flat-camel", "sid-on-top"],
)
def test_start_spellings_all_parse_to_the_same_start(frame):
    """Nested or flat, snake_case or camelCase, strings or ints, event or Event: one Start."""
    assert parse_from_exotel(json.dumps(frame)) == FULL


def test_start_without_call_sid_or_format_is_accepted():
    """Exotel's own test client sends only a stream SID: the call SID is empty, the format the URL's default."""
    start = parse_from_exotel(json.dumps({"event": "start", "stream_sid": "s1"}), default_format=MediaFormat.pcm16(8000))
    assert start == Start(stream_sid="s1", call_sid="", media_format=MediaFormat.pcm16(8000))


def test_outbound_media_carries_exotels_numbering_as_strings():
    """A numbered outbound media frame has sequence_number, media.chunk and media.timestamp as strings, in the JS sample's layout."""
    frame = json.loads(encode(OutboundMedia("s1", b"\x00" * 320, sequence_number=5, chunk=3, timestamp_ms=400)))
    assert list(frame) == ["event", "sequence_number", "stream_sid", "media"]
    assert frame["sequence_number"] == "5"
    assert list(frame["media"]) == ["chunk", "timestamp", "payload"]
    assert (frame["media"]["chunk"], frame["media"]["timestamp"]) == ("3", "400")
    assert json.loads(encode(OutboundMark("s1", "m", sequence_number=6)))["sequence_number"] == "6"


def test_outbound_numbering_is_optional_and_read_as_strings_or_ints():
    """Bot frames with or without numbering parse; numbers come as strings or ints."""
    assert parse_from_bot('{"event":"media","media":{"payload":"AAA="}}') == OutboundMedia("", b"\x00\x00")
    numbered = '{"event":"media","sequence_number":5,"media":{"chunk":"3","timestamp":400,"payload":"AAA="}}'
    assert parse_from_bot(numbered) == OutboundMedia("", b"\x00\x00", sequence_number=5, chunk=3, timestamp_ms=400)
