"""The sandbox's configuration: frozen dataclasses with every default visible.

``SandboxConfig.from_yaml(path)`` reads a scenario file (schema in ``sim/README.md``);
its top-level keys are ``seed``, ``timing``, ``media``, ``limits``, ``delivery``,
``bridges`` (the dataclasses below) and ``callee``, ``campaigns``, ``numbers``,
``agents``, ``faults`` (:class:`sim.scenario.Scenario`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dialstream.errors import ConfigurationError
from dialstream.settings import SANDBOX_ACCOUNT_SID, SANDBOX_API_KEY, SANDBOX_API_TOKEN, Settings
from sim.scenario import Scenario
from sim.schema import build

__all__ = ["Timing", "MediaConfig", "Limits", "DeliveryPolicy", "BridgeConfig", "SandboxConfig"]


@dataclass(frozen=True)
class Timing:
    """How long Exotel's side takes to do things, in milliseconds."""

    connecting_ms: float = 20.0  # create-leg accepted -> leg_connecting (or leg_failed_to_create)
    setup_ms: float = 100.0  # leg_connecting -> leg_ringing (or -> failed)
    say_start_ms: float = 80.0  # start_say -> say_started (TTS synthesis)
    say_ms_per_char: float = 60.0  # spoken length of a say, per character of text
    play_start_ms: float = 60.0  # start_play -> play_started (fetching the file)
    play_ms: float = 3000.0  # length of any played file
    stream_setup_ms: float = 250.0  # start_stream -> stream_initiated (media server joins)
    hangup_ms: float = 30.0  # <Hangup/> accepted -> leg_terminated
    bridge_ms: float = 50.0  # create bridge / JoinBridge / LeaveBridge / stop -> its events
    recording_ready_ms: float = 200.0  # <StopRecording/> -> recording_available (processing)
    greeting_grace_ms: float = 300.0  # greeting audible this long after stream_started is a violation


@dataclass(frozen=True)
class MediaConfig:
    """The AgentStream media leg (Exotel is the WebSocket client)."""

    frame_ms: int = 100  # caller audio per `media` frame, sent at real-time pace
    playout_delay_ms: float = 0.0  # bot audio received -> audible (jitter buffer)
    open_timeout_s: float = 10.0  # WebSocket handshake timeout
    connect_attempts: int = 2  # "Exotel will attempt one automatic retry"
    echo_marks_on_clear: bool = True  # `clear` echoes the marks of the audio it dropped (false: drops them)
    tone_hz: float = 440.0  # pitch of caller_audio: tone
    strict_chunks: bool = False  # short or misaligned bot chunks are invariant failures, not warnings
    start_keys: str = "snake"  # the `start` frame's keys: snake (stream_sid...) or camel (streamSid...)

    def __post_init__(self) -> None:
        if self.start_keys not in ("snake", "camel"):
            raise ConfigurationError(f"media.start_keys must be snake or camel, got {self.start_keys!r}")


@dataclass(frozen=True)
class Limits:
    """Account limits; 0 disables a limit."""

    requests_per_minute: int = 200  # documented for all Voice APIs
    concurrent_legs: int = 200
    active_streams: int = 100  # "max_allowed_streams" in Exotel's ActiveStreams example


@dataclass(frozen=True)
class DeliveryPolicy:
    """Event delivery to ``leg_event_endpoint``, modelled on the documented HTTPS endpoint.

    ``grpcs://`` and ``https://`` endpoints (and ``grpc://`` ones with ``tls``) are TLS:
    the server certificate is verified against ``ca_file`` (PEM; default: the system's
    roots), ``client_cert_file`` + ``client_key_file`` make it mutual TLS. ``bearer_token``
    goes out as gRPC call metadata ``authorization: Bearer ...``; ``basic_auth``
    (``user:password``) as the HTTPS door's ``Authorization: Basic``.
    """

    attempt_timeout_s: float = 1.0  # "~1 second" per attempt
    attempts: int = 3  # "up to 3 attempts"
    attempt_interval_s: float = 1.0  # attempts start at least this far apart
    reorder_hold_ms: float = 200.0  # how long a reordered event waits for a successor
    tls: bool = False  # grpc:// endpoints over TLS too (grpcs:// and https:// always are)
    ca_file: str = ""
    client_cert_file: str = ""
    client_key_file: str = ""
    bearer_token: str = field(default="", repr=False)
    basic_auth: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if bool(self.client_cert_file) != bool(self.client_key_file):
            raise ConfigurationError("delivery: client_cert_file and client_key_file go together (mutual TLS)")
        if self.basic_auth and ":" not in self.basic_auth:
            raise ConfigurationError("delivery.basic_auth: expected user:password")
        if self.attempts < 1:
            raise ConfigurationError(f"delivery.attempts: at least 1, got {self.attempts}")


