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

from dialstream.exotel.agentstream import chunks, codec, formats, messages, stream_url

# Each module's __all__ is its public surface; the package re-exports them unchanged.
from dialstream.exotel.agentstream.chunks import *  # noqa: F403
from dialstream.exotel.agentstream.codec import *  # noqa: F403
from dialstream.exotel.agentstream.formats import *  # noqa: F403
from dialstream.exotel.agentstream.messages import *  # noqa: F403
from dialstream.exotel.agentstream.stream_url import *  # noqa: F403

__all__ = [*formats.__all__, *messages.__all__, *codec.__all__, *chunks.__all__, *stream_url.__all__]
