"""The media leg: Exotel's side of AgentStream, against a small bot written here."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import websockets

from dialstream.exotel import agentstream as proto
from dialstream.exotel.audio import silence
from sim.callee import CalleeProfile, Digit
from sim.config import MediaConfig
from tests.sim.harness import Bot, async_test, fast_config, harness, serve_bot, streaming_leg, until
from tests.utils import MS

MULAW = proto.MediaFormat.mulaw(8000)


def send(ws: Any, message: Any) -> Any:
    return ws.send(proto.encode(message))


async def greet(ws: Any, bot: Bot, start: proto.Start) -> None:
    """400 ms of mu-law audio, then a mark."""
    await send(ws, proto.OutboundMedia(start.stream_sid, silence(MULAW, 400)))
    await send(ws, proto.OutboundMark(start.stream_sid, "greeting-end"))


@async_test
async def test_stream_connects_sends_connected_start_and_paced_media() -> None:
    """start_stream connects to the bot, sends connected then start with the call's metadata, then 100 ms media frames."""
    async with streaming_leg(query="?campaign=c1&sample-rate=8000") as (h, bot, leg_sid):
        started = await h.event(leg_sid, "stream_started")
        initiated = await h.event(leg_sid, "stream_initiated")
        await until(lambda: len(bot.of(proto.Media)) >= 3)
        await h.hang_up(leg_sid)
        stream_sid = started.detail["stream_sid"]
        assert initiated.detail == {
            "stream_sid": stream_sid,
            "stream_type": "bidirectional",
            "stream_url": bot.url + "?campaign=c1&sample-rate=8000",
            "streaming_leg_sid": leg_sid,
        }
        assert isinstance(bot.frames[0], proto.Connected)
        start = bot.frames[1]
        assert isinstance(start, proto.Start)
        assert start.stream_sid == stream_sid and start.call_sid == leg_sid
        assert start.account_sid == "dialstream1"
        assert (start.from_, start.to) == ("+919800000001", "+918030752400")
        assert start.custom_parameters == {"campaign": "c1"}
        assert start.media_format.encoding_kind is proto.AudioEncoding.MULAW and start.media_format.sample_rate == 8000
        media = bot.of(proto.Media)
        assert all(len(m.payload) == 800 for m in media)  # 100 ms of 8 kHz mu-law
        assert [m.chunk for m in media[:3]] == [1, 2, 3]
        assert [m.timestamp_ms for m in media[:3]] == [0, 100, 200]
        assert [m.sequence_number for m in media] == sorted(m.sequence_number for m in media)
        assert isinstance(bot.frames[-1], proto.Stop) and bot.frames[-1].reason == "callended"
        assert h.recorder.names(leg_sid)[-2:] == ["stream_stopped", "leg_terminated"]


@async_test
async def test_bot_audio_is_played_in_real_time_and_the_mark_echoed_after_it() -> None:
    """A 400 ms bot chunk becomes audible at once; its mark is echoed once it has played out."""
    async with streaming_leg(bot=Bot(script=greet)) as (h, bot, leg_sid):
        await until(lambda: bot.of(proto.Mark))
        report = await h.report(leg_sid)
        (stream,) = report["streams"]
        assert stream["marks_echoed"] == ["greeting-end"]
        assert stream["bot_chunks"] == 1 and stream["bot_audio_ms"] == 400
        (audible,) = report["bot_audio"]
        assert audible[1] - audible[0] == pytest.approx(0.4, abs=0.001)
        assert report["timeline"]["first_bot_audio"] == audible[0]
        assert report["figures"]["bot_first_audio_ms"] >= 0
        assert report["streams_started"] == 1 and report["chunk_violations"] == 0
        await h.hang_up(leg_sid)


