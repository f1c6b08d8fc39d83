"""The worker process's Celery app and its clients, shared by every task family.

One Redis pool and one pooled Legs API client per worker process, created on first use
after a fork (never inherited across one): the tasks in ``workers.leg_events``,
``workers.actions``, ``workers.dials`` and ``workers.timers`` all reach them through
:func:`runtime`.

The workers' clock for campaign time (when a contact is due, inside its window, redialled) is
``Runtime.clock``, and the dial poller's too: ``time.time`` unless the app's configuration
holds another as ``dialstream_clock``, which only tests set (``tests/workers/clock_app.py``)
to move a campaign forward by hours without waiting for them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from celery import Celery

from dialstream.broker.celery_app import create_app
from dialstream.exotel.legs_api import LegsClient
from dialstream.settings import Settings
from dialstream.state.call_outcomes import CallOutcomes
from dialstream.state.caller_ids import CallerIds
from dialstream.state.client import connect_settings
from dialstream.state.dial_queue import DialQueue
from dialstream.state.dnc import DncList
from dialstream.state.pacing import Pacer
from dialstream.state.secrets import shared_secret
from dialstream.state.slots import Slots
from dialstream.state.store import Store
from dialstream.state.timers import TimerQueue
from workers.metrics import record_legs_api

__all__ = ["app", "Runtime", "runtime", "campaign_clock"]

app = create_app(Settings.from_env())


@dataclass
class Runtime:
    """Per-process clients: one Redis pool and one pooled httpx client per worker process."""

    settings: Settings
    store: Store
    legs: LegsClient
    timers: TimerQueue
    queue: DialQueue
    slots: Slots
    pacer: Pacer
    dnc: DncList
    caller_ids: CallerIds
    outcomes: CallOutcomes  # what bots told of their calls: dispositions, callbacks
    clock: Callable[[], float]  # Unix seconds of campaign time (campaign_clock)
    tag_secret: bytes  # signs each leg's custom_param (dialstream.state.secrets)
    pid: int


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    """The process's clients, created on first use after a fork (never inherited across one)."""
    global _runtime
    with _runtime_lock:
        if _runtime is None or _runtime.pid != os.getpid():
            settings: Settings = app.conf.dialstream_settings
            client = connect_settings(settings)
            store = Store(client)
            _runtime = Runtime(
                settings=settings,
                store=store,
                legs=LegsClient(settings.legs_api, observe=record_legs_api),
                timers=TimerQueue(client),
                queue=store.queue,
                slots=Slots(client, settings.account_sid),
                pacer=Pacer(client, settings.account_sid, settings.engine.budget),
                dnc=DncList(client, settings.account_sid, region=settings.engine.default_region),
                caller_ids=CallerIds(client),
                outcomes=CallOutcomes(client),
                clock=campaign_clock(app),
                tag_secret=shared_secret(client, "tags", settings.tag_secret),
                pid=os.getpid(),
            )
        return _runtime


def campaign_clock(celery_app: Celery) -> Callable[[], float]:
    """The clock of campaign time: ``time.time``, or the app's ``dialstream_clock`` (tests only)."""
    return celery_app.conf.get("dialstream_clock") or time.time
