"""What a worker shows the outside: Prometheus metrics, and task arguments Flower may display.

Metrics live in a registry of their own (like ``bot.metrics``), so tests read exact values
and a process that merely imports this module (the ingress does, for :func:`task_argsrepr`)
does not serve them. The :class:`WorkerMetrics` bootstep serves them on ``/metrics`` at
``DIALSTREAM_METRICS_BIND:DIALSTREAM_METRICS_PORT`` (port 0: off). Importing this module in
a worker installs the bootstep (see :func:`_install`), so every worker command loads it
with ``--include workers.metrics``.

Workers run a thread pool (``-P threads``): one process, one registry. A prefork pool
would need prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) instead.

Tasks record through the ``record_*`` helpers, so metric names and labels are defined here
only. Task arguments: Celery shows ``argsrepr`` in task events, which Flower displays and
keeps; :func:`task_argsrepr` names the leg, campaign and contact and masks phone numbers,
for publishers to pass as ``argsrepr=`` (the ingress does).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from celery import bootsteps
from celery.signals import worker_init
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, start_http_server

from dialstream.campaign import LegTag
from dialstream.report import mask_phone
from dialstream.settings import Settings
from workers.app import DIAL_CONTACT, HANDLE_LEG_EVENT, SEND_ACTION

__all__ = [
    "REGISTRY",
    "EVENTS",
    "ACTIONS",
    "LEGS_API_SECONDS",
    "LEGS_API_ERRORS",
    "RATE_LIMIT_WAIT",
    "record_event",
    "record_action",
    "record_legs_api",
    "record_rate_limit_wait",
    "task_argsrepr",
    "WorkerMetrics",
]

log = logging.getLogger("dialstream.workers.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # CPU and memory of the worker process

EVENTS = Counter(
    "dialstream_worker_events",
    "Leg events handled, by event name and result (the handler's return value, or 'rescued').",
    ["event", "result"],
    registry=REGISTRY,
)
ACTIONS = Counter(
    "dialstream_worker_actions",
    "Legs API work done by tasks, by kind (create_leg, start_stream, stop_say, ...) and result "
    "(sent, failed, retry, duplicate, leg-ended, ...).",
    ["kind", "result"],
    registry=REGISTRY,
)
LEGS_API_SECONDS = Histogram(
    "dialstream_legs_api_request_seconds",
    "Legs API request latency, by operation and HTTP status (0: no response).",
    ["operation", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
LEGS_API_ERRORS = Counter(
    "dialstream_legs_api_errors",
    "Legs API requests that failed, by operation and kind of failure (rate_limited, server, client, transport).",
    ["operation", "error"],
    registry=REGISTRY,
)
RATE_LIMIT_WAIT = Histogram(
    "dialstream_rate_limit_wait_seconds",
    "Time a Legs API request waited for the account's shared budget, by kind (action, dial) and whether it got it.",
    ["kind", "granted"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0),
    registry=REGISTRY,
)


def record_event(event_name: str, result: str) -> None:
    """One leg event handled (``result``: applied, no-op, rescued, invalid, ...)."""
    EVENTS.labels(event_name, result).inc()


def record_action(kind: str, result: str) -> None:
    """One task's Legs API work (``kind``: create_leg or the action) and its result (sent, failed, retry...)."""
    ACTIONS.labels(kind, result).inc()


def record_legs_api(operation: str, status: int, seconds: float) -> None:
    """One Legs API request: the ``observe`` hook of :class:`dialstream.legs_api.LegsClient`."""
    LEGS_API_SECONDS.labels(operation, str(status)).observe(seconds)
    error = _failure(status)
    if error:
        LEGS_API_ERRORS.labels(operation, error).inc()


def _failure(status: int) -> str:
    if status == 0:
        return "transport"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server"
    if status >= 400:
        return "client"
    return ""


def record_rate_limit_wait(kind: str, seconds: float, granted: bool) -> None:
    """How long one request waited for the shared Legs API budget, and whether it got a grant."""
    RATE_LIMIT_WAIT.labels(kind, "yes" if granted else "no").observe(seconds)


def task_argsrepr(task_name: str, args: Sequence[Any]) -> str:
    """What Flower shows as a task's arguments: the leg, campaign and contact, no phone number.

    ``dialstream.handle_leg_event`` carries Exotel's whole event (with the callee's number in
    its leg snapshot), so its arguments are summarised rather than shown.
    """
    try:
        if task_name == HANDLE_LEG_EVENT:
            event, leg = args[0], args[0].get("data") or {}
            tag = LegTag.decode(str(event.get("custom_param") or leg.get("custom_param") or ""))
            where = f"campaign={tag.campaign_id} contact={tag.contact_id} attempt={tag.attempt}" if tag else "untagged"
            to = f" to={mask_phone(str(leg['contact_uri']))}" if leg.get("contact_uri") else ""
            return f"{event.get('event_name')} leg={event.get('leg_sid') or leg.get('leg_sid')} {where}{to}"
        if task_name == SEND_ACTION:
            leg_sid, action = args[0], args[1]
            return f"{action.get('kind')} leg={leg_sid} action={action.get('action_id')}"
        if task_name == DIAL_CONTACT:
            attempt = args[2] if len(args) > 2 else 1
            return f"dial campaign={args[0]} contact={args[1]} attempt={attempt}"
    except (AttributeError, IndexError, KeyError, TypeError):
        pass  # not the shape we publish: show nothing rather than something unmasked
    return "(arguments hidden)"


class WorkerMetrics(bootsteps.StartStopStep):
    """Serves :data:`REGISTRY` on ``/metrics`` while the worker runs (when a port is set)."""

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self._server: Any = None

    def start(self, worker: Any) -> None:
        settings: Settings = worker.app.conf.dialstream_settings
        if not settings.metrics_port:
            return
        self._server, _ = start_http_server(settings.metrics_port, addr=settings.metrics_bind, registry=REGISTRY)
        log.info("metrics on http://%s:%d/metrics", settings.metrics_bind, settings.metrics_port)

    def stop(self, worker: Any) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@worker_init.connect
def _install(sender: Any = None, **_: Any) -> None:
    # worker_init fires after --include modules are imported and before the worker builds
    # its blueprint from app.steps, so the step joins every worker of this process.
    sender.app.steps["worker"].add(WorkerMetrics)
