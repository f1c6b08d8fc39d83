"""The AgentStream codec: every message, the documented variations, the rejections and the rules."""

from __future__ import annotations

import base64
import json

import pytest

from dialstream.errors import AgentStreamProtocolError, DialstreamError
from dialstream.exotel.agentstream import (
    CHUNK_ALIGN,
    CHUNK_MAX,
    DEFAULT_MEDIA_FORMAT,
    AudioEncoding,
    Clear,
    Connected,
    Dtmf,
    Mark,
    Media,
    MediaFormat,
    OutboundMark,
    OutboundMedia,
    Start,
    Stop,
    chunk_violations,
    encode,
    parameters_from_query,
    parse_from_bot,
    parse_from_exotel,
    split_into_chunks,
)

SID = "6f048d2e897a0d2d4029560f3f541947"
START = Start(
    stream_sid=SID,
    call_sid="c0ffee",
    account_sid="dialstream1",
    from_="+919876543210",
    to="+911234567890",
    custom_parameters={"campaign": "c1", "lead": "42"},
    media_format=MediaFormat.pcm16(16000),
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- Round trips ---------------------------------------------------------------------

EXOTEL_MESSAGES = [
    Connected(),
    START,
    Media(SID, sequence_number=3, chunk=2, timestamp_ms=200, payload=b"\x01\x02" * 800),
    Dtmf(SID, digit="#", duration_ms=120),
    Mark(SID, name="prompt-1"),
    Stop(SID, call_sid="c0ffee", account_sid="dialstream1", reason="callended"),
]
BOT_MESSAGES = [
    OutboundMedia(SID, payload=b"\xff" * 3200),
    OutboundMedia(SID, payload=b"\xff" * 3200, sequence_number=3, chunk=2, timestamp_ms=400),
    OutboundMark(SID, name="turn-3-end"),
    OutboundMark(SID, name="turn-3-end", sequence_number=4),
    Clear(SID),
]


@pytest.mark.parametrize("message", EXOTEL_MESSAGES, ids=lambda m: type(m).__name__)
def test_exotel_messages_round_trip(message):
    """Every Exotel -> bot message parses back to itself after encoding."""
    assert parse_from_exotel(encode(message)) == message


@pytest.mark.parametrize("message", BOT_MESSAGES, ids=lambda m: type(m).__name__)
def test_bot_messages_round_trip(message):
    """Every bot -> Exotel message parses back to itself after encoding, numbered or not."""
    assert parse_from_bot(encode(message)) == message


def test_start_frame_has_exotel_shape():
    """A start frame carries stream_sid at the top and inside start, and string numbers."""
    frame = json.loads(encode(START, sequence_number=1))
    assert frame["event"] == "start"
    assert frame["sequence_number"] == "1"
    assert frame["stream_sid"] == frame["start"]["stream_sid"] == SID
    assert frame["start"]["from"] == "+919876543210"
    assert frame["start"]["custom_parameters"] == {"campaign": "c1", "lead": "42"}
    assert frame["start"]["media_format"] == {"encoding": "raw", "sample_rate": "16000", "bit_rate": "256"}


def test_media_frame_numbers_are_strings():
    """A media frame emits sequence_number, chunk and timestamp as strings, as Exotel's types do."""
    frame = json.loads(encode(Media(SID, 5, 4, 300, b"ab")))
    assert frame == {
        "event": "media",
        "sequence_number": "5",
        "stream_sid": SID,
        "media": {"chunk": "4", "timestamp": "300", "payload": "YWI="},
    }


def test_dtmf_and_stop_frames_have_exotel_shape():
    """dtmf and stop frames put their fields in the sub-object, duration as a string."""
    assert json.loads(encode(Dtmf(SID, "5", 100))) == {
        "event": "dtmf",
        "stream_sid": SID,
        "dtmf": {"digit": "5", "duration": "100"},
    }
    assert json.loads(encode(Stop(SID, "c", "a", "stopped")))["stop"] == {
        "call_sid": "c",
        "account_sid": "a",
        "reason": "stopped",
    }


def test_bot_frames_have_documented_shape():
    """Bot media, mark and clear frames match the documented JSON exactly."""
    assert json.loads(encode(OutboundMedia(SID, b"ab"))) == {
        "event": "media",
        "stream_sid": SID,
        "media": {"payload": "YWI="},
    }
    assert json.loads(encode(OutboundMark(SID, "n"))) == {"event": "mark", "stream_sid": SID, "mark": {"name": "n"}}
    assert json.loads(encode(Clear(SID))) == {"event": "clear", "stream_sid": SID}


def test_encode_rejects_other_objects():
    """encode raises TypeError for something that is not a message."""
    with pytest.raises(TypeError):
        encode("media")  # type: ignore[arg-type]


# --- Tolerated variations ------------------------------------------------------------


def test_connected_with_extra_keys():
    """A connected frame with protocol and version keys parses."""
    assert parse_from_exotel('{"event":"connected","protocol":"Exotel Media Stream","version":"1.0.0"}') == Connected()


def test_capitalised_event_key():
    """The event name may come under ``Event`` instead of ``event``."""
    assert parse_from_exotel('{"Event":"connected"}') == Connected()


def test_start_numbers_as_numbers_and_camel_case_sid():
    """start accepts streamSid inside start only, numeric sample_rate and extra keys."""
    frame = {
        "event": "start",
        "sequence_number": 1,
        "start": {
            "streamSid": SID,
            "callSid": "c1",
            "accountSid": "a1",
            "custom_parameters": {"n": 3},
            "media_format": {"encoding": "base64", "sample_rate": 8000, "bit_rate": "128kbps"},
            "extra": True,
        },
    }
    start = parse_from_exotel(json.dumps(frame))
    assert start == Start(SID, "c1", "a1", "", "", {"n": "3"}, MediaFormat("base64", 8000, "128kbps"))
    assert start.media_format.encoding_kind is AudioEncoding.PCM16


def test_start_sids_only_at_top_level():
    """A start whose stream_sid or call_sid is only at the top level takes it from there."""
    frame = {"event": "start", "stream_sid": SID, "start": {"call_sid": "c1"}}
    assert parse_from_exotel(json.dumps(frame)).stream_sid == SID
    frame = {"event": "start", "stream_sid": SID, "call_sid": "c2", "start": {}}
    assert parse_from_exotel(json.dumps(frame)).call_sid == "c2"


def test_start_without_media_format_uses_default():
    """A start without media_format gets the caller's default format; by default mu-law 8 kHz."""
    frame = json.dumps({"event": "start", "start": {"stream_sid": SID, "call_sid": "c1"}})
    assert parse_from_exotel(frame).media_format == DEFAULT_MEDIA_FORMAT
    assert parse_from_exotel(frame, default_format=MediaFormat.pcm16(24000)).media_format.sample_rate == 24000


def test_start_media_format_fills_missing_fields_from_default():
    """A media_format without sample_rate takes the default's rate but keeps its own encoding."""
    frame = {"event": "start", "start": {"stream_sid": SID, "call_sid": "c", "media_format": {"encoding": "raw"}}}
    fmt = parse_from_exotel(json.dumps(frame), default_format=MediaFormat.pcm16(16000)).media_format
    assert (fmt.encoding, fmt.sample_rate) == ("raw", 16000)


def test_media_numbers_as_strings_or_numbers():
    """media accepts sequence_number, chunk and timestamp as strings or integers."""
    for value in ("7", 7):
        frame = {
            "event": "media",
            "sequence_number": value,
            "stream_sid": SID,
            "media": {"chunk": value, "timestamp": value, "payload": "AAA="},
        }
        assert parse_from_exotel(json.dumps(frame)) == Media(SID, 7, 7, 7, b"\x00\x00")


def test_media_without_stream_sid_or_counters():
    """media without stream_sid, chunk or timestamp parses with empty defaults."""
    assert parse_from_exotel('{"event":"media","media":{"payload":""}}') == Media("", 0, 0, 0, b"")


def test_dtmf_duration_as_number_or_missing():
    """dtmf accepts a numeric duration or none at all."""
    assert parse_from_exotel('{"event":"dtmf","dtmf":{"digit":"*","duration":80}}') == Dtmf("", "*", 80)
    assert parse_from_exotel('{"event":"dtmf","stream_sid":"s","dtmf":{"digit":"0"}}') == Dtmf("s", "0", 0)


def test_stop_with_any_reason_or_no_stop_object():
    """stop accepts any reason and also a frame without the stop object."""
    assert (
        parse_from_exotel('{"event":"stop","stream_sid":"s","stop":{"reason":"caller_hangup"}}').reason
        == "caller_hangup"
    )
    assert parse_from_exotel('{"event":"stop","stream_sid":"s"}') == Stop("s")


@pytest.mark.parametrize(
    "text",
    [
        '{"event":"clear","streamSid":"S"}',
        '{"event":"clear","stream_sid":"S","sequence_number":"3"}',
    ],
)
def test_bot_frame_sid_spellings(text):
    """Bot frames may spell the stream SID streamSid and carry sequence numbers."""
    assert parse_from_bot(text) == Clear("S")


def test_bot_frames_without_stream_sid():
    """Bot frames without any stream SID parse with an empty one, as Exotel ignores it."""
    assert parse_from_bot('{"event":"clear"}') == Clear("")
    assert parse_from_bot('{"event":"mark","mark":{"name":"m"}}') == OutboundMark("", "m")
    assert parse_from_bot('{"event":"media","media":{"payload":"AAA=","chunk":"1","timestamp":"0"}}') == OutboundMedia(
        "", b"\x00\x00", chunk=1, timestamp_ms=0
    )


# --- Rejections ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "fragment"),
    [
        (b'{"event":"connected"}', 1003, "binary"),
        ("{not json", 1007, "invalid JSON"),
        ("[1, 2]", 1007, "JSON object"),
        ('{"sequence_number":"1"}', 1007, "missing event"),
        ('{"event":"hello"}', 1003, "unknown event"),
        ('{"event":"clear","stream_sid":"s"}', 1003, "unknown event"),
        ('{"event":"start","start":"s"}', 1007, "start: expected an object"),
        ('{"event":"start","start":{"call_sid":"c"}}', 1007, "stream_sid"),
        ('{"event":"start","start":{"stream_sid":"s","call_sid":"c","media_format":"raw"}}', 1007, "media_format"),
        (
            '{"event":"start","start":{"stream_sid":"s","call_sid":"c","custom_parameters":[]}}',
            1007,
            "custom_parameters",
        ),
        ('{"event":"media","media":"abc"}', 1007, "media"),
        ('{"event":"media","media":{}}', 1007, "payload: missing"),
        ('{"event":"media","media":{"payload":"!!notbase64"}}', 1007, "base64"),
        ('{"event":"media","media":{"payload":"AAA="},"sequence_number":"x1"}', 1007, "sequence_number"),
        ('{"event":"media","media":{"payload":"AAA=","chunk":true}}', 1007, "chunk"),
        ('{"event":"dtmf","dtmf":{"digit":"55"}}', 1007, "digit"),
        ('{"event":"dtmf","dtmf":{}}', 1007, "digit"),
        ('{"event":"mark","mark":{}}', 1007, "name"),
        ('{"event":"mark","stream_sid":7,"mark":{"name":"m"}}', 1007, "stream_sid"),
    ],
)
def test_parse_from_exotel_rejects(text, code, fragment):
    """Malformed Exotel frames raise AgentStreamProtocolError with the right close code."""
    with pytest.raises(AgentStreamProtocolError) as info:
        parse_from_exotel(text)
    assert info.value.close_code == code
    assert fragment in info.value.reason
    assert isinstance(info.value, DialstreamError)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (b"\x00\x01", 1003),
        ("nope", 1007),
        ('{"event":"stop"}', 1003),
        ('{"event":"media","media":{"payload":"%%%"}}', 1007),
        ('{"event":"mark"}', 1007),
    ],
)
def test_parse_from_bot_rejects(text, code):
    """Malformed bot frames raise AgentStreamProtocolError with the right close code."""
    with pytest.raises(AgentStreamProtocolError) as info:
        parse_from_bot(text)
    assert info.value.close_code == code


