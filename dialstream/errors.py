"""Every exception dialstream raises on purpose.

The hierarchy::

    DialstreamError
    ├── ConfigurationError       a setting or a campaign option is invalid
    ├── InvalidEvent             a leg event is malformed (missing or mistyped field)
    ├── EventRefused             a leg event's sender may not send it (credentials, account)
    ├── EventPublishError        the ingress could not hand an event to the broker
    ├── EmbeddedRedisError       the embedded Valkey server would not start
    ├── ConcurrentUpdate         a leg's record kept changing under its compare-and-set
    ├── AgentStreamProtocolError an AgentStream WebSocket frame is malformed (carries the close code)
    ├── BotError                 the bot fleet or a bot server refused something
    │   ├── NoBotAvailable       no live bot has free capacity and no static bot URL is set
    │   └── PlayoutOverflow      a bot queued more audio than ``Limits.max_queued_audio``
    └── LegsApiError             the Legs API answered with an error or not at all
        ├── LegsApiRateLimited   HTTP 429; ``retry_after`` seconds to wait
        ├── LegsApiServerError   HTTP 5xx or a transport failure: retry with backoff
        └── LegsApiClientError   other HTTP 4xx: retrying will not help

Code that translates I/O maps these in one place each: the ingress to gRPC status
codes, the workers to retry decisions (``dialstream.domain.retry``; a ``ConcurrentUpdate``
retries its task), the bot server to WebSocket close codes (``AgentStreamProtocolError.close_code``).
"""

from __future__ import annotations

__all__ = [
    "DialstreamError",
    "ConfigurationError",
    "InvalidEvent",
    "EventRefused",
    "EventPublishError",
    "EmbeddedRedisError",
    "ConcurrentUpdate",
    "AgentStreamProtocolError",
    "BotError",
    "NoBotAvailable",
    "PlayoutOverflow",
    "LegsApiError",
    "LegsApiRateLimited",
    "LegsApiServerError",
    "LegsApiClientError",
]


class DialstreamError(Exception):
    """Base class of every dialstream error."""


class ConfigurationError(DialstreamError):
    """A setting or campaign option is invalid."""


class InvalidEvent(DialstreamError):
    """A leg event is malformed. ``field`` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid leg event: {field}: {reason}")
        self.field = field
        self.reason = reason


class EventRefused(DialstreamError):
    """The sender of a leg event lacks credentials, or the event is for another account.

    ``unauthenticated`` tells the two apart: the doors answer 401/UNAUTHENTICATED for a
    missing or wrong credential and 403/PERMISSION_DENIED for a foreign account.
    """

    def __init__(self, reason: str, *, unauthenticated: bool = False) -> None:
        super().__init__(reason)
        self.unauthenticated = unauthenticated


class EventPublishError(DialstreamError):
    """The ingress could not publish an event to the broker; the sender must retry."""


class EmbeddedRedisError(DialstreamError):
    """The embedded Valkey server did not start."""


class ConcurrentUpdate(DialstreamError):
    """A leg's record changed under every one of a commit's compare-and-set attempts
    (``dialstream.state.leg_commit``); the task that was applying a change is retried."""


class AgentStreamProtocolError(DialstreamError):
    """An AgentStream WebSocket frame is malformed.

    ``reason`` says what is wrong, short enough for a WebSocket close reason (123 bytes).
    ``close_code`` is the RFC 6455 code the receiving side should close with: 1003
    (unsupported data: a binary frame, an unknown event) or 1007 (invalid payload data:
    bad JSON, a missing or mistyped field, bad base64).
    """

    def __init__(self, reason: str, *, close_code: int = 1007) -> None:
        super().__init__(f"AgentStream protocol error: {reason}")
        self.reason = reason
        self.close_code = close_code


class BotError(DialstreamError):
    """Base class of the bot fleet's and the bot server's errors."""


class NoBotAvailable(BotError):
    """No registered bot is alive with free capacity, and no static bot URL is configured."""


class PlayoutOverflow(BotError):
    """A bot queued more outbound audio than its limit; the utterance was refused."""


class LegsApiError(DialstreamError):
    """The Legs API answered with an error, or the request failed in transport.

    ``status`` is the HTTP status (0 for a transport failure), ``code`` and ``message``
    come from the envelope's ``error_data`` when it has them.
    """

    def __init__(self, status: int, message: str, *, code: str = "", method: str = "", path: str = "") -> None:
        where = f" ({method} {path})" if method else ""
        super().__init__(f"Legs API {status or 'transport error'}{where}: {message}")
        self.status = status
        self.code = code
        self.message = message


class LegsApiRateLimited(LegsApiError):
    """HTTP 429. ``retry_after`` is the server's Retry-After in seconds."""

    def __init__(self, retry_after: float, message: str = "rate limit exceeded", **kwargs: str) -> None:
        super().__init__(429, message, **kwargs)
        self.retry_after = retry_after


class LegsApiServerError(LegsApiError):
    """HTTP 5xx, a timeout or a connection failure: worth retrying with backoff."""


class LegsApiClientError(LegsApiError):
    """HTTP 4xx other than 429: the request itself is wrong; do not retry."""
