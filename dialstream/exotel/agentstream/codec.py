"""AgentStream frames to messages and back: one JSON text frame per message, in either direction.

Parsing is lenient where real senders differ and strict where the content would be
wrong. Accepted variations: extra keys; snake_case or camelCase (``streamSid``,
``callSid``, ``accountSid``, ``customParameters``, ``mediaFormat``, ``sampleRate``);
``start`` fields nested under ``start`` or flat beside ``event``; no ``call_sid``; no
stream SID at all on bot → Exotel frames; numbers as strings or integers; ``event`` or
``Event``. Rejected with :class:`~dialstream.errors.AgentStreamProtocolError`:
binary frames, invalid JSON, a non-object, an unknown event, a missing sub-object or
required field, bad base64.

``media``, ``dtmf`` and ``mark`` share one shape, ``{"event": E, "stream_sid": ..., E: {...}}``:
each is described once in a :class:`_Shape` (which key of the nested object fills which
field, read how), and one function parses and one encodes every such frame.

Example::

    message = parse_from_exotel(text)
    if isinstance(message, Media):
        pcm = message.payload
    reply = encode(OutboundMark(stream_sid, "prompt-1"))
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dialstream.errors import AgentStreamProtocolError
from dialstream.exotel.agentstream.formats import DEFAULT_MEDIA_FORMAT, MediaFormat
from dialstream.exotel.agentstream.messages import (
    BotMessage,
    Clear,
    Connected,
    Dtmf,
    ExotelMessage,
    Mark,
    Media,
    OutboundMark,
    OutboundMedia,
    Start,
    Stop,
)

__all__ = ["parse_from_exotel", "parse_from_bot", "encode"]

_DTMF_DIGITS = frozenset("0123456789*#ABCD")

Reader = Callable[[Mapping[str, Any], str, str], Any]
"""Reads one field: (JSON object, key, where for errors) -> value."""


# --- Field readers --------------------------------------------------------------------


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


def _required_text(raw: Mapping[str, Any], key: str, where: str) -> str:
    return _text(raw, key, where=where, required=True)


def _int(raw: Mapping[str, Any], key: str, where: str) -> int:
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


def _optional_int(raw: Mapping[str, Any], key: str, where: str) -> int | None:
    return None if raw.get(key) in (None, "") else _int(raw, key, where)


def _payload(raw: Mapping[str, Any], key: str, where: str) -> bytes:
    value = raw.get(key)
    if not isinstance(value, str):
        raise AgentStreamProtocolError(f"{where}.{key}: missing" if value is None else f"{where}.{key}: expected a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise AgentStreamProtocolError(f"{where}.{key}: invalid base64") from None


def _digit(raw: Mapping[str, Any], key: str, where: str) -> str:
    digit = _required_text(raw, key, where)
    if digit not in _DTMF_DIGITS:
        raise AgentStreamProtocolError(f"{where}: invalid digit {digit[:8]!r}")
    return digit


# --- The nested shape media, dtmf and mark share --------------------------------------


@dataclass(frozen=True, slots=True)
class _Shape:
    """How ``message`` sits in a frame: ``top`` fields beside ``event``, ``nested`` ones in
    the object named after the event; each as (dataclass field, JSON key, reader)."""

    message: type
    nested: tuple[tuple[str, str, Reader], ...]
    top: tuple[tuple[str, str, Reader], ...] = ()

    def parse(self, raw: Mapping[str, Any], event: str) -> Any:
        nested = _object(raw, event)
        values = {"stream_sid": _sid(raw)}
        values.update({name: read(raw, key, "frame") for name, key, read in self.top})
        values.update({name: read(nested, key, event) for name, key, read in self.nested})
        return self.message(**values)

    def encode(self, message: Any, event: str) -> dict[str, Any]:
        # Exotel's own types: numbers as strings, payloads as base64 (exotel.md §4.2); None: not sent.
        nested = {key: _wire(value) for name, key, _ in self.nested if (value := getattr(message, name)) is not None}
        return {"event": event, "stream_sid": message.stream_sid, event: nested}


_FROM_EXOTEL: dict[str, _Shape] = {
    "media": _Shape(
        Media,
        nested=(("chunk", "chunk", _int), ("timestamp_ms", "timestamp", _int), ("payload", "payload", _payload)),
        top=(("sequence_number", "sequence_number", _int),),
    ),
    "dtmf": _Shape(Dtmf, nested=(("digit", "digit", _digit), ("duration_ms", "duration", _int))),
    "mark": _Shape(Mark, nested=(("name", "name", _required_text),)),
}
_BOT_SEQUENCE = (("sequence_number", "sequence_number", _optional_int),)
_FROM_BOT: dict[str, _Shape] = {
    "media": _Shape(
        OutboundMedia,
        nested=(
            ("chunk", "chunk", _optional_int),
            ("timestamp_ms", "timestamp", _optional_int),
            ("payload", "payload", _payload),
        ),
        top=_BOT_SEQUENCE,
    ),
    "mark": _Shape(OutboundMark, nested=(("name", "name", _required_text),), top=_BOT_SEQUENCE),
}
_SHAPES: dict[type, tuple[str, _Shape]] = {
    shape.message: (event, shape) for table in (_FROM_EXOTEL, _FROM_BOT) for event, shape in table.items()
}


def _wire(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value) if isinstance(value, int) else value


# --- Parsing ---------------------------------------------------------------------------


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
        return _start(raw, default_format)
    if event == "stop":
        return _stop(raw)
    if event in _FROM_EXOTEL:
        return _FROM_EXOTEL[event].parse(raw, event)  # type: ignore[no-any-return]
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
    if event == "clear":
        return Clear(stream_sid=_sid(raw))
    if event in _FROM_BOT:
        return _FROM_BOT[event].parse(raw, event)  # type: ignore[no-any-return]
    raise AgentStreamProtocolError(f"unknown event {event[:32]!r}", close_code=1003)


def _start(raw: Mapping[str, Any], default_format: MediaFormat) -> Start:
    # Nested under "start" as documented, or flat beside "event" (some test clients);
    # every field is looked for in the nested object first, then at the top level.
    start = _object(raw, "start", required=False)
    where = "start"

    def text(*keys: str) -> str:
        return _text(start, *keys, where=where) or _text(raw, *keys, where=where)

    stream_sid = _sid(start) or _sid(raw)
    if not stream_sid:
        raise AgentStreamProtocolError("start: missing stream_sid")
    return Start(
        stream_sid=stream_sid,
        # Exotel's own test client may leave call_sid out; the bot has no use for it beyond logs.
        call_sid=text("call_sid", "callSid"),
        account_sid=text("account_sid", "accountSid"),
        from_=text("from"),
        to=text("to"),
        custom_parameters=_custom_parameters(start) or _custom_parameters(raw),
        media_format=_media_format(start if _has_format(start) else raw, default_format),
    )


def _has_format(raw: Mapping[str, Any]) -> bool:
    return "media_format" in raw or "mediaFormat" in raw


def _stop(raw: Mapping[str, Any]) -> Stop:
    # The stop object only carries informational fields; a stop without one still
    # ends the stream rather than killing it as malformed.
    stop = _object(raw, "stop", required=False)
    return Stop(
        stream_sid=_sid(raw) or _sid(stop),
        call_sid=_text(stop, "call_sid", "callSid", where="stop"),
        account_sid=_text(stop, "account_sid", "accountSid", where="stop"),
        reason=_text(stop, "reason", where="stop"),
    )


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
    where = "start.media_format"
    rate = _int(value, "sample_rate", where) or _int(value, "sampleRate", where) or default.sample_rate
    if rate <= 0:
        raise AgentStreamProtocolError("start.media_format.sample_rate: must be positive")
    return MediaFormat(
        encoding=_text(value, "encoding", where=where) or default.encoding,
        sample_rate=rate,
        bit_rate=_text(value, "bit_rate", "bitRate", where=where) or default.bit_rate,
    )


# --- Encoding --------------------------------------------------------------------------


def encode(message: ExotelMessage | BotMessage, *, sequence_number: int | None = None) -> str:
    """Serialise any message, in either direction, to a JSON text frame.

    Frames use snake_case and Exotel's own types: ``sequence_number``, ``chunk``,
    ``timestamp``, ``sample_rate`` and ``duration`` are strings; ``stream_sid`` is both at
    the top level and inside ``start``. ``sequence_number`` is added when given (for
    messages that carry one it defaults to the message's own, when set).

    Example::

        encode(Clear("abc"))  # '{"event":"clear","stream_sid":"abc"}'
    """
    frame: dict[str, Any]
    if sequence_number is None and isinstance(message, (Media, OutboundMedia, OutboundMark)):
        sequence_number = message.sequence_number
    if type(message) in _SHAPES:
        event, shape = _SHAPES[type(message)]
        frame = shape.encode(message, event)
    elif isinstance(message, Connected):
        frame = {"event": "connected"}
    elif isinstance(message, Start):
        frame = _encode_start(message)
    elif isinstance(message, Stop):
        frame = {
            "event": "stop",
            "stream_sid": message.stream_sid,
            "stop": {"call_sid": message.call_sid, "account_sid": message.account_sid, "reason": message.reason},
        }
    elif isinstance(message, Clear):
        frame = {"event": "clear", "stream_sid": message.stream_sid}
    else:
        raise TypeError(f"not an AgentStream message: {message!r}")
    if sequence_number is not None:
        # Keep "event" first for readable logs; the sequence number follows it.
        frame = {"event": frame.pop("event"), "sequence_number": str(sequence_number), **frame}
    return json.dumps(frame, separators=(",", ":"))


def _encode_start(message: Start) -> dict[str, Any]:
    fmt = message.media_format
    return {
        "event": "start",
        "stream_sid": message.stream_sid,
        "start": {
            "stream_sid": message.stream_sid,
            "call_sid": message.call_sid,
            "account_sid": message.account_sid,
            "from": message.from_,
            "to": message.to,
            "custom_parameters": dict(message.custom_parameters),
            "media_format": {"encoding": fmt.encoding, "sample_rate": str(fmt.sample_rate), "bit_rate": fmt.bit_rate},
        },
    }