# --- Media formats -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "kind"),
    [
        ("audio/x-mulaw", AudioEncoding.MULAW),
        ("ulaw", AudioEncoding.MULAW),
        ("PCMU", AudioEncoding.MULAW),
        ("raw", AudioEncoding.PCM16),
        ("audio/x-raw", AudioEncoding.PCM16),
        ("linear16", AudioEncoding.PCM16),
        ("base64", AudioEncoding.PCM16),
        ("slin", AudioEncoding.PCM16),
        ("audio/L16", AudioEncoding.PCM16),
    ],
)
def test_encoding_kind(encoding, kind):
    """Every documented encoding spelling maps to mu-law or PCM16."""
    assert MediaFormat(encoding, 8000, "").encoding_kind is kind


def test_content_type_round_trip():
    """Legs content types parse to a MediaFormat and print back the same."""
    for content_type in (
        "audio/x-mulaw;rate=8000",
        "audio/L16;rate=8000",
        "audio/L16;rate=16000",
        "audio/L16;rate=24000",
    ):
        assert MediaFormat.from_content_type(content_type).to_content_type() == content_type
    assert MediaFormat.from_content_type("audio/x-mulaw") == DEFAULT_MEDIA_FORMAT
    with pytest.raises(ValueError):
        MediaFormat.from_content_type("audio/L16;rate=fast")


