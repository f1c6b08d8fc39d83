"""The media leg of ``start_stream``: the sandbox is the WebSocket client, as Exotel is.

One :class:`Stream` per accepted ``start_stream``. After the media server's setup latency
it emits ``stream_initiated`` and connects to the bot (handshake timeout, one retry,
``user:pass@`` from the URL sent as Basic auth). Once the socket is open and ``connected``
and ``start`` are sent it emits ``stream_started``, then:

* sends the callee's audio as ``media`` frames at real-time pace,
* plays the bot's ``media`` to the callee through a :class:`~sim.playout.Playout` buffer,
  recording what became audible when in the call's timeline,
* echoes a bot ``mark`` once the audio before it has played; ``clear`` drops unplayed audio,
* forwards the callee's scripted DTMF,
* checks every bot chunk against the outbound chunk rules of the stream's format
  (:mod:`sim.wire`): errors and warnings are recorded,
* accepts bot frames with ``stream_sid``, ``streamSid`` or no stream SID at all (Exotel
  ignores it on this direction), and sends ``start`` in snake_case or camelCase.

It ends when the call ends (``stop`` reason ``callended``), on ``stop_stream`` (``stopped``)
or when the bot closes the socket; each way emits ``stream_stopped``. A stream that never
connects emits ``stream_stopped`` with ``event_data.error``. Wire formats come from
:mod:`dialstream.exotel.agentstream`; this module only moves frames and keeps time.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable
from ssl import SSLContext
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import websockets

from dialstream.errors import AgentStreamProtocolError
from dialstream.exotel import agentstream as proto
from dialstream.exotel.agentstream.stream_url import split_credentials
from dialstream.exotel.audio import silence, tone
from sim.action import ActionRecord
from sim.clock import Clock
from sim.config import SandboxConfig
from sim.leg import Leg
from sim.playout import Playout, echo_marks
from sim.stream import StreamRecord
from sim.wire import ChunkRules, camel_case

__all__ = ["Owner", "Stream", "split_credentials", "connect_to_bot"]

T = TypeVar("T")

BIDIRECTIONAL = "bidirectional"
_MAX_FRAME = 4 * 1024 * 1024  # well above CHUNK_MAX in base64, so oversize chunks are recorded, not fatal
_CLOSE_TIMEOUT_S = 1.0  # an unresponsive bot must not hold up a hang-up


async def connect_to_bot(
    url: str, *, open_timeout: float = 10.0, headers: dict[str, str] | None = None, ssl: SSLContext | None = None
) -> websockets.ClientConnection:
    """One handshake with a bot as Exotel makes it: ``user:pass@`` of the URL sent as Basic
    auth. ``headers`` adds to (or overrides) the upgrade's headers, for tests of bad auth;
    ``ssl`` replaces the system's trust store for a ``wss://`` URL (a test's own CA).

    Raises:
        OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI: as websockets.connect.
    """
    url, authorization = split_credentials(url)
    upgrade = {"Authorization": authorization} if authorization else {}
    upgrade.update(headers or {})
    return await websockets.connect(
        url,
        additional_headers=upgrade or None,
        open_timeout=open_timeout,
        close_timeout=_CLOSE_TIMEOUT_S,
        max_size=_MAX_FRAME,
        **({"ssl": ssl} if ssl is not None else {}),  # None would refuse wss:// rather than mean "default"
    )


class _Stopped(Exception):
    """The stream was asked to stop before its socket was open."""


class Owner(Protocol):
    """What a stream needs from the call it belongs to (:class:`sim.call.Call` is one)."""

    config: SandboxConfig
    clock: Clock
    leg: Leg
    rng: random.Random

    def emit(
        self, name: str, *, action: ActionRecord | None = None, detail: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> Any: ...  # fmt: skip


class Stream(StreamRecord):
    """The live media leg of one ``start_stream``; its record is itself (:class:`StreamRecord`)."""

    def __init__(
        self, call: Owner, stream_sid: str, action: ActionRecord, url: str, direction: str, fmt: proto.MediaFormat
    ) -> None:
        super().__init__(stream_sid, action, url, direction, fmt)
        self.call = call
        self._live: list[Any] | None = None  # this stream's live interval in the timeline
        self._media = call.config.media
        self._playout = Playout(self._media.playout_delay_ms / 1000)
        self._chunk_rules = ChunkRules.for_format(fmt)
        self._stopping = asyncio.Event()
        self._marks_changed = asyncio.Event()
        self._sequence = 0
        self._stop_action: ActionRecord | None = None
        self._ws: Any = None
        self.task = asyncio.create_task(self._run(), name=f"sim-stream-{self.stream_sid}")

    def stop(self, reason: str, action: ActionRecord | None = None) -> None:
        """Ask the stream to end (``stop`` frame with ``reason``, then close).

        ``action`` is the ``stop_stream`` request, echoed on ``stream_stopped``.
        """
        if self.stop_reason is None:
            self.stop_reason = reason
            self._stop_action = action
        self._stopping.set()

    # Life of the stream

    async def _run(self) -> None:
        call, timing = self.call, self.call.config.timing
        try:
            await self._unless_stopped(asyncio.sleep(timing.stream_setup_ms / 1000))
        except _Stopped:
            self.stopped_at = call.clock.now()
            return
        call.emit("stream_initiated", action=self.action, detail=self._detail())
        try:
            self._ws = await self._unless_stopped(self._connect())
        except _Stopped:
            self._finish()
            return
        if self._ws is None:
            self.error = "; ".join(self.handshake_errors)
            self.stop_reason = "failed"
            self._finish(error={"error_code": "STREAM_CONNECT_FAILED", "message": "could not connect to the stream URL", "description": self.error})
            return
        try:
            await self._open()
        finally:
            await self._ws.close()
            self._finish()

    async def _unless_stopped(self, work: Awaitable[T]) -> T:
        """Await ``work`` unless :meth:`stop` is called first (then raise :class:`_Stopped`)."""
        task = asyncio.ensure_future(work)
        stopper = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if task.cancelled():
            raise _Stopped
        result = task.result()
        if self._stopping.is_set():
            if result is not None:
                await result.close()  # a socket that opened just as the stop arrived
            raise _Stopped
        return result

    async def _connect(self) -> Any:
        """The open socket, or None once every attempt failed."""
        faults = self.call.config.scenario.faults.streams
        for _ in range(self._media.connect_attempts):
            fail, delay_ms = faults.attempt(self.call.rng)
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            if fail:
                self.handshake_errors.append("handshake failed (fault)")
                continue
            try:
                return await connect_to_bot(self.url, open_timeout=self._media.open_timeout_s)
            except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
                self.handshake_errors.append(f"{type(exc).__name__}: {exc}")
        return None

    async def _open(self) -> None:
        call = self.call
        leg = call.leg
        _, custom = proto.parameters_from_query(urlsplit(self.url).query)  # the rate comes from content_type
        start = proto.Start(
            stream_sid=self.stream_sid,
            call_sid=leg.leg_sid,
            account_sid=leg.account_sid,
            from_=leg.request.contact_uri,
            to=leg.request.exophone,
            custom_parameters=custom,
            media_format=self.format,
        )
        try:
            await self._send(proto.Connected(), numbered=False)
            await self._send(start)
        except websockets.ConnectionClosed:  # the bot hung up straight after the handshake
            self.stop_reason = self.stop_reason or "disconnected"
            return
        self.started_at = call.clock.now()
        self._live = leg.timeline.stream_on(self.started_at)
        call.emit("stream_started", action=self.action, detail=self._detail())
        workers = [asyncio.create_task(self._send_caller_audio())]
        if self.direction == BIDIRECTIONAL:
            workers.append(asyncio.create_task(echo_marks(self._playout, self._marks_changed, self._echo_mark)))
            workers += [asyncio.create_task(self._press(digit)) for digit in call.leg.plan.dtmf]
        drop_after = call.config.scenario.faults.streams.disconnect_after(call.rng)
        if drop_after is not None:
            workers.append(asyncio.create_task(self._drop_after(drop_after / 1000)))
        receiver = asyncio.create_task(self._receive())
        stopper = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({receiver, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (*workers, receiver, stopper):
                task.cancel()
            await asyncio.gather(*workers, receiver, stopper, return_exceptions=True)
        if self._stopping.is_set():
            stop = proto.Stop(self.stream_sid, leg.leg_sid, leg.account_sid, self.stop_reason or "stopped")
            try:
                await self._send(stop)
            except websockets.ConnectionClosed:
                pass

    def _finish(self, error: dict[str, str] | None = None) -> None:
        now = self.call.clock.now()
        self.stopped_at = now
        self.call.leg.timeline.bot_audio_cut(now)
        if self._live is not None:
            self.call.leg.timeline.stream_off(self._live, now)
        detail = {**self._detail(), "reason": self.stop_reason}
        action = self._stop_action or self.action
        self.call.emit("stream_stopped", action=action, detail=None if error else detail, error=error)

    def _detail(self) -> dict[str, Any]:
        return {
            "stream_sid": self.stream_sid,
            "stream_type": self.direction,
            "stream_url": self.url,
            "streaming_leg_sid": self.call.leg.leg_sid,
        }

    # Frames

    async def _send(self, message: Any, *, numbered: bool = True) -> None:
        sequence = None
        if numbered:
            self._sequence += 1
            sequence = self._sequence
        text = proto.encode(message, sequence_number=sequence)
        if isinstance(message, proto.Start) and self._media.start_keys == "camel":
            text = json.dumps(camel_case(json.loads(text)), separators=(",", ":"))
        await self._ws.send(text)

    async def _send_caller_audio(self) -> None:
        """One frame every ``frame_ms``, on an absolute schedule so the pace never drifts."""
        frame_ms = self._media.frame_ms
        if self.call.leg.plan.caller_audio == "tone":
            payload = tone(self.format, self._media.tone_hz, frame_ms)
        else:
            payload = silence(self.format, frame_ms)
        loop = asyncio.get_running_loop()
        origin = loop.time()
        chunk = 0
        while True:
            chunk += 1
            self._sequence += 1
            media = proto.Media(self.stream_sid, self._sequence, chunk, (chunk - 1) * frame_ms, payload)
            await self._ws.send(proto.encode(media))
            self.frames_sent += 1
            await asyncio.sleep(max(0.0, origin + chunk * frame_ms / 1000 - loop.time()))

    async def _receive(self) -> None:
        """Bot frames until the bot closes the socket."""
        try:
            async for text in self._ws:
                self._on_bot_frame(text)
        except websockets.ConnectionClosed:
            pass
        if not self._stopping.is_set():
            code = self._ws.close_code
            self.stop_reason = "disconnected" if code in (None, 1006) else f"bot closed ({code})"

    def _on_bot_frame(self, text: str | bytes) -> None:
        try:
            message = proto.parse_from_bot(text)
        except AgentStreamProtocolError as exc:
            self.protocol_error(exc.reason)
            return
        if self.direction != BIDIRECTIONAL:
            self.ignored_frames += 1
            return
        loop_now = asyncio.get_running_loop().time()
        clock, timeline = self.call.clock, self.call.leg.timeline
        if isinstance(message, proto.OutboundMedia):
            size = len(message.payload)
            self.chunk(clock.wall(loop_now), size, self._chunk_rules.check(size, strict=self._media.strict_chunks))
            start, end = self._playout.push_audio(loop_now, self.format.duration(size))
            timeline.bot_audio_add(clock.wall(start), clock.wall(end))
        elif isinstance(message, proto.OutboundMark):
            self._playout.push_mark(loop_now, message.name)
            self._marks_changed.set()
        elif isinstance(message, proto.Clear):
            self.clears += 1
            kept_until, dropped = self._playout.clear(loop_now)
            timeline.bot_audio_cut(clock.wall(kept_until))
            if self._media.echo_marks_on_clear:
                for name in dropped:
                    self._playout.push_mark(loop_now, name)
            self._marks_changed.set()

    async def _echo_mark(self, name: str) -> None:
        await self._send(proto.Mark(self.stream_sid, name))
        self.marks_echoed.append(name)

    async def _press(self, digit: Any) -> None:
        await asyncio.sleep(digit.after_ms / 1000)
        await self._send(proto.Dtmf(self.stream_sid, digit.digit, digit.duration_ms))
        self.dtmf_sent.append(digit.digit)

    async def _drop_after(self, seconds: float) -> None:
        """Fault: the connection breaks without a closing handshake."""
        await asyncio.sleep(seconds)
        self._ws.transport.abort()
