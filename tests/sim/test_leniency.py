"""The sandbox is as lenient as Exotel: chunk rules per format, frame spellings, camelCase start."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dialstream.errors import ConfigurationError
from dialstream.exotel import agentstream as proto
from dialstream.exotel.audio import silence
from sim.config import MediaConfig, SandboxConfig
from sim.wire import ChunkRules, camel_case
from tests.sim.harness import Bot, Harness, async_test, fast_config, harness, serve_bot, streaming_leg, until

MULAW = "audio/x-mulaw;rate=8000"
PCM16 = "audio/L16;rate=8000"


def chunks_of(nbytes: int, count: int = 3) -> Any:
    """A bot script sending ``count`` chunks of ``nbytes`` of silence in the stream's format."""

    async def script(ws: Any, bot: Bot, start: proto.Start) -> None:
        fmt = start.media_format
        for _ in range(count):
            payload = (fmt.silence_sample * nbytes)[:nbytes]
            await ws.send(proto.encode(proto.OutboundMedia(start.stream_sid, payload)))

    return script


async def run_stream(h: Harness, bot: Bot, content_type: str, chunks: int) -> dict[str, Any]:
    """Dial, stream to ``bot`` in ``content_type`` until the sandbox got ``chunks`` chunks, hang up; the call's report."""
    leg_sid = await h.answered_leg()
    await h.request_stream(leg_sid, bot.url, content_type=content_type)
    leg = h.sandbox.leg(leg_sid)
    await until(lambda: leg.streams and leg.streams[0].bot_chunks == chunks)
    await h.hang_up(leg_sid)
    return await h.report(leg_sid)


async def start_frame(config: SandboxConfig, query: str = "") -> tuple[str, dict[str, Any]]:
    """The start frame a bot got, as sent, on an answered leg's stream (its URL ending in ``query``), and the leg."""
    async with streaming_leg(config, query=query, started=False) as (h, bot, leg_sid):
        await until(lambda: bot.of(proto.Start))
        await h.hang_up(leg_sid)
    return leg_sid, json.loads(bot.texts[1])


# Chunk rules as durations (pure)


@pytest.mark.parametrize(
    ("content_type", "align", "minimum", "maximum"),
    [
        ("audio/L16;rate=8000", 320, 3_200, 100_000),
        ("audio/x-mulaw;rate=8000", 160, 1_600, 50_000),
        ("audio/L16;rate=16000", 640, 6_400, 200_000),
        ("audio/L16;rate=24000", 960, 9_600, 300_000),
    ],
)
def test_chunk_rules_are_20_ms_200_ms_and_6_25_s_in_every_format(content_type: str, align: int, minimum: int, maximum: int) -> None:
    """Exotel's 320/3,200/100,000-byte figures (PCM16 8 kHz) become the same durations in each format's bytes."""
    rules = ChunkRules.for_format(proto.MediaFormat.from_content_type(content_type))
    assert (rules.align, rules.minimum, rules.maximum) == (align, minimum, maximum)


def test_short_and_misaligned_chunks_are_warnings_and_over_the_maximum_an_error() -> None:
    """Below the minimum or not aligned is a warning; above the maximum is an error; strict makes all errors."""
    rules = ChunkRules.for_format(proto.MediaFormat.mulaw(8000))
    short = rules.check(1000)
    assert short.errors == ()
    assert short.warnings == (
        "1000 bytes (125 ms of audio/x-mulaw;rate=8000) is below the minimum of 1600 bytes (200 ms of audio/x-mulaw;rate=8000)",
        "1000 bytes (125 ms of audio/x-mulaw;rate=8000) is not a multiple of 160 bytes (20 ms of audio/x-mulaw;rate=8000)",
    )
    assert rules.check(1600) == rules.check(49_920) == rules.check(1600, strict=True)
    assert rules.check(1600).errors == rules.check(1600).warnings == ()
    assert len(rules.check(50_080).errors) == 1 and rules.check(50_080).warnings == ()
    assert rules.check(1000, strict=True).errors == short.warnings


# Chunk rules on a live stream


@pytest.mark.parametrize("content_type", [PCM16, MULAW])
@pytest.mark.parametrize("nbytes", [640, 1600])
@async_test
async def test_summary_is_ok_for_a_bot_sending_640_and_1600_byte_chunks(content_type: str, nbytes: int) -> None:
    """pipecat's 640-byte and Exotel's sample bots' 1,600-byte chunks, in PCM16 and mu-law, leave the summary ok."""
    async with harness() as h, serve_bot(Bot(script=chunks_of(nbytes))) as bot:
        report = await run_stream(h, bot, content_type, 3)
        summary = await h.summary()
    assert summary["ok"], summary["invariants"]
    assert report["chunk_violations"] == 0 and report["invariants"] == []
    (stream,) = report["streams"]
    assert stream["bot_chunks"] == 3 and stream["bot_bytes"] == 3 * nbytes
    short = nbytes < ChunkRules.for_format(proto.MediaFormat.from_content_type(content_type)).minimum
    # Every combination but mu-law's 1,600 bytes (exactly 200 ms) is shorter than the minimum.
    assert short == (content_type == PCM16 or nbytes == 640)
    assert stream["warning_count"] == (3 if short else 0)
    if short:
        assert "chunk_warnings" in report["warnings"]
        assert summary["warnings"]["chunk_warnings"] == {report["leg_sid"]: 3}
    else:
        assert report["warnings"] == {} and summary["warnings"]["chunk_warnings"] == {}