def test_media_format_sizes():
    """Sample width, byte rate and silence follow the encoding."""
    mulaw, pcm = MediaFormat.mulaw(8000), MediaFormat.pcm16(16000)
    assert (mulaw.sample_width, mulaw.bytes_per_second, mulaw.silence_sample) == (1, 8000, b"\xff")
    assert (pcm.sample_width, pcm.bytes_per_second, pcm.silence_sample) == (2, 32000, b"\x00\x00")
    assert pcm.duration(3200) == 0.1
    assert pcm.bytes_for(0.1) == 3200


# --- Chunk rules ---------------------------------------------------------------------


def test_chunk_violations():
    """chunk_violations names every rule a size breaks and nothing for a good size."""
    assert chunk_violations(3200) == []
    assert chunk_violations(CHUNK_MAX - CHUNK_MAX % CHUNK_ALIGN) == []
    assert len(chunk_violations(100)) == 2
    assert len(chunk_violations(4096)) == 1
    assert len(chunk_violations(100_160)) == 1


@pytest.mark.parametrize("size", [1, 319, 3199, 3200, 3201, 6400, 9700, 12_345, 250_000])
@pytest.mark.parametrize("silence", [b"\xff", b"\x00\x00"])
def test_split_into_chunks_follows_the_rules(size, silence):
    """Every chunk is legal, the audio is kept in order, and only silence is added."""
    audio = bytes(i % 251 for i in range(size))
    chunks = split_into_chunks(audio, silence=silence)
    assert all(chunk_violations(len(chunk)) == [] for chunk in chunks)
    joined = b"".join(chunks)
    assert joined[:size] == audio
    assert set(joined[size:]) <= set(silence)


