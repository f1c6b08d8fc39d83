"""The built-in echo and greeter bots, over real WebSockets."""

from __future__ import annotations

from bot.bots import EchoBot, GreeterBot
from bot.config import BotServerConfig
from bot.server import BotServer
from dialstream.exotel.agentstream import CHUNK_MIN, MediaFormat, OutboundMark, OutboundMedia
from dialstream.exotel.audio import mulaw_decode, silence, tone
from tests.bot.exotel import FakeExotel, run, streaming


def payload_of(exotel: FakeExotel) -> bytes:
    return b"".join(m.payload for m in exotel.of_type(OutboundMedia))


def test_echo_repeats_mulaw_audio_exactly():
    """The echo bot sends back the caller's mu-law audio unchanged, in full chunks, without marks."""
    fmt = MediaFormat.mulaw(8000)
    caller = tone(fmt, 350, 2000)

    async def scenario() -> None:
        async with BotServer(EchoBot, BotServerConfig(port=0)) as server:
            async with streaming(server.url, media_format=fmt) as exotel:
                await exotel.stream_audio(caller, realtime=False)
                await exotel.until(lambda: len(payload_of(exotel)) >= len(caller) - CHUNK_MIN)
        echoed = payload_of(exotel)
        assert all(len(m.payload) == CHUNK_MIN for m in exotel.of_type(OutboundMedia))
        # mu-law has two codes for zero; compare decoded samples.
        assert mulaw_decode(echoed) == mulaw_decode(caller[: len(echoed)])
        assert exotel.of_type(OutboundMark) == []

    run(scenario())


def test_echo_converts_through_internal_format_at_16khz():
    """At 16 kHz PCM16 the echo comes back in the stream's own format and about the same length."""
    fmt = MediaFormat.pcm16(16000)
    caller = tone(fmt, 350, 1000)

    async def scenario() -> None:
        async with BotServer(EchoBot, BotServerConfig(port=0)) as server:
            async with streaming(server.url + "?sample-rate=16000", media_format=fmt) as exotel:
                await exotel.stream_audio(caller, realtime=False)
                await exotel.until(lambda: len(payload_of(exotel)) >= len(caller) - CHUNK_MIN)
        assert len(payload_of(exotel)) % CHUNK_MIN == 0

    run(scenario())


class ShortGreeter(GreeterBot):
    greeting = "Hi there"
    prompts = (greeting,)


def test_greeter_greets_then_echoes_once_heard():
    """The greeter speaks its prompt first and echoes only audio that arrives after the prompt was heard."""
    fmt = MediaFormat.mulaw(8000)

    async def scenario() -> None:
        async with BotServer(ShortGreeter, BotServerConfig(port=0)) as server:
            async with streaming(server.url, media_format=fmt) as exotel:
                # Caller noise during the greeting is not echoed...
                await exotel.stream_audio(tone(fmt, 500, 400), realtime=False)
                await exotel.until(lambda: exotel.echoed)
                greeting_chunks = len(exotel.of_type(OutboundMedia))
                # ...audio after the greeting was heard is.
                await exotel.stream_audio(silence(fmt, 800), realtime=False)
                await exotel.until(lambda: len(exotel.of_type(OutboundMedia)) > greeting_chunks)
        names = [m.name for m in exotel.of_type(OutboundMark)]
        assert names == ["say-1"]
        echoed = exotel.of_type(OutboundMedia)[greeting_chunks:]
        assert all(set(m.payload) <= {0xFF, 0x7F} for m in echoed)

    run(scenario())
