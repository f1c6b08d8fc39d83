"""One settings object per process, read from the environment once at start-up.

Every process (CLI, ingress, workers, bots, the sandbox) calls :meth:`Settings.from_env`
in its entry point and passes the object down; nothing deeper reads ``os.environ``.
Each field names its environment variable and documents its default; ``dialstream
settings`` prints the table.

Example::

    settings = Settings.from_env()                      # the process's environment
    settings = Settings.from_env({"REDIS_URL": "redis://10.0.0.5:6379/0"})
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from dialstream.errors import ConfigurationError

__all__ = ["Settings", "SANDBOX_ACCOUNT_SID", "SANDBOX_API_KEY", "SANDBOX_API_TOKEN"]

# The sandbox's built-in account: what `dialstream demo` and the tests dial with.
SANDBOX_ACCOUNT_SID = "dialstream1"
SANDBOX_API_KEY = "sandbox-key"
SANDBOX_API_TOKEN = "sandbox-token"


def _env(name: str, help: str, default: Any, **kwargs: Any) -> Any:
    return field(default=default, metadata={"env": name, "help": help}, **kwargs)


@dataclass(frozen=True)
class Settings:
    """Process configuration. Field metadata holds the environment variable and its help."""

    # Redis (broker, state store)
    redis_url: str = _env(
        "REDIS_URL",
        "Redis/Valkey URL for Celery and state. Empty: the CLI starts an embedded Valkey "
        "on a free loopback port and stops it on exit.",
        "",
    )
    redis_socket_timeout: float = _env(
        "DIALSTREAM_REDIS_SOCKET_TIMEOUT", "Seconds before a Redis call is abandoned.", 5.0
    )

    # Exotel Legs API
    api_base_url: str = _env(
        "EXOTEL_API_BASE_URL",
        "Legs API host, without /v2/accounts/... (Singapore: https://cpaas-api.exotel.com).",
        "https://cpaas-api.in.exotel.com",
    )
    account_sid: str = _env("EXOTEL_ACCOUNT_SID", "Exotel account SID.", SANDBOX_ACCOUNT_SID)
    api_key: str = _env("EXOTEL_API_KEY", "API key (HTTP Basic user).", SANDBOX_API_KEY)
    api_token: str = _env(
        "EXOTEL_API_TOKEN", "API token (HTTP Basic password).", SANDBOX_API_TOKEN, repr=False
    )
    exophone: str = _env("EXOTEL_EXOPHONE", "Caller ID for outbound legs.", "+918030752400")
    api_timeout: float = _env(
        "DIALSTREAM_API_TIMEOUT", "Seconds for one Legs API request (connect+read).", 5.0
    )

    # Event ingress
    event_endpoint: str = _env(
        "DIALSTREAM_EVENT_ENDPOINT",
        "leg_event_endpoint given to Exotel on create-leg (grpc://host:port).",
        "grpc://127.0.0.1:50051",
    )
    ingress_bind: str = _env(
        "DIALSTREAM_INGRESS_BIND", "host:port the gRPC ingress listens on.", "127.0.0.1:50051"
    )
    dedupe_ttl: int = _env(
        "DIALSTREAM_DEDUPE_TTL", "Seconds an event_sid is remembered for de-duplication.", 86400
    )

    event_rescue_after: float = _env(
        "DIALSTREAM_EVENT_RESCUE_AFTER",
        "Seconds after publishing leg_answered that any live worker re-applies it (a no-op unless "
        "the worker that took it died).",
        1.0,
    )

    # Bots
    bot_urls: tuple[str, ...] = _env(
        "DIALSTREAM_BOT_URLS",
        "Comma-separated static bot WebSocket URLs used when no bot has registered.",
        (),
    )

    # Metrics
    metrics_port: int = _env(
        "DIALSTREAM_METRICS_PORT", "Prometheus /metrics port for this process (0: off).", 0
    )
    metrics_bind: str = _env(
        "DIALSTREAM_METRICS_BIND",
        "Address the /metrics server listens on (0.0.0.0 in a container, so Prometheus can reach it).",
        "127.0.0.1",
    )

    # Flower
    flower_user: str = _env("DIALSTREAM_FLOWER_USER", "Flower's HTTP Basic user (dialstream up).", "dialstream")
    flower_password: str = _env(
        "DIALSTREAM_FLOWER_PASSWORD",
        "Flower's HTTP Basic password. Empty: dialstream up makes a random one and prints it.",
        "",
        repr=False,
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default: ``os.environ``), validating types."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            if name not in env:
                continue
            raw = env[name]
            try:
                values[f.name] = _convert(raw, f.default)
            except ValueError as exc:
                raise ConfigurationError(f"{name}={raw!r}: {exc}") from None
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def to_env(self) -> dict[str, str]:
        """The environment that reproduces these settings in a child process."""
        env = {}
        for f in fields(self):
            value = getattr(self, f.name)
            env[f.metadata["env"]] = ",".join(value) if isinstance(value, tuple) else str(value)
        return env

    @classmethod
    def documentation(cls) -> list[tuple[str, str, str]]:
        """(variable, default, help) for every setting, for the CLI and the README."""
        rows = []
        for f in fields(cls):
            default = ",".join(f.default) if isinstance(f.default, tuple) else str(f.default)
            if not f.repr and f.default:
                default = "(sandbox token)"
            rows.append((f.metadata["env"], default, f.metadata["help"]))
        return rows

    @property
    def legs_base_url(self) -> str:
        """``{api_base_url}/v2/accounts/{account_sid}``, the prefix of every Legs API path."""
        return f"{self.api_base_url.rstrip('/')}/v2/accounts/{self.account_sid}"


def _convert(raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ValueError("expected a boolean (true/false)")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw
