"""One AgentStream connection: the receive loop, the flush that sends what is due, close bookkeeping.

Per stream the server runs one task, the receive loop: it parses each frame
(:func:`dialstream.exotel.agentstream.parse_from_exotel`), converts caller audio to internal
PCM, calls the bot's hooks in order, then sends what the hooks made due. Audio due
later (:class:`bot.playout.Playout` paces it in real time) is sent by the process's
:class:`~bot.clock.PacingClock`. Sends are synchronous writes bounded by
``Limits.write_limit``, so a chunk costs no task switch.

Failure is per stream: a malformed frame closes that stream with the close code the
codec chose (1003 or 1007; an oversized frame 1009; frames out of order 1008); a
silent stream closes with 1001 once the server's idle sweep calls :meth:`Stream.expire_if_idle`;
a peer that stops reading (its socket buffer stays above ``Limits.write_limit``) is
aborted after ``Timeouts.send``; an exception in a bot hook closes with 1011. Every
close is logged with its code and reason and counted in :mod:`bot.metrics`.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from bot import metrics
from bot.api import Bot, CallInfo
from bot.clock import PacingClock
from bot.config import BotServerConfig
from bot.playout import Playout
from bot.session import CallSession
from bot.tts import CachedTTS
from dialstream.errors import AgentStreamProtocolError
from dialstream.exotel.agentstream import (
    DEFAULT_MEDIA_FORMAT,
    Clear,
    Connected,
    Dtmf,
    Mark,
    Media,
    MediaFormat,
    OutboundMedia,
    Start,
    Stop,
    encode,
    parameters_from_query,
    parse_from_exotel,
)
from dialstream.exotel.audio import Transcoder
from dialstream.exotel.log_text import for_log

__all__ = ["Stream", "peer_of"]

log = logging.getLogger("dialstream.bot")

STALL_POLL = 0.05
"""Seconds between checks of a socket whose buffer is above the write limit (the peer is not reading)."""

_MEDIA_TAIL = '"}}'


class Stream:
    """One connection: the receive loop, the flush that sends what is due, and close bookkeeping."""

    __slots__ = (
        "connection", "config", "stream_sid", "bot", "session", "_bot_class", "_tts", "_clock", "_loop", "_task",
        "_playout", "_transcoder", "_sid_json", "_sequence", "_chunks", "_sent_bytes", "_stop_reason", "_shutting_down", "_in_hook", "_due_at",
        "_idle_since", "_idle_expired", "_stalled_since", "_closer", "_done",
    )  # fmt: skip

    def __init__(
        self, connection: ServerConnection, bot: type[Bot], config: BotServerConfig, tts: CachedTTS, clock: PacingClock
    ) -> None:
        self.connection = connection
        self.config = config
        self._bot_class = bot
        self._tts = tts
        self.stream_sid = ""
        self.bot: Bot | None = None
        self.session: CallSession | None = None
        self._clock = clock
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._playout: Playout | None = None
        self._transcoder: Transcoder | None = None
        self._sid_json = ""  # the stream SID as a JSON string, for the media frames built by hand
        # Exotel's JS sender numbers what it sends: every media and mark (sequence_number),
        # every media (media.chunk) and the audio before each chunk (media.timestamp, in ms).
        self._sequence = 0
        self._chunks = 0
        self._sent_bytes = 0
        self._stop_reason = "disconnected"
        self._shutting_down = False
        self._in_hook = False
        self._due_at: float | None = None  # when the clock flushes this stream next
        self._idle_since: float | None = None  # set while waiting for a frame
        self._idle_expired = False
        self._stalled_since: float | None = None  # since when the peer has not been reading
        self._closer: asyncio.Task[None] | None = None
        self._done = False

    async def run(self) -> None:
        query = urlsplit(self.connection.request.path if self.connection.request else "").query
        rate, parameters = parameters_from_query(query)
        # The applet's ?sample-rate= selects 16-bit PCM at that rate; without it, the Legs
        # start_stream default applies. start.media_format, when present, overrides both.
        default_format = MediaFormat.pcm16(rate) if rate else DEFAULT_MEDIA_FORMAT
        try:
            await self._receive(default_format, parameters)
        except AgentStreamProtocolError as exc:
            metrics.PROTOCOL_ERRORS.labels(str(exc.close_code)).inc()
            log.warning("stream %s: %s; closing with %d", self._name(), for_log(exc.reason), exc.close_code)
            self._stop_reason = "protocol error"
            # A close reason must fit in 123 bytes of UTF-8.
            await self.connection.close(exc.close_code, exc.reason.encode()[:120].decode(errors="ignore"))
        except Exception:
            log.exception("stream %s: bot or server error; closing with 1011", self._name())
            self._stop_reason = "internal error"
            await self.connection.close(1011, "internal error")
        finally:
            await self._finish()

    async def shut_down(self) -> None:
        """Close this stream because the server is stopping."""
        self._shutting_down = True
        await self.connection.close(1001, "server shutting down")

    def expire_if_idle(self, now: float, idle: float) -> None:
        """End the wait for a frame if it has lasted ``idle`` seconds (called by the sweep)."""
        if self._idle_since is not None and not self._idle_expired and now - self._idle_since >= idle:
            self._idle_expired = True
            assert self._task is not None
            self._task.cancel()

    async def _receive(self, default_format: MediaFormat, parameters: dict[str, str]) -> None:
        loop = self._loop
        while True:
            self._idle_since = loop.time()
            try:
                frame = await self.connection.recv()
            except ConnectionClosed:
                if self._shutting_down:
                    self._stop_reason = "shutdown"
                elif self.session is not None and self.session.hangup_requested:
                    self._stop_reason = "hangup"
                return
            except asyncio.CancelledError:
                # The idle sweep cancels this wait the way asyncio.timeout would; any
                # other cancellation goes on.
                assert self._task is not None
                if not self._idle_expired or self._task.uncancel():
                    raise
                self._stop_reason = "idle timeout"
                await self.connection.close(1001, "idle timeout")
                return
            finally:
                self._idle_since = None
            message = parse_from_exotel(frame, default_format=default_format)
            if isinstance(message, Stop):
                self._stop_reason = message.reason or "stopped"
                await self.connection.close(1000, "stream stopped")
                return
            await self._dispatch(message, parameters)
            self.flush()

    async def _dispatch(self, message: Connected | Start | Media | Dtmf | Mark, parameters: dict[str, str]) -> None:
        if isinstance(message, Connected):
            return
        if isinstance(message, Start):
            if self.bot is not None:
                raise AgentStreamProtocolError("second start frame", close_code=1008)
            await self._start(CallInfo.from_start(message, parameters))
            return
        if self.bot is None or self.session is None or self._transcoder is None:
            raise AgentStreamProtocolError(f"{type(message).__name__.lower()} before start", close_code=1008)
        if isinstance(message, Media):
            await self._hook(self.bot.on_audio, self._transcoder.decode(message.payload))
        elif isinstance(message, Dtmf):
            self.bot.key_pressed(message.digit)
            await self._hook(self.bot.on_dtmf, message.digit)
        else:
            self.session.marked(message.name)
            await self._hook(self.bot.on_mark, message.name)

    async def _start(self, call: CallInfo) -> None:
        self.stream_sid = call.stream_sid
        pacing, limits = self.config.pacing, self.config.limits
        self._playout = Playout(
            call.stream_sid,
            call.media_format,
            chunk_bytes=pacing.chunk_bytes,
            lead=pacing.lead,
            max_queued_seconds=limits.max_queued_audio,
        )
        self._sid_json = json.dumps(call.stream_sid)
        self._transcoder = Transcoder(call.media_format)
        self.session = CallSession(
            call,
            self._playout,
            self._transcoder,
            self._tts,
            self.wake,
            hangup_grace=self.config.timeouts.hangup_grace,
        )
        self.bot = self._bot_class()
        self.bot.session = self.session
        metrics.STREAMS_STARTED.inc()
        log.info(
            "stream %s started: call %s, %s, parameters %s",
            self._name(), for_log(call.call_sid), call.media_format.to_content_type(), for_log(dict(call.custom_parameters)),
        )  # fmt: skip
        await self._hook(self.bot.on_start, call)

    async def _hook(self, hook: Callable[..., Awaitable[None] | None], *args: Any) -> None:
        # A plain hook's commands are sent by the flush that follows it; the awaited part
        # of an async hook may take long, so what it queues wakes the clock (see wake()).
        self._in_hook = True
        try:
            result = hook(*args)
        finally:
            self._in_hook = False
        if inspect.isawaitable(result):
            await result

    # --- Sending ---------------------------------------------------------------------

    def wake(self) -> None:
        """The session queued something: have it sent as soon as the loop is free."""
        if not self._in_hook:
            self._arm(self._loop.time())

    def due(self, when: float) -> None:
        """The clock reached ``when``; flush unless the deadline has moved since."""
        if when != self._due_at:
            return
        self._due_at = None
        try:
            self.flush()
        except Exception:
            log.exception("stream %s: sending failed; closing with 1011", self._name())
            self._stop_reason = "internal error"
            self._close_soon(1011, "internal error")

    def flush(self) -> None:
        """Send what is due now, in order, and arm the clock for what is due next."""
        session, playout = self.session, self._playout
        if session is None or playout is None or self._closer is not None or self._done:
            return
        session.pump()
        now = self._loop.time()
        due_in = playout.due_in(now)
        # Most calls come after a hook that queued no whole chunk: nothing to write then.
        if due_in == 0.0 or session.clear_requested or self._stalled_since is not None:
            if not self._send_due(now):
                return
            due_in = playout.due_in(now)
        hangup_in = session.hangup_in(now)
        if hangup_in == 0.0:
            log.info("stream %s: bot hung up", self._name())
            self._close_soon(1000, "bot hung up")
            return
        if due_in is not None or hangup_in is not None:
            self._arm(now + min(t for t in (due_in, hangup_in) if t is not None))

    def _send_due(self, now: float) -> bool:
        """Write ``clear`` and the due messages the socket has room for; False if it has none."""
        session, playout = self.session, self._playout
        assert session is not None and playout is not None
        if self.connection.protocol.state is not State.OPEN:
            return True  # the closing handshake has begun: nothing more may be sent
        transport = self.connection.transport
        limit = self.config.limits.write_limit
        room = limit - transport.get_write_buffer_size()
        if room > 0:
            self._stalled_since = None
            if session.clear_requested:
                session.clear_requested = False
                self._send(encode(Clear(self.stream_sid)))
            for message, lateness in playout.pop_due(now, max_bytes=room):
                self._sequence += 1
                if isinstance(message, OutboundMedia):
                    self._send(self._media_frame(message.payload, playout.media_format))
                    metrics.CHUNKS_SENT.inc()
                    metrics.CHUNK_LATENESS.observe(lateness)
                else:
                    self._send(encode(message, sequence_number=self._sequence))
            room = limit - transport.get_write_buffer_size()
        if room > 0:
            return True
        self._stall(now)
        return False

    def _media_frame(self, payload: bytes, media_format: MediaFormat) -> str:
        """encode(OutboundMedia(...)) numbered, byte for byte, without building a dict per chunk."""
        self._chunks += 1
        timestamp_ms = int(media_format.duration(self._sent_bytes) * 1000)
        self._sent_bytes += len(payload)
        return (
            f'{{"event":"media","sequence_number":"{self._sequence}","stream_sid":{self._sid_json},'
            f'"media":{{"chunk":"{self._chunks}","timestamp":"{timestamp_ms}","payload":"'
            + base64.b64encode(payload).decode("ascii")
            + _MEDIA_TAIL
        )

    def _send(self, frame: str) -> None:
        # broadcast() is websockets' synchronous write, so the clock can send from a plain
        # callback; it skips a closing connection. Backpressure is _send_due()'s job: it
        # stops writing once the socket buffer reaches the write limit.
        broadcast((self.connection,), frame)

    def _stall(self, now: float) -> None:
        """The socket buffer is above the write limit: poll it, abort after ``Timeouts.send``."""
        if self._stalled_since is None:
            self._stalled_since = now
        elif now - self._stalled_since >= self.config.timeouts.send:
            # Closing politely would wait on the same stalled socket, so drop the TCP
            # connection; the receive loop then ends with 1006.
            log.warning(
                "stream %s: peer stopped reading for %.1f s; aborting", self._name(), now - self._stalled_since
            )
            self.connection.transport.abort()
            return
        self._arm(now + STALL_POLL)

    def _arm(self, when: float) -> None:
        # An earlier deadline already armed will flush and re-arm for this one.
        if self._done or (self._due_at is not None and self._due_at <= when):
            return
        self._due_at = when
        self._clock.at(when, self)

    def _close_soon(self, code: int, reason: str) -> None:
        if self._closer is None:
            self._closer = asyncio.create_task(self.connection.close(code, reason))

    async def _finish(self) -> None:
        self._done = True
        self._due_at = None
        if self._closer is not None:
            await asyncio.gather(self._closer, return_exceptions=True)
        if self.session is not None:
            self.session.discard_backlog()
        if self.bot is not None:
            try:
                await self._hook(self.bot.on_stop, self._stop_reason)
            except Exception:
                log.exception("stream %s: on_stop failed", self._name())

    def log_close(self) -> None:
        protocol = self.connection.protocol
        received, sent = protocol.close_rcvd, protocol.close_sent
        if protocol.close_rcvd_then_sent or (received is not None and sent is None):
            initiator, close = "exotel", received
        elif sent is not None:
            initiator, close = "bot", sent
        else:
            initiator, close = "network", None
        code = close.code if close is not None else 1006
        reason = close.reason if close is not None else "no close frame"
        metrics.STREAM_CLOSES.labels(str(code), initiator).inc()
        log.info(
            "stream %s closed by %s: %d %s (%s)",
            self._name(),
            initiator,
            code,
            for_log(reason),
            self._stop_reason,
        )

    def _name(self) -> str:
        """The stream in a log line: its sid (from Exotel's start message, so made log-safe), or the peer."""
        return for_log(self.stream_sid) if self.stream_sid else peer_of(self.connection)


def peer_of(connection: ServerConnection) -> str:
    """``host:port`` of the connection's remote end, for logs."""
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if address else "unknown peer"
