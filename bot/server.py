"""The bot's WebSocket server: a thin asyncio shell around the AgentStream codec.

Exotel connects to the bot; each connection is one call (one stream). Per stream the
server runs one task, the receive loop: it parses each frame
(:func:`dialstream.exotel.agentstream.parse_from_exotel`), converts caller audio to internal
PCM, calls the bot's hooks in order, then sends what the hooks made due. Audio due
later (:class:`bot.playout.Playout` paces it in real time) is sent by the process's
one clock: a heap of per-stream deadlines behind a single loop timer. Sends are
synchronous writes bounded by ``Limits.write_limit``, so a stream between chunks costs
no task, timer or wake-up, and a chunk costs no task switch.

Failure is per stream: a malformed frame closes that stream with the close code the
codec chose (1003 or 1007; an oversized frame 1009; frames out of order 1008); a
silent stream closes with 1001 after ``Timeouts.idle`` (one sweep per process checks
every stream, a quarter of that period apart, at most 1 s); a peer that stops reading
(its socket buffer stays above ``Limits.write_limit``) is aborted after
``Timeouts.send``; an exception in a bot hook closes with 1011. Every close is logged
with its code and reason and counted in :mod:`bot.metrics`.

Example::

    async with BotServer(EchoBot, BotServerConfig(port=0)) as server:
        print(server.url)
        await stop_event.wait()
        await server.drain()
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import heapq
import hmac
import inspect
import itertools
import json
import logging
import os
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from bot import metrics
from bot.api import Bot, CallInfo, Session
from bot.audiofile import read_audio
from bot.config import DEFAULT_CONFIG, BotServerConfig
from bot.playout import Playout
from bot.tts import TTS, BeepTTS, CachedTTS
from dialstream.errors import AgentStreamProtocolError, PlayoutOverflow
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
from dialstream.state import fleet
from dialstream.state.client import connect

__all__ = ["BotServer"]

log = logging.getLogger("dialstream.bot")

MAX_BACKLOG = 64
"""Utterances that may wait behind a pending synthesis before say() refuses more."""

HANGUP_MARK = "hangup"
"""Name of the mark queued by ``hangup(after_audio=True)``; its echo means the callee heard everything."""

STALL_POLL = 0.05
"""Seconds between checks of a socket whose buffer is above the write limit (the peer is not reading)."""

_MEDIA_TAIL = '"}}'


class BotServer:
    """Serves one bot class to Exotel's AgentStream connections.

    Args:
        bot: the :class:`~bot.api.Bot` subclass; one instance is created per call.
        config: host, port, timeouts, limits, pacing and fleet registration.
        tts: the text-to-speech adapter (default :class:`~bot.tts.BeepTTS`); it is
            wrapped in a cache, and ``bot.prompts`` are synthesised by :meth:`start`.

    Use it as an async context manager (start, then close at once on exit), or call
    :meth:`start` and later :meth:`drain` for a graceful stop.
    """

    def __init__(self, bot: type[Bot], config: BotServerConfig = DEFAULT_CONFIG, *, tts: TTS | None = None) -> None:
        self.bot = bot
        self.config = config
        self.tts = CachedTTS(tts or BeepTTS())
        self._server: Server | None = None
        self._streams: set[_Stream] = set()
        self._redis: redis.Redis | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._clock: _Clock | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    # --- Lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Prepare the bot's prompts, listen, and register in the fleet if configured."""
        await self.tts.prepare(self.bot.prompts)
        timeouts, limits = self.config.timeouts, self.config.limits
        self._clock = _Clock()
        self._sweep()
        try:
            self._server = await serve(
                self._handle,
                self.config.host,
                self.config.port,
                # Deflate costs ~50 KiB per connection and CPU per frame; base64 audio barely compresses.
                compression=None,
                process_request=self._admit,
                open_timeout=timeouts.open,
                ping_interval=timeouts.ping_interval,
                ping_timeout=timeouts.ping_timeout,
                close_timeout=timeouts.close,
                max_size=limits.max_message_size,
                max_queue=limits.max_inbound_queue,
                write_limit=limits.write_limit,
            )
        except BaseException:
            self._stop_timers()
            raise
        registration = self.config.registration
        if registration.redis_url:
            self._redis = connect(registration.redis_url, timeout=registration.heartbeat * 2)
            await self._heartbeat()
            self._heartbeat_task = asyncio.create_task(self._heartbeat_loop(), name="bot-heartbeat")

    async def drain(self, timeout: float | None = None) -> None:
        """Stop gracefully: deregister, stop accepting streams, let calls finish.

        Calls still running after ``timeout`` seconds (default ``Timeouts.drain``) are
        closed with 1001 (going away).
        """
        if self._server is None:
            return
        timeout = self.config.timeouts.drain if timeout is None else timeout
        await self._deregister()
        log.info("draining: %d streams in progress, up to %.1f s", len(self._streams), timeout)
        self._server.close(close_connections=False)
        if self._streams and timeout > 0:
            try:
                async with asyncio.timeout(timeout):
                    await self._server.wait_closed()
            except TimeoutError:
                pass
        if self._streams:
            log.warning("closing %d streams still in progress", len(self._streams))
            await asyncio.gather(*(stream.shut_down() for stream in list(self._streams)))
        await self._server.wait_closed()
        self._server = None
        self._stop_timers()

    async def close(self) -> None:
        """Stop now: like :meth:`drain` with no time for calls in progress."""
        await self.drain(timeout=0)

    async def __aenter__(self) -> BotServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- Introspection ---------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """The local ``ws://host:port/`` URL."""
        return f"ws://{self.config.host}:{self.port}/"

    @property
    def public_url(self) -> str:
        """The URL registered in the fleet: ``Registration.public_url``, else this host and port.

        A wildcard listen address (``0.0.0.0``, ``::``) is not reachable as such, so the
        host name stands in for it.
        """
        if self.config.registration.public_url:
            return self.config.registration.public_url
        host = self.config.host
        if host in ("", "0.0.0.0", "::"):
            host = socket.gethostname()
        return f"ws://{host}:{self.port}/"

    @property
    def active_streams(self) -> int:
        return len(self._streams)

    # --- Connections -----------------------------------------------------------------

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        # Refusing the handshake (not closing after it) lets Exotel's one retry go elsewhere.
        if len(self._streams) >= self.config.limits.capacity:
            log.warning("refusing a stream: at capacity (%d)", self.config.limits.capacity)
            return connection.respond(503, "At capacity\n")
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        assert self._clock is not None
        stream = _Stream(connection, self, self._clock)
        self._streams.add(stream)
        metrics.STREAMS_ACTIVE.inc()
        try:
            await stream.run()
        finally:
            self._streams.discard(stream)
            metrics.STREAMS_ACTIVE.dec()
            stream.log_close()

    def _sweep(self) -> None:
        # One timer for the whole process instead of a timeout around every recv().
        loop = asyncio.get_running_loop()
        idle = self.config.timeouts.idle
        now = loop.time()
        for stream in self._streams:
            stream.expire_if_idle(now, idle)
        self._sweeper = loop.call_later(max(0.01, min(1.0, idle / 4)), self._sweep)

    def _stop_timers(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._clock is not None:
            self._clock.close()
            self._clock = None

    # --- Fleet -----------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        assert self._redis is not None
        registration = self.config.registration
        try:
            await asyncio.to_thread(
                fleet.heartbeat,
                self._redis,
                self.public_url,
                capacity=self.config.limits.capacity,
                load=len(self._streams),
                ttl=registration.ttl,
                prefix=registration.key_prefix,
            )
        except redis.RedisError as exc:
            # Redis down must not take calls down: the bot keeps serving and drops out of
            # selection by expiry until a heartbeat succeeds again.
            log.warning("fleet heartbeat failed: %s", exc)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.registration.heartbeat)
            await self._heartbeat()

    async def _deregister(self) -> None:
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)
            self._heartbeat_task = None
        if self._redis is not None:
            try:
                await asyncio.to_thread(
                    fleet.deregister, self._redis, self.public_url, prefix=self.config.registration.key_prefix
                )
            except redis.RedisError as exc:
                log.warning("fleet deregistration failed (the entry will expire): %s", exc)
            self._redis.close()
            self._redis = None


