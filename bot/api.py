"""What a bot author writes against: :class:`Bot`, :class:`Session` and :class:`CallInfo`.

A bot is a subclass of :class:`Bot`; the server creates one instance per call and calls
its hooks in order: :meth:`~Bot.on_start` once, then :meth:`~Bot.on_audio`,
:meth:`~Bot.on_dtmf` and :meth:`~Bot.on_mark` as frames arrive, and :meth:`~Bot.on_stop`
exactly once at the end, however the call ended. Hooks may be plain or ``async``
functions; one hook runs at a time per call, and a slow hook delays that call only.

The bot acts through ``self.session``: :meth:`~Session.say` (PCM or text),
:meth:`~Session.play` (a file), :meth:`~Session.mark`, :meth:`~Session.clear`
(barge-in) and :meth:`~Session.hangup`. These return at once; the server paces the
audio out in the background.

It reports the call's business outcome with :meth:`Bot.set_disposition` and a callback the
callee asked for with :meth:`Bot.schedule_callback`. Both return at once too: they go to
:attr:`Bot.outcomes` (Redis, beside the leg, when the process has one) off the event loop,
and from there to the campaign's report and statistics. :meth:`Bot.transfer` hands the
call to a human agent the same way (:attr:`Bot.transfers`); every key the callee presses
goes there too, since the campaign may have a transfer key whatever the bot does.

All audio a bot sees or produces is internal PCM: 16-bit little-endian mono at 8 kHz
(:data:`dialstream.exotel.audio.INTERNAL_FORMAT`), whatever the stream's format.

Example::

    class Parrot(Bot):
        prompts = ("Say something.",)        # synthesised before the first call

        def on_start(self, call: CallInfo) -> None:
            self.session.say("Say something.")

        def on_dtmf(self, digit: str) -> None:
            if digit == "1":
                self.set_disposition("interested", product="loan")
            elif digit == "2":
                self.schedule_callback(time.time() + 3600)
            elif digit == "0":
                self.transfer(mode="warm", summary="Asked for a person from the menu.")
            elif digit == "#":
                self.session.hangup()
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar

from dialstream.domain.call_outcome import CallbackRequest, Disposition
from dialstream.domain.transfer import TransferRequest
from dialstream.exotel.agentstream import Start

__all__ = ["CallInfo", "Session", "Bot", "OutcomeRecorder", "TransferRecorder"]

log = logging.getLogger("dialstream.bot")
_Reported = TypeVar("_Reported", Disposition, CallbackRequest, TransferRequest)
_writes: set[asyncio.Future[None]] = set()  # outcome writes in flight: held so none is collected unfinished


@dataclass(frozen=True, slots=True)
class CallInfo(Start):
    """What the ``start`` frame and the stream URL say about a call: the frame's fields, but
    ``custom_parameters`` merges the stream URL's query parameters (except ``sample-rate``)
    with ``start.custom_parameters``; the latter win on conflicts. ``media_format`` is the
    stream's wire format; bot audio is internal PCM regardless.
    """

    @classmethod
    def from_start(cls, start: Start, query_parameters: Mapping[str, str]) -> CallInfo:
        frame = {f.name: getattr(start, f.name) for f in fields(start)}
        return cls(**{**frame, "custom_parameters": {**query_parameters, **start.custom_parameters}})


class Session(ABC):
    """A call as the bot controls it. Every method returns immediately."""

    call: CallInfo

    @abstractmethod
    def say(self, what: bytes | str, *, mark: str | bool = True) -> str | None:
        """Queue speech: internal PCM, or text for the server's TTS adapter.

        By default the utterance ends with a mark, named ``say-1``, ``say-2``...
        (``mark="name"`` picks the name), and the name is returned: when Exotel echoes
        it, :meth:`Bot.on_mark` receives it and :attr:`heard` includes it, so the bot
        knows the callee heard the whole utterance. ``mark=False`` streams the audio
        without ending an utterance (an echo, a long stream fed piece by piece).

        Raises:
            PlayoutOverflow: more audio is queued than the server's limit.
        """

    @abstractmethod
    def play(self, path: str | os.PathLike[str], *, mark: str | bool = True) -> str | None:
        """Queue an audio file (WAV 16-bit mono at any rate, or raw ``.ulaw`` at 8 kHz), as :meth:`say`."""

    @abstractmethod
    def mark(self, name: str) -> None:
        """Queue a mark after the audio queued so far."""

    @abstractmethod
    def clear(self) -> None:
        """Barge-in: drop every queued utterance and tell Exotel to drop what it has not played."""

    @abstractmethod
    def hangup(self, *, after_audio: bool = True) -> None:
        """End the call by closing the stream with 1000.

        With ``after_audio`` the close waits until queued audio has played (the final
        mark's echo, or its estimated end plus a grace period); otherwise it is at once.
        """

    @property
    @abstractmethod
    def speaking(self) -> bool:
        """Whether bot audio is queued or, by estimate, still playing at Exotel."""

    @property
    @abstractmethod
    def heard(self) -> tuple[str, ...]:
        """Names of the marks Exotel has echoed, in order: what the callee has heard."""


class OutcomeRecorder(Protocol):
    """Where bots' dispositions and callback requests go, by the call's ``call_sid`` (the leg):
    :class:`dialstream.state.call_outcomes.CallOutcomes` in a process that has a Redis."""

    def set_disposition(self, leg_sid: str, disposition: Disposition) -> None: ...

    def request_callback(self, leg_sid: str, request: CallbackRequest) -> None: ...


class TransferRecorder(Protocol):
    """Where transfer requests go, by the call's ``call_sid`` (the leg): the workers' events
    queue (:class:`dialstream.broker.transfers.TransferRequests`) in a process that has a Redis."""

    def request_transfer(self, leg_sid: str, request: TransferRequest) -> None: ...


class Bot:
    """Base class of every bot. Override the hooks you need; each defaults to doing nothing.

    Attributes:
        prompts: texts this bot will say, synthesised once per process before the server
            starts listening, so that saying them costs no TTS latency.
        session: set by the server before :meth:`on_start`.
        outcomes: where :meth:`set_disposition` and :meth:`schedule_callback` are recorded,
            set once per process by whoever runs the bot (None: kept on the bot only).
        transfers: where :meth:`transfer` and the keys pressed go, set likewise (None: nowhere).
        disposition, callback: the last ones this call set.
    """

    prompts: ClassVar[tuple[str, ...]] = ()
    outcomes: ClassVar[OutcomeRecorder | None] = None
    transfers: ClassVar[TransferRecorder | None] = None
    session: Session
    disposition: Disposition | None = None
    callback: CallbackRequest | None = None

    def set_disposition(self, code: str, **data: Any) -> Disposition:
        """The call's business outcome: ``code`` (1-64 of a-z 0-9 _ . : -, e.g. ``promise_to_pay``)
        and JSON ``data`` (at most 2,000 characters). A later one replaces it.

        Raises:
            ValueError: a bad code or data.
        """
        self.disposition = Disposition.create(code, data, now=time.time())
        self._record(self.outcomes.set_disposition if self.outcomes else None, self.disposition)
        return self.disposition

    def schedule_callback(self, at: datetime | str | float, *, note: str = "") -> CallbackRequest:
        """Ask the campaign to call back at ``at``: an aware datetime, Unix seconds, or ISO 8601
        text; a naive datetime or text without an offset is the callee's local time. The
        campaign dials then, inside the callee's calling window. A later request replaces it.

        Raises:
            ValueError: not a time, in the past, or more than 60 days away.
        """
        self.callback = CallbackRequest.create(at, now=time.time(), note=note)
        self._record(self.outcomes.request_callback if self.outcomes else None, self.callback)
        return self.callback

    def transfer(self, to: str | None = None, mode: str | None = None, *, summary: str = "") -> TransferRequest:
        """Hand the call to a human agent: ``to`` one of the campaign's agents (None: the next
        in turn), ``mode`` ``cold`` or ``warm`` (None: the campaign's). A warm transfer's agent
        hears the campaign's whisper message, else ``summary`` (at most 500 characters), before
        being connected. The workers stop this stream at once and the callee hears the hold
        message: call it once what the callee should hear was heard (:meth:`on_mark`). An
        agent who does not answer sends the call back to a new bot stream or to the fallback
        message, as the campaign says.

        Raises:
            ValueError: ``to`` is not an E.164 number, or ``mode`` not cold/warm.
        """
        request = TransferRequest.create(to, mode, summary)
        self._record(self.transfers.request_transfer if self.transfers else None, request)
        return request

    def key_pressed(self, digit: str) -> None:
        """Called by the server for every key, before :meth:`on_dtmf`: the workers transfer the
        call if it is the campaign's transfer key (DTMF reaches only the bot)."""
        self._record(self.transfers.request_transfer if self.transfers else None, TransferRequest(key=digit))

    def _record(self, write: Callable[[str, _Reported], None] | None, value: _Reported) -> None:
        """Hand ``value`` to ``write`` in a thread: a Redis round trip must not stall the other calls."""
        if write is None:
            return
        call_sid = self.session.call.call_sid
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the server (a script, a test): write at once
            write(call_sid, value)
            return
        future = loop.run_in_executor(None, write, call_sid, value)
        _writes.add(future)
        future.add_done_callback(_written)

    def on_start(self, call: CallInfo) -> Awaitable[None] | None:
        """The call's ``start`` frame arrived; ``self.session`` is ready."""

    def on_audio(self, pcm: bytes) -> Awaitable[None] | None:
        """Caller audio, as internal PCM, one ``media`` frame at a time."""

    def on_dtmf(self, digit: str) -> Awaitable[None] | None:
        """The caller pressed ``digit`` (``0``-``9``, ``*``, ``#``)."""

    def on_mark(self, name: str) -> Awaitable[None] | None:
        """Exotel echoed the mark ``name``: the audio before it has been played."""

    def on_stop(self, reason: str) -> Awaitable[None] | None:
        """The call ended. ``reason`` is Exotel's (``callended``, ``stopped``...) or the
        server's: ``hangup`` (the bot hung up), ``disconnected``, ``idle timeout``,
        ``protocol error``, ``shutdown``."""


def _written(future: asyncio.Future[None]) -> None:
    _writes.discard(future)
    if not future.cancelled() and future.exception() is not None:
        log.warning("a call outcome was not recorded: %s", future.exception())