@async_test
async def test_a_chunk_over_the_maximum_stays_an_invariant_failure() -> None:
    """A mu-law chunk above 50,000 bytes (6.25 s) is a chunk violation and the summary is not ok."""
    async with harness() as h, serve_bot(Bot(script=chunks_of(50_080, count=1))) as bot:
        report = await run_stream(h, bot, MULAW, 1)
        summary = await h.summary()
    assert report["chunk_violations"] == 1 and report["invariants"] == ["chunk_violations"]
    (violation,) = report["streams"][0]["violations"]
    assert violation["bytes"] == 50_080 and "above the maximum of 50000 bytes" in violation["problems"][0]
    assert summary["invariants"]["chunk_violations"] == {report["leg_sid"]: 1} and not summary["ok"]


@async_test
async def test_strict_chunks_make_short_chunks_invariant_failures() -> None:
    """With media.strict_chunks a 640-byte chunk is a violation, as the sandbox used to treat it."""
    config = fast_config(media=MediaConfig(strict_chunks=True))
    async with harness(config) as h, serve_bot(Bot(script=chunks_of(640, count=2))) as bot:
        report = await run_stream(h, bot, PCM16, 2)
        summary = await h.summary()
    assert report["chunk_violations"] == 2 and report["chunk_warnings"] == 0
    assert not summary["ok"] and summary["invariants"]["chunk_violations"] == {report["leg_sid"]: 2}


# Frame spellings


@async_test
async def test_bot_frames_with_stream_sid_streamSid_or_no_sid_are_all_played() -> None:
    """Exotel ignores the stream SID on bot frames: stream_sid, streamSid and no key at all are accepted alike."""

    async def spellings(ws: Any, bot: Bot, start: proto.Start) -> None:
        payload = proto.encode(proto.OutboundMedia("", silence(proto.MediaFormat.mulaw(8000), 200)))
        media = json.loads(payload)["media"]
        await ws.send(json.dumps({"event": "media", "stream_sid": start.stream_sid, "media": media}))
        await ws.send(json.dumps({"event": "media", "streamSid": start.stream_sid, "media": media}))
        await ws.send(json.dumps({"event": "media", "media": media}))
        await ws.send(json.dumps({"event": "mark", "streamSid": start.stream_sid, "mark": {"name": "camel"}}))
        await ws.send(json.dumps({"event": "mark", "mark": {"name": "bare"}}))

    async with streaming_leg(bot=Bot(script=spellings), started=False) as (h, bot, leg_sid):
        await until(lambda: len(bot.of(proto.Mark)) == 2)
        await h.hang_up(leg_sid)
        (stream,) = (await h.report(leg_sid))["streams"]
    assert stream["bot_chunks"] == 3 and stream["protocol_error_count"] == 0
    assert [m.name for m in bot.of(proto.Mark)] == ["camel", "bare"]


@async_test
async def test_start_is_sent_in_camel_case_when_the_scenario_says_so() -> None:
    """media.start_keys: camel sends streamSid, callSid, accountSid, customParameters and mediaFormat.sampleRate."""
    leg_sid, start = await start_frame(fast_config(media=MediaConfig(start_keys="camel")), "?my_key=v")
    assert start["event"] == "start" and "sequenceNumber" in start and "streamSid" in start
    inner = start["start"]
    assert {"streamSid", "callSid", "accountSid", "from", "to", "customParameters", "mediaFormat"} <= set(inner)
    assert inner["callSid"] == leg_sid and inner["customParameters"] == {"my_key": "v"}
    assert inner["mediaFormat"]["sampleRate"] == "8000"
    assert not any("_" in key for key in (*start, *inner, *inner["mediaFormat"]))


@async_test
async def test_start_is_snake_case_by_default() -> None:
    """Without a scenario setting, start carries Exotel's documented snake_case keys."""
    _, start = await start_frame(fast_config())
    inner = start["start"]
    assert {"stream_sid", "call_sid", "account_sid", "custom_parameters", "media_format"} <= set(inner)


def test_camel_case_leaves_custom_parameter_keys_alone() -> None:
    """The user's own custom parameter keys keep their spelling; Exotel's keys are respelled."""
    frame = {"stream_sid": "s", "start": {"call_sid": "c", "custom_parameters": {"contact_id": "1"}}}
    assert camel_case(frame) == {"streamSid": "s", "start": {"callSid": "c", "customParameters": {"contact_id": "1"}}}


def test_a_scenario_with_an_unknown_start_spelling_is_refused() -> None:
    """media.start_keys other than snake or camel is a configuration error naming the key."""
    with pytest.raises(ConfigurationError, match="media.start_keys must be snake or camel"):
        SandboxConfig.from_mapping({"media": {"start_keys": "kebab"}})
