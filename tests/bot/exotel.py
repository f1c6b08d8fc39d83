"""Exotel's side of a stream, for bot tests: the sandbox's stream client, driven frame by frame.

It connects as the sandbox does (:func:`sim.media.connect_to_bot`: ``user:pass@`` of the URL
sent as Basic auth) and plays the bot's audio out on the sandbox's own playout buffer
(:class:`sim.playout.Playout`): a mark is echoed once the audio sent before it has
"played", and ``clear`` drops what has not (and the marks behind it). Unlike the
sandbox's :class:`sim.media.Stream`, which runs a whole scripted call, a test decides
every frame sent (malformed ones too) and sees every frame received with its arrival time.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from ssl import SSLContext
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from dialstream.exotel.agentstream import (
    DEFAULT_MEDIA_FORMAT,
    BotMessage,
    Clear,
    Connected,
    Dtmf,
    Mark,
    Media,
    MediaFormat,
    OutboundMark,
    OutboundMedia,
    Start,
    Stop,
    encode,
    parse_from_bot,
)
from dialstream.exotel.basic_auth import basic_auth_header
from sim.media import connect_to_bot
from sim.playout import Playout, echo_marks
from tests.utils import MS

T = TypeVar("T")

_sids = itertools.count(1)


def run(coro: Awaitable[T], timeout: float = 20.0) -> T:
    """Run an async test body with an overall time limit."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


def basic_auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": basic_auth_header(user, password)}


@dataclass(frozen=True, slots=True)
class Received:
    at: float  # loop time
    message: BotMessage


class FakeExotel:
    """One stream, as Exotel would drive it. Use as ``async with FakeExotel(url) as exotel``."""

    def __init__(
        self,
        url: str,
        *,
        media_format: MediaFormat = DEFAULT_MEDIA_FORMAT,
        headers: Mapping[str, str] | None = None,
        echo_marks: bool = True,
        ssl: SSLContext | None = None,
    ) -> None:
        self.url = url
        self.media_format = media_format
        self.headers = dict(headers or {})
        self.echo_marks = echo_marks
        self.ssl = ssl
        self.stream_sid = f"stream{next(_sids):04d}"
        self.received: list[Received] = []
        self.echoed: list[str] = []  # marks echoed back to the bot, in order
        self.raw: list[Any] = []
        self.started_at = 0.0  # loop time the last start frame left
        self.ws: ClientConnection
        self._sequence = itertools.count(1)
        self._chunk = itertools.count(1)
        self._playout = Playout()
        self._tasks: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()
        self._marks_changed = asyncio.Event()

    async def __aenter__(self) -> FakeExotel:
        self.ws = await connect_to_bot(self.url, headers=self.headers, ssl=self.ssl)
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._echo_marks())]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.ws.close()
        await self._tasks[0]
        self._tasks[1].cancel()
        await asyncio.gather(self._tasks[1], return_exceptions=True)

    # --- Sending ---------------------------------------------------------------------

    async def send_raw(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    @staticmethod
    def start_frame(
        stream_sid: str, media_format: MediaFormat, custom_parameters: Mapping[str, str] | None = None
    ) -> str:
        start = Start(
            stream_sid=stream_sid,
            call_sid=f"call-{stream_sid}",
            account_sid="dialstream1",
            from_="+919876543210",
            to="+911234567890",
            custom_parameters=dict(custom_parameters or {}),
            media_format=media_format,
        )
        return encode(start, sequence_number=1)

    async def start(self, *, custom_parameters: Mapping[str, str] | None = None, connected: bool = True) -> float:
        """Send ``connected`` and ``start``; return the loop time ``start`` left."""
        if connected:
            await self.ws.send(encode(Connected()))
        self.started_at = asyncio.get_running_loop().time()
        await self.ws.send(self.start_frame(self.stream_sid, self.media_format, custom_parameters))
        return self.started_at

    async def send_media(self, payload: bytes) -> None:
        media = Media(self.stream_sid, next(self._sequence), next(self._chunk), 0, payload)
        await self.ws.send(encode(media))

    async def stream_audio(self, payload: bytes, *, frame_ms: int = 100, realtime: bool = True) -> None:
        """Send ``payload`` in ``frame_ms`` frames, paced like Exotel unless ``realtime`` is off."""
        size = self.media_format.bytes_for(frame_ms / 1000)
        for offset in range(0, len(payload), size):
            await self.send_media(payload[offset : offset + size])
            if realtime:
                await asyncio.sleep(frame_ms * MS)

    async def press(self, digit: str) -> None:
        await self.ws.send(encode(Dtmf(self.stream_sid, digit, 100), sequence_number=next(self._sequence)))

    async def stop(self, reason: str = "callended") -> None:
        await self.ws.send(encode(Stop(self.stream_sid, f"call-{self.stream_sid}", "dialstream1", reason)))

    # --- Receiving -------------------------------------------------------------------

    def of_type(self, kind: type[T]) -> list[T]:
        return [r.message for r in self.received if isinstance(r.message, kind)]  # type: ignore[misc]

    def times_of(self, kind: type[Any]) -> list[float]:
        return [r.at for r in self.received if isinstance(r.message, kind)]

    async def until(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every frame received)."""
        async with asyncio.timeout(timeout):
            while not (value := predicate()):
                self._changed.clear()
                await self._changed.wait()
            return value

    async def closed(self, timeout: float = 5.0) -> tuple[int | None, str | None]:
        """Wait for the close; return the code and reason the bot sent."""
        async with asyncio.timeout(timeout):
            await self.ws.wait_closed()
        return self.ws.close_code, self.ws.close_reason

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for frame in self.ws:
                self.raw.append(frame)
                message = parse_from_bot(frame)
                now = loop.time()
                self.received.append(Received(now, message))
                if isinstance(message, OutboundMedia):
                    self._playout.push_audio(now, self.media_format.duration(len(message.payload)))
                elif isinstance(message, OutboundMark) and self.echo_marks:
                    self._playout.push_mark(now, message.name)
                    self._marks_changed.set()
                elif isinstance(message, Clear):
                    self._playout.clear(now)
                    self._marks_changed.set()
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self._changed.set()

    async def _echo_marks(self) -> None:
        """Echo each mark once the playout reaches it, as the sandbox's stream does."""
        try:
            await echo_marks(self._playout, self._marks_changed, self._echo_mark)
        except ConnectionClosed:
            return

    async def _echo_mark(self, name: str) -> None:
        await self.ws.send(encode(Mark(self.stream_sid, name), sequence_number=next(self._sequence)))
        self.echoed.append(name)
        self._changed.set()


@asynccontextmanager
async def streaming(url: str, **options: Any) -> AsyncIterator[FakeExotel]:
    """A :class:`FakeExotel` on ``url`` (``options`` as it takes them) that has sent connected and start."""
    async with FakeExotel(url, **options) as exotel:
        await exotel.start()
        yield exotel
