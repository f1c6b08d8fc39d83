"""The bot server over real WebSockets on loopback: failures stay per stream, capacity, drain and stalled peers."""

from __future__ import annotations

import asyncio
import socket

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bot import metrics
from bot.config import BotServerConfig, Limits, Pacing, Timeouts
from bot.server import BotServer
from dialstream.exotel.agentstream import Connected, MediaFormat, OutboundMark, OutboundMedia, encode
from dialstream.exotel.audio import tone
from tests.bot.exotel import FakeExotel, run, streaming
from tests.bot.scenario import events, scenario_bot, serving, stream_ending, until
from tests.utils import MS

# --- Failures stay per stream --------------------------------------------------------

MALFORMED = {
    "bad-json": ("{nope", 1007),
    "unknown-event": ('{"event":"dance","stream_sid":"x"}', 1003),
    "bad-base64": ('{"event":"media","media":{"payload":"@@@"}}', 1007),
    "binary": (b"\x00\x01\x02", 1003),
    "huge": ('{"event":"media","media":{"payload":"' + "A" * (2**20) + '"}}', 1009),
    "second-start": (None, 1008),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_frame_closes_only_that_stream(case):
    """A malformed frame closes its stream with the fitting code while another stream keeps streaming."""
    bot = scenario_bot()
    frame, code = MALFORMED[case]
    before = metrics.STREAM_CLOSES.labels(str(code), "bot")._value.get()

    async def scenario() -> None:
        async with serving(bot) as server:
            async with FakeExotel(server.url + "?echo=1") as healthy, FakeExotel(server.url) as broken:
                await healthy.start()
                await broken.start()
                await broken.send_raw(frame if frame is not None else encode(Connected()))
                if frame is None:
                    await broken.start(connected=False)
                closed_code, _ = await broken.closed()
                assert closed_code == code
                # The other stream is unaffected: its echo keeps coming back.
                await healthy.stream_audio(tone(healthy.media_format, 300, 1000), realtime=False)
                await healthy.until(lambda: len(healthy.of_type(OutboundMedia)) >= 2)
                assert healthy.ws.close_code is None

    run(scenario())
    assert metrics.STREAM_CLOSES.labels(str(code), "bot")._value.get() == before + 1


def test_media_before_start_closes_with_1008():
    """Media sent before start breaks the documented order and closes the stream with 1008."""

    async def scenario() -> None:
        async with serving(scenario_bot()) as server:
            async with FakeExotel(server.url) as exotel:
                await exotel.send_media(b"\xff" * 800)
                assert await exotel.closed() == (1008, "media before start")

    run(scenario())


def test_idle_stream_closes_with_1001():
    """A stream that sends nothing for the idle timeout is closed with 1001."""
    closed, stops = run(stream_ending(scenario_bot(), timeouts=Timeouts(idle=300 * MS, close=1.0)))
    assert closed == (1001, "idle timeout")
    assert stops == ["idle timeout"]


def test_bot_exception_closes_with_1011():
    """An exception in a bot hook closes that stream with 1011 and still calls on_stop."""
    closed, stops = run(stream_ending(scenario_bot(), query="?fail=1"))
    assert closed == (1011, "internal error")
    assert stops == ["internal error"]


def test_capacity_refuses_handshake_with_503():
    """Beyond capacity the upgrade is refused with HTTP 503 so that Exotel's retry goes elsewhere."""

    async def scenario() -> None:
        async with serving(scenario_bot(), limits=Limits(capacity=1)) as server:
            async with streaming(server.url):
                await until(lambda: server.active_streams == 1)
                with pytest.raises(InvalidStatus) as info:
                    async with connect(server.url):
                        pass
                assert info.value.response.status_code == 503

    run(scenario())


# --- Shutdown ------------------------------------------------------------------------


def test_drain_lets_calls_finish_and_refuses_new_ones():
    """drain() stops accepting streams but waits for the call in progress to end by itself."""
    bot = scenario_bot()

    async def scenario() -> None:
        async with serving(bot) as server:
            url = server.url
            async with streaming(url + "?echo=1") as exotel:
                await until(lambda: events(bot, "start"))
                drain = asyncio.create_task(server.drain(timeout=5.0))
                await asyncio.sleep(100 * MS)
                with pytest.raises(OSError):
                    async with connect(url, open_timeout=1.0):
                        pass
                # The call in progress still works while draining.
                await exotel.stream_audio(tone(exotel.media_format, 300, 800), realtime=False)
                await exotel.until(lambda: exotel.of_type(OutboundMedia))
                assert not drain.done()
                await exotel.stop()
                await asyncio.wait_for(drain, 2.0)
        assert events(bot, "stop") == ["callended"]

    run(scenario())


def test_drain_timeout_closes_remaining_calls_with_1001():
    """Calls still running when the drain timeout expires are closed with 1001 and told shutdown."""
    bot = scenario_bot()

    async def scenario() -> None:
        async with serving(bot) as server:
            async with streaming(server.url) as exotel:
                await until(lambda: events(bot, "start"))
                await server.drain(timeout=200 * MS)
                assert await exotel.closed() == (1001, "server shutting down")
        assert events(bot, "stop") == ["shutdown"]

    run(scenario())


def test_stalled_reader_is_aborted_without_holding_other_streams():
    """A peer that stops reading is aborted after the send timeout while another stream keeps flowing."""
    bot = scenario_bot()
    fmt = MediaFormat.pcm16(24000)

    async def scenario() -> None:
        # Pace nothing (a huge lead) so that a long utterance is pushed out at once.
        config = BotServerConfig(
            port=0,
            timeouts=Timeouts(idle=5.0, close=0.5, send=300 * MS),
            pacing=Pacing(chunk_bytes=96_000, lead=1000.0),
        )
        async with BotServer(bot, config) as server:
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            # max_queue=1: the client stops reading the socket once one message waits unread.
            async with connect(server.url + "?say_ms=110000", sock=sock, max_queue=1, compression=None) as stalled:
                await stalled.send(encode(Connected()))
                await stalled.send(FakeExotel.start_frame("stalled0001", fmt))
                async with streaming(server.url) as healthy:
                    await until(lambda: events(bot, "stop"), timeout=10.0)
                    assert events(bot, "stop") == ["disconnected"]
                    await healthy.press("5")
                    await healthy.until(lambda: healthy.of_type(OutboundMark))

    run(scenario())
