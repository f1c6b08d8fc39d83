"""Exotel's side of the bot_streams bench: generator processes that each drive many echo streams.

Each generator plays Exotel for its share of the streams from one timer: 8 kHz mu-law,
one 100 ms ``media`` frame per stream every 100 ms, the streams' phases spread over the
period. They speak WebSocket through websockets' Sans-I/O protocol on plain asyncio
transports (no task per stream), so a generator needs a fifth of the bot's CPU. Each
stream times the echo's chunks on arrival (see :mod:`bench.bot_streams` for the schedule
lateness is measured against). The parent drives the generators over a pipe:
``streams N``, ``reset``, ``collect``, ``stop``.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from bot.config import DEFAULT_PACING
from dialstream.exotel.agentstream import Connected, Media, MediaFormat, Start, Stop, encode
from dialstream.exotel.audio import tone

__all__ = ["FORMAT", "GeneratorHandle", "ask"]

FORMAT = MediaFormat.mulaw(8000)
FRAME_SECONDS = 0.1
FRAME_BYTES = FORMAT.bytes_for(FRAME_SECONDS)
FRAMES_PER_CHUNK = DEFAULT_PACING.chunk_bytes // FRAME_BYTES
CHUNK_SECONDS = FORMAT.duration(DEFAULT_PACING.chunk_bytes)
SLOTS = 20
"""Phases per frame period: each generator timer tick sends the frames of one slot (5 ms)."""
OPEN_BATCH = 50
"""Streams a generator opens at once, so handshakes do not starve streams already running."""

assert DEFAULT_PACING.chunk_bytes % FRAME_BYTES == 0, "the echo's chunks must hold whole frames"


@dataclass
class GeneratorHandle:
    """A generator process and the parent's end of its command pipe."""

    index: int
    process: multiprocessing.process.BaseProcess
    pipe: Connection

    @classmethod
    def start(cls, context: Any, url: str, index: int, count: int) -> GeneratorHandle:
        parent, child = context.Pipe()
        process = context.Process(target=_generate, args=(url, index, count, child), daemon=True)
        process.start()
        child.close()
        return cls(index, process, parent)

    def stop(self) -> None:
        try:
            self.pipe.send(("stop", None))
            if self.pipe.poll(15):
                self.pipe.recv()
        except (OSError, EOFError):
            pass  # it already died; the bench reports what it has
        self.process.join(5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()
        self.pipe.close()


def ask(fleet: list[GeneratorHandle], commands: list[tuple[str, Any]]) -> list[Any]:
    """Send each generator its command, then collect every answer (they work in parallel)."""
    for generator, command in zip(fleet, commands, strict=True):
        generator.pipe.send(command)
    answers = []
    for generator in fleet:
        if not generator.pipe.poll(120):
            raise RuntimeError(f"generator {generator.index} did not answer")
        answers.append(generator.pipe.recv())
    return answers


def _generate(url: str, index: int, count: int, pipe: Connection) -> None:
    """Entry point of a generator process: obey the pipe's commands until ``stop``."""
    asyncio.run(_Generator(url, index, count).serve(pipe))


class _Generator:
    """Plays Exotel for its streams: one timer sends every stream's frames on its phase."""

    def __init__(self, url: str, index: int, count: int) -> None:
        self.url = url
        self.index = index
        self.offset = index * (FRAME_SECONDS / SLOTS) / count  # generators interleave their ticks
        self.streams: list[_EchoStream] = []
        self.slots: list[list[_EchoStream]] = [[] for _ in range(SLOTS)]
        self.lags: list[float] = []
        self.failures = 0
        self.cpu_mark = time.process_time()
        self.wall_mark = time.monotonic()

    async def serve(self, pipe: Connection) -> None:
        ticker = asyncio.create_task(self._tick())
        try:
            while True:
                command, argument = await asyncio.to_thread(pipe.recv)
                if command == "streams":
                    await self._open(argument)
                    pipe.send(None)
                elif command == "reset":
                    self._reset()
                    pipe.send(None)
                elif command == "collect":
                    pipe.send(self._collect())
                else:
                    ticker.cancel()
                    await self._close()
                    pipe.send(None)
                    return
        finally:
            ticker.cancel()

    async def _open(self, target: int) -> None:
        while len(self.streams) < target:
            batch = [self._open_one(len(self.streams) + i) for i in range(min(OPEN_BATCH, target - len(self.streams)))]
            opened = await asyncio.gather(*batch)
            for stream in opened:
                if stream is None:
                    self.failures += 1
                    continue
                self.slots[len(self.streams) % SLOTS].append(stream)
                self.streams.append(stream)
            if None in opened:
                return  # the bot refused or failed: report it rather than retry forever

    async def _open_one(self, number: int) -> _EchoStream | None:
        sid = f"bench{self.index}x{number:05d}"
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(10):
                _, stream = await loop.create_connection(
                    lambda: _EchoStream(self.url, sid, number), *_host_port(self.url)
                )
                await stream.opened
        except (OSError, TimeoutError, ConnectionError):
            return None
        stream.send(encode(Connected()).encode())
        stream.send(encode(Start(sid, f"call-{sid}", "bench", media_format=FORMAT)).encode())
        return stream

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        period = FRAME_SECONDS / SLOTS
        start = loop.time() + self.offset
        tick = 0
        while True:
            tick += 1
            at = start + tick * period
            delay = at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = loop.time()
            self.lags.append(now - at)
            for stream in self.slots[tick % SLOTS]:
                stream.send_frame(now)

    def _reset(self) -> None:
        # Failures stay counted: a stream refused or dropped at any level taints the run.
        self.lags.clear()
        for stream in self.streams:
            stream.reset()
        self.cpu_mark, self.wall_mark = time.process_time(), time.monotonic()

    def _collect(self) -> dict[str, Any]:
        return {
            "lateness": [value for stream in self.streams for value in stream.lateness],
            "lags": self.lags,
            "completed": sum(stream.completed for stream in self.streams),
            "chunks": sum(len(stream.lateness) for stream in self.streams),
            "failures": self.failures + sum(stream.failed for stream in self.streams),
            "cpu_seconds": time.process_time() - self.cpu_mark,
            "wall_seconds": time.monotonic() - self.wall_mark,
        }

    async def _close(self) -> None:
        for stream in self.streams:
            stream.send(encode(Stop(stream.sid, f"call-{stream.sid}", "bench", "callended")).encode())
        try:
            async with asyncio.timeout(10):
                await asyncio.gather(*(stream.closed for stream in self.streams))
        except TimeoutError:
            for stream in self.streams:
                stream.abort()


@functools.cache
def _tone(hz: int) -> bytes:
    # tone() computes sample by sample: once per pitch, not once per stream opened.
    return tone(FORMAT, hz, FRAME_SECONDS * 1000)


def _host_port(url: str) -> tuple[str, int]:
    uri = parse_uri(url)
    return uri.host, uri.port


class _EchoStream(asyncio.Protocol):
    """One stream over websockets' Sans-I/O client: sends frames, times the echo's chunks."""

    def __init__(self, url: str, sid: str, number: int) -> None:
        loop = asyncio.get_running_loop()
        self.sid = sid
        self.ws = ClientProtocol(parse_uri(url), max_size=None)
        self.frame = encode(Media(sid, 0, 0, 0, _tone(300 + number % 200))).encode()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.loop = loop
        self.frames = 0  # since the stream started: frame 4j+3 completes chunk j
        self.completed = 0  # chunks completed by the frames sent since the last reset
        self.ready: deque[float] = deque()  # send times of frames that complete a chunk
        self.play_end = 0.0  # when the chunks received so far finish playing, on schedule
        self.lateness: list[float] = []
        self.failed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self._write()

    def data_received(self, data: bytes) -> None:
        now = self.loop.time()
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if event.status_code == 101 and self.ws.handshake_exc is None:
                    self.opened.set_result(None)
                else:
                    self.opened.set_exception(ConnectionError(f"handshake: HTTP {event.status_code}"))
            elif (
                isinstance(event, Frame) and event.opcode is Opcode.TEXT and event.data.startswith(b'{"event":"media"')
            ):
                self._chunk_arrived(now)
        self._write()

    def eof_received(self) -> None:
        self.ws.receive_eof()
        self._write()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        elif not self.closed.done() and self.ws.close_rcvd is None:
            self.failed = True  # dropped without a closing handshake
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, text: bytes) -> None:
        if self.ws.state is State.OPEN:
            self.ws.send_text(text)
            self._write()

    def send_frame(self, now: float) -> None:
        self.send(self.frame)
        self.frames += 1
        if self.frames % FRAMES_PER_CHUNK == 0:
            self.ready.append(now)
            self.completed += 1

    def reset(self) -> None:
        self.completed = 0
        self.lateness.clear()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _chunk_arrived(self, now: float) -> None:
        if not self.ready:
            return  # cannot happen with an echo: a chunk before its audio was sent
        due = max(self.ready.popleft(), self.play_end - DEFAULT_PACING.lead)
        self.play_end = max(due, self.play_end) + CHUNK_SECONDS
        self.lateness.append(now - due)

    def _write(self) -> None:
        assert self.transport is not None
        for data in self.ws.data_to_send():
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()