BRIDGE_TERMINAL_EVENTS = ("bridge_terminated", "bridge_terminal", "both")


@dataclass(frozen=True)
class BridgeConfig:
    """Bridges (reference §1.8)."""

    # Exotel's pages name the end of a bridge bridge_terminated (stop page) and bridge_terminal
    # (create page): which one the sandbox emits, or both one after the other.
    terminal_event: str = "bridge_terminated"
    max_participants: int = 10  # when a create-bridge body does not say

    def __post_init__(self) -> None:
        if self.terminal_event not in BRIDGE_TERMINAL_EVENTS:
            raise ConfigurationError(f"bridges.terminal_event must be one of {BRIDGE_TERMINAL_EVENTS}, got {self.terminal_event!r}")


@dataclass(frozen=True)
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port (see Sandbox.url)
    account_sid: str = SANDBOX_ACCOUNT_SID
    api_key: str = SANDBOX_API_KEY
    api_token: str = SANDBOX_API_TOKEN
    seed: int | None = None  # None: a random seed, reported in /sim/v1/summary
    exophones: tuple[str, ...] = ()  # the account's caller IDs; empty: the default settings' pool
    timing: Timing = field(default_factory=Timing)
    media: MediaConfig = field(default_factory=MediaConfig)
    limits: Limits = field(default_factory=Limits)
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    bridges: BridgeConfig = field(default_factory=BridgeConfig)
    scenario: Scenario = field(default_factory=Scenario)

    @property
    def caller_ids(self) -> tuple[str, ...]:
        """The ExoPhones this account may call from: ``exophones``, else the default settings' pool."""
        return self.exophones or Settings().caller_id_pool().numbers

    def replace(self, **changes: Any) -> SandboxConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], **overrides: Any) -> SandboxConfig:
        """Build from a parsed scenario file; ``overrides`` (host, port, seed...) win."""
        if not isinstance(raw, Mapping):
            raise ConfigurationError(f"scenario: expected a mapping, got {type(raw).__name__}")
        scenario_keys = {"callee", "campaigns", "numbers", "agents", "faults"}
        sections = {
            "timing": Timing, "media": MediaConfig, "limits": Limits, "delivery": DeliveryPolicy, "bridges": BridgeConfig,
        }  # fmt: skip
        unknown = sorted(set(raw) - scenario_keys - set(sections) - {"seed", "exophones"})
        if unknown:
            raise ConfigurationError(f"scenario: unknown key(s) {unknown}")
        seed = raw.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigurationError(f"seed: expected an integer, got {seed!r}")
        values: dict[str, Any] = {name: build(kind, raw.get(name), name) for name, kind in sections.items()}
        values["seed"] = seed
        exophones = raw.get("exophones", [])
        if not isinstance(exophones, list) or not all(isinstance(e, (str, int)) and not isinstance(e, bool) for e in exophones):
            raise ConfigurationError(f"exophones: expected a list of numbers, got {exophones!r}")
        values["exophones"] = tuple(str(e) for e in exophones)
        values["scenario"] = Scenario.from_mapping({k: raw[k] for k in scenario_keys & set(raw)})
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> SandboxConfig:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"cannot read scenario {path}: {exc}") from None
        return cls.from_mapping(raw or {}, **overrides)
