"""One stream over real WebSockets on loopback: the protocol, outbound pacing, marks, barge-in, DTMF, hang-up and stop."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot import metrics
from bot.api import Bot, CallInfo
from bot.bots import GreeterBot
from bot.config import BotServerConfig
from bot.server import BotServer
from bot.tts import TTS
from dialstream.exotel.agentstream import (
    CHUNK_MIN,
    DEFAULT_MEDIA_FORMAT,
    Clear,
    Connected,
    MediaFormat,
    OutboundMark,
    OutboundMedia,
    chunk_violations,
    encode,
)
from dialstream.exotel.audio import INTERNAL_FORMAT, tone
from tests.bot.exotel import FakeExotel, run, streaming
from tests.bot.scenario import TEST_TIMEOUTS, events, scenario_bot, serving, stream_ending, streaming_to, until
from tests.utils import MS

# --- Protocol ------------------------------------------------------------------------


def test_start_reaches_bot_with_call_info():
    """on_start receives the start frame's metadata merged with the URL's custom parameters."""
    bot = scenario_bot()

    async def scenario() -> None:
        async with serving(bot) as server:
            async with FakeExotel(server.url + "?campaign=c1&lead=url") as exotel:
                await exotel.start(custom_parameters={"lead": "42"})
                await until(lambda: events(bot, "start"))
        call = events(bot, "start")[0]
        assert call.stream_sid == exotel.stream_sid
        assert call.call_sid == f"call-{exotel.stream_sid}"
        assert (call.account_sid, call.from_, call.to) == ("dialstream1", "+919876543210", "+911234567890")
        assert call.custom_parameters == {"campaign": "c1", "lead": "42"}
        assert call.media_format == DEFAULT_MEDIA_FORMAT

    run(scenario())


def test_sample_rate_query_parameter_sets_format():
    """Without start.media_format, ?sample-rate=16000 makes the stream 16-bit PCM at 16 kHz."""
    bot = scenario_bot()

    async def scenario() -> None:
        async with serving(bot) as server:
            async with FakeExotel(
                server.url + "?sample-rate=16000&say_ms=500", media_format=MediaFormat.pcm16(16000)
            ) as exotel:
                await exotel.send_raw(encode(Connected()))
                await exotel.send_raw(
                    json.dumps({"event": "start", "stream_sid": exotel.stream_sid, "start": {"call_sid": "c1"}})
                )
                await exotel.until(lambda: exotel.of_type(OutboundMark))
        call = events(bot, "start")[0]
        assert (call.media_format.encoding_kind.value, call.media_format.sample_rate) == ("pcm16", 16000)
        assert call.custom_parameters == {"say_ms": "500"}
        # 500 ms of 16 kHz PCM16 is 16000 bytes: five minimum chunks.
        assert [len(m.payload) for m in exotel.of_type(OutboundMedia)] == [CHUNK_MIN] * 5

    run(scenario())


def test_bot_frames_carry_stream_sid_and_documented_shape():
    """Every frame the bot sends is a documented media/mark/clear frame with our stream_sid; media and marks numbered."""
    bot = scenario_bot()

    async def scenario() -> None:
        async with streaming_to(bot, "?say_ms=800") as exotel:
            await exotel.until(lambda: exotel.of_type(OutboundMark))
            await exotel.press("0")
            await exotel.until(lambda: exotel.of_type(Clear))
        for frame in map(json.loads, exotel.raw):
            assert frame["stream_sid"] == exotel.stream_sid
            assert frame["event"] in {"media", "mark", "clear"}
            assert set(frame) <= {"event", "sequence_number", "stream_sid", "media", "mark"}
            if frame["event"] != "clear":
                assert isinstance(frame["sequence_number"], str)
            if frame["event"] == "media":
                assert all(isinstance(frame["media"][key], str) for key in ("chunk", "timestamp", "payload"))

    run(scenario())


def test_greeter_first_audio_leaves_right_after_start():
    """The greeter's prepared prompt starts leaving within a few milliseconds of start."""

    async def scenario() -> None:
        async with streaming_to(GreeterBot) as exotel:
            await exotel.until(lambda: exotel.of_type(OutboundMedia))
            assert exotel.times_of(OutboundMedia)[0] - exotel.started_at < 50 * MS

    run(scenario())


# --- Outbound audio ------------------------------------------------------------------


