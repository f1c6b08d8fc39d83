"""Errors the bot package raises on purpose.

The hierarchy::

    DialstreamError                 (dialstream.errors)
    └── BotError
        ├── NoBotAvailable          no live bot has free capacity and no static URL is set
        └── PlayoutOverflow         a bot queued more audio than Limits.max_queued_audio

Malformed AgentStream frames raise :class:`dialstream.errors.AgentStreamProtocolError`,
which the server maps to a WebSocket close code.
"""

from __future__ import annotations

from dialstream.errors import DialstreamError

__all__ = ["BotError", "NoBotAvailable", "PlayoutOverflow"]


class BotError(DialstreamError):
    """Base class of the bot package's errors."""


class NoBotAvailable(BotError):
    """No registered bot is alive with free capacity, and no static bot URL is configured."""


class PlayoutOverflow(BotError):
    """The bot queued more outbound audio than its limit; the utterance was refused."""