class _Clock:
    """The process's one pacing timer.

    Streams ask to be flushed at a deadline; the clock keeps the deadlines in a heap
    behind a single loop timer set to the earliest, and flushes every stream due when it
    fires. A stream that moves its deadline leaves the old entry behind; the stream
    ignores it when it comes up (see :meth:`_Stream.due`).
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._heap: list[tuple[float, int, _Stream]] = []
        self._order = itertools.count()  # breaks ties, so streams are never compared
        self._timer: asyncio.TimerHandle | None = None

    def at(self, when: float, stream: _Stream) -> None:
        heapq.heappush(self._heap, (when, next(self._order), stream))
        first = self._heap[0][0]
        if self._timer is None or first < self._timer.when():
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(first, self._fire)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._heap.clear()

    def _fire(self) -> None:
        self._timer = None
        now = self._loop.time()
        due = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap))
        # Streams re-arm through at() while being flushed, which sets the next timer.
        for when, _, stream in due:
            stream.due(when)
        if self._heap and self._timer is None:
            self._timer = self._loop.call_at(self._heap[0][0], self._fire)


@dataclass(slots=True)
class _Utterance:
    """An entry of the session's backlog: audio (or its pending synthesis), then a mark."""

    audio: bytes | asyncio.Future[bytes] | None
    mark: str | None
    text: str = ""


