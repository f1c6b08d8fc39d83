"""dialstream's Redis broker pieces against kombu's own: same messages, same behaviour."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
import redis

from dialstream.broker.celery_app import (
    DIAL_CONTACT,
    EVENTS_QUEUE,
    HANDLE_LEG_EVENT,
    NEW_CALL_PRIORITY,
    SEND_ACTION,
    TRANSFER_CALL,
    create_app,
    queue_key,
    queue_keys,
)
from dialstream.broker.messages import task_argsrepr, task_message
from dialstream.broker.transport import Transport, transport_for
from dialstream.domain.campaign import LegTag
from dialstream.exotel.events import LegEvent
from dialstream.settings import Settings
from dialstream.state.timers import event_timer

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


def test_a_new_calls_priority_is_kombus_list_and_served_after_priority_0(app, redis_url: str) -> None:
    """send_task at NEW_CALL_PRIORITY lands in queue_key's list, with that priority in the message as task_message
    writes it; and a worker's consumer takes priority 0 first (queue_keys is its order)."""
    client = redis.Redis.from_url(redis_url)
    client.delete(*queue_keys(EVENTS_QUEUE))
    app.send_task(HANDLE_LEG_EVENT, args=[{"n": 1}], queue=EVENTS_QUEUE, priority=NEW_CALL_PRIORITY)
    app.send_task(HANDLE_LEG_EVENT, args=[{"n": 2}], queue=EVENTS_QUEUE)
    theirs = json.loads(client.rpop(queue_key(EVENTS_QUEUE, NEW_CALL_PRIORITY)))
    ours = json.loads(task_message(app, HANDLE_LEG_EVENT, [{"n": 1}], queue=EVENTS_QUEUE, argsrepr="", priority=NEW_CALL_PRIORITY))
    assert theirs["properties"]["priority"] == ours["properties"]["priority"] == NEW_CALL_PRIORITY
    client.lpush(queue_key(EVENTS_QUEUE, NEW_CALL_PRIORITY), json.dumps(theirs))
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        assert channel.priority_steps == [0, NEW_CALL_PRIORITY]
        assert [channel._q_for_pri(EVENTS_QUEUE, p) for p in channel.priority_steps] == queue_keys(EVENTS_QUEUE)
        first, second = (json.loads(base64.b64decode(channel._get(EVENTS_QUEUE)["body"]))[0] for _ in range(2))
    assert (first, second) == ([{"n": 2}], [{"n": 1}])
    client.close()


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
    assert transport_for("redis://127.0.0.1:6379/0") == "dialstream.broker.transport:Transport"
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


def test_leg_event_arguments_name_leg_campaign_and_contact_and_mask_the_number():
    """handle_leg_event's argsrepr names the event, leg, campaign and contact, never the full number."""
    event = {
        "event_name": "leg_answered",
        "leg_sid": "CA123",
        "custom_param": LegTag("camp1", "c7", 2).encode(),
        "data": {"contact_uri": "+919812345678", "leg_sid": "CA123"},
    }
    text = task_argsrepr(HANDLE_LEG_EVENT, [event])
    assert text == "leg_answered leg=CA123 campaign=camp1 contact=c7 attempt=2 to=+9198*****678"


def test_action_and_dial_arguments_are_summaries():
    """send_action shows the action and leg; dial_contact the campaign, contact and attempt; transfer_call the
    leg and the key or mode, never the agent's number."""
    action = {"action_id": "start_stream:1", "kind": "start_stream", "params": {"url": "wss://u:p@bot/"}}
    assert task_argsrepr(SEND_ACTION, ["CA1", action]) == "start_stream leg=CA1 action=start_stream:1"
    assert task_argsrepr(DIAL_CONTACT, ["camp1", "c7"]) == "dial campaign=camp1 contact=c7 attempt=1"
    assert task_argsrepr(TRANSFER_CALL, ["CA1", {"to": "+918000000001", "mode": "warm"}]) == "transfer leg=CA1 mode=warm"
    assert task_argsrepr(TRANSFER_CALL, ["CA1", {"key": "0"}]) == "transfer leg=CA1 key=0"


def test_unexpected_arguments_are_hidden_rather_than_shown():
    """Arguments of an unknown shape or task are hidden: nothing unmasked reaches Flower."""
    assert task_argsrepr(HANDLE_LEG_EVENT, ["+919812345678"]) == "(arguments hidden)"
    assert task_argsrepr("other.task", [{"phone": "+919812345678"}]) == "(arguments hidden)"
