"""The bot serves the start frames real senders send, not only the documented one."""

from __future__ import annotations

import json

import pytest

from dialstream.exotel.agentstream import OutboundMark
from tests.bot.exotel import FakeExotel, run
from tests.bot.scenario import events, scenario_bot, serving, until


@pytest.mark.parametrize(
    "start",
    [
        {"event": "start", "stream_sid": "SID", "start": {"call_sid": "c1"}},
        {"Event": "start", "streamSid": "SID", "callSid": "c1", "customParameters": {"say_ms": 400}},
        {"event": "start", "stream_sid": "SID"},  # Exotel's own test client: no call_sid, no start object
        {"event": "start", "sequence_number": 1, "start": {"streamSid": "SID", "mediaFormat": {"sampleRate": 8000}}},
    ],
    ids=["nested-snake", "flat-camel-Event", "flat-no-call-sid", "nested-camel-int"],
)
def test_bot_starts_on_every_start_variant_and_speaks(start):
    """Each variant reaches on_start with the stream SID, and the bot's speech flows back."""
    bot = scenario_bot()

    async def scenario() -> None:
        async with serving(bot) as server:
            async with FakeExotel(server.url + "?say_ms=400") as exotel:
                await exotel.send_raw(json.dumps({"event": "connected"}))
                await exotel.send_raw(json.dumps(start).replace("SID", exotel.stream_sid))
                await until(lambda: events(bot, "start"))
                await exotel.until(lambda: exotel.of_type(OutboundMark))
        call = events(bot, "start")[0]
        assert call.stream_sid == exotel.stream_sid
        assert call.call_sid in ("c1", "")

    run(scenario())