@async_test
async def test_greeting_in_parallel_flow_yields_the_timeline_figures() -> None:
    """Approach 2 (start_stream + start_say on leg_answered, stop_say on stream_started) is measured end to end."""
    async with harness() as h, serve_bot(Bot(script=greet)) as bot:
        leg_sid = await h.create_leg()
        await h.event(leg_sid, "leg_answered")
        await h.request_stream(leg_sid, bot.url)
        await h.action(leg_sid, "start_say", text="Hello, one moment please.")
        await h.event(leg_sid, "stream_started")
        await h.action(leg_sid, "stop_say")
        await h.event(leg_sid, "say_interrupted")
        await until(lambda: bot.of(proto.Mark))
        await h.hang_up(leg_sid)
        report = await h.report(leg_sid)
        marks, figures = report["timeline"], report["figures"]
        for name in ("dialed", "ringing", "answered", "first_greeting_audio", "stream_requested",
                     "stream_started", "first_bot_audio", "greeting_stopped", "hung_up"):  # fmt: skip
            assert marks[name] is not None, name
        assert marks["dialed"] < marks["ringing"] < marks["answered"] < marks["stream_started"] < marks["hung_up"]
        first_audio = min(marks["first_greeting_audio"], marks["first_bot_audio"])
        assert figures["answer_to_first_audio_ms"] == pytest.approx((first_audio - marks["answered"]) * 1000, abs=0.01)
        assert figures["dead_air_ms"] == figures["answer_to_first_audio_ms"]
        assert figures["dispatch_latency_ms"] == pytest.approx((marks["stream_requested"] - marks["answered"]) * 1000, abs=0.01)
        assert figures["overlap_ms"] >= 0
        assert figures["greeting_after_stream_ms"] is not None
        assert set(report["action_latency_ms"]) == {"start_stream", "start_say", "stop_say", "hangup"}
        assert report["actions"][2]["trigger"] == "stream_started"
        summary = await h.summary()
        assert summary["ok"], summary["invariants"]
        assert summary["figures"]["dead_air_ms"]["count"] == 1
        assert summary["figures"]["action_latency_ms.stop_say"]["count"] == 1


@async_test
async def test_credentials_in_the_stream_url_become_a_basic_auth_header() -> None:
    """wss://user:pass@host is connected to without the userinfo, with Authorization: Basic base64(user:pass)."""
    async with harness() as h, serve_bot(Bot()) as bot:
        leg_sid = await h.answered_leg()
        await h.start_stream(leg_sid, bot.url.replace("ws://", "ws://key:s%3Acret@"))
        assert bot.headers[0]["Authorization"] == "Basic a2V5OnM6Y3JldA=="  # key:s:cret
        await h.hang_up(leg_sid)


@async_test
async def test_stop_stream_sends_stop_and_keeps_the_leg_up() -> None:
    """stop_stream sends stop (reason stopped), closes, emits stream_stopped; the leg stays connected."""
    async with streaming_leg() as (h, bot, leg_sid):
        status, envelope = await h.action(leg_sid, "stop_stream", action_custom_param="done")
        assert status == 202
        stopped = await h.event(leg_sid, "stream_stopped")
        assert stopped.action_custom_parameter == "done"
        assert stopped.detail["reason"] == "stopped"
        await until(lambda: bot.of(proto.Stop))
        assert bot.of(proto.Stop)[0].reason == "stopped"
        assert h.sandbox.leg(leg_sid).state == "connected"
        await h.hang_up(leg_sid)


@async_test
async def test_bot_closing_the_socket_ends_the_stream() -> None:
    """When the bot closes the WebSocket the stream ends with stream_stopped; no stop frame is sent."""

    async def hang_up(ws: Any, bot: Bot, start: proto.Start) -> None:
        await ws.close(1000, "bye")

    async with streaming_leg(bot=Bot(script=hang_up)) as (h, bot, leg_sid):
        stopped = await h.event(leg_sid, "stream_stopped")
        assert stopped.detail["reason"] == "bot closed (1000)"
        assert not bot.of(proto.Stop)
        assert h.sandbox.leg(leg_sid).state == "connected"
        await h.hang_up(leg_sid)


@async_test
async def test_clear_drops_unplayed_audio_and_echoes_its_marks() -> None:
    """clear keeps the chunk already playing, drops the rest, and echoes the dropped audio's mark at once."""

    async def barge_in(ws: Any, bot: Bot, start: proto.Start) -> None:
        for _ in range(10):  # 4 s of audio
            await send(ws, proto.OutboundMedia(start.stream_sid, silence(MULAW, 400)))
        await send(ws, proto.OutboundMark(start.stream_sid, "prompt-end"))
        await asyncio.sleep(100 * MS)
        await send(ws, proto.Clear(start.stream_sid))

    async with streaming_leg(bot=Bot(script=barge_in)) as (h, bot, leg_sid):
        await until(lambda: bot.of(proto.Mark))
        report = await h.report(leg_sid)
        assert report["streams"][0]["clears"] == 1
        (audible,) = report["bot_audio"]
        # Only the first 400 ms chunk (playing when clear arrived) is ever heard.
        assert audible[1] - audible[0] == pytest.approx(0.4, abs=0.001)
        assert bot.of(proto.Mark)[0].name == "prompt-end"
        await h.hang_up(leg_sid)


