"""The bot author's API: call metadata and the hook defaults."""

from __future__ import annotations

from bot.api import Bot, CallInfo
from dialstream.exotel.agentstream import MediaFormat, Start


def test_call_info_merges_url_and_start_parameters():
    """start.custom_parameters win over the URL's query parameters on conflicts."""
    start = Start("s", "c", "a", "+91", "+92", {"k": "start", "x": "1"}, MediaFormat.pcm16(16000))
    call = CallInfo.from_start(start, {"k": "url", "y": "2"})
    assert call == CallInfo("s", "c", "a", "+91", "+92", {"k": "start", "x": "1", "y": "2"}, MediaFormat.pcm16(16000))


def test_hooks_default_to_doing_nothing():
    """Every hook of the base class can be called and returns None."""
    bot = Bot()
    call = CallInfo("s", "c")
    assert [bot.on_start(call), bot.on_audio(b""), bot.on_dtmf("1"), bot.on_mark("m"), bot.on_stop("x")] == [None] * 5
    assert Bot.prompts == ()
