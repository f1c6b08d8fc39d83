"""Exotel's AgentStream WebSocket protocol, without I/O.

Exotel is the WebSocket client; a bot is the server. Every frame is a JSON text message
(reference: ``exotel.md`` §4):

* Exotel → bot: ``connected``, ``start`` (once), ``media`` (~every 100 ms), ``dtmf``,
  ``mark`` (the echo of a bot's mark once the audio before it has played), ``stop``.
* bot → Exotel: ``media``, ``mark``, ``clear``. There is no hang-up message: the bot
  closes the socket.

This module turns frames into frozen dataclasses and back, and holds the rules both
ends must agree on (outbound chunk sizes, custom-parameter limits, media formats). It
imports neither asyncio nor websockets: the bot server (``bot/``) and the Exotel
simulator (``sim/``) are thin I/O shells around it.

Parsing is lenient where real senders differ and strict where the content would be
wrong. Accepted variations: extra keys; ``stream_sid`` or ``streamSid`` (top level or
inside ``start``); no stream SID at all on bot → Exotel frames; numbers sent as strings;
``event`` or ``Event``. Rejected with :class:`~dialstream.errors.AgentStreamProtocolError`:
binary frames, invalid JSON, a non-object, an unknown event, a missing sub-object or
required field, bad base64.

Example::

    message = parse_from_exotel(text)
    if isinstance(message, Media):
        pcm = message.payload
    reply = encode(OutboundMark(stream_sid, "prompt-1"))
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dialstream.errors import AgentStreamProtocolError

__all__ = [
    # Media formats
    "AudioEncoding",
    "MediaFormat",
    "DEFAULT_MEDIA_FORMAT",
    "SUPPORTED_SAMPLE_RATES",
    # Exotel -> bot
    "Connected",
    "Start",
    "Media",
    "Dtmf",
    "Mark",
    "Stop",
    "ExotelMessage",
    # bot -> Exotel
    "OutboundMedia",
    "OutboundMark",
    "Clear",
    "BotMessage",
    # Codec
    "parse_from_exotel",
    "parse_from_bot",
    "encode",
    # Chunk rules
    "CHUNK_ALIGN",
    "CHUNK_MIN",
    "CHUNK_MAX",
    "chunk_violations",
    "split_into_chunks",
    # Stream URL
    "MAX_CUSTOM_PARAMETERS",
    "MAX_CUSTOM_PARAMETERS_CHARS",
    "SAMPLE_RATE_PARAMETERS",
    "stream_url_with_parameters",
    "parameters_from_query",
]


# --- Media formats -------------------------------------------------------------------


class AudioEncoding(enum.Enum):
    """The two sample encodings AgentStream carries."""

    MULAW = "mulaw"  # G.711 mu-law, 1 byte per sample: the Legs start_stream default
    PCM16 = "pcm16"  # 16-bit little-endian signed, mono: the Voicebot applet's "raw/slin"


# Spellings of 16-bit PCM seen in Exotel's pages and in the wild (§4.2 media_format table).
_PCM16_NAMES = frozenset(
    {"raw", "audio/x-raw", "linear16", "base64", "slin", "slin16", "audio/l16", "l16", "pcm", "pcm16", "s16le"}
)
_MULAW_MARKERS = ("mulaw", "ulaw", "pcmu")

SUPPORTED_SAMPLE_RATES = (8000, 16000, 24000)


@dataclass(frozen=True, slots=True)
class MediaFormat:
    """The ``start.media_format`` object: what the payloads of a stream contain.

    ``encoding`` keeps the sender's spelling (``"audio/x-mulaw"``, ``"raw"``, ``"linear16"``,
    ...); :attr:`encoding_kind` normalises it. ``bit_rate`` is informational text (Exotel's
    pages disagree on its unit). Unknown encodings count as 16-bit PCM, the documented
    applet format ("raw/slin 16-bit ... little-endian").

    Example::

        MediaFormat.from_content_type("audio/x-mulaw;rate=8000")   # the Legs default
        MediaFormat.from_content_type("audio/L16;rate=16000")
    """

    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000
    bit_rate: str = "64"

    @classmethod
    def from_content_type(cls, content_type: str) -> MediaFormat:
        """Parse a Legs ``start_stream`` ``content_type`` such as ``audio/x-mulaw;rate=8000``.

        Raises:
            ValueError: the rate is not a positive integer.
        """
        mime, _, params = content_type.partition(";")
        rate = 8000
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "rate":
                rate = _positive_int(value.strip(), "rate")
        encoding = mime.strip()
        kind = _encoding_kind(encoding)
        return cls(encoding=encoding, sample_rate=rate, bit_rate=_kbps(kind, rate))

    @classmethod
    def pcm16(cls, sample_rate: int = 8000) -> MediaFormat:
        """16-bit PCM as the Voicebot applet announces it (``encoding: "raw"``)."""
        return cls(encoding="raw", sample_rate=sample_rate, bit_rate=_kbps(AudioEncoding.PCM16, sample_rate))

    @classmethod
    def mulaw(cls, sample_rate: int = 8000) -> MediaFormat:
        """G.711 mu-law (``encoding: "audio/x-mulaw"``)."""
        return cls(encoding="audio/x-mulaw", sample_rate=sample_rate, bit_rate=_kbps(AudioEncoding.MULAW, sample_rate))

    @property
    def encoding_kind(self) -> AudioEncoding:
        return _encoding_kind(self.encoding)

    def to_content_type(self) -> str:
        """The Legs ``content_type`` spelling: ``audio/x-mulaw;rate=8000`` or ``audio/L16;rate=16000``."""
        mime = "audio/x-mulaw" if self.encoding_kind is AudioEncoding.MULAW else "audio/L16"
        return f"{mime};rate={self.sample_rate}"

    @property
    def sample_width(self) -> int:
        """Bytes per sample: 1 for mu-law, 2 for PCM16."""
        return 1 if self.encoding_kind is AudioEncoding.MULAW else 2

    @property
    def bytes_per_second(self) -> int:
        return self.sample_rate * self.sample_width

    @property
    def silence_sample(self) -> bytes:
        """One sample of silence: ``0xFF`` is mu-law's zero, PCM16's is two zero bytes."""
        return b"\xff" if self.encoding_kind is AudioEncoding.MULAW else b"\x00\x00"

    def duration(self, nbytes: int) -> float:
        """Seconds of audio in ``nbytes`` of payload."""
        return nbytes / self.bytes_per_second

    def bytes_for(self, seconds: float) -> int:
        """Payload bytes for ``seconds`` of audio, rounded down to whole samples."""
        return int(seconds * self.sample_rate) * self.sample_width


def _encoding_kind(encoding: str) -> AudioEncoding:
    lowered = encoding.strip().lower()
    if any(marker in lowered for marker in _MULAW_MARKERS):
        return AudioEncoding.MULAW
    return AudioEncoding.PCM16


def _kbps(kind: AudioEncoding, rate: int) -> str:
    return str(rate * (8 if kind is AudioEncoding.MULAW else 16) // 1000)


DEFAULT_MEDIA_FORMAT = MediaFormat.mulaw(8000)
"""The Legs ``start_stream`` default, ``audio/x-mulaw;rate=8000`` (§4.4)."""


# --- Messages ------------------------------------------------------------------------


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
    """Bot audio for Exotel to play, in the stream's media format."""

    stream_sid: str
    payload: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class OutboundMark:
    """Ask Exotel to echo ``name`` once everything sent before it has played."""

    stream_sid: str
    name: str


