"""The ingress's doors as Exotel meets them: TLS, mutual TLS, a bearer token, HTTP Basic, rotation,
health and reflection, and no plaintext where others can reach it. Certificates come from a
throwaway CA made in the test (trustme); health and reflection are queried with grpc's own clients."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
import redis
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from dialstream.app.embedded_redis import free_port
from dialstream.app.supervisor import ProcessSpec, Supervisor
from dialstream.domain.campaign import LegTag
from dialstream.exotel.basic_auth import basic_auth_header
from dialstream.exotel.proto import SERVICE_NAME, CallbackServiceStub, message_from_dict
from dialstream.settings import SANDBOX_ACCOUNT_SID, Settings
from dialstream.state.secrets import shared_secret
from tests.utils import wait_for

DB = 4  # this module's own database on the session's server
TOKEN = "ingress-token"
USER, PASSWORD = "exotel", "event-door-password"


@dataclass
class Door:
    port: int
    http_port: int
    health_port: int
    server_ca: trustme.CA
    client_ca: trustme.CA
    client_cert: trustme.LeafCert
    cert_file: Path
    key_file: Path
    client: redis.Redis
    tag: str

    def credentials(self, *, ca: trustme.CA | None = None, client_cert: bool = True) -> grpc.ChannelCredentials:
        root = (ca or self.server_ca).cert_pem.bytes()
        if not client_cert:
            return grpc.ssl_channel_credentials(root)
        leaf = self.client_cert
        return grpc.ssl_channel_credentials(root, leaf.private_key_pem.bytes(), b"".join(p.bytes() for p in leaf.cert_chain_pems))

    def call(self, event: dict, *, token: str | None = TOKEN, **credentials) -> str:
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        with grpc.secure_channel(f"localhost:{self.port}", self.credentials(**credentials)) as channel:
            return CallbackServiceStub(channel).TriggerCallbackEvent(message_from_dict(event), metadata=metadata, timeout=5).message

    def https(self, event: dict, **headers: str) -> httpx.Response:
        context = ssl.create_default_context(cafile=None)
        self.server_ca.configure_trust(context)
        self.client_cert.configure_cert(context)
        return httpx.post(f"https://localhost:{self.http_port}/v1/events", json=event, headers=headers, verify=context)


def issue(ca: trustme.CA, cert_file: Path, key_file: Path) -> None:
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    cert_file.write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
    key_file.write_bytes(leaf.private_key_pem.bytes())


@pytest.fixture(scope="module")
def door(redis_url, tmp_path_factory) -> Iterator[Door]:
    """A running `python -m ingress` on TLS with mutual TLS, a bearer token and the HTTPS door with Basic auth."""
    work = tmp_path_factory.mktemp("ingress-tls")
    server_ca, client_ca = trustme.CA(), trustme.CA()
    cert_file, key_file, client_ca_file = work / "cert.pem", work / "key.pem", work / "client-ca.pem"
    issue(server_ca, cert_file, key_file)
    client_ca.cert_pem.write_to_path(str(client_ca_file))
    url = redis_url.rsplit("/", 1)[0] + f"/{DB}"
    port, http_port, health_port = free_port(), free_port(), free_port()
    env = Settings.from_env(
        {
            "REDIS_URL": url,
            "DIALSTREAM_INGRESS_TLS_CERT": str(cert_file),
            "DIALSTREAM_INGRESS_TLS_KEY": str(key_file),
            "DIALSTREAM_INGRESS_CLIENT_CA": str(client_ca_file),
            "DIALSTREAM_INGRESS_TOKEN": TOKEN,
            "DIALSTREAM_EVENTS_HTTP_USER": USER,
            "DIALSTREAM_EVENTS_HTTP_PASSWORD": PASSWORD,
            "DIALSTREAM_INGRESS_HEALTH_BIND": f"127.0.0.1:{health_port}",
        }
    ).to_env()
    with Supervisor(work) as supervisor:
        argv = Supervisor.python("-m", "ingress", "--bind", f"127.0.0.1:{port}", "--http-bind", f"127.0.0.1:{http_port}")
        supervisor.start(ProcessSpec("ingress", argv, env, ready_port=port))
        supervisor.wait_ready()
        client = redis.Redis.from_url(url, decode_responses=True)
        tag = LegTag("camp", "c1").encode(shared_secret(client, "tags"))
        yield Door(port, http_port, health_port, server_ca, client_ca, client_ca.issue_cert("exotel-events"), cert_file, key_file, client, tag)
        client.close()


def leg_event(door: Door, **data) -> dict:
    return {
        "event_sid": uuid.uuid4().hex,
        "event_type": "leg_lifecycle_event",
        "event_name": "leg_answered",
        "event_timestamp": time.time(),
        "data": {"leg_sid": "L" * 27 + "00000", "account_sid": SANDBOX_ACCOUNT_SID, "custom_param": door.tag, **data},
    }


def test_an_event_over_mutual_tls_with_the_token_is_accepted(door):
    """The server's CA trusted, a client certificate of the client CA, the bearer token: accepted."""
    assert door.call(leg_event(door)) == "accepted"