@async_test
async def test_marks_of_cleared_audio_are_dropped_when_configured() -> None:
    """With echo_marks_on_clear off, a clear silently drops the marks of the audio it removed."""

    async def barge_in(ws: Any, bot: Bot, start: proto.Start) -> None:
        await send(ws, proto.OutboundMedia(start.stream_sid, silence(MULAW, 400)))
        await send(ws, proto.OutboundMedia(start.stream_sid, silence(MULAW, 400)))
        await send(ws, proto.OutboundMark(start.stream_sid, "dropped"))
        await send(ws, proto.Clear(start.stream_sid))
        await send(ws, proto.OutboundMark(start.stream_sid, "after-clear"))

    async with streaming_leg(fast_config(media=MediaConfig(echo_marks_on_clear=False)), Bot(script=barge_in)) as (h, bot, leg_sid):
        await until(lambda: bot.of(proto.Mark))
        await asyncio.sleep(50 * MS)
        assert [m.name for m in bot.of(proto.Mark)] == ["after-clear"]
        await h.hang_up(leg_sid)


@async_test
async def test_a_second_stream_on_a_leg_is_allowed_but_counted() -> None:
    """Two start_stream on one leg both connect, as Exotel would allow; two live at once are flagged."""
    async with streaming_leg(started=False) as (h, bot, leg_sid):
        await h.request_stream(leg_sid, bot.url)
        await until(lambda: h.recorder.names(leg_sid).count("stream_started") == 2)
        await h.hang_up(leg_sid)
        report = await h.report(leg_sid)
        assert report["stream_requests"] == 2 and report["streams_started"] == 2
        assert report["max_concurrent_streams"] == 2
        assert (await h.summary())["invariants"]["multiple_streams"] == [leg_sid]


@async_test
async def test_answered_call_left_without_a_stream_is_an_invariant_violation() -> None:
    """A leg answered and left in silence until the callee hangs up shows up in answered_without_stream."""
    async with harness(fast_config(CalleeProfile(ring_ms=(10, 10), talk_ms=(50, 50)))) as h:
        leg_sid = await h.create_leg()
        await h.event(leg_sid, "leg_terminated")
        report = await h.settled(leg_sid)
        assert report["invariants"] == ["answered_without_stream"]
        assert report["violations"] == ["answered call ended without a bot stream"]
        summary = await h.summary()
        assert summary["invariants"]["answered_without_stream"] == [leg_sid]
        assert summary["ok"] is False


@async_test
async def test_deliberate_hang_up_without_a_stream_is_not_a_violation() -> None:
    """An answered leg the API hangs up (a recorded decision, e.g. an answering machine) breaks no invariant."""
    async with harness() as h:
        leg_sid = await h.answered_leg()
        await h.hang_up(leg_sid)
        await h.settled(leg_sid)
        assert (await h.summary())["ok"] is True


@async_test
async def test_greeting_left_playing_after_stream_started_is_flagged() -> None:
    """A greeting still audible beyond the grace period after stream_started is an invariant violation."""
    async with harness() as h, serve_bot(Bot()) as bot:
        leg_sid = await h.answered_leg()
        await h.action(leg_sid, "start_say", text="x" * 20)  # 1.2 s
        await h.start_stream(leg_sid, bot.url)
        await h.event(leg_sid, "say_completed")
        await h.hang_up(leg_sid)
        summary = await h.summary()
        assert summary["invariants"]["greeting_after_stream"] == [leg_sid]


@async_test
async def test_unreachable_bot_fails_after_one_retry_with_an_error_event() -> None:
    """A bot URL that refuses connections is tried twice, then stream_stopped carries event_data.error."""
    async with harness() as h:
        async with serve_bot(Bot()) as bot:
            url = bot.url
        leg_sid = await h.answered_leg()
        await h.request_stream(leg_sid, url)
        stopped = await h.event(leg_sid, "stream_stopped")
        assert stopped.error["error_code"] == "STREAM_CONNECT_FAILED"
        assert "stream_started" not in h.recorder.names(leg_sid)
        (stream,) = (await h.report(leg_sid))["streams"]
        assert len(stream["handshake_errors"]) == 2
        await h.hang_up(leg_sid)


