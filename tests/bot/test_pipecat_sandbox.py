"""A bot built on pipecat's ExotelFrameSerializer is the sandbox's stream target, in PCM16 and in mu-law.

The bot is a tiny websockets server whose only protocol code is pipecat's (its serializer,
and for mu-law its own G.711 helpers, as its Twilio serializer uses them). The sandbox
streams the callee's known tone; the bot must hear that tone intact, and the sandbox must
take the bot's reply without a protocol error.
"""

from __future__ import annotations

import array
import json
import math
from typing import Any

import pytest
import websockets
from pipecat.audio.utils import create_stream_resampler, pcm_to_ulaw, ulaw_to_pcm
from pipecat.frames.frames import InputAudioRawFrame, OutputAudioRawFrame
from pipecat.serializers.exotel import ExotelFrameSerializer

from dialstream.exotel.agentstream import EXTERNAL_BOT_FORMATS, AudioEncoding, MediaFormat, choose_content_type
from dialstream.exotel.audio import tone
from dialstream.exotel.legs_api import DEFAULT_CONTENT_TYPE
from sim.callee import CalleeProfile
from sim.config import MediaConfig
from tests.sim.harness import ANSWERING, async_test, fast_config, harness, serve_bot
from tests.utils import until

FRAME_MS = MediaConfig().frame_ms
TONE_HZ = MediaConfig().tone_hz
EXPECTED = tone(MediaFormat.pcm16(8000), TONE_HZ, FRAME_MS)  # the callee's frame, as 16-bit PCM
REPLY = tone(MediaFormat.pcm16(8000), 600, 400)  # what the bot says: 400 ms


class PipecatBot:
    """Serves streams with pipecat's serializer; ``heard`` is the caller audio it decoded, as PCM16."""

    def __init__(self) -> None:
        self.heard = bytearray()
        self.url = ""

    async def handler(self, ws: websockets.ServerConnection) -> None:
        serializer: ExotelFrameSerializer | None = None
        mulaw = False
        resampler = create_stream_resampler()
        async for text in ws:
            message = json.loads(text)
            if message.get("event") == "start":  # what pipecat's runner reads to build the serializer
                start = message["start"]
                fmt = MediaFormat(start["media_format"]["encoding"], int(start["media_format"]["sample_rate"]))
                mulaw = fmt.encoding_kind is AudioEncoding.MULAW
                params = ExotelFrameSerializer.InputParams(exotel_sample_rate=fmt.sample_rate, sample_rate=fmt.sample_rate)
                serializer = ExotelFrameSerializer(start["stream_sid"], start["call_sid"], params)
                await serializer.setup(None)
                reply = await pcm_to_ulaw(REPLY, 8000, 8000, resampler) if mulaw else REPLY
                await ws.send(await serializer.serialize(OutputAudioRawFrame(reply, fmt.sample_rate, 1)))
            elif serializer is not None:
                frame = await serializer.deserialize(text)
                if isinstance(frame, InputAudioRawFrame):
                    audio = await ulaw_to_pcm(frame.audio, 8000, 8000, resampler) if mulaw else frame.audio
                    self.heard += audio


def snr_db(expected: bytes, got: bytes) -> float:
    want, have = array.array("h", expected), array.array("h", got)
    signal = sum(x * x for x in want)
    noise = sum((x - y) ** 2 for x, y in zip(want, have, strict=True))
    return math.inf if noise == 0 else 10 * math.log10(signal / noise)


@pytest.mark.parametrize(
    ("content_type", "min_snr_db"),
    [
        # A PCM-only bot gets PCM16 although the campaign prefers mu-law: bit-exact.
        (choose_content_type(EXTERNAL_BOT_FORMATS, DEFAULT_CONTENT_TYPE), math.inf),
        # G.711 mu-law keeps about 38 dB SNR on a loud sine; 30 dB is well clear of noise.
        (DEFAULT_CONTENT_TYPE, 30.0),
    ],
    ids=["pcm16", "mulaw"],
)
@async_test
async def test_pipecat_bot_hears_the_callees_tone_and_the_sandbox_takes_its_reply(content_type: str, min_snr_db: float) -> None:
    """Three frames of the callee's tone arrive intact at the pipecat bot; its 400 ms reply is played without protocol errors."""
    assert content_type.startswith("audio/L16" if math.isinf(min_snr_db) else "audio/x-mulaw")
    profile = CalleeProfile(ring_ms=ANSWERING.ring_ms, talk_ms=None, caller_audio="tone")
    async with harness(fast_config(profile)) as h, serve_bot(PipecatBot()) as bot:
        leg_sid = await h.answered_leg()
        status, envelope = await h.action(
            leg_sid, "start_stream", direction="bidirectional", url=bot.url, content_type=content_type
        )
        assert status == 202, envelope
        frame_bytes = len(EXPECTED)
        await until(lambda: len(bot.heard) >= 3 * frame_bytes)
        report: dict[str, Any] = await h.report(leg_sid)
        await h.hang_up(leg_sid)
    for index in range(3):
        got = bytes(bot.heard[index * frame_bytes : (index + 1) * frame_bytes])
        assert snr_db(EXPECTED, got) >= min_snr_db
    (stream,) = report["streams"]
    assert stream["content_type"] == content_type
    assert stream["protocol_error_count"] == 0
    assert (stream["bot_chunks"], stream["bot_audio_ms"]) == (1, 400)
