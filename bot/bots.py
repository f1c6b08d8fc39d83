"""Built-in bots: ``echo`` and ``greeter`` (``scripted`` lives in :mod:`bot.scripted`)."""

from __future__ import annotations

from bot.api import Bot, CallInfo

__all__ = ["EchoBot", "GreeterBot"]


class EchoBot(Bot):
    """Repeats everything it hears, about one outbound chunk later.

    The audio is streamed without marks, so the playout cuts it into full chunks instead
    of padding each 100 ms frame: the echo is continuous, which makes it the reference
    for tests and for latency measurement.
    """

    def on_audio(self, pcm: bytes) -> None:
        self.session.say(pcm, mark=False)


class GreeterBot(EchoBot):
    """Greets the callee the moment the stream starts, then echoes.

    The greeting is in :attr:`prompts`, so its speech is ready before any call connects
    and its first chunk leaves within milliseconds of ``start``. Echoing starts once
    Exotel echoes the greeting's mark, i.e. once the callee has heard it all.
    """

    greeting = "Hello! This is dialstream. Say something and I will repeat it."
    prompts = (greeting,)

    def on_start(self, call: CallInfo) -> None:
        self._greeting_mark = self.session.say(self.greeting)
        self._greeted = False

    def on_mark(self, name: str) -> None:
        if name == self._greeting_mark:
            self._greeted = True

    def on_audio(self, pcm: bytes) -> None:
        if self._greeted:
            super().on_audio(pcm)
