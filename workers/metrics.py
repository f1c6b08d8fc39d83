"""What a worker shows the outside: Prometheus metrics.

Metrics live in a registry of their own (like ``bot.metrics``), so tests read exact values
and a process that merely imports this module does not serve them. The :class:`WorkerMetrics` bootstep serves them on ``/metrics`` at
``DIALSTREAM_METRICS_BIND:DIALSTREAM_METRICS_PORT`` (port 0: off). Importing this module in
a worker installs the bootstep (see :func:`_install`), so every worker command loads it
with ``--include workers.metrics``.

Workers run a thread pool (``-P threads``): one process, one registry. A prefork pool
would need prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) instead.

Tasks record through the ``record_*`` helpers, so metric names and labels are defined here
only.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps
from celery.signals import worker_init
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, start_http_server

from dialstream.settings import Settings

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
    """One Legs API request: the ``observe`` hook of :class:`dialstream.exotel.legs_api.LegsClient`."""
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
