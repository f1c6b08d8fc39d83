"""dialstream's Redis broker pieces against kombu's own: same messages, same behaviour."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
import redis

from dialstream.broker import Transport, task_message, transport_for
from dialstream.events import LegEvent
from dialstream.settings import Settings
from dialstream.timers import event_timer
from workers.app import EVENTS_QUEUE, HANDLE_LEG_EVENT, create_app

# Fresh per message: task id, root id, delivery tag; the rest must be as kombu writes it.
_IDS = ("id", "root_id", "correlation_id", "delivery_tag")


@pytest.fixture
def app(redis_url: str) -> Iterator:
    app = create_app(Settings.from_env({"REDIS_URL": redis_url}))
    with app.connection_for_write() as connection:
        for queue in app.conf.task_queues:
            queue.bind(connection.default_channel).declare()
    yield app
    app.close()


def _without_ids(message: dict) -> dict:
    headers = {k: v for k, v in message["headers"].items() if k not in _IDS}
    properties = {k: v for k, v in message["properties"].items() if k not in _IDS}
    return {**message, "headers": headers, "properties": properties}


def test_task_message_is_what_kombu_pushes_for_send_task(app, redis_url: str) -> None:
    """The message built for the ingress's Lua push equals kombu's LPUSH for the same send_task, ids aside."""
    client = redis.Redis.from_url(redis_url)
    client.delete(EVENTS_QUEUE)
    args = [{"event_sid": "E1", "leg_sid": "L1", "data": {"to": "+919900001111"}}]
    app.send_task(HANDLE_LEG_EVENT, args=args, queue=EVENTS_QUEUE, argsrepr="leg=L1")
    theirs = json.loads(client.rpop(EVENTS_QUEUE))
    ours = json.loads(task_message(app, HANDLE_LEG_EVENT, args, queue=EVENTS_QUEUE, argsrepr="leg=L1"))
    theirs["properties"].pop("argsrepr")  # send_task copies its options into the properties; nothing reads it there
    assert _without_ids(ours) == _without_ids(theirs)
    assert json.loads(base64.b64decode(ours["body"])) == json.loads(base64.b64decode(theirs["body"]))
    assert ours["headers"]["id"] == ours["headers"]["root_id"] == ours["properties"]["correlation_id"]
    client.close()


def test_a_pushed_message_runs_as_the_task(app, redis_url: str) -> None:
    """A worker's consumer decodes the pushed message into the task's name, id and arguments."""
    client = redis.Redis.from_url(redis_url)
    client.delete(EVENTS_QUEUE)
    client.lpush(EVENTS_QUEUE, task_message(app, HANDLE_LEG_EVENT, [{"k": "v"}], queue=EVENTS_QUEUE, argsrepr="r"))
    with app.connection_for_read() as connection:
        queue = app.conf.task_queues[0].bind(connection.default_channel)
        message = queue.get(no_ack=True)
    assert message is not None
    assert message.headers["task"] == HANDLE_LEG_EVENT
    args, kwargs, _ = message.decode()
    assert args == [{"k": "v"}] and kwargs == {}
    client.close()


def test_plain_redis_urls_use_the_shared_client_transport(app) -> None:
    """redis:// gets the transport whose channel builds one client, reused for every command; other schemes keep kombu's."""
    assert transport_for("redis://127.0.0.1:6379/0") == "dialstream.broker:Transport"
    assert transport_for("rediss://example:6380/0") is None
    assert transport_for("sentinel://example:26379") is None
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)
        channel = connection.default_channel
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second
        given = object()
        with channel.conn_or_acquire(given) as client:
            assert client is given


def test_the_worker_rebuilds_the_ingress_rescue_timer_member_exactly(app, redis_url: str) -> None:
    """The worker disarms an event's rescue timer by value: the payload it decodes gives the same member the ingress armed."""
    event = LegEvent.from_dict({
        "event_sid": "E-ü-1", "event_type": "leg_lifecycle_event", "event_name": "leg_answered",
        "event_timestamp": "2026-11-25T07:00:00.123456Z", "leg_sid": "L1", "custom_param": '{"c":"x","k":"c1","a":1}',
        "data": {"contact_uri": "+919900001111", "duration": 1.5}, "received_at": 1795590000.1234567,
    })  # fmt: skip
    payload = event.to_dict()
    client = redis.Redis.from_url(redis_url)
    client.delete(EVENTS_QUEUE)
    client.lpush(EVENTS_QUEUE, task_message(app, HANDLE_LEG_EVENT, [payload], queue=EVENTS_QUEUE, argsrepr="r"))
    with app.connection_for_read() as connection:
        message = app.conf.task_queues[0].bind(connection.default_channel).get(no_ack=True)
    [received], _, _ = message.decode()
    assert event_timer(received) == event_timer(payload)
    client.close()