@dataclass(frozen=True, slots=True)
class Clear:
    """Drop all audio Exotel has buffered but not started playing (barge-in)."""

    stream_sid: str


ExotelMessage: TypeAlias = Connected | Start | Media | Dtmf | Mark | Stop
BotMessage: TypeAlias = OutboundMedia | OutboundMark | Clear


# --- Parsing -------------------------------------------------------------------------

_DTMF_DIGITS = frozenset("0123456789*#ABCD")


def parse_from_exotel(text: str | bytes, *, default_format: MediaFormat = DEFAULT_MEDIA_FORMAT) -> ExotelMessage:
    """Parse one frame Exotel sent to a bot.

    Pass what the WebSocket received: ``str`` for a text frame, ``bytes`` for a binary
    frame (which AgentStream never uses, so it is rejected). ``default_format`` fills in
    ``start.media_format`` or any of its fields when absent (the bot passes the format the
    stream URL asked for).

    Raises:
        AgentStreamProtocolError: the frame is malformed; ``close_code`` says how to close.
    """
    raw = _load(text)
    event = _event(raw)
    if event == "connected":
        return Connected()
    if event == "start":
        start = _object(raw, "start")
        stream_sid = _sid(start) or _sid(raw)
        if not stream_sid:
            raise AgentStreamProtocolError("start: missing stream_sid")
        return Start(
            stream_sid=stream_sid,
            # Some senders put call_sid beside stream_sid at the top level.
            call_sid=_text(start, "call_sid", "callSid", where="start")
            or _text(raw, "call_sid", "callSid", where="start", required=True),
            account_sid=_text(start, "account_sid", "accountSid", where="start"),
            from_=_text(start, "from", where="start"),
            to=_text(start, "to", where="start"),
            custom_parameters=_custom_parameters(start),
            media_format=_media_format(start, default_format),
        )
    if event == "media":
        media = _object(raw, "media")
        return Media(
            stream_sid=_sid(raw),
            sequence_number=_int(raw, "sequence_number", where="frame"),
            chunk=_int(media, "chunk", where="media"),
            timestamp_ms=_int(media, "timestamp", where="media"),
            payload=_payload(media),
        )
    if event == "dtmf":
        dtmf = _object(raw, "dtmf")
        digit = _text(dtmf, "digit", where="dtmf", required=True)
        if digit not in _DTMF_DIGITS:
            raise AgentStreamProtocolError(f"dtmf: invalid digit {digit[:8]!r}")
        return Dtmf(stream_sid=_sid(raw), digit=digit, duration_ms=_int(dtmf, "duration", where="dtmf"))
    if event == "mark":
        return Mark(stream_sid=_sid(raw), name=_mark_name(raw))
    if event == "stop":
        # The stop object only carries informational fields; a stop without one still
        # ends the stream rather than killing it as malformed.
        stop = _object(raw, "stop", required=False)
        return Stop(
            stream_sid=_sid(raw) or _sid(stop),
            call_sid=_text(stop, "call_sid", "callSid", where="stop"),
            account_sid=_text(stop, "account_sid", "accountSid", where="stop"),
            reason=_text(stop, "reason", where="stop"),
        )
    raise AgentStreamProtocolError(f"unknown event {event[:32]!r}", close_code=1003)


