"""Outbound audio for one stream, paced at real time, without I/O.

Exotel buffers whatever a bot sends and plays it in real time; ``clear`` drops only what
it has not started playing. So the bot keeps the backlog itself and sends each chunk
just ``lead`` seconds before Exotel's buffer would run dry: barge-in then discards
audio locally, and only about one chunk has to be cleared remotely.

:class:`Playout` is the decision core: the I/O shell appends audio and marks, asks
:meth:`Playout.due_in` how long to sleep, and sends what :meth:`Playout.pop_due`
returns. Time is passed in (seconds on a monotonic clock), so tests drive it by hand.

Example::

    playout = Playout("sid", MediaFormat.mulaw(8000))
    playout.append(payload, now=clock())
    playout.mark("prompt-1", now=clock())
    for message, lateness in playout.pop_due(clock()):
        send(encode(message))
"""

from __future__ import annotations

from collections import deque

from dialstream.errors import PlayoutOverflow
from dialstream.exotel.agentstream import (
    CHUNK_MIN,
    BotMessage,
    MediaFormat,
    OutboundMark,
    OutboundMedia,
    chunk_violations,
    split_into_chunks,
)

__all__ = ["Playout"]


class Playout:
    """The outbound queue of one stream: chunk cutting, pacing, marks and clear.

    Audio appended with :meth:`append` accumulates until a full ``chunk_bytes`` chunk can
    be cut, so a bot may stream small pieces (an echo) without each one being padded. A
    :meth:`mark` or :meth:`flush` ends an utterance: the remainder is padded with silence
    to a legal chunk (multiple of 320 bytes, at least 3200) and the mark follows it.

    Args:
        stream_sid: put on every outbound message.
        media_format: the stream's format, for durations and silence.
        chunk_bytes: size of each chunk; must itself follow the chunk rules.
        lead: seconds before Exotel's buffer runs dry that the next chunk is sent.
        max_queued_seconds: audio accepted but not yet sent, beyond which
            :meth:`append` raises :class:`~dialstream.errors.PlayoutOverflow`.
    """

    def __init__(
        self,
        stream_sid: str,
        media_format: MediaFormat,
        *,
        chunk_bytes: int = CHUNK_MIN,
        lead: float = 0.2,
        max_queued_seconds: float = 120.0,
    ) -> None:
        if chunk_violations(chunk_bytes):
            raise ValueError(f"chunk_bytes={chunk_bytes}: {'; '.join(chunk_violations(chunk_bytes))}")
        self.stream_sid = stream_sid
        self.media_format = media_format
        self.chunk_bytes = chunk_bytes
        self.lead = lead
        self.max_queued_bytes = media_format.bytes_for(max_queued_seconds)
        # MediaFormat derives this from the encoding's name on every call; a chunk needs it.
        self._bytes_per_second = media_format.bytes_per_second
        self._pending = bytearray()  # audio not yet cut into a chunk
        # Ready to send, in order: (chunk, time it became ready) or (mark name, None).
        self._queue: deque[tuple[bytes | str, float | None]] = deque()
        self._queued_bytes = 0
        self._play_end = 0.0  # when Exotel will have played everything sent so far

    # --- Input -----------------------------------------------------------------------

    def append(self, payload: bytes, *, now: float) -> None:
        """Queue ``payload`` (already in the stream's format) after everything before it.

        Raises:
            PlayoutOverflow: the backlog would exceed ``max_queued_seconds``.
        """
        if self.queued_bytes + len(payload) > self.max_queued_bytes:
            raise PlayoutOverflow(
                f"{self.media_format.duration(self.queued_bytes + len(payload)):.1f} s of audio queued; "
                f"the limit is {self.media_format.duration(self.max_queued_bytes):.1f} s"
            )
        self._pending += payload
        while len(self._pending) >= self.chunk_bytes:
            self._push_chunk(bytes(self._pending[: self.chunk_bytes]), now)
            del self._pending[: self.chunk_bytes]

    def flush(self, *, now: float) -> None:
        """End the current utterance: pad what is pending into a last legal chunk."""
        if self._pending:
            for chunk in split_into_chunks(
                bytes(self._pending), chunk_bytes=self.chunk_bytes, silence=self.media_format.silence_sample
            ):
                self._push_chunk(chunk, now)
            self._pending.clear()

    def mark(self, name: str, *, now: float) -> None:
        """End the current utterance and queue a mark right after it."""
        self.flush(now=now)
        self._queue.append((name, None))

    def clear(self, *, now: float) -> tuple[bool, list[str]]:
        """Drop everything not yet sent (barge-in).

        Returns:
            Whether Exotel may still hold unplayed audio or anything was dropped (then
            send ``clear``), and the names of the marks dropped before being sent.
        """
        dropped_marks = [item for item, _ in self._queue if isinstance(item, str)]
        unplayed = bool(self._queue or self._pending) or self._play_end > now
        self._queue.clear()
        self._pending.clear()
        self._queued_bytes = 0
        self._play_end = min(self._play_end, now)
        return unplayed, dropped_marks

    # --- Output ----------------------------------------------------------------------

    def due_in(self, now: float) -> float | None:
        """Seconds until the next message may be sent (0: now); ``None`` if nothing is queued."""
        if not self._queue:
            return None
        item, _ = self._queue[0]
        if isinstance(item, str):
            return 0.0
        return max(0.0, self._send_at() - now)

    def pop_due(self, now: float, *, max_bytes: int | None = None) -> list[tuple[BotMessage, float]]:
        """Take the messages due at ``now``, each with its lateness in seconds.

        A chunk is due ``lead`` seconds before the audio sent before it finishes playing;
        its lateness is how long after that moment (or after it was queued, if later) it
        is being sent. Marks are due as soon as the audio before them has been sent; their
        lateness is reported as 0.

        ``max_bytes`` bounds the chunk payload taken at once: no further chunk is taken
        once that many bytes were (the caller's room in its socket buffer); the rest stays
        queued, in order, and :meth:`due_in` reports it due.
        """
        messages: list[tuple[BotMessage, float]] = []
        taken = 0
        while self._queue:
            item, ready_at = self._queue[0]
            if isinstance(item, str):
                self._queue.popleft()
                messages.append((OutboundMark(self.stream_sid, item), 0.0))
                continue
            send_at = self._send_at()
            if now < send_at or (max_bytes is not None and taken >= max_bytes):
                break
            taken += len(item)
            assert ready_at is not None
            self._queue.popleft()
            self._queued_bytes -= len(item)
            self._play_end = max(now, self._play_end) + len(item) / self._bytes_per_second
            messages.append((OutboundMedia(self.stream_sid, item), max(0.0, now - max(send_at, ready_at))))
        return messages

    # --- State -----------------------------------------------------------------------

    @property
    def queued_bytes(self) -> int:
        """Bytes accepted but not yet sent."""
        return self._queued_bytes + len(self._pending)

    @property
    def play_end(self) -> float:
        """Estimated time at which Exotel finishes playing what was sent."""
        return self._play_end

    def busy(self, now: float) -> bool:
        """Whether any audio is queued here or still playing at Exotel."""
        return bool(self._queue or self._pending) or self._play_end > now

    def _send_at(self) -> float:
        return self._play_end - self.lead

    def _push_chunk(self, chunk: bytes, now: float) -> None:
        self._queue.append((chunk, now))
        self._queued_bytes += len(chunk)
