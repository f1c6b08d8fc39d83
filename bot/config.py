"""Bot server configuration: small frozen value objects with visible defaults.

Usage::

    BotServerConfig()                                       # 127.0.0.1:8765, defaults below
    BotServerConfig(port=0, limits=Limits(capacity=50))     # a free port, 50 streams
    BotServerConfig(timeouts=Timeouts(idle=5.0))            # close a silent stream after 5 s
    BotServerConfig(basic_auth=("exotel", "s3cret"))        # require Authorization: Basic
    BotServerConfig(tls=TlsFiles("bot.pem", "bot.key"))     # serve wss://

Every value is in seconds or bytes. The defaults follow Exotel's documented behaviour
(``exotel.md`` §4) and the websockets memory guidance (compression off, 1 MiB frames).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dialstream.exotel.agentstream import CHUNK_MIN, chunk_violations
from dialstream.state import keys

__all__ = [
    "BUILTIN_FORMATS",
    "Timeouts",
    "Limits",
    "Pacing",
    "Registration",
    "TlsFiles",
    "BotServerConfig",
    "DEFAULT_TIMEOUTS",
    "DEFAULT_LIMITS",
    "DEFAULT_PACING",
    "DEFAULT_REGISTRATION",
    "DEFAULT_CONFIG",
]


BUILTIN_FORMATS = ("audio/x-mulaw;rate=8000", "audio/L16;rate=8000", "audio/L16;rate=16000", "audio/L16;rate=24000")
"""Every format AgentStream carries; mu-law first, the Legs ``start_stream`` default."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long the server waits.

    * ``open``: the WebSocket handshake; Exotel itself gives up after about 10 s.
    * ``idle``: between two frames from Exotel; media normally arrives every ~100 ms,
      so a stream silent this long is dead (closed with 1001 "idle timeout").
    * ``send``: how long a peer may leave the socket buffer above ``Limits.write_limit``
      (it stopped reading) before its connection is aborted; a stalled socket holds
      its own call only, never the others.
    * ``close``: the closing handshake.
    * ``ping_interval`` / ``ping_timeout``: WebSocket keepalive (Exotel's sample: 30 s).
    * ``hangup_grace``: after a hang-up with audio still playing, how long past the
      estimated end of playout to wait for the final mark's echo before closing anyway.
    * ``drain``: on SIGTERM, how long calls in progress may continue before the server
      closes them with 1001.
    """

    open: float = 10.0
    idle: float = 15.0
    send: float = 5.0
    close: float = 5.0
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    hangup_grace: float = 1.0
    drain: float = 30.0


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on memory per stream and per process.

    * ``capacity``: concurrent streams; beyond it the handshake is refused with HTTP 503
      (Exotel retries once) and the fleet stops selecting this bot.
    * ``max_message_size``: largest inbound frame; larger ones close with 1009.
    * ``max_inbound_queue``: frames buffered before the server stops reading the socket.
    * ``write_limit``: bytes buffered on the socket beyond which the bot writes no more
      to it until the peer has read some (see ``Timeouts.send``).
    * ``max_queued_audio``: seconds of bot audio accepted but not yet sent per stream.
    """

    capacity: int = 500
    max_message_size: int = 2**20
    max_inbound_queue: int = 16
    write_limit: int = 2**16
    max_queued_audio: float = 120.0


@dataclass(frozen=True, slots=True)
class Pacing:
    """How outbound audio is cut and timed.

    * ``chunk_bytes``: payload size per ``media`` frame; a multiple of 320 between 3200
      and 100000 (Exotel's rules). 3200 bytes is 400 ms of mu-law or 200 ms of PCM16 at
      8 kHz: the smallest legal chunk keeps barge-in responsive.
    * ``lead``: seconds before Exotel's buffer runs dry that the next chunk is sent;
      absorbs network and scheduling jitter.
    """

    chunk_bytes: int = CHUNK_MIN
    lead: float = 0.2

    def __post_init__(self) -> None:
        if chunk_violations(self.chunk_bytes):
            raise ValueError(f"chunk_bytes={self.chunk_bytes}: {'; '.join(chunk_violations(self.chunk_bytes))}")
        if self.lead < 0:
            raise ValueError("lead must not be negative")


@dataclass(frozen=True, slots=True)
class Registration:
    """Fleet registration in Redis (see :mod:`dialstream.state.fleet`).

    * ``redis_url``: empty disables registration.
    * ``public_url``: what Celery workers hand to Exotel; empty means ``ws://host:port/``.
    * ``heartbeat``: seconds between load updates; ``ttl``: seconds after the last one
      before the bot drops out of selection.
    * ``formats``: the content types this bot accepts, registered with it so that workers
      ask Exotel for one of them (the built-in bots transcode every one AgentStream carries).
    """

    redis_url: str = ""
    public_url: str = ""
    key_prefix: str = keys.PREFIX
    formats: tuple[str, ...] = BUILTIN_FORMATS
    heartbeat: float = 1.0
    ttl: float = 5.0


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files the server serves ``wss://`` with: the certificate chain and its private key."""

    cert: str
    key: str


DEFAULT_TIMEOUTS = Timeouts()
DEFAULT_LIMITS = Limits()
DEFAULT_PACING = Pacing()
DEFAULT_REGISTRATION = Registration()


@dataclass(frozen=True, slots=True)
class BotServerConfig:
    """Everything one bot server process needs. ``port=0`` picks a free port."""

    host: str = "127.0.0.1"
    port: int = 8765
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    tls: TlsFiles | None = None
    timeouts: Timeouts = DEFAULT_TIMEOUTS
    limits: Limits = DEFAULT_LIMITS
    pacing: Pacing = DEFAULT_PACING
    registration: Registration = DEFAULT_REGISTRATION


DEFAULT_CONFIG = BotServerConfig()