def test_without_a_client_certificate_the_handshake_fails(door):
    """Mutual TLS: a client with no certificate never reaches the service."""
    with pytest.raises(grpc.RpcError) as info:
        door.call(leg_event(door), client_cert=False)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE


def test_a_client_that_does_not_trust_the_server_certificate_fails(door):
    """TLS verifies the server: a client trusting another CA does not connect."""
    with pytest.raises(grpc.RpcError) as info:
        door.call(leg_event(door), ca=trustme.CA())
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("token", [None, "wrong"], ids=["no-token", "wrong-token"])
def test_a_missing_or_wrong_token_is_unauthenticated_and_publishes_nothing(door, token):
    """UNAUTHENTICATED, and the events queue does not grow."""
    before = door.client.llen("events")
    with pytest.raises(grpc.RpcError) as info:
        door.call(leg_event(door), token=token)
    assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert door.client.llen("events") == before


def test_an_event_of_another_account_is_permission_denied(door):
    """A foreign account_sid: PERMISSION_DENIED, nothing published."""
    before = door.client.llen("events")
    with pytest.raises(grpc.RpcError) as info:
        door.call(leg_event(door, account_sid="another-account"))
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert door.client.llen("events") == before


def test_the_https_door_needs_tls_and_basic_auth(door):
    """HTTPS with the client certificate: 401 without credentials, 200 with Exotel's Basic auth."""
    event = leg_event(door)
    assert door.https(event).status_code == 401
    assert door.https(event, Authorization=basic_auth_header(USER, "wrong")).status_code == 401
    answer = door.https(event, Authorization=basic_auth_header(USER, PASSWORD))
    assert (answer.status_code, answer.json()["status"]) == (200, "accepted")


def test_health_and_reflection_answer_grpc_clients_without_credentials_beyond_tls(door):
    """grpc.health.v1 says SERVING; server reflection lists the callback and health services."""
    with grpc.secure_channel(f"localhost:{door.port}", door.credentials()) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert SERVICE_NAME in services and "grpc.health.v1.Health" in services


def test_the_plaintext_probe_port_serves_health_and_nothing_else(door):
    """DIALSTREAM_INGRESS_HEALTH_BIND: a Kubernetes gRPC probe (no TLS) gets SERVING; events are UNIMPLEMENTED there."""
    with grpc.insecure_channel(f"127.0.0.1:{door.health_port}") as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as info:
            CallbackServiceStub(channel).TriggerCallbackEvent(message_from_dict(leg_event(door)), timeout=5)
    assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED


def test_a_certificate_rotated_on_disk_is_served_to_new_connections(door):
    """New files from another CA: the next connection gets the new certificate, no restart."""
    new_ca = trustme.CA()
    issue(new_ca, door.cert_file, door.key_file)
    assert wait_for(lambda: _accepted_with(door, new_ca), timeout=10)
    with pytest.raises(grpc.RpcError):
        door.call(leg_event(door))  # the old CA no longer verifies the server
    door.server_ca = new_ca


def _accepted_with(door: Door, ca: trustme.CA) -> bool:
    try:
        return door.call(leg_event(door), ca=ca) == "accepted"
    except grpc.RpcError:
        return False


def test_plaintext_on_a_reachable_address_is_refused_unless_explicitly_insecure(redis_url):
    """Without TLS, binding 0.0.0.0 exits 2 with one line naming the settings; DIALSTREAM_INGRESS_INSECURE allows it."""
    env = Settings.from_env({"REDIS_URL": redis_url}).to_env()
    result = subprocess.run(
        [sys.executable, "-m", "ingress", "--bind", f"0.0.0.0:{free_port()}"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "DIALSTREAM_INGRESS_TLS_CERT" in result.stderr
    assert "Traceback" not in result.stderr


def test_plaintext_on_a_reachable_address_starts_when_explicitly_insecure(redis_url, tmp_path):
    """DIALSTREAM_INGRESS_INSECURE=true: the same bind starts (for a deployment behind a TLS-terminating balancer)."""
    port = free_port()
    env = Settings.from_env({"REDIS_URL": redis_url, "DIALSTREAM_INGRESS_INSECURE": "true"}).to_env()
    with Supervisor(tmp_path) as supervisor:
        supervisor.start(ProcessSpec("ingress", Supervisor.python("-m", "ingress", "--bind", f"0.0.0.0:{port}"), env, ready_port=port))
        supervisor.wait_ready()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING
