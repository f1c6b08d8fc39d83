"""Event delivery over TLS, mutual TLS, with a bearer token, and to the HTTPS door, with Exotel's retry rules.

The certificates come from a throwaway CA made by trustme; the receivers are a minimal
grpc.aio TLS server and an aiohttp HTTPS server started here (the ingress's own TLS is
tested with the ingress).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import trustme
from aiohttp import web

from dialstream.errors import ConfigurationError
from sim.account import Account
from sim.config import DeliveryPolicy
from tests.sim.harness import Harness, async_test, fast_config, harness, until

HOST = "127.0.0.1"


@dataclass
class Pki:
    """A CA, the receiver's certificate for 127.0.0.1 and a client certificate, as PEM files."""

    ca: trustme.CA
    server: trustme.LeafCert
    ca_file: str
    client_cert_file: str
    client_key_file: str

    def grpc_credentials(self, *, require_client_auth: bool = False) -> grpc.ServerCredentials:
        key = self.server.private_key_pem.bytes()
        chain = b"".join(blob.bytes() for blob in self.server.cert_chain_pems)
        return grpc.ssl_server_credentials(
            [(key, chain)], root_certificates=self.ca.cert_pem.bytes(), require_client_auth=require_client_auth
        )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = trustme.CA()
    server = ca.issue_cert(HOST)
    client = ca.issue_cert("sandbox.client.test")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    client.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    return Pki(ca, server, str(tmp_path / "ca.pem"), str(tmp_path / "client.pem"), str(tmp_path / "client.key"))


def delivery(**changes: Any) -> DeliveryPolicy:
    """Quick attempts so failures settle fast."""
    return DeliveryPolicy(**{"attempt_timeout_s": 1.0, "attempt_interval_s": 0.05, **changes})


async def settled_event(h: Harness, leg_sid: str, name: str) -> dict[str, Any]:
    """The leg's event ``name`` (its /sim/v1 report entry) once its delivery has a final result."""
    found: dict[str, Any] = {}

    async def poll() -> None:
        while True:
            events = (await h.report(leg_sid))["events"]
            match = next((e for e in events if e["event_name"] == name and e["delivered"] is not None), None)
            if match is not None:
                found.update(match)
                return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout=8.0)
    return found


async def dial_and_settle(h: Harness) -> dict[str, Any]:
    """Create a leg that answers; its leg_answered event once delivered or given up."""
    return await settled_event(h, await h.create_leg(), "leg_answered")


# gRPC over TLS


@async_test
async def test_grpcs_endpoint_delivers_over_tls_verified_against_the_ca_file(pki: Pki) -> None:
    """grpcs:// delivers over TLS; the receiver's certificate is verified against delivery.ca_file."""
    config = fast_config(delivery=delivery(ca_file=pki.ca_file))
    async with harness(config, credentials=pki.grpc_credentials(), scheme="grpcs") as h:
        event = await dial_and_settle(h)
    assert event["delivered"] is True and event["endpoint_response"] == "recorded"
    assert h.recorder.names(h.recorder.events[0].leg_sid)[:3] == ["leg_connecting", "leg_ringing", "leg_answered"]


@async_test
async def test_grpc_endpoint_uses_tls_when_the_tls_flag_is_set(pki: Pki) -> None:
    """delivery.tls turns a grpc:// endpoint into a TLS one (a real Exotel endpoint is always TLS)."""
    config = fast_config(delivery=delivery(ca_file=pki.ca_file, tls=True))
    async with harness(config, credentials=pki.grpc_credentials()) as h:
        event = await dial_and_settle(h)
    assert event["delivered"] is True


@async_test
async def test_a_certificate_from_an_unknown_ca_is_refused_and_recorded(pki: Pki) -> None:
    """Without the receiver's CA the handshake fails: every attempt is recorded, the event is given up."""
    config = fast_config(delivery=delivery())  # system roots: the throwaway CA is not among them
    async with harness(config, credentials=pki.grpc_credentials(), scheme="grpcs") as h:
        event = await dial_and_settle(h)
    assert event["delivered"] is False and event["attempts"] == 3
    assert [o["ok"] for o in event["outcomes"]] == [False, False, False]
    assert event["error"].startswith("UNAVAILABLE")
    assert h.recorder.events == []


@async_test
async def test_mutual_tls_sends_the_client_certificate(pki: Pki) -> None:
    """With client_cert_file and client_key_file the sandbox passes a receiver that requires a client certificate."""
    config = fast_config(
        delivery=delivery(ca_file=pki.ca_file, client_cert_file=pki.client_cert_file, client_key_file=pki.client_key_file)
    )
    async with harness(config, credentials=pki.grpc_credentials(require_client_auth=True), scheme="grpcs") as h:
        event = await dial_and_settle(h)
    assert event["delivered"] is True


@async_test
async def test_mutual_tls_without_a_client_certificate_is_refused(pki: Pki) -> None:
    """A receiver that requires a client certificate refuses a sandbox that has none; the failure is recorded."""
    config = fast_config(delivery=delivery(ca_file=pki.ca_file))
    async with harness(config, credentials=pki.grpc_credentials(require_client_auth=True), scheme="grpcs") as h:
        event = await dial_and_settle(h)
    assert event["delivered"] is False and event["error"]
    assert h.recorder.events == []


@async_test
async def test_bearer_token_is_sent_as_call_metadata(pki: Pki) -> None:
    """delivery.bearer_token reaches the receiver as the metadata authorization: Bearer <token>."""
    config = fast_config(delivery=delivery(ca_file=pki.ca_file, bearer_token="s3cret-token"))
    async with harness(config, credentials=pki.grpc_credentials(), scheme="grpcs") as h:
        await dial_and_settle(h)
    assert h.recorder.metadata and all(m["authorization"] == "Bearer s3cret-token" for m in h.recorder.metadata)
    assert "s3cret-token" not in repr(config)


def test_tls_files_that_cannot_be_read_fail_when_the_sandbox_opens(tmp_path: Path) -> None:
    """A missing ca_file is a one-line configuration error naming the key, raised when the account opens."""
    account = Account(fast_config(delivery=delivery(ca_file=str(tmp_path / "missing.pem"))))
    with pytest.raises(ConfigurationError, match=r"delivery.ca_file: cannot read .*missing.pem"):
        account.open()


def test_a_client_certificate_needs_its_key() -> None:
    """client_cert_file without client_key_file is refused when the scenario is read."""
    with pytest.raises(ConfigurationError, match="client_cert_file and client_key_file go together"):
        DeliveryPolicy(client_cert_file="client.pem")


# The HTTPS door (reference section 2.3)


@dataclass
class Door:
    """An HTTPS event endpoint answering ``statuses`` in turn (then 200), recording each request."""

    statuses: list[int] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append({"headers": dict(request.headers), "body": await request.json(), "path": request.path})
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


