"""Webhook delivery: the ``deliver_webhook`` task and the sweeper that hands deliveries out.

Loaded by every worker (``--include workers.webhooks``); only nodes serving the ``webhooks``
queue run the :class:`WebhookSweeper` thread. Each round it takes the due deliveries
(``dialstream.state.webhooks``: new ones and retries whose delay is over) under a lease and
sends a task per delivery; the task signs and POSTs the message. A 2xx is delivered; anything
else (an error status, a timeout, a refused connection) is an attempt failed, due again after
the retry schedule's next delay (``DIALSTREAM_WEBHOOK_RETRY_SCHEDULE``) and dead-lettered after
its last. A task lost with its worker leaves its delivery leased: due again when the lease ends.

The events and dial queues never carry a webhook, so a slow receiver delays no call.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import httpx
from celery import Task
from celery.signals import worker_init

from dialstream.broker.celery_app import DELIVER_WEBHOOK, WEBHOOKS_QUEUE
from dialstream.domain.webhooks import headers
from dialstream.settings import Settings
from dialstream.state.client import connect_settings
from dialstream.state.webhooks import Webhooks
from workers.tasks import app
from workers.thread_step import ThreadStep

__all__ = ["deliver_webhook", "WebhookSweeper", "SWEEP_INTERVAL"]

log = logging.getLogger("dialstream.webhooks")

SWEEP_INTERVAL = 0.1  # seconds between rounds that found nothing due: bounds a webhook's wait
BATCH = 100  # deliveries handed out per round, at most

_local = threading.local()


def _clients() -> tuple[Webhooks, httpx.Client, Settings]:
    """This thread's Redis and HTTP clients (the worker's pool threads each keep their own)."""
    if getattr(_local, "clients", None) is None:
        settings: Settings = app.conf.dialstream_settings
        client = connect_settings(settings)
        http = httpx.Client(timeout=settings.webhook_timeout, follow_redirects=False)
        _local.clients = (Webhooks(client, schedule=settings.webhook_schedule), http, settings)
    return _local.clients


def lease(settings: Settings) -> float:
    """How long a delivery handed to a task stays taken: longer than an attempt can last."""
    return 2 * settings.webhook_timeout + 10


@app.task(name=DELIVER_WEBHOOK, bind=True)
def deliver_webhook(self: Task, delivery_id: str) -> str:
    """One attempt at one delivery; returns delivered, retry, dead, or why it was dropped."""
    webhooks, http, _ = _clients()
    delivery = webhooks.delivery(delivery_id)
    if delivery is None or delivery.state != "pending":
        return "gone"  # expired, or delivered by an earlier task whose lease this one outlived
    if delivery.endpoint is None or delivery.body is None:
        webhooks.drop(delivery_id, "the endpoint was removed" if delivery.endpoint is None else "the message expired")
        return "dropped"
    body = delivery.body
    status: int | None = None
    try:
        response = http.post(delivery.endpoint.url, content=body, headers=headers(delivery.endpoint.secret, delivery.msg_id, int(time.time()), body))
        status = response.status_code
        error = "" if response.is_success else f"HTTP {status}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    if not error:
        webhooks.delivered(delivery_id, status or 0)
        return "delivered"
    delay = webhooks.failed(delivery_id, error, status)
    log.warning("webhook %s to %s failed (%s); %s", delivery_id, delivery.endpoint.url, error,
                "dead-lettered" if delay is None else f"retry in {delay:g}s")  # fmt: skip
    return "dead" if delay is None else "retry"


class WebhookSweeper(ThreadStep):
    """On a node serving the ``webhooks`` queue: hands due deliveries to ``deliver_webhook`` tasks."""

    def start(self, worker: Any) -> None:
        if WEBHOOKS_QUEUE not in worker.app.amqp.queues.consume_from:
            return
        self.start_thread(self._run, worker.app, name="webhook-sweeper")

    def _run(self, celery: Any) -> None:
        settings: Settings = celery.conf.dialstream_settings
        webhooks = Webhooks(connect_settings(settings))
        while not self._stop.is_set():
            try:
                due = webhooks.take_due(BATCH, lease(settings))
                if due:
                    with celery.producer_or_acquire() as producer, producer.batch():
                        for delivery_id in due:
                            celery.send_task(DELIVER_WEBHOOK, args=[delivery_id], queue=WEBHOOKS_QUEUE, producer=producer)
            except Exception:  # noqa: BLE001 - a Redis or broker hiccup must not kill the sweeper
                log.exception("webhook sweep failed; retrying")
                due = []
            if len(due) < BATCH:
                self._stop.wait(SWEEP_INTERVAL)


@worker_init.connect
def _install(sender: Any = None, **_: Any) -> None:
    # As workers.metrics: worker_init comes after --include imports, before the blueprint is built.
    sender.app.steps["worker"].add(WebhookSweeper)