def test_chunks_follow_rules_and_leave_at_real_time_pace():
    """Outbound chunks are legal sizes, ordered, and leave about lead seconds before they are needed."""
    bot = scenario_bot()
    lead = BotServerConfig().pacing.lead
    observed = metrics.REGISTRY.get_sample_value("dialstream_bot_chunk_lateness_seconds_count") or 0

    async def scenario() -> None:
        async with streaming_to(bot, "?say_ms=2000") as exotel:
            await exotel.until(lambda: exotel.of_type(OutboundMark), timeout=5)
        chunks = exotel.of_type(OutboundMedia)
        times = [t - exotel.started_at for t in exotel.times_of(OutboundMedia)]
        assert all(not chunk_violations(len(c.payload)) for c in chunks)
        # 2000 ms of mu-law at 8 kHz is 16000 bytes: five 400 ms chunks.
        assert [len(c.payload) for c in chunks] == [CHUNK_MIN] * 5
        chunk_seconds = DEFAULT_MEDIA_FORMAT.duration(CHUNK_MIN)
        tolerance = 60 * MS
        for index, sent in enumerate(times):
            due = max(0.0, index * chunk_seconds - lead)
            assert due - tolerance <= sent <= due + tolerance, (index, sent, due)
        mark_at = exotel.times_of(OutboundMark)[0] - exotel.started_at
        assert mark_at == pytest.approx(times[-1], abs=tolerance)
        # Every chunk's lateness went into the histogram.
        assert metrics.REGISTRY.get_sample_value("dialstream_bot_chunk_lateness_seconds_count") == observed + 5

    run(scenario())


def test_marks_echoed_after_playout_reach_bot():
    """The mark after an utterance reaches on_mark once Exotel has played it, and heard lists it."""
    bot = scenario_bot()

    async def scenario() -> None:
        async with streaming_to(bot, "?say_ms=800") as exotel:
            await until(lambda: events(bot, "mark"))
            heard_at = asyncio.get_running_loop().time() - exotel.started_at
        assert events(bot, "said") == ["say-1"]
        assert events(bot, "mark") == ["say-1"]
        assert events(bot, "heard") == [("say-1",)]
        assert heard_at >= 0.8 - 50 * MS

    run(scenario())


def test_barge_in_sends_clear_and_drops_the_queue():
    """clear() sends one clear frame and no audio or mark of the dropped utterance follows it."""
    bot = scenario_bot()

    async def scenario() -> None:
        async with streaming_to(bot, "?say_ms=4000") as exotel:
            await exotel.until(lambda: len(exotel.of_type(OutboundMedia)) >= 2)
            await exotel.press("0")
            await exotel.until(lambda: exotel.of_type(Clear))
            count = len(exotel.received)
            await asyncio.sleep(600 * MS)
            assert len(exotel.received) == count
            assert isinstance(exotel.received[-1].message, Clear)
            # The call goes on: new speech is sent after the clear.
            await exotel.press("5")
            await until(lambda: events(bot, "mark"))
        # 4 s would be ten chunks; only those sent before the clear left, then the new 400 ms.
        assert len(exotel.of_type(OutboundMedia)) == count - 1 + 1
        assert [m.name for m in exotel.of_type(OutboundMark)] == ["say-2"]
        assert events(bot, "mark") == ["say-2"]

    run(scenario())


def test_text_is_spoken_in_order_through_a_slow_tts():
    """Text whose synthesis is slow still plays before audio queued after it."""
    bot = scenario_bot()

    class SlowTTS(TTS):
        async def synthesize(self, text: str) -> bytes:
            await asyncio.sleep(100 * MS)
            return tone(INTERNAL_FORMAT, 300, 1000)

    async def scenario() -> None:
        config = BotServerConfig(port=0, timeouts=TEST_TIMEOUTS)
        async with BotServer(bot, config, tts=SlowTTS()) as server:
            async with streaming(server.url + "?say_text=hello") as exotel:
                await exotel.until(lambda: len(exotel.of_type(OutboundMark)) == 2)
        names = [
            r.message.name if isinstance(r.message, OutboundMark) else len(r.message.payload) for r in exotel.received
        ]
        # 1000 ms of mu-law = 8000 bytes: two full chunks and a padded tail; then 100 ms padded.
        assert names == [3200, 3200, 3200, "say-1", 3200, "say-2"]

    run(scenario())