@asynccontextmanager
async def serve_door(door: Door, pki: Pki) -> AsyncIterator[Door]:
    app = web.Application()
    app.router.add_post("/exotel/events", door.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    pki.server.configure_cert(context)
    site = web.TCPSite(runner, HOST, 0, ssl_context=context)
    await site.start()
    door.url = f"https://{HOST}:{runner.addresses[0][1]}/exotel/events"
    try:
        yield door
    finally:
        await runner.cleanup()


async def door_leg(h: Harness, door: Door) -> str:
    return await h.create_leg(leg_event_endpoint=door.url)


async def first_request_answered(pki: Pki, status: int, requests: int = 1) -> tuple[dict[str, Any], Door]:
    """A leg's events sent to a door that answers the first request with ``status``: leg_connecting's
    report entry once settled, and the door once it has had ``requests`` requests."""
    config = fast_config(delivery=delivery(ca_file=pki.ca_file))
    async with harness(config) as h, serve_door(Door(statuses=[status]), pki) as door:
        leg_sid = await door_leg(h, door)
        first = await settled_event(h, leg_sid, "leg_connecting")
        await until(lambda: len(door.requests) >= requests)
    return first, door


@async_test
async def test_https_door_gets_exotels_post_with_its_headers_and_basic_auth(pki: Pki) -> None:
    """An https:// endpoint gets POST JSON with X-Exotel-Event-Sid, X-Exotel-Request-Id, User-Agent and Basic auth."""
    config = fast_config(delivery=delivery(ca_file=pki.ca_file, basic_auth="exotel:door-pass"))
    async with harness(config) as h, serve_door(Door(), pki) as door:
        leg_sid = await door_leg(h, door)
        await until(lambda: any(r["body"]["event_name"] == "leg_answered" for r in door.requests))
    first = door.requests[0]
    sid = first["body"]["event_sid"]
    assert first["body"]["event_name"] == "leg_connecting" and first["body"]["data"]["leg_sid"] == leg_sid
    assert first["headers"]["X-Exotel-Event-Sid"] == sid
    assert first["headers"]["X-Exotel-Request-Id"] == f"{sid}-1"
    assert first["headers"]["User-Agent"].startswith("Exotel-Hermix/")
    assert first["headers"]["Content-Type"].startswith("application/json")
    assert first["headers"]["Authorization"] == "Basic ZXhvdGVsOmRvb3ItcGFzcw=="  # exotel:door-pass
    assert set(first["body"]) >= {"event_sid", "event_type", "event_name", "event_timestamp", "action_sid", "event_data", "data"}


@pytest.mark.parametrize("status", [408, 429, 500, 503])
@async_test
async def test_https_door_retries_408_429_and_5xx(pki: Pki, status: int) -> None:
    """A 408, 429 or 5xx is retried: the second attempt (X-Exotel-Request-Id <sid>-2) delivers it."""
    first, door = await first_request_answered(pki, status)
    sid = door.requests[0]["body"]["event_sid"]
    assert [r["headers"]["X-Exotel-Request-Id"] for r in door.requests[:2]] == [f"{sid}-1", f"{sid}-2"]
    assert first["attempts"] == 2 and first["delivered"] is True
    assert first["outcomes"][0]["error"] == f"HTTP {status}" and first["endpoint_response"] == "HTTP 200"


@pytest.mark.parametrize("status", [400, 401, 403, 404])
@async_test
async def test_https_door_does_not_retry_other_4xx(pki: Pki, status: int) -> None:
    """Any other 4xx drops the event after one attempt, as Exotel documents; the next event goes on."""
    first, door = await first_request_answered(pki, status, requests=2)
    assert (first["attempts"], first["delivered"], first["error"]) == (1, False, f"HTTP {status}")
    assert door.requests[1]["body"]["event_name"] == "leg_ringing"  # the queue moved on


@async_test
async def test_https_door_retries_connection_errors_three_times_attempts_apart(pki: Pki) -> None:
    """A refused connection is retried: three attempts, each starting attempt_interval_s after the one before."""
    config = fast_config(delivery=delivery(ca_file=pki.ca_file, attempt_interval_s=0.3))
    async with harness(config) as h:
        unused = f"https://{HOST}:9/exotel/events"  # discard port: nothing listens
        leg_sid = await h.create_leg(leg_event_endpoint=unused)
        first = await settled_event(h, leg_sid, "leg_connecting")
    assert first["attempts"] == 3 and first["delivered"] is False
    starts = [o["at"] for o in first["outcomes"]]
    assert all(later - earlier >= 0.3 - 1e-6 for earlier, later in zip(starts, starts[1:]))
    assert "ClientConnectorError" in first["error"] or "Connect" in first["error"]
