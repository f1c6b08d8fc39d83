"""The gRPC ingress as a real process: validate, de-duplicate, publish, then acknowledge."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator

import grpc
import httpx
import pytest
import redis

from dialstream.app.embedded_redis import EmbeddedRedis, free_port
from dialstream.app.supervisor import ProcessSpec, Supervisor
from dialstream.broker.celery_app import EVENTS_QUEUE, queue_keys
from dialstream.domain.campaign import LegTag
from dialstream.exotel.proto import CallbackServiceStub, message_from_dict
from dialstream.settings import SANDBOX_ACCOUNT_SID, Settings
from dialstream.state.secrets import shared_secret
from tests.utils import wait_for

DB = 3  # this module's own database on the session's server
TAG = ""  # the signed custom_param of this module's legs, set once the ingress made its secret


def db_url(redis_url: str, db: int) -> str:
    return redis_url.rsplit("/", 1)[0] + f"/{db}"


@pytest.fixture(scope="module")
def ingress(redis_url, tmp_path_factory) -> Iterator[tuple[CallbackServiceStub, redis.Redis, int]]:
    """A running `python -m ingress` with its HTTP door, a stub to call it, and its Redis."""
    url = db_url(redis_url, DB)
    port, http_port = free_port(), free_port()
    env = Settings.from_env({"REDIS_URL": url}).to_env()
    with Supervisor(tmp_path_factory.mktemp("ingress")) as supervisor:
        argv = Supervisor.python("-m", "ingress", "--bind", f"127.0.0.1:{port}", "--http-bind", f"127.0.0.1:{http_port}")
        supervisor.start(ProcessSpec("ingress", argv, env, ready_port=port))
        supervisor.wait_ready()
        client = redis.Redis.from_url(url, decode_responses=True)
        global TAG
        TAG = LegTag("camp", "c1").encode(shared_secret(client, "tags"))
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield CallbackServiceStub(channel), client, http_port
        client.close()


def leg_event(**overrides) -> dict:
    """A leg_answered of a leg dialstream placed: our account, a tag signed with the deployment's secret."""
    event = {
        "event_sid": uuid.uuid4().hex,
        "event_type": "leg_lifecycle_event",
        "event_name": "leg_answered",
        "event_timestamp": time.time(),
        "event_data": {"data": {}},
        "data": {"leg_sid": "L" * 27 + "00000", "account_sid": SANDBOX_ACCOUNT_SID, "state": "connected", "custom_param": TAG},
    }
    event.update(overrides)
    return event


def published(client: redis.Redis) -> list[dict]:
    """The handle_leg_event tasks waiting on the events queue (all its priorities), as their event payloads."""
    messages = [json.loads(raw) for key in queue_keys(EVENTS_QUEUE) for raw in client.lrange(key, 0, -1)]
    return [_payload(m) for m in messages]


def _payload(message: dict) -> dict:
    body = message["body"]
    if message["properties"].get("body_encoding") == "base64":
        body = base64.b64decode(body).decode()
    args, _kwargs, _embed = json.loads(body)
    return args[0]


def test_valid_event_is_published_as_a_task_then_acknowledged(ingress):
    """A valid event is on the events queue as a handle_leg_event task when the RPC returns OK."""
    stub, client, _ = ingress
    event = leg_event()
    response = stub.TriggerCallbackEvent(message_from_dict(event), timeout=5)
    assert response.success and response.message == "accepted"
    payloads = [p for p in published(client) if p["event_sid"] == event["event_sid"]]
    assert len(payloads) == 1
    assert payloads[0]["leg_sid"] == event["data"]["leg_sid"]
    assert payloads[0]["received_at"] > 0


def test_duplicate_event_sid_is_acknowledged_but_published_once(ingress):
    """The same event_sid twice: both RPCs succeed, one task is published."""
    stub, client, _ = ingress
    event = leg_event()
    first = stub.TriggerCallbackEvent(message_from_dict(event), timeout=5)
    second = stub.TriggerCallbackEvent(message_from_dict(event), timeout=5)
    assert (first.message, second.message) == ("accepted", "duplicate")
    assert len([p for p in published(client) if p["event_sid"] == event["event_sid"]]) == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"event_sid": ""}, {"event_name": ""}, {"event_type": "nonsense"}, {"data": {"state": "connected"}},
        {"event_timestamp": None}, {"event_sid": "x" * 65}, {"custom_param": "x" * 5000},
        {"event_sid": "abc\nINFO forged log line"}, {"event_name": "leg_answered\r"},
    ],
    ids=[
        "no-event-sid", "no-event-name", "bad-event-type", "no-leg-sid", "no-timestamp", "long-sid",
        "long-custom-param", "newline-in-sid", "control-in-name",
    ],
)
def test_malformed_event_gets_invalid_argument_and_nothing_is_published(ingress, overrides):
    """An event missing a required field is refused with INVALID_ARGUMENT; the queue does not grow."""
    stub, client, _ = ingress
    before = len(published(client))
    with pytest.raises(grpc.RpcError) as info:
        stub.TriggerCallbackEvent(message_from_dict(leg_event(**overrides)), timeout=5)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert len(published(client)) == before


def test_http_door_accepts_the_documented_json_and_dedupes(ingress):
    """POST /v1/events with the documented JSON publishes once; a malformed body is a 400."""
    _, client, http_port = ingress
    event = leg_event()
    url = f"http://127.0.0.1:{http_port}/v1/events"
    first = httpx.post(url, json=event, headers={"X-Exotel-Event-Sid": event["event_sid"]})
    second = httpx.post(url, json=event)
    assert (first.status_code, first.json()["status"]) == (200, "accepted")
    assert second.json()["status"] == "duplicate"
    assert len([p for p in published(client) if p["event_sid"] == event["event_sid"]]) == 1
    assert httpx.post(url, content=b"{not json").status_code == 400
    assert httpx.post(url, json={"event_sid": "x"}).status_code == 400


def test_publish_failure_is_unavailable_and_the_retry_is_published(redis_url, tmp_path_factory):
    """With the broker down the RPC fails UNAVAILABLE (not acked); once it is back, the same event is published."""
    broker = EmbeddedRedis()
    port = free_port()
    env = Settings.from_env({"REDIS_URL": broker.url, "DIALSTREAM_TAG_SECRET": "configured"}).to_env()
    with Supervisor(tmp_path_factory.mktemp("ingress-down")) as supervisor:
        supervisor.start(ProcessSpec("ingress", Supervisor.python("-m", "ingress", "--bind", f"127.0.0.1:{port}"), env, ready_port=port))
        supervisor.wait_ready()
        tag = LegTag("camp", "c1").encode(b"configured")
        event = leg_event(data={"leg_sid": "L" * 27 + "00000", "account_sid": SANDBOX_ACCOUNT_SID, "custom_param": tag})
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = CallbackServiceStub(channel)
            with pytest.raises(grpc.RpcError) as info:
                stub.TriggerCallbackEvent(message_from_dict(event), timeout=15)
            assert info.value.code() is grpc.StatusCode.UNAVAILABLE
            with broker:
                client = redis.Redis.from_url(broker.url, decode_responses=True)
                response = wait_for(lambda: _try(stub, event), timeout=15)
                assert response.message == "accepted"
                assert [p["event_sid"] for p in published(client)] == [event["event_sid"]]
                client.close()


def _try(stub, event):
    try:
        return stub.TriggerCallbackEvent(message_from_dict(event), timeout=5)
    except grpc.RpcError:
        return None
