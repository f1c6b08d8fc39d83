"""Interop with code we did not write: pipecat's ExotelFrameSerializer reads our bot's frames, and our side reads its frames."""

from __future__ import annotations

import asyncio

from pipecat.frames.frames import InputAudioRawFrame, InterruptionFrame, OutputAudioRawFrame
from pipecat.serializers.exotel import ExotelFrameSerializer

from bot.bots import EchoBot, GreeterBot
from bot.config import BotServerConfig
from bot.server import BotServer
from dialstream.exotel.agentstream import Clear, Media, MediaFormat, OutboundMedia, parse_from_bot, parse_from_exotel
from dialstream.exotel.audio import tone
from tests.bot.exotel import run, streaming

PCM16 = MediaFormat.pcm16(8000)


async def pipecat_serializer(stream_sid: str, rate: int = 8000) -> ExotelFrameSerializer:
    """The serializer as pipecat's runner builds it for an Exotel call, at the pipeline's rate."""
    params = ExotelFrameSerializer.InputParams(exotel_sample_rate=rate, sample_rate=rate)
    serializer = ExotelFrameSerializer(stream_sid, params=params)
    await serializer.setup(None)  # only reads the setup when params leave the rate open
    return serializer


def test_pipecat_deserializes_every_media_frame_our_bot_sends():
    """Each of the greeter's numbered media frames is an InputAudioRawFrame to pipecat, with the exact audio."""

    async def scenario() -> None:
        async with BotServer(GreeterBot, BotServerConfig(port=0)) as server:
            async with streaming(server.url + "?sample-rate=8000", media_format=PCM16) as exotel:
                await exotel.until(lambda: len(exotel.of_type(OutboundMedia)) >= 3)
        serializer = await pipecat_serializer(exotel.stream_sid)
        frames = [(raw, r.message) for raw, r in zip(exotel.raw, exotel.received, strict=True)]
        media = [(raw, message) for raw, message in frames if isinstance(message, OutboundMedia)]
        assert len(media) >= 3
        for raw, message in media:
            frame = await serializer.deserialize(raw)
            assert isinstance(frame, InputAudioRawFrame)
            assert (frame.audio, frame.sample_rate, frame.num_channels) == (message.payload, 8000, 1)

    run(scenario())


def test_frames_pipecat_serializes_are_accepted_by_our_bot_and_our_sandbox():
    """pipecat's media (no numbering, no chunk, no timestamp) parses on both sides, and its interruption is a clear."""

    async def scenario() -> None:
        serializer = await pipecat_serializer("sid-1")
        audio = tone(PCM16, 440, 200)
        text = await serializer.serialize(OutputAudioRawFrame(audio=audio, sample_rate=8000, num_channels=1))
        assert parse_from_exotel(text) == Media("sid-1", 0, 0, 0, audio)
        assert parse_from_bot(text) == OutboundMedia("sid-1", audio)
        assert parse_from_bot(await serializer.serialize(InterruptionFrame())) == Clear("sid-1")

    asyncio.run(scenario())


def test_our_echo_bot_echoes_audio_framed_by_pipecat():
    """Caller audio in pipecat's framing reaches our echo bot, which sends it back unchanged."""

    async def scenario() -> None:
        caller = tone(PCM16, 440, 800)
        async with BotServer(EchoBot, BotServerConfig(port=0)) as server:
            async with streaming(server.url + "?sample-rate=8000", media_format=PCM16) as exotel:
                serializer = await pipecat_serializer(exotel.stream_sid)
                for offset in range(0, len(caller), 1600):
                    piece = caller[offset : offset + 1600]
                    await exotel.send_raw(await serializer.serialize(OutputAudioRawFrame(piece, 8000, 1)))
                echoed = lambda: b"".join(m.payload for m in exotel.of_type(OutboundMedia))  # noqa: E731
                await exotel.until(lambda: len(echoed()) >= len(caller))
        assert echoed()[: len(caller)] == caller

    run(scenario())
