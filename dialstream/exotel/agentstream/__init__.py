"""Exotel's AgentStream WebSocket protocol, without I/O.

Exotel is the WebSocket client; a bot is the server. Every frame is a JSON text message
(reference: ``exotel.md`` §4). This package turns frames into frozen dataclasses and
back, and holds the rules both ends must agree on. It imports neither asyncio nor
websockets: the bot server (``bot/``) and the Exotel sandbox (``sim/``) are thin I/O
shells around it. Import from the package; its modules are:

* :mod:`~dialstream.exotel.agentstream.formats` - media formats and their spellings;
* :mod:`~dialstream.exotel.agentstream.messages` - one dataclass per message;
* :mod:`~dialstream.exotel.agentstream.codec` - frames to messages and back;
* :mod:`~dialstream.exotel.agentstream.chunks` - the outbound chunk-size rules;
* :mod:`~dialstream.exotel.agentstream.stream_url` - the stream URL's query.
"""

from __future__ import annotations

from dialstream.exotel.agentstream.chunks import (
    CHUNK_ALIGN,
    CHUNK_MAX,
    CHUNK_MIN,
    chunk_violations,
    split_into_chunks,
)
from dialstream.exotel.agentstream.codec import (
    encode,
    parse_from_bot,
    parse_from_exotel,
)
from dialstream.exotel.agentstream.formats import (
    DEFAULT_MEDIA_FORMAT,
    EXTERNAL_BOT_FORMATS,
    SUPPORTED_SAMPLE_RATES,
    AudioEncoding,
    MediaFormat,
    choose_content_type,
    parse_format,
)
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
from dialstream.exotel.agentstream.stream_url import (
    MAX_CUSTOM_PARAMETERS,
    MAX_CUSTOM_PARAMETERS_CHARS,
    SAMPLE_RATE_PARAMETERS,
    parameters_from_query,
    split_credentials,
    with_credentials,
)

__all__ = [
    # Media formats
    "AudioEncoding",
    "MediaFormat",
    "DEFAULT_MEDIA_FORMAT",
    "SUPPORTED_SAMPLE_RATES",
    "EXTERNAL_BOT_FORMATS",
    "parse_format",
    "choose_content_type",
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
    "parameters_from_query",
    "split_credentials",
    "with_credentials",
]