def test_split_merges_short_tail():
    """A short tail joins the chunk before it instead of becoming a padded chunk."""
    assert [len(c) for c in split_into_chunks(b"a" * 3300, silence=b"\xff")] == [3520]
    assert [len(c) for c in split_into_chunks(b"a" * 6500, silence=b"\xff")] == [3200, 3520]


def test_split_with_large_chunks():
    """A larger chunk size is honoured and never exceeded except by the merged tail within the maximum."""
    chunks = split_into_chunks(b"a" * 33_000, chunk_bytes=32_000, silence=b"\xff")
    assert [len(c) for c in chunks] == [33_280]
    assert split_into_chunks(b"", silence=b"\xff") == []


def test_split_rejects_bad_arguments():
    """An illegal chunk size or a silence unit that does not divide 320 is refused."""
    with pytest.raises(ValueError):
        split_into_chunks(b"a", chunk_bytes=1000, silence=b"\xff")
    with pytest.raises(ValueError):
        split_into_chunks(b"a", silence=b"\x00\x00\x00")


# --- Stream URL ----------------------------------------------------------------------


def test_parameters_from_query():
    """sample-rate (or sample_rate) selects the rate; other keys are custom parameters."""
    assert parameters_from_query("sample-rate=16000&campaign=c1") == (16000, {"campaign": "c1"})
    assert parameters_from_query("sample_rate=24000") == (24000, {})
    assert parameters_from_query("sample-rate=fast&x=") == (None, {"x": ""})
    assert parameters_from_query("") == (None, {})
