"""A bot steered by its call's custom parameters and keys, and a server fixture for it: what the bot-server tests drive."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

from bot.api import Bot, CallInfo
from bot.config import BotServerConfig, Timeouts
from bot.server import BotServer
from dialstream.exotel.audio import INTERNAL_FORMAT, tone
from tests.bot.exotel import FakeExotel, streaming
from tests.utils import until as poll_until

TEST_TIMEOUTS = Timeouts(idle=3.0, close=1.0, send=2.0, hangup_grace=0.3, drain=5.0)


class ScenarioBot(Bot):
    """A bot steered by the call's custom parameters and keys; it logs every hook call.

    Parameters: ``say_ms`` speaks a tone that long on start, ``say_text`` speaks text,
    ``echo`` echoes caller audio. Keys: ``0`` clear, ``5`` say 400 ms, ``9`` hang up after
    the audio, ``#`` hang up now, ``!`` is not a key (used to make a hook raise).
    """

    log: ClassVar[list[tuple[str, Any]]]

    def on_start(self, call: CallInfo) -> None:
        self.log.append(("start", call))
        self.call = call
        if "say_ms" in call.custom_parameters:
            self.log.append(
                ("said", self.session.say(tone(INTERNAL_FORMAT, 440, int(call.custom_parameters["say_ms"]))))
            )
        if "say_text" in call.custom_parameters:
            self.log.append(("said", self.session.say(call.custom_parameters["say_text"])))
            self.log.append(("said", self.session.say(tone(INTERNAL_FORMAT, 440, 100))))
        if "fail" in call.custom_parameters:
            raise RuntimeError("bot bug")

    def on_audio(self, pcm: bytes) -> None:
        if "echo" in self.call.custom_parameters:
            self.session.say(pcm, mark=False)

    def on_dtmf(self, digit: str) -> None:
        self.log.append(("dtmf", digit))
        if digit == "0":
            self.session.clear()
        elif digit == "5":
            self.session.say(tone(INTERNAL_FORMAT, 600, 400))
        elif digit == "9":
            self.session.hangup()
        elif digit == "#":
            self.session.hangup(after_audio=False)

    def on_mark(self, name: str) -> None:
        self.log.append(("mark", name))
        self.log.append(("heard", self.session.heard))

    def on_stop(self, reason: str) -> None:
        self.log.append(("stop", reason))


def scenario_bot() -> type[ScenarioBot]:
    """A fresh ScenarioBot class with its own log."""
    return type("ScenarioBot", (ScenarioBot,), {"log": []})


def events(bot: type[ScenarioBot], kind: str) -> list[Any]:
    return [value for name, value in bot.log if name == kind]


@contextlib.asynccontextmanager
async def serving(bot: type[Bot], **overrides: Any) -> AsyncIterator[BotServer]:
    config = BotServerConfig(**{"port": 0, "timeouts": TEST_TIMEOUTS, **overrides})
    async with BotServer(bot, config) as server:
        yield server


@contextlib.asynccontextmanager
async def streaming_to(bot: type[Bot], query: str = "", **overrides: Any) -> AsyncIterator[FakeExotel]:
    """:func:`serving` ``bot`` (``overrides`` to its config) and a started stream to it, ``query`` on its URL."""
    async with serving(bot, **overrides) as server, streaming(server.url + query) as exotel:
        yield exotel


async def stream_ending(
    bot: type[ScenarioBot], end: Callable[[FakeExotel], Awaitable[None]] | None = None, query: str = "", **overrides: Any
) -> tuple[tuple[int | None, str | None], list[Any]]:
    """Serve ``bot``, start a stream to it (``query`` on its URL) and let ``end`` end it: the close
    code and reason the bot sent, and the reasons on_stop got, once the server is stopped."""
    async with serving(bot, **overrides) as server:
        async with streaming(server.url + query) as exotel:
            if end is not None:
                await end(exotel)
            closed = await exotel.closed()
        await until(lambda: events(bot, "stop"))
    return closed, events(bot, "stop")


until = functools.partial(poll_until, timeout=3.0)  # this module's waits are short
