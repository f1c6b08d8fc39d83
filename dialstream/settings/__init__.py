"""One settings object per process, read from the environment once at start-up.

:class:`Settings` holds the process's variables; :class:`~dialstream.settings.engine.EngineConfig`
(``Settings.engine``) the limits every campaign of the account shares; ``dialstream.settings.env``
turns fields into variables and back.

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
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dialstream.domain.caller_id import CallerIdPool, parse_regions
from dialstream.domain.webhooks import DEFAULT_RETRY_SCHEDULE
from dialstream.errors import ConfigurationError
from dialstream.exotel.legs_api import LegsApiConfig
from dialstream.settings.engine import EngineConfig
from dialstream.settings.env import env_field, env_fields, read_env, write_env

if TYPE_CHECKING:
    from dialstream.domain.campaign import CampaignConfig

__all__ = ["Settings", "EngineConfig", "SANDBOX_ACCOUNT_SID", "SANDBOX_API_KEY", "SANDBOX_API_TOKEN"]

# The sandbox's built-in account: what `dialstream demo` and the tests dial with.
SANDBOX_ACCOUNT_SID = "dialstream1"
SANDBOX_API_KEY = "sandbox-key"
SANDBOX_API_TOKEN = "sandbox-token"


@dataclass(frozen=True)
class Settings:
    """Process configuration. Field metadata holds the environment variable and its help."""

    # Redis (broker, state store)
    redis_url: str = env_field(
        "REDIS_URL",
        "Redis/Valkey URL for Celery and state. Empty: an embedded Valkey on loopback, durable in "
        "DIALSTREAM_DATA_DIR for dialstream up and the CLI, throw-away for the demo.",
        "",
    )
    data_dir: str = env_field(
        "DIALSTREAM_DATA_DIR",
        "Where dialstream up and the CLI keep their data when REDIS_URL is empty: the embedded Valkey's "
        "append-only file in DATA_DIR/valkey (relative paths: from the working directory).",
        ".ds-run",
    )
    redis_socket_timeout: float = env_field(
        "DIALSTREAM_REDIS_SOCKET_TIMEOUT", "Seconds before a Redis call is abandoned.", 5.0
    )

    # Exotel Legs API
    api_base_url: str = env_field(
        "EXOTEL_API_BASE_URL",
        "Legs API host, without /v2/accounts/... (Singapore: https://cpaas-api.exotel.com).",
        "https://cpaas-api.in.exotel.com",
    )
    account_sid: str = env_field("EXOTEL_ACCOUNT_SID", "Exotel account SID.", SANDBOX_ACCOUNT_SID)
    api_key: str = env_field("EXOTEL_API_KEY", "API key (HTTP Basic user).", SANDBOX_API_KEY)
    api_token: str = env_field(
        "EXOTEL_API_TOKEN", "API token (HTTP Basic password).", SANDBOX_API_TOKEN, repr=False
    )
    exophone: str = env_field("EXOTEL_EXOPHONE", "Caller ID for outbound legs (a pool of one when EXOTEL_EXOPHONES is empty).", "+918030752400")
    exophones: tuple[str, ...] = env_field(
        "EXOTEL_EXOPHONES", "Comma-separated caller-ID pool of the account (a campaign may name its own); empty: EXOTEL_EXOPHONE.", ()
    )
    exophone_regions: tuple[str, ...] = env_field(
        "EXOTEL_EXOPHONE_REGIONS",
        "Comma-separated KEY=EXOPHONE local-presence map; KEY is an E.164 prefix (+9180), a place as phonenumbers "
        "names it (Karnataka) or a region code (US). Without an entry, a callee gets the pool's nearest exophone.",
        (),
    )
    exophone_daily_cap: int = env_field("EXOTEL_EXOPHONE_DAILY_CAP", "Calls a day per exophone (0: no cap).", 0)
    api_timeout: float = env_field(
        "DIALSTREAM_API_TIMEOUT", "Seconds for one Legs API request (connect+read).", 5.0
    )

    # Event ingress
    event_endpoint: str = env_field(
        "DIALSTREAM_EVENT_ENDPOINT",
        "leg_event_endpoint given to Exotel on create-leg (grpc://host:port).",
        "grpc://127.0.0.1:50051",
    )
    ingress_bind: str = env_field(
        "DIALSTREAM_INGRESS_BIND", "host:port the gRPC ingress listens on.", "127.0.0.1:50051"
    )
    dedupe_ttl: int = env_field(
        "DIALSTREAM_DEDUPE_TTL", "Seconds an event_sid is remembered for de-duplication.", 86400
    )

    ingress_tls_cert: str = env_field(
        "DIALSTREAM_INGRESS_TLS_CERT",
        "PEM certificate chain both ingress doors serve (Exotel delivers events only over TLS); "
        "read again when the file changes. Empty: plaintext (loopback only, see DIALSTREAM_INGRESS_INSECURE).",
        "",
    )
    ingress_tls_key: str = env_field("DIALSTREAM_INGRESS_TLS_KEY", "PEM private key of DIALSTREAM_INGRESS_TLS_CERT.", "")
    ingress_client_ca: str = env_field(
        "DIALSTREAM_INGRESS_CLIENT_CA",
        "PEM CA bundle; when set, both doors require a client certificate it signed (mutual TLS).",
        "",
    )
    ingress_token: str = env_field(
        "DIALSTREAM_INGRESS_TOKEN",
        "Bearer token the gRPC door requires in the 'authorization' call metadata (and the HTTPS door in "
        "its Authorization header), e.g. behind a TLS-terminating balancer. Empty: none.",
        "",
        repr=False,
    )
    ingress_insecure: bool = env_field(
        "DIALSTREAM_INGRESS_INSECURE",
        "Allow the ingress to listen in plaintext on a non-loopback address (insecure: anyone who "
        "reaches it can forge call events).",
        False,
    )
    ingress_spool_dir: str = env_field(
        "DIALSTREAM_INGRESS_SPOOL_DIR",
        "Directory where the ingress keeps events it acknowledged while Redis was down, until they "
        "are published (one per ingress process). Empty: no spool; such events are answered "
        "UNAVAILABLE and Exotel retries only briefly.",
        "",
    )
    ingress_spool_max: int = env_field(
        "DIALSTREAM_INGRESS_SPOOL_MAX", "Events the spool may hold; beyond, the ingress answers UNAVAILABLE.", 10000
    )
    ingress_health_bind: str = env_field(
        "DIALSTREAM_INGRESS_HEALTH_BIND",
        "host:port of a plaintext gRPC port serving only grpc.health.v1 (Kubernetes gRPC probes cannot "
        "speak TLS). Empty: off; health is always served on the ingress's own port too.",
        "",
    )
    events_http_bind: str = env_field(
        "DIALSTREAM_EVENTS_HTTP_BIND",
        "host:port of the HTTPS event door (Exotel's HTTPS event-endpoint shape, POST /v1/events). Empty: off.",
        "",
    )
    events_http_user: str = env_field(
        "DIALSTREAM_EVENTS_HTTP_USER", "HTTP Basic user the HTTPS event door requires (empty: no Basic auth).", ""
    )
    events_http_password: str = env_field(
        "DIALSTREAM_EVENTS_HTTP_PASSWORD", "HTTP Basic password of DIALSTREAM_EVENTS_HTTP_USER.", "", repr=False
    )
    tag_secret: str = env_field(
        "DIALSTREAM_TAG_SECRET",
        "Key that signs each leg's custom_param, so the ingress knows events of legs dialstream placed. "
        "Empty: a random key shared through Redis.",
        "",
        repr=False,
    )

    event_rescue_after: float = env_field(
        "DIALSTREAM_EVENT_RESCUE_AFTER",
        "Seconds after publishing leg_answered that any live worker re-applies it (a no-op unless "
        "the worker that took it died).",
        1.0,
    )

    # Bots
    bot_urls: tuple[str, ...] = env_field(
        "DIALSTREAM_BOT_URLS",
        "Comma-separated static bot WebSocket URLs used when no bot has registered.",
        (),
    )
    bot_public_url: str = env_field(
        "DIALSTREAM_BOT_PUBLIC_URL",
        "URL a bot process registers in the fleet, i.e. what Exotel connects to (behind a load "
        "balancer it differs from the bind address). Empty: ws://HOST:PORT/ of the bot.",
        "",
    )
    bot_auth_user: str = env_field(
        "DIALSTREAM_BOT_AUTH_USER", "HTTP Basic user a bot requires on the WebSocket upgrade (empty: none).", ""
    )
    bot_auth_password: str = env_field(
        "DIALSTREAM_BOT_AUTH_PASSWORD",
        "HTTP Basic password a bot requires with DIALSTREAM_BOT_AUTH_USER.",
        "",
        repr=False,
    )
    bot_tls_cert: str = env_field(
        "DIALSTREAM_BOT_TLS_CERT",
        "PEM certificate chain a bot serves wss:// with, in process (with DIALSTREAM_BOT_TLS_KEY). "
        "Empty: plain ws://, for loopback or behind a TLS-terminating balancer.",
        "",
    )
    bot_tls_key: str = env_field("DIALSTREAM_BOT_TLS_KEY", "PEM private key of DIALSTREAM_BOT_TLS_CERT.", "")

    # Metrics
    metrics_port: int = env_field(
        "DIALSTREAM_METRICS_PORT", "Prometheus /metrics port for this process (0: off).", 0
    )
    metrics_bind: str = env_field(
        "DIALSTREAM_METRICS_BIND",
        "Address the /metrics server listens on (0.0.0.0 in a container, so Prometheus can reach it).",
        "127.0.0.1",
    )

    # Flower
    flower_user: str = env_field("DIALSTREAM_FLOWER_USER", "Flower's HTTP Basic user (dialstream up).", "dialstream")
    flower_password: str = env_field(
        "DIALSTREAM_FLOWER_PASSWORD",
        "Flower's HTTP Basic password. Empty: dialstream up makes a random one and prints it.",
        "",
        repr=False,
    )

    # HTTP API (api/) and the CLI driving a stack through it
    api_bind: str = env_field(
        "DIALSTREAM_API_BIND", "host:port the HTTP API (and its dashboard and /metrics) listens on.", "127.0.0.1:8080"
    )
    api_url: str = env_field(
        "DIALSTREAM_API_URL",
        "The HTTP API the CLI drives instead of Redis (as --api URL does); empty: Redis, or the stack `up` runs here.",
        "",
    )
    api_client_key: str = env_field(
        "DIALSTREAM_API_KEY", "API key the CLI sends with DIALSTREAM_API_URL / --api (dialstream apikey create).", "", repr=False
    )

    # Webhooks (workers.webhooks)
    webhook_retry_schedule: tuple[str, ...] = env_field(
        "DIALSTREAM_WEBHOOK_RETRY_SCHEDULE",
        "Seconds between a webhook's failed attempts, comma-separated; after the last it is dead-lettered "
        "(default about 28 hours in all).",
        tuple(f"{d:g}" for d in DEFAULT_RETRY_SCHEDULE),
    )
    webhook_timeout: float = env_field("DIALSTREAM_WEBHOOK_TIMEOUT", "Seconds a webhook receiver has to answer one attempt.", 10.0)

    # The account's shared limits: variables of their own (see EngineConfig).
    engine: EngineConfig = field(default_factory=EngineConfig)

    def __post_init__(self) -> None:
        try:
            valid = all(delay >= 0 for delay in self.webhook_schedule)
        except ValueError:
            valid = False
        if not valid:
            raise ConfigurationError(f"DIALSTREAM_WEBHOOK_RETRY_SCHEDULE={','.join(self.webhook_retry_schedule)!r}: expected seconds, comma-separated")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default: ``os.environ``), validating types."""
        env = os.environ if environ is None else environ
        return cls(**read_env(cls, env), engine=EngineConfig.from_env(env))

    @classmethod
    def for_command(cls, program: str) -> Settings | None:
        """:meth:`from_env` for a command's entry point: a bad variable is one line on stderr
        naming ``program``, and None (the command exits 2), not a traceback."""
        try:
            return cls.from_env()
        except ConfigurationError as exc:
            print(f"{program}: {exc}", file=sys.stderr)
            return None

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def to_env(self) -> dict[str, str]:
        """The environment that reproduces these settings in a child process."""
        return {**write_env(self), **self.engine.to_env()}

    @classmethod
    def documentation(cls) -> list[tuple[str, str, str]]:
        """(variable, default, help) for every setting, for the CLI and the README."""
        rows = []
        for f in (*env_fields(cls), *env_fields(EngineConfig)):
            default = ",".join(f.default) if isinstance(f.default, tuple) else str(f.default)
            if not f.repr and f.default:
                default = "(sandbox token)"
            rows.append((f.metadata["env"], default, f.metadata["help"]))
        return rows

    def in_effect(self) -> list[tuple[str, str, str]]:
        """(variable, value in effect, help) for every setting; secrets (and a password in a
        URL) masked, so the table can be pasted into a bug report."""
        values = {**write_env(self), **write_env(self.engine)}
        rows = []
        for f in (*env_fields(type(self)), *env_fields(EngineConfig)):
            value = values[f.metadata["env"]]
            if not f.repr and value:
                value = "***"
            elif "://" in value and "@" in value:
                value = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", value)
            rows.append((f.metadata["env"], value, f.metadata["help"]))
        return rows

    @property
    def webhook_schedule(self) -> tuple[float, ...]:
        """DIALSTREAM_WEBHOOK_RETRY_SCHEDULE as seconds."""
        return tuple(float(delay) for delay in self.webhook_retry_schedule)

    def caller_id_pool(self, campaign: CampaignConfig | None = None) -> CallerIdPool:
        """The exophones ``campaign`` calls from: its own, else the account's pool, else EXOTEL_EXOPHONE."""
        numbers = (campaign.exophones if campaign else ()) or self.exophones or (self.exophone,)
        return CallerIdPool(numbers, self.exophone_daily_cap, parse_regions(self.exophone_regions))

    @property
    def valkey_dir(self) -> Path:
        """The embedded Valkey's data directory: ``DIALSTREAM_DATA_DIR/valkey``."""
        return Path(self.data_dir) / "valkey"

    @property
    def legs_base_url(self) -> str:
        """``{api_base_url}/v2/accounts/{account_sid}``, the prefix of every Legs API path."""
        return f"{self.api_base_url.rstrip('/')}/v2/accounts/{self.account_sid}"

    @property
    def legs_api(self) -> LegsApiConfig:
        """What a :class:`~dialstream.exotel.legs_api.LegsClient` needs of these settings."""
        return LegsApiConfig(self.legs_base_url, self.api_key, self.api_token, self.api_timeout)


