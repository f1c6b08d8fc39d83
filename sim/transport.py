"""How one event attempt reaches an endpoint: gRPC ``TriggerCallbackEvent`` or the HTTPS door.

An endpoint's scheme picks the transport (:func:`sim.validation.endpoint_kind`):

* ``grpc://host:port``: gRPC, plaintext unless ``delivery.tls``; ``grpcs://host:port``:
  gRPC over TLS. The server certificate is verified (``delivery.ca_file``, else the
  system roots); a client certificate makes it mutual TLS; ``delivery.bearer_token`` is
  sent as call metadata ``authorization: Bearer <token>``.
* ``https://...`` (``http://`` for a local test): Exotel's ExoML event endpoint (reference
  §2.3): ``POST`` of the event JSON with ``X-Exotel-Event-Sid``, ``X-Exotel-Request-Id:
  <event_sid>-<attempt>``, ``User-Agent: Exotel-Hermix/...`` and, when configured,
  ``Authorization: Basic``. Any 2xx acknowledges.

Each attempt returns an :class:`Attempt` saying whether it was acknowledged and whether a
failure is worth retrying: the HTTPS door retries only 408, 429, 5xx, timeouts and
connection errors; gRPC retries the codes that mean the same (UNAVAILABLE,
DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL, UNKNOWN, DATA_LOSS), an inference: the
gRPC rules are not documented.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import grpc

from dialstream.errors import ConfigurationError
from dialstream.exotel.basic_auth import basic_auth_header
from dialstream.exotel.proto import CallbackServiceStub, message_from_dict
from sim.config import DeliveryPolicy

__all__ = ["Attempt", "Transport", "GrpcTransport", "HttpsTransport", "HttpsEndpoint", "TlsMaterial", "grpc_target"]

USER_AGENT = "Exotel-Hermix/1.0 (dialstream sandbox)"
_RETRIED_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DATA_LOSS,
    }
)


def grpc_target(endpoint: str) -> str:
    """``grpc://host:port`` or ``grpcs://host:port`` -> ``host:port``."""
    return endpoint.split("://", 1)[-1].rstrip("/")


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt: acknowledged, or an error and whether to try again."""

    ok: bool
    response: str = ""  # the endpoint's answer (ack message, HTTP status)
    error: str = ""
    retry: bool = False


class Transport(Protocol):
    async def send(self, event: dict[str, Any], attempt: int) -> Attempt: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class TlsMaterial:
    """The PEM files of ``delivery``, read once when the sandbox opens."""

    ca: bytes | None
    key: bytes | None
    cert: bytes | None
    policy: DeliveryPolicy

    @classmethod
    def load(cls, policy: DeliveryPolicy) -> TlsMaterial:
        def read(path: str, what: str) -> bytes | None:
            if not path:
                return None
            try:
                return Path(path).read_bytes()
            except OSError as exc:
                raise ConfigurationError(f"delivery.{what}: cannot read {path}: {exc.strerror}") from None

        return cls(
            ca=read(policy.ca_file, "ca_file"),
            key=read(policy.client_key_file, "client_key_file"),
            cert=read(policy.client_cert_file, "client_cert_file"),
            policy=policy,
        )

    def grpc_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert)

    def ssl_context(self) -> ssl.SSLContext:
        policy = self.policy
        context = ssl.create_default_context(cadata=self.ca.decode("ascii") if self.ca else None)
        if policy.client_cert_file:
            context.load_cert_chain(policy.client_cert_file, policy.client_key_file)
        return context


class GrpcTransport:
    """One channel to one gRPC endpoint, shared by every leg that names it."""

    def __init__(self, endpoint: str, tls: TlsMaterial) -> None:
        target = grpc_target(endpoint)
        secure = endpoint.startswith("grpcs://") or tls.policy.tls
        self._channel = grpc.aio.secure_channel(target, tls.grpc_credentials()) if secure else grpc.aio.insecure_channel(target)
        self._stub = CallbackServiceStub(self._channel)
        token = tls.policy.bearer_token
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._timeout = tls.policy.attempt_timeout_s

    async def send(self, event: dict[str, Any], attempt: int) -> Attempt:
        try:
            response = await self._stub.TriggerCallbackEvent(
                message_from_dict(event), timeout=self._timeout, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as exc:
            return Attempt(False, error=f"{exc.code().name}: {exc.details()}", retry=exc.code() in _RETRIED_CODES)
        return Attempt(True, response=response.message)

    async def close(self) -> None:
        await self._channel.close()


class HttpsTransport:
    """POSTs to Exotel's ExoML event endpoint shape; one client session for every URL."""

    def __init__(self, tls: TlsMaterial) -> None:
        policy = tls.policy
        headers = {"User-Agent": USER_AGENT}
        if policy.basic_auth:
            user, _, password = policy.basic_auth.partition(":")
            headers["Authorization"] = basic_auth_header(user, password)
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=policy.attempt_timeout_s),
            connector=aiohttp.TCPConnector(ssl=tls.ssl_context()),
            headers=headers,
        )

    async def post(self, url: str, event: dict[str, Any], attempt: int) -> Attempt:
        sid = event["event_sid"]
        headers = {"X-Exotel-Event-Sid": sid, "X-Exotel-Request-Id": f"{sid}-{attempt}"}
        try:
            async with self._session.post(url, json=event, headers=headers) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Attempt(False, error=f"{type(exc).__name__}: {exc}".rstrip(": "), retry=True)
        if 200 <= status < 300:
            return Attempt(True, response=f"HTTP {status}")
        return Attempt(False, error=f"HTTP {status}", retry=status in (408, 429) or status >= 500)

    async def close(self) -> None:
        await self._session.close()


class HttpsEndpoint:
    """One HTTPS endpoint URL over the shared :class:`HttpsTransport`."""

    def __init__(self, url: str, transport: HttpsTransport) -> None:
        self._url = url
        self._transport = transport

    async def send(self, event: dict[str, Any], attempt: int) -> Attempt:
        return await self._transport.post(self._url, event, attempt)

    async def close(self) -> None:
        """The session is shared; the deliverer closes it."""