def parse_from_bot(text: str | bytes) -> BotMessage:
    """Parse one frame a bot sent to Exotel (what the simulator receives).

    The stream SID may be spelled ``stream_sid`` or ``streamSid``, or be missing: Exotel
    ignores it on this direction (§4.3), so a missing one parses as ``""``.

    Raises:
        AgentStreamProtocolError: the frame is malformed; ``close_code`` says how to close.
    """
    raw = _load(text)
    event = _event(raw)
    if event == "media":
        return OutboundMedia(stream_sid=_sid(raw), payload=_payload(_object(raw, "media")))
    if event == "mark":
        return OutboundMark(stream_sid=_sid(raw), name=_mark_name(raw))
    if event == "clear":
        return Clear(stream_sid=_sid(raw))
    raise AgentStreamProtocolError(f"unknown event {event[:32]!r}", close_code=1003)


def _load(text: str | bytes) -> Mapping[str, Any]:
    if isinstance(text, (bytes, bytearray, memoryview)):
        raise AgentStreamProtocolError("binary frame; AgentStream frames are JSON text", close_code=1003)
    try:
        raw = json.loads(text)
    except ValueError:
        raise AgentStreamProtocolError("invalid JSON") from None
    if not isinstance(raw, dict):
        raise AgentStreamProtocolError(f"expected a JSON object, got {type(raw).__name__}")
    return raw