@async_test
async def test_slow_handshake_times_out_and_is_retried_once() -> None:
    """A bot slower than the handshake timeout fails the first attempt; the retry connects."""
    slow = {"count": 0}

    async def process_request(connection: Any, request: Any) -> None:
        slow["count"] += 1
        if slow["count"] == 1:
            await asyncio.sleep(400 * MS)

    async with harness(fast_config(media=MediaConfig(open_timeout_s=200 * MS))) as h:
        async with serve_bot(Bot(), process_request=process_request) as bot:
            leg_sid = await h.answered_leg()
            await h.start_stream(leg_sid, bot.url)
            (stream,) = (await h.report(leg_sid))["streams"]
            assert len(stream["handshake_errors"]) == 1 and "Timeout" in stream["handshake_errors"][0]
            assert stream["handshake_attempts"] == 2
            await h.hang_up(leg_sid)


@pytest.mark.parametrize(("content_type", "frame_bytes"), [("audio/L16;rate=8000", 1600), ("audio/L16;rate=16000", 3200), ("audio/L16;rate=24000", 4800)])
@async_test
async def test_pcm16_content_types_set_the_media_format(content_type: str, frame_bytes: int) -> None:
    """content_type audio/L16 at 8/16/24 kHz is announced in start.media_format and sizes the caller frames."""
    async with streaming_leg(content_type=content_type) as (h, bot, leg_sid):
        await until(lambda: bot.of(proto.Media))
        start = bot.of(proto.Start)[0]
        assert start.media_format.encoding_kind is proto.AudioEncoding.PCM16
        assert start.media_format.sample_rate == int(content_type.rpartition("=")[2])
        assert len(bot.of(proto.Media)[0].payload) == frame_bytes
        await h.hang_up(leg_sid)


@async_test
async def test_scripted_dtmf_is_forwarded_to_the_bot() -> None:
    """Digits in the callee profile reach the bot as dtmf frames, after the stream started."""
    profile = CalleeProfile(ring_ms=(10, 10), talk_ms=None, dtmf=(Digit("5", after_ms=50), Digit("#", after_ms=100, duration_ms=250)))
    async with streaming_leg(fast_config(profile)) as (h, bot, leg_sid):
        await until(lambda: len(bot.of(proto.Dtmf)) == 2)
        assert [(d.digit, d.duration_ms) for d in bot.of(proto.Dtmf)] == [("5", 100), ("#", 250)]
        await h.hang_up(leg_sid)


@async_test
async def test_unidirectional_stream_ignores_bot_audio() -> None:
    """On a unidirectional stream bot frames are ignored (and recorded as such); nothing becomes audible."""
    async with streaming_leg(bot=Bot(script=greet), direction="unidirectional") as (h, bot, leg_sid):
        await until(lambda: h.sandbox.leg(leg_sid).streams[0].ignored_frames == 2)
        await h.hang_up(leg_sid)
        report = await h.report(leg_sid)
        assert report["bot_audio"] == [] and report["timeline"]["first_bot_audio"] is None


@async_test
async def test_malformed_bot_frames_are_recorded_not_fatal() -> None:
    """Invalid JSON from the bot is recorded as a protocol error and the stream carries on."""

    async def garbage(ws: Any, bot: Bot, start: proto.Start) -> None:
        await ws.send("{not json")
        await greet(ws, bot, start)

    async with streaming_leg(bot=Bot(script=garbage)) as (h, bot, leg_sid):
        await until(lambda: bot.of(proto.Mark))
        (stream,) = (await h.report(leg_sid))["streams"]
        assert stream["protocol_errors"] == ["invalid JSON"] and stream["protocol_error_count"] == 1
        await h.hang_up(leg_sid)


@async_test
async def test_hang_up_during_stream_setup_emits_no_stream_events() -> None:
    """A leg hung up before the media server joined never connects to the bot."""
    async with streaming_leg(started=False) as (h, bot, leg_sid):
        await h.hang_up(leg_sid)
        assert not any(n.startswith("stream_") for n in h.recorder.names(leg_sid))
        assert bot.connections == 0


@async_test
async def test_bot_closing_right_after_the_handshake_ends_the_stream() -> None:
    """A bot that accepts the socket and closes it at once gets a stream_stopped; the leg stays up."""

    async def refuse(ws: Any) -> None:
        await ws.close(1011, "busy")

    async with harness() as h, websockets.serve(refuse, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        leg_sid = await h.answered_leg()
        await h.request_stream(leg_sid, f"ws://127.0.0.1:{port}/media")
        stopped = await h.event(leg_sid, "stream_stopped")
        assert stopped.detail["reason"] in ("disconnected", "bot closed (1011)")
        assert h.sandbox.leg(leg_sid).state == "connected"
        await h.hang_up(leg_sid)
