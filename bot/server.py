"""The bot's WebSocket server: lifecycle, admission and the idle sweep, around one :class:`~bot.stream.Stream` per call.

Exotel connects to the bot; each connection is one call (one stream), served by
:mod:`bot.stream`. The process shares one :class:`~bot.clock.PacingClock` for every
stream's audio and one idle sweep (a quarter of ``Timeouts.idle`` apart, at most 1 s)
instead of a timeout around every receive. Fleet registration is
:class:`~bot.registration.FleetMembership`; per-stream state is :mod:`bot.session`.

Example::

    async with BotServer(EchoBot, BotServerConfig(port=0)) as server:
        print(server.url)
        await stop_event.wait()
        await server.drain()
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from bot import metrics
from bot.api import Bot
from bot.auth import authorized
from bot.clock import PacingClock
from bot.config import DEFAULT_CONFIG, BotServerConfig, TlsFiles
from bot.registration import FleetMembership
from bot.stream import Stream, peer_of
from bot.tts import TTS, CachedTTS, EspeakTTS
from dialstream.broker.transfers import TransferRequests
from dialstream.errors import ConfigurationError
from dialstream.state.call_outcomes import CallOutcomes
from dialstream.state.client import connect

__all__ = ["BotServer"]

log = logging.getLogger("dialstream.bot")


class BotServer:
    """Serves one bot class to Exotel's AgentStream connections.

    Args:
        bot: the :class:`~bot.api.Bot` subclass; one instance is created per call.
        config: host, port, timeouts, limits, pacing and fleet registration.
        tts: the text-to-speech adapter (default :class:`~bot.tts.EspeakTTS`); it is
            wrapped in a cache, and ``bot.prompts`` are synthesised by :meth:`start`.

    Use it as an async context manager (start, then close at once on exit), or call
    :meth:`start` and later :meth:`drain` for a graceful stop.
    """

    def __init__(self, bot: type[Bot], config: BotServerConfig = DEFAULT_CONFIG, *, tts: TTS | None = None) -> None:
        self.bot = bot
        self.config = config
        self.tts = CachedTTS(tts or EspeakTTS())
        self._server: Server | None = None
        self._streams: set[Stream] = set()
        self._membership: FleetMembership | None = None
        self._clock: PacingClock | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    # --- Lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Prepare the bot's prompts, listen, and register in the fleet if configured."""
        await self.tts.prepare(self.bot.prompts)
        timeouts, limits = self.config.timeouts, self.config.limits
        tls = server_tls(self.config.tls) if self.config.tls else None
        self._clock = PacingClock()
        self._sweep()
        try:
            self._server = await serve(
                self._handle,
                self.config.host,
                self.config.port,
                ssl=tls,
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
            # Dispositions and callbacks the bot sets go beside the leg, where the workers read
            # them; transfers (and the keys pressed) to the workers' events queue.
            client = connect(registration.redis_url)
            self.bot.outcomes = CallOutcomes(client)
            self.bot.transfers = TransferRequests(client)
            self._membership = FleetMembership(
                registration, self.public_url, capacity=self.config.limits.capacity, load=lambda: len(self._streams)
            )
            await self._membership.join()

    async def drain(self, timeout: float | None = None) -> None:
        """Stop gracefully: deregister, stop accepting streams, let calls finish.

        Calls still running after ``timeout`` seconds (default ``Timeouts.drain``) are
        closed with 1001 (going away).
        """
        if self._server is None:
            return
        timeout = self.config.timeouts.drain if timeout is None else timeout
        if self._membership is not None:
            await self._membership.leave()
            self._membership = None
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
        """The local ``ws://host:port/`` URL (``wss://`` with TLS)."""
        return f"{self._scheme}://{self.config.host}:{self.port}/"

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
        return f"{self._scheme}://{host}:{self.port}/"

    @property
    def _scheme(self) -> str:
        return "wss" if self.config.tls else "ws"

    @property
    def active_streams(self) -> int:
        return len(self._streams)

    # --- Connections -----------------------------------------------------------------

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        # Both refusals answer the HTTP upgrade itself, before any WebSocket exists: a 401
        # tells Exotel (and its logs) what is wrong, and a refused handshake lets
        # Exotel's one retry go elsewhere.
        if not authorized(request, self.config.basic_auth):
            log.warning("refusing a stream from %s: unauthorized", peer_of(connection))
            response = connection.respond(401, "Unauthorized\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="dialstream bot", charset="UTF-8"'
            return response
        if len(self._streams) >= self.config.limits.capacity:
            log.warning("refusing a stream: at capacity (%d)", self.config.limits.capacity)
            return connection.respond(503, "At capacity\n")
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        assert self._clock is not None
        stream = Stream(connection, self.bot, self.config, self.tts, self._clock)
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


def server_tls(files: TlsFiles) -> ssl.SSLContext:
    """A server-side TLS context from PEM files (TLS 1.2 or newer, the ssl module's defaults).

    Raises:
        ConfigurationError: a file is missing or unreadable, or the key does not match.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(files.cert, files.key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"bot TLS: cannot load DIALSTREAM_BOT_TLS_CERT={files.cert!r} / _KEY={files.key!r}: {exc}"
        ) from None
    return context