def _event(raw: Mapping[str, Any]) -> str:
    # Exotel's own Python helper reads ``event`` or ``Event``.
    event = raw.get("event", raw.get("Event"))
    if not isinstance(event, str) or not event:
        raise AgentStreamProtocolError("missing event")
    return event.lower()


def _object(raw: Mapping[str, Any], key: str, *, required: bool = True) -> Mapping[str, Any]:
    value = raw.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        problem = "missing" if value is None else f"expected an object, got {type(value).__name__}"
        raise AgentStreamProtocolError(f"{key}: {problem}")
    return value


def _sid(raw: Mapping[str, Any]) -> str:
    value = raw.get("stream_sid", raw.get("streamSid"))
    if value is None:
        return ""
    if not isinstance(value, str):
        raise AgentStreamProtocolError("stream_sid: expected a string")
    return value


def _text(raw: Mapping[str, Any], *keys: str, where: str, required: bool = False) -> str:
    for key in keys:
        value = raw.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise AgentStreamProtocolError(f"{where}.{key}: expected a string")
        # Numbers are accepted where text is expected: phone numbers arrive both ways.
        value = str(value)
        if value:
            return value
    if required:
        raise AgentStreamProtocolError(f"{where}.{keys[0]}: missing")
    return ""


def _int(raw: Mapping[str, Any], key: str, *, where: str) -> int:
    value = raw.get(key)
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise AgentStreamProtocolError(f"{where}.{key}: expected a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise AgentStreamProtocolError(f"{where}.{key}: expected an integer, got {str(value)[:16]!r}")


def _payload(media: Mapping[str, Any]) -> bytes:
    value = media.get("payload")
    if not isinstance(value, str):
        raise AgentStreamProtocolError(
            "media.payload: missing" if value is None else "media.payload: expected a string"
        )
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise AgentStreamProtocolError("media.payload: invalid base64") from None


def _mark_name(raw: Mapping[str, Any]) -> str:
    return _text(_object(raw, "mark"), "name", where="mark", required=True)


def _custom_parameters(start: Mapping[str, Any]) -> dict[str, str]:
    value = start.get("custom_parameters", start.get("customParameters"))
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AgentStreamProtocolError("start.custom_parameters: expected an object")
    return {str(key): "" if item is None else str(item) for key, item in value.items()}


def _media_format(start: Mapping[str, Any], default: MediaFormat) -> MediaFormat:
    value = start.get("media_format", start.get("mediaFormat"))
    if value is None:
        return default
    if not isinstance(value, dict):
        raise AgentStreamProtocolError("start.media_format: expected an object")
    rate = _int(value, "sample_rate", where="start.media_format") or default.sample_rate
    if rate <= 0:
        raise AgentStreamProtocolError("start.media_format.sample_rate: must be positive")
    return MediaFormat(
        encoding=_text(value, "encoding", where="start.media_format") or default.encoding,
        sample_rate=rate,
        bit_rate=_text(value, "bit_rate", where="start.media_format") or default.bit_rate,
    )


# --- Encoding ------------------------------------------------------------------------


def encode(message: ExotelMessage | BotMessage, *, sequence_number: int | None = None) -> str:
    """Serialise any message, in either direction, to a JSON text frame.

    Frames use snake_case and Exotel's own types: ``sequence_number``, ``chunk``,
    ``timestamp``, ``sample_rate`` and ``duration`` are strings; ``stream_sid`` is both at
    the top level and inside ``start``. ``sequence_number`` is added when given (for
    :class:`Media` it defaults to the message's own).

    Example::

        encode(Clear("abc"))  # '{"event": "clear", "stream_sid": "abc"}'
    """
    frame: dict[str, Any]
    if isinstance(message, Connected):
        frame = {"event": "connected"}
    elif isinstance(message, Start):
        fmt = message.media_format
        frame = {
            "event": "start",
            "stream_sid": message.stream_sid,
            "start": {
                "stream_sid": message.stream_sid,
                "call_sid": message.call_sid,
                "account_sid": message.account_sid,
                "from": message.from_,
                "to": message.to,
                "custom_parameters": dict(message.custom_parameters),
                "media_format": {
                    "encoding": fmt.encoding,
                    "sample_rate": str(fmt.sample_rate),
                    "bit_rate": fmt.bit_rate,
                },
            },
        }
    elif isinstance(message, Media):
        if sequence_number is None:
            sequence_number = message.sequence_number
        frame = {
            "event": "media",
            "stream_sid": message.stream_sid,
            "media": {
                "chunk": str(message.chunk),
                "timestamp": str(message.timestamp_ms),
                "payload": _b64(message.payload),
            },
        }
    elif isinstance(message, Dtmf):
        frame = {
            "event": "dtmf",
            "stream_sid": message.stream_sid,
            "dtmf": {"digit": message.digit, "duration": str(message.duration_ms)},
        }
    elif isinstance(message, Mark):
        frame = {"event": "mark", "stream_sid": message.stream_sid, "mark": {"name": message.name}}
    elif isinstance(message, Stop):
        frame = {
            "event": "stop",
            "stream_sid": message.stream_sid,
            "stop": {"call_sid": message.call_sid, "account_sid": message.account_sid, "reason": message.reason},
        }
    elif isinstance(message, OutboundMedia):
        frame = {"event": "media", "stream_sid": message.stream_sid, "media": {"payload": _b64(message.payload)}}
    elif isinstance(message, OutboundMark):
        frame = {"event": "mark", "stream_sid": message.stream_sid, "mark": {"name": message.name}}
    elif isinstance(message, Clear):
        frame = {"event": "clear", "stream_sid": message.stream_sid}
    else:
        raise TypeError(f"not an AgentStream message: {message!r}")
    if sequence_number is not None:
        # Keep "event" first for readable logs; the sequence number follows it.
        frame = {"event": frame.pop("event"), "sequence_number": str(sequence_number), **frame}
    return json.dumps(frame, separators=(",", ":"))


def _b64(payload: bytes) -> str:
    return base64.b64encode(payload).decode("ascii")


# --- Outbound chunk rules ------------------------------------------------------------

CHUNK_ALIGN = 320
"""Outbound payloads must be a multiple of 320 bytes; otherwise Exotel waits 20 ms after the short tail."""
CHUNK_MIN = 3200
"""Smallest outbound payload; smaller ones risk audio issues from network jitter."""
CHUNK_MAX = 100_000
"""Largest outbound payload; larger ones "might result in timeouts"."""


def chunk_violations(nbytes: int) -> list[str]:
    """Which outbound chunk rules a decoded payload of ``nbytes`` breaks; empty if none."""
    problems = []
    if nbytes % CHUNK_ALIGN:
        problems.append(f"{nbytes} bytes is not a multiple of {CHUNK_ALIGN}")
    if nbytes < CHUNK_MIN:
        problems.append(f"{nbytes} bytes is below the minimum of {CHUNK_MIN}")
    if nbytes > CHUNK_MAX:
        problems.append(f"{nbytes} bytes is above the maximum of {CHUNK_MAX}")
    return problems


def split_into_chunks(audio: bytes, *, chunk_bytes: int = CHUNK_MIN, silence: bytes) -> list[bytes]:
    """Cut ``audio`` into payloads that satisfy every chunk rule.

    Every chunk is ``chunk_bytes`` long except the last, which is padded with ``silence``
    (one sample of the encoding's silence, see :attr:`MediaFormat.silence_sample`) up to a
    multiple of 320 bytes and at least :data:`CHUNK_MIN`. A short tail is merged into the
    chunk before it when that stays within :data:`CHUNK_MAX`, so less silence is added.

    Raises:
        ValueError: ``chunk_bytes`` itself breaks the rules, or ``silence`` does not fit
            a 320-byte frame a whole number of times.
    """
    if chunk_violations(chunk_bytes):
        raise ValueError(f"chunk_bytes={chunk_bytes}: {'; '.join(chunk_violations(chunk_bytes))}")
    if not silence or CHUNK_ALIGN % len(silence):
        raise ValueError(f"silence must be 1 or 2 bytes (one sample), got {len(silence)}")
    if not audio:
        return []
    chunks = [audio[offset : offset + chunk_bytes] for offset in range(0, len(audio), chunk_bytes)]
    tail = chunks[-1]
    if len(tail) < CHUNK_MIN and len(chunks) > 1 and len(chunks[-2]) + _padded_length(len(tail), 0) <= CHUNK_MAX:
        tail = chunks.pop(-2) + chunks.pop()
        chunks.append(tail)
    chunks[-1] = tail + _silence(silence, _padded_length(len(tail), CHUNK_MIN) - len(tail))
    return chunks


def _padded_length(nbytes: int, minimum: int) -> int:
    return max(-(-nbytes // CHUNK_ALIGN) * CHUNK_ALIGN, minimum)


def _silence(sample: bytes, nbytes: int) -> bytes:
    return (sample * (nbytes // len(sample) + 1))[:nbytes]


# --- Stream URL ----------------------------------------------------------------------

MAX_CUSTOM_PARAMETERS = 3
"""Exotel forwards at most three custom parameters to ``start.custom_parameters``."""
MAX_CUSTOM_PARAMETERS_CHARS = 256
"""...and at most 256 characters of them (the encoded ``k=v&k=v`` text)."""
SAMPLE_RATE_PARAMETERS = ("sample-rate", "sample_rate")
"""Query keys that select the sample rate rather than carry a custom parameter."""


def stream_url_with_parameters(url: str, params: Mapping[str, str]) -> str:
    """Append custom parameters to a stream URL as query parameters.

    Keeps any query the URL already has (such as ``sample-rate``).

    Raises:
        ValueError: more than :data:`MAX_CUSTOM_PARAMETERS` pairs or more than
            :data:`MAX_CUSTOM_PARAMETERS_CHARS` characters once encoded.

    Example::

        stream_url_with_parameters("wss://bot.example/media?sample-rate=16000", {"campaign": "c1"})
        # 'wss://bot.example/media?sample-rate=16000&campaign=c1'
    """
    if not params:
        return url
    if len(params) > MAX_CUSTOM_PARAMETERS:
        raise ValueError(f"{len(params)} custom parameters; Exotel allows at most {MAX_CUSTOM_PARAMETERS}")
    encoded = urlencode(list(params.items()))
    if len(encoded) > MAX_CUSTOM_PARAMETERS_CHARS:
        raise ValueError(
            f"custom parameters are {len(encoded)} characters encoded; "
            f"Exotel allows at most {MAX_CUSTOM_PARAMETERS_CHARS}"
        )
    parts = urlsplit(url)
    query = f"{parts.query}&{encoded}" if parts.query else encoded
    return urlunsplit(parts._replace(query=query))


def parameters_from_query(query: str) -> tuple[int | None, dict[str, str]]:
    """Split a stream URL's query into (requested sample rate, custom parameters).

    Exotel's reference server reads ``sample-rate`` (its helper also ``sample_rate``) and
    treats every other key as a custom parameter. A malformed rate counts as absent.
    """
    rate: int | None = None
    custom: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in SAMPLE_RATE_PARAMETERS:
            rate = int(value) if value.isdigit() and int(value) > 0 else None
        else:
            custom[key] = value
    return rate, custom


def _positive_int(text: str, name: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"{name}={text!r}: expected a positive integer")
    return int(text)
