"""The :class:`~bot.api.Session` of one stream: what a bot asks for, into the playout queue.

Text whose speech is not cached is synthesised in a task; later commands wait in a
backlog behind it so that everything plays in the order the bot asked for. The stream
(:mod:`bot.stream`) pumps the backlog and sends what the playout makes due.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from bot.api import CallInfo, Session
from bot.audiofile import read_audio
from bot.playout import Playout
from bot.tts import CachedTTS
from dialstream.errors import PlayoutOverflow
from dialstream.exotel.audio import Transcoder
from dialstream.exotel.log_text import for_log

__all__ = ["CallSession", "HANGUP_MARK", "MAX_BACKLOG"]

log = logging.getLogger("dialstream.bot")

MAX_BACKLOG = 64
"""Utterances that may wait behind a pending synthesis before say() refuses more."""

HANGUP_MARK = "hangup"
"""Name of the mark queued by ``hangup(after_audio=True)``; its echo means the callee heard everything."""


@dataclass(slots=True)
class _Utterance:
    """An entry of the session's backlog: audio (or its pending synthesis), then a mark."""

    audio: bytes | asyncio.Future[bytes] | None
    mark: str | None
    text: str = ""


class CallSession(Session):
    """The session of one stream; ``wake`` asks the stream to send what became due."""

    def __init__(
        self,
        call: CallInfo,
        playout: Playout,
        transcoder: Transcoder,
        tts: CachedTTS,
        wake: Callable[[], None],
        *,
        hangup_grace: float,
    ) -> None:
        self.call = call
        self._hangup_grace = hangup_grace
        self._playout = playout
        self._transcoder = transcoder
        self._tts = tts
        self._wake = wake
        self._loop = asyncio.get_running_loop()
        self._backlog: deque[_Utterance] = deque()
        self._count = 0
        self._heard: list[str] = []
        self.clear_requested = False
        self.hangup_requested = False
        self.hangup_after_audio = False
        self._hangup_mark_heard = False

    # --- Session API -----------------------------------------------------------------

    def say(self, what: bytes | str, *, mark: str | bool = True) -> str | None:
        name = self._name(mark)
        if isinstance(what, str):
            cached = self._tts.get(what)
            if cached is None:
                future = asyncio.ensure_future(self._tts.synthesize(what))
                future.add_done_callback(lambda _: self._wake())
                self._submit(_Utterance(future, name, what))
                return name
            what = cached
        self._submit(_Utterance(bytes(what), name))
        return name

    def play(self, path: str | os.PathLike[str], *, mark: str | bool = True) -> str | None:
        return self.say(read_audio(path), mark=mark)

    def mark(self, name: str) -> None:
        self._submit(_Utterance(None, name))

    def clear(self) -> None:
        self.discard_backlog()
        unplayed, _ = self._playout.clear(now=self._loop.time())
        if self.hangup_requested:
            self._hangup_mark_heard = True  # the hang-up mark went too: nothing left to wait for
        if unplayed:
            self.clear_requested = True
            self._wake()

    def hangup(self, *, after_audio: bool = True) -> None:
        if self.hangup_requested:
            return
        self.hangup_requested = True
        self.hangup_after_audio = after_audio
        if after_audio:
            self.mark(HANGUP_MARK)
        self._wake()

    @property
    def speaking(self) -> bool:
        return bool(self._backlog) or self._playout.busy(self._loop.time())

    @property
    def heard(self) -> tuple[str, ...]:
        return tuple(self._heard)

    # --- Server side -----------------------------------------------------------------

    def marked(self, name: str) -> None:
        """Exotel echoed ``name``."""
        self._heard.append(name)
        if name == HANGUP_MARK:
            self._hangup_mark_heard = True
            self._wake()

    def pump(self) -> None:
        """Move finished utterances from the backlog into the playout queue, in order."""
        while self._backlog:
            head = self._backlog[0]
            if isinstance(head.audio, asyncio.Future):
                if not head.audio.done():
                    return
                self._backlog.popleft()
                try:
                    pcm = head.audio.result()
                except Exception:
                    log.exception("stream %s: TTS failed for %r; skipping it", for_log(self.call.stream_sid), head.text[:40])
                    continue
                try:
                    self._enqueue(pcm, head.mark)
                except PlayoutOverflow as exc:
                    log.warning("stream %s: utterance dropped: %s", for_log(self.call.stream_sid), exc)
            else:
                self._backlog.popleft()
                self._enqueue(head.audio, head.mark)

    def hangup_in(self, now: float) -> float | None:
        """Seconds until the requested hang-up is due (0: now); ``None`` if none is requested."""
        if not self.hangup_requested:
            return None
        if not self.hangup_after_audio:
            return 0.0
        if self._backlog or self._playout.due_in(now) is not None:
            return None  # still sending; the player wakes up again when that changes
        if self._hangup_mark_heard:
            return 0.0
        return max(0.0, self._playout.play_end + self._hangup_grace - now)

    def discard_backlog(self) -> None:
        """Drop utterances not yet queued, cancelling syntheses still in flight."""
        for utterance in self._backlog:
            if isinstance(utterance.audio, asyncio.Future):
                utterance.audio.cancel()
        self._backlog.clear()

    def _submit(self, utterance: _Utterance) -> None:
        # Behind a pending synthesis everything waits its turn, so order is kept.
        if self._backlog or isinstance(utterance.audio, asyncio.Future):
            if len(self._backlog) >= MAX_BACKLOG:
                if isinstance(utterance.audio, asyncio.Future):
                    utterance.audio.cancel()
                raise PlayoutOverflow(f"{MAX_BACKLOG} utterances already wait for speech synthesis")
            self._backlog.append(utterance)
        else:
            self._enqueue(utterance.audio, utterance.mark)
        self._wake()

    def _enqueue(self, pcm: bytes | None, mark: str | None) -> None:
        now = self._loop.time()
        if pcm:
            self._playout.append(self._transcoder.encode(pcm), now=now)
        if mark is not None:
            self._playout.mark(mark, now=now)

    def _name(self, mark: str | bool) -> str | None:
        if isinstance(mark, str):
            return mark
        if not mark:
            return None
        self._count += 1
        return f"say-{self._count}"
