"""The pacing core, driven by a hand-held clock."""

from __future__ import annotations

import pytest

from bot.playout import Playout
from dialstream.errors import PlayoutOverflow
from dialstream.exotel.agentstream import CHUNK_MIN, MediaFormat, OutboundMark, OutboundMedia, chunk_violations

MULAW = MediaFormat.mulaw(8000)  # 3200 bytes = 400 ms


def sent(playout: Playout, now: float, *, max_bytes: int | None = None) -> list[object]:
    """What pop_due returns, as chunk sizes and mark names."""
    due = playout.pop_due(now, max_bytes=max_bytes)
    return [m.name if isinstance(m, OutboundMark) else len(m.payload) for m, _ in due]


def test_nothing_queued_means_nothing_due():
    """An empty playout has nothing due and is not busy."""
    playout = Playout("s", MULAW)
    assert playout.due_in(0.0) is None
    assert playout.pop_due(0.0) == []
    assert not playout.busy(0.0)


def test_small_appends_accumulate_into_full_chunks():
    """Audio streamed in 100 ms pieces is cut into full chunks, not padded piece by piece."""
    playout = Playout("s", MULAW, lead=0.0)
    for _ in range(5):
        playout.append(b"\x01" * 800, now=0.0)
    assert sent(playout, 0.0) == [CHUNK_MIN]
    assert playout.queued_bytes == 800


def test_mark_pads_the_tail_and_follows_the_audio():
    """A mark ends the utterance: the tail is padded with silence and the mark comes right after it."""
    playout = Playout("s", MULAW, lead=0.0)
    playout.append(b"\x01" * 1000, now=0.0)
    playout.mark("m1", now=0.0)
    messages = playout.pop_due(0.0)
    media, mark = messages[0][0], messages[1][0]
    assert isinstance(media, OutboundMedia) and isinstance(mark, OutboundMark)
    assert media.payload == b"\x01" * 1000 + b"\xff" * (CHUNK_MIN - 1000)
    assert mark == OutboundMark("s", "m1")


def test_pcm16_padding_is_zero():
    """PCM16 tails are padded with zero samples."""
    playout = Playout("s", MediaFormat.pcm16(8000))
    playout.append(b"\x01\x02" * 10, now=0.0)
    playout.flush(now=0.0)
    ((media, _),) = playout.pop_due(0.0)
    assert media.payload.endswith(b"\x00" * 100)
    assert not chunk_violations(len(media.payload))


def test_chunks_are_paced_at_real_time_with_lead():
    """Each chunk becomes due lead seconds before the audio before it finishes playing."""
    epsilon = 1e-9  # clock values are floats; deadlines like 10.8 - 0.1 are not exact
    playout = Playout("s", MULAW, lead=0.1)
    playout.append(b"\x01" * CHUNK_MIN * 3, now=10.0)
    assert sent(playout, 10.0) == [CHUNK_MIN]  # plays 10.0-10.4
    assert playout.due_in(10.0) == pytest.approx(0.3)
    assert sent(playout, 10.29) == []
    assert sent(playout, 10.3 + epsilon) == [CHUNK_MIN]  # plays 10.4-10.8
    assert playout.due_in(10.3) == pytest.approx(0.4)
    assert sent(playout, 10.7 + epsilon) == [CHUNK_MIN]
    assert playout.play_end == pytest.approx(11.2)
    assert playout.busy(11.1) and not playout.busy(11.2 + epsilon)


def test_lateness_is_measured_from_the_deadline():
    """A chunk sent after its deadline reports how late it is; one sent on time reports zero."""
    playout = Playout("s", MULAW, lead=0.0)
    playout.append(b"\x01" * CHUNK_MIN * 2, now=0.0)
    [(_, first)] = playout.pop_due(0.0)
    [(_, second)] = playout.pop_due(0.45)
    assert first == 0.0
    assert second == pytest.approx(0.05)


def test_underrun_restarts_the_clock():
    """After a gap with nothing to send, new audio is due at once and plays from now."""
    playout = Playout("s", MULAW, lead=0.0)
    playout.append(b"\x01" * CHUNK_MIN, now=0.0)
    playout.pop_due(0.0)
    playout.append(b"\x01" * CHUNK_MIN, now=5.0)
    assert playout.due_in(5.0) == 0.0
    [(_, lateness)] = playout.pop_due(5.0)
    assert lateness == 0.0
    assert playout.play_end == pytest.approx(5.4)


def test_byte_budget_leaves_the_rest_queued_and_due():
    """pop_due(max_bytes=) stops taking chunks once the budget is spent; the rest stays due, in order."""
    playout = Playout("s", MULAW, lead=1000.0)
    playout.append(b"\x01" * CHUNK_MIN * 3, now=0.0)
    playout.mark("end", now=0.0)
    assert sent(playout, 0.0, max_bytes=CHUNK_MIN + 1) == [CHUNK_MIN, CHUNK_MIN]
    assert sent(playout, 0.0, max_bytes=0) == []
    assert playout.due_in(0.0) == 0.0
    assert sent(playout, 0.0, max_bytes=1) == [CHUNK_MIN, "end"]


def test_clear_drops_queue_and_reports_unplayed_audio():
    """clear() drops unsent chunks and marks and says whether Exotel may still be playing."""
    playout = Playout("s", MULAW, lead=0.0)
    playout.append(b"\x01" * CHUNK_MIN * 3, now=0.0)
    playout.mark("end", now=0.0)
    playout.pop_due(0.0)
    assert playout.clear(now=0.1) == (True, ["end"])
    assert playout.due_in(0.1) is None
    assert playout.queued_bytes == 0
    assert not playout.busy(0.1)
    assert playout.clear(now=0.2) == (False, [])


def test_overflow_refuses_audio_beyond_the_limit():
    """Appending beyond max_queued_seconds raises PlayoutOverflow and keeps the queue as it was."""
    playout = Playout("s", MULAW, max_queued_seconds=1.0)
    playout.append(b"\x01" * 8000, now=0.0)
    with pytest.raises(PlayoutOverflow):
        playout.append(b"\x01", now=0.0)
    assert playout.queued_bytes == 8000


def test_illegal_chunk_size_is_refused():
    """A chunk size that breaks Exotel's rules is refused up front."""
    with pytest.raises(ValueError):
        Playout("s", MULAW, chunk_bytes=4096)
