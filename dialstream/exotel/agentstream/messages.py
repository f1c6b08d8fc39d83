"""AgentStream messages as frozen dataclasses, one per event and direction (``exotel.md`` §4.2, §4.3).

* Exotel → bot: ``connected``, ``start`` (once), ``media`` (~every 100 ms), ``dtmf``,
  ``mark`` (the echo of a bot's mark once the audio before it has played), ``stop``.
* bot → Exotel: ``media``, ``mark``, ``clear``. There is no hang-up message: the bot
  closes the socket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from dialstream.exotel.agentstream.formats import DEFAULT_MEDIA_FORMAT, MediaFormat

__all__ = [
    "Connected",
    "Start",
    "Media",
    "Dtmf",
    "Mark",
    "Stop",
    "ExotelMessage",
    "OutboundMedia",
    "OutboundMark",
    "Clear",
    "BotMessage",
]


@dataclass(frozen=True, slots=True)
class Connected:
    """First frame of every stream: the socket is up, ``start`` follows."""


@dataclass(frozen=True, slots=True)
class Start:
    """Call metadata, sent once before any media. ``from_`` is the JSON key ``from``."""

    stream_sid: str
    call_sid: str
    account_sid: str = ""
    from_: str = ""
    to: str = ""
    custom_parameters: dict[str, str] = field(default_factory=dict)
    media_format: MediaFormat = DEFAULT_MEDIA_FORMAT


@dataclass(frozen=True, slots=True)
class Media:
    """Caller audio. ``payload`` is the decoded bytes, in the stream's media format."""

    stream_sid: str
    sequence_number: int
    chunk: int
    timestamp_ms: int
    payload: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Dtmf:
    """A key press: ``digit`` is ``0``-``9``, ``*`` or ``#`` (``A``-``D`` tolerated)."""

    stream_sid: str
    digit: str
    duration_ms: int = 0


@dataclass(frozen=True, slots=True)
class Mark:
    """Exotel's echo of a bot mark: the audio sent before it has finished playing."""

    stream_sid: str
    name: str


@dataclass(frozen=True, slots=True)
class Stop:
    """Last frame: ``reason`` is ``stopped`` (applet ended), ``callended`` or any text."""

    stream_sid: str
    call_sid: str = ""
    account_sid: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OutboundMedia:
    """Bot audio for Exotel to play, in the stream's media format.

    The numbering is optional (``None``: not sent), as in Exotel's own JS sender, which
    adds ``sequence_number``, ``media.chunk`` and ``media.timestamp`` (ms of bot audio
    before this chunk); some Connect streams drop or end early without them.
    """

    stream_sid: str
    payload: bytes = field(repr=False)
    sequence_number: int | None = None
    chunk: int | None = None
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class OutboundMark:
    """Ask Exotel to echo ``name`` once everything sent before it has played."""

    stream_sid: str
    name: str
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class Clear:
    """Drop all audio Exotel has buffered but not started playing (barge-in)."""

    stream_sid: str


ExotelMessage: TypeAlias = Connected | Start | Media | Dtmf | Mark | Stop
BotMessage: TypeAlias = OutboundMedia | OutboundMark | Clear
