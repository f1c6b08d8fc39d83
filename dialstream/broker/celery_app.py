"""The Celery app: configuration for short, latency-critical tasks on Redis.

Three queues, so a burst of dialing (or a slow webhook receiver) can never delay an in-call action:

- ``events``:   leg events and the media actions they trigger (milliseconds each), and the
  transfers bots ask for;
- ``dial``:     create-leg calls and their retries; the nodes serving it also run the
  campaign engine's dial poller (``workers.poller``);
- ``webhooks``: webhook deliveries (HTTP to the customer's receivers, seconds at worst); the
  nodes serving it also run the sweeper that hands them out (``workers.webhooks``).

Within ``events``, in-call work goes first: kombu's Redis transport keeps each priority of a
queue in a list of its own and takes from the lowest number first, so the ingress pushes a
``leg_answered`` (a new call's stream and greeting) at :data:`NEW_CALL_PRIORITY`, behind
every event of a call already up (its stop, its hang-up, its failover) at priority 0.

The app with the tasks registered is ``workers.tasks``; run a worker per queue as
``dialstream.app.stack.worker_argv`` does. Scale by adding worker processes or machines, not
threads: one process drains about 1,000 tasks a second (deploy/README.md)::

    celery -A workers.tasks worker -Q events -n events@%h -P threads -c 16 --include workers.metrics,workers.webhooks
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from dialstream.broker.transport import transport_for
from dialstream.exotel.events import LEG_ANSWERED
from dialstream.settings import Settings

__all__ = [
    "create_app", "EVENTS_QUEUE", "DIAL_QUEUE", "WEBHOOKS_QUEUE", "HANDLE_LEG_EVENT", "SEND_ACTION", "DIAL_CONTACT",
    "DELIVER_WEBHOOK", "TRANSFER_CALL", "GIL_SWITCH_INTERVAL", "NEW_CALL_PRIORITY", "event_priority", "queue_keys",
    "queue_key",
]  # fmt: skip

EVENTS_QUEUE = "events"
DIAL_QUEUE = "dial"
WEBHOOKS_QUEUE = "webhooks"

# Task names are the contract between the ingress (which publishes by name, without
# importing worker code) and the workers.
HANDLE_LEG_EVENT = "dialstream.handle_leg_event"
SEND_ACTION = "dialstream.send_action"
DIAL_CONTACT = "dialstream.dial_contact"
DELIVER_WEBHOOK = "dialstream.deliver_webhook"
TRANSFER_CALL = "dialstream.transfer_call"  # published by bot processes (dialstream.broker.transfers)

# kombu's Redis priorities: a message of priority p > 0 waits in list "<queue>\x06\x16<p>",
# and workers take from priority 0 first (tests/dialstream/broker/test_messages.py checks it).
IN_CALL_PRIORITY = 0
NEW_CALL_PRIORITY = 3
_PRIORITY_STEPS = (IN_CALL_PRIORITY, NEW_CALL_PRIORITY)
_PRIORITY_SEP = "\x06\x16"


def event_priority(event_name: str) -> int:
    """The broker priority of a leg event's task: a new call's answer waits behind in-call events."""
    return NEW_CALL_PRIORITY if event_name == LEG_ANSWERED else IN_CALL_PRIORITY


def queue_key(queue: str, priority: int) -> str:
    """The Redis list holding ``queue``'s messages of ``priority``."""
    return f"{queue}{_PRIORITY_SEP}{priority}" if priority else queue


def queue_keys(queue: str) -> list[str]:
    """Every list of ``queue``, the first served first: their lengths add up to its backlog."""
    return [queue_key(queue, priority) for priority in _PRIORITY_STEPS]


# Longer than any task may run (time limits below) and any countdown (API retry back-offs,
# seconds), so Redis never re-delivers a task still running. It is also how long a dead
# node's unacked tasks wait before re-delivery; in-call work does not wait for that (the
# timers in dialstream.state.timers rescue it within a second), so it need not be short.
VISIBILITY_TIMEOUT = 300

# Workers and the ingress run several threads: one woken by its socket waits up to this long
# for the GIL while another runs Python (5 ms by default, the whole dispatch budget).
GIL_SWITCH_INTERVAL = 0.0005


def create_app(settings: Settings) -> Celery:
    """A Celery app on ``settings.redis_url``; importing tasks is left to the worker."""
    app = Celery("dialstream", broker=settings.redis_url, set_as_current=False)
    if transport := transport_for(settings.redis_url):
        app.conf.broker_transport = transport
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # nothing in the hot path waits on a result
        task_acks_late=True,  # at-least-once: a task is acked after it ran ...
        task_reject_on_worker_lost=True,  # ... and re-queued if its process died
        task_queues=[Queue(EVENTS_QUEUE), Queue(DIAL_QUEUE), Queue(WEBHOOKS_QUEUE)],
        task_default_queue=EVENTS_QUEUE,
        task_routes={
            HANDLE_LEG_EVENT: {"queue": EVENTS_QUEUE},
            SEND_ACTION: {"queue": EVENTS_QUEUE},
            TRANSFER_CALL: {"queue": EVENTS_QUEUE},
            DIAL_CONTACT: {"queue": DIAL_QUEUE},
            DELIVER_WEBHOOK: {"queue": WEBHOOKS_QUEUE},
        },
        # Few reserved messages per thread: what a node holds when it dies waits for the
        # visibility timeout (its leg events are rescued sooner by dialstream.state.timers).
        worker_prefetch_multiplier=4,
        task_time_limit=60,
        task_soft_time_limit=50,
        worker_max_tasks_per_child=10_000,
        # Task events only while someone watches: Flower turns them on every 5 s while it runs
        # (`enable_events`), and `celery control disable_events` turns them off again. Always on,
        # they cost about a fifth of an events worker's CPU (`make bench`, bot_first at 50/s);
        # `celery worker -E` keeps them on regardless.
        worker_send_task_events=False,
        # Flower learns of a task when a worker receives it; a "sent" event would be one more
        # broker publish per task on the hot path (the ingress's and each action's).
        task_send_sent_event=False,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "priority_steps": list(_PRIORITY_STEPS),
            "visibility_timeout": VISIBILITY_TIMEOUT,
            "socket_timeout": settings.redis_socket_timeout,
            "socket_connect_timeout": settings.redis_socket_timeout,
            "socket_keepalive": True,
            "health_check_interval": 25,
        },
    )
    app.conf.dialstream_settings = settings
    return app