def test_media_frames_are_the_codecs_encoding_even_for_a_sid_needing_escapes():
    """Outbound media frames are byte for byte what encode() makes, for any stream SID, numbered as Exotel's JS sender does."""
    bot = scenario_bot()

    async def scenario() -> None:
        async with serving(bot) as server:
            async with FakeExotel(server.url + "?say_ms=800") as exotel:
                exotel.stream_sid = 'odd"sid\\ \u2713'
                await exotel.start()
                await exotel.until(lambda: exotel.of_type(OutboundMark))
        media = [
            (raw, r.message)
            for raw, r in zip(exotel.raw, exotel.received, strict=True)
            if isinstance(r.message, OutboundMedia)
        ]
        assert len(media) == 2
        for raw, message in media:
            assert message.stream_sid == exotel.stream_sid
            assert raw == encode(message)
        # One sequence over media and marks; chunks count media; timestamps are ms of audio before (3200 B of mu-law: 400 ms).
        numbering = [(m.sequence_number, m.chunk, m.timestamp_ms) for _, m in media]
        assert numbering == [(1, 1, 0), (2, 2, 400)]
        assert exotel.of_type(OutboundMark)[0].sequence_number == 3

    run(scenario())


def test_a_stream_sid_with_a_newline_cannot_forge_a_log_line(caplog):
    """The bot's log lines about a stream whose SID carries a newline and an escape stay one line each, the SID escaped."""
    bot = scenario_bot()

    async def scenario() -> None:
        async with serving(bot) as server:
            async with FakeExotel(server.url) as exotel:
                exotel.stream_sid = "MZ1\nCRITICAL bot: forged\x1b[2J"
                await exotel.start(custom_parameters={"note": "a\rb"})
                await until(lambda: events(bot, "start"))

    with caplog.at_level("INFO", logger="dialstream.bot"):
        run(scenario())
    lines = [r.getMessage() for r in caplog.records if r.name == "dialstream.bot"]
    assert any("stream MZ1\\nCRITICAL bot: forged\\x1b[2J started" in line and "a\\rb" in line for line in lines)
    assert not any("\n" in line or "\x1b" in line or "\r" in line for line in lines)


def test_speech_queued_by_an_async_hook_leaves_while_the_hook_awaits():
    """What an async hook says is sent at once, not when the hook returns."""
    released = asyncio.Event()

    class Waiter(Bot):
        async def on_start(self, call: CallInfo) -> None:
            self.session.say(tone(INTERNAL_FORMAT, 440, 400))
            await released.wait()

    async def scenario() -> None:
        async with streaming_to(Waiter) as exotel:
            # The hook holds until the audio arrived: a flush only after it would never come.
            try:
                await exotel.until(lambda: exotel.of_type(OutboundMark))
            finally:
                released.set()
            assert [len(m.payload) for m in exotel.of_type(OutboundMedia)] == [CHUNK_MIN]

    run(scenario())


# --- DTMF, hang-up, stop -------------------------------------------------------------


def test_dtmf_reaches_bot():
    """A dtmf frame reaches on_dtmf with its digit."""
    bot = scenario_bot()

    async def scenario() -> None:
        async with streaming_to(bot) as exotel:
            for digit in "17*":
                await exotel.press(digit)
            await until(lambda: len(events(bot, "dtmf")) == 3)
        assert events(bot, "dtmf") == ["1", "7", "*"]

    run(scenario())


def test_hangup_closes_with_1000():
    """hangup(after_audio=False) closes the stream at once with 1000, and on_stop says hangup."""
    closed, stops = run(stream_ending(scenario_bot(), lambda exotel: exotel.press("#")))
    assert closed == (1000, "bot hung up")
    assert stops == ["hangup"]


def test_hangup_after_audio_waits_until_it_played():
    """hangup() with audio queued closes only once that audio has played (its mark echoed)."""
    bot = scenario_bot()

    async def scenario() -> None:
        async with streaming_to(bot, "?say_ms=800") as exotel:
            await exotel.press("9")
            assert (await exotel.closed())[0] == 1000
            closed_after = asyncio.get_running_loop().time() - exotel.started_at
        assert closed_after >= 0.8 - 50 * MS
        assert [m.name for m in exotel.of_type(OutboundMark)] == ["say-1", "hangup"]

    run(scenario())


def test_stop_ends_the_stream_with_its_reason():
    """A stop frame calls on_stop with Exotel's reason and the stream closes with 1000."""
    closed, stops = run(stream_ending(scenario_bot(), lambda exotel: exotel.stop("callended")))
    assert closed[0] == 1000
    assert stops == ["callended"]


def test_disconnect_without_stop_still_calls_on_stop():
    """A socket that just goes away still gets the bot an on_stop, with reason disconnected."""
    bot = scenario_bot()

    async def scenario() -> None:
        async with serving(bot) as server:
            async with streaming(server.url):
                await until(lambda: events(bot, "start"))
            await until(lambda: events(bot, "stop"))
        assert events(bot, "stop") == ["disconnected"]

    run(scenario())