class _CallSession(Session):
    """The :class:`~bot.api.Session` of one stream: bot commands into the playout queue.

    Text whose speech is not cached is synthesised in a task; later commands wait in a
    backlog behind it so that everything plays in the order the bot asked for.
    """

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
                    log.exception("stream %s: TTS failed for %r; skipping it", self.call.stream_sid, head.text[:40])
                    continue
                try:
                    self._enqueue(pcm, head.mark)
                except PlayoutOverflow as exc:
                    log.warning("stream %s: utterance dropped: %s", self.call.stream_sid, exc)
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


class _Stream:
    """One connection: the receive loop, the flush that sends what is due, and close bookkeeping."""

    __slots__ = (
        "connection", "server", "config", "stream_sid", "bot", "session", "_clock", "_loop", "_task",
        "_playout", "_transcoder", "_media_head", "_stop_reason", "_shutting_down", "_in_hook", "_due_at",
        "_idle_since", "_idle_expired", "_stalled_since", "_closer", "_done",
    )  # fmt: skip

    def __init__(self, connection: ServerConnection, server: BotServer, clock: _Clock) -> None:
        self.connection = connection
        self.server = server
        self.config = server.config
        self.stream_sid = ""
        self.bot: Bot | None = None
        self.session: _CallSession | None = None
        self._clock = clock
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._playout: Playout | None = None
        self._transcoder: Transcoder | None = None
        self._media_head = ""  # an outbound media frame up to its payload
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
        if not self._authorized():
            log.warning("stream from %s: unauthorized", self._peer())
            await self.connection.close(1008, "Unauthorized")
            return
        query = urlsplit(self.connection.request.path if self.connection.request else "").query
        rate, parameters = parameters_from_query(query)
        # The applet's ?sample-rate= selects 16-bit PCM at that rate; without it, the Legs
        # start_stream default applies. start.media_format, when present, overrides both.
        default_format = MediaFormat.pcm16(rate) if rate else DEFAULT_MEDIA_FORMAT
        try:
            await self._receive(default_format, parameters)
        except AgentStreamProtocolError as exc:
            metrics.PROTOCOL_ERRORS.labels(str(exc.close_code)).inc()
            log.warning("stream %s: %s; closing with %d", self.stream_sid or self._peer(), exc.reason, exc.close_code)
            self._stop_reason = "protocol error"
            # A close reason must fit in 123 bytes of UTF-8.
            await self.connection.close(exc.close_code, exc.reason.encode()[:120].decode(errors="ignore"))
        except Exception:
            log.exception("stream %s: bot or server error; closing with 1011", self.stream_sid or self._peer())
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
        # encode(OutboundMedia(...)) byte for byte, without building a dict per chunk.
        self._media_head = f'{{"event":"media","stream_sid":{json.dumps(call.stream_sid)},"media":{{"payload":"'
        self._transcoder = Transcoder(call.media_format)
        self.session = _CallSession(
            call,
            self._playout,
            self._transcoder,
            self.server.tts,
            self.wake,
            hangup_grace=self.config.timeouts.hangup_grace,
        )
        self.bot = self.server.bot()
        self.bot.session = self.session
        metrics.STREAMS_STARTED.inc()
        log.info(
            "stream %s started: call %s, %s, parameters %s",
            call.stream_sid, call.call_sid, call.media_format.to_content_type(), dict(call.custom_parameters),
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
            log.exception("stream %s: sending failed; closing with 1011", self.stream_sid)
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
            log.info("stream %s: bot hung up", self.stream_sid)
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
                if isinstance(message, OutboundMedia):
                    self._send(self._media_head + base64.b64encode(message.payload).decode("ascii") + _MEDIA_TAIL)
                    metrics.CHUNKS_SENT.inc()
                    metrics.CHUNK_LATENESS.observe(lateness)
                else:
                    self._send(encode(message))
            room = limit - transport.get_write_buffer_size()
        if room > 0:
            return True
        self._stall(now)
        return False

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
                "stream %s: peer stopped reading for %.1f s; aborting", self.stream_sid, now - self._stalled_since
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
                log.exception("stream %s: on_stop failed", self.stream_sid)

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
            self.stream_sid or self._peer(),
            initiator,
            code,
            reason,
            self._stop_reason,
        )

    def _authorized(self) -> bool:
        credentials = self.config.basic_auth
        if credentials is None:
            return True
        request = self.connection.request
        header = request.headers.get("Authorization", "") if request else ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            supplied = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        expected = f"{credentials[0]}:{credentials[1]}".encode()
        return hmac.compare_digest(supplied, expected)

    def _peer(self) -> str:
        address = self.connection.remote_address
        return f"{address[0]}:{address[1]}" if address else "unknown peer"
