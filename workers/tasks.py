"""The worker entry point: ``celery -A workers.tasks worker ...``.

Importing this module registers every task family with the Celery app
(``workers.runtime.app``) and adds the worker's two background threads:

- ``workers.leg_events``: ``handle_leg_event``, a leg event applied to its state machine;
- ``workers.actions``:    ``send_action``, one Legs API action of a leg;
- ``workers.dials``:      ``dial_contact``, one create-leg call of a campaign's contact;
- ``workers.transfers``:  ``transfer_call``, a bot's request to hand its call to an agent;
- ``workers.timers``:     what a fired timer does, run by the timer sweeper (``workers.sweeper``);
- ``workers.poller``:     the dial poller, which hands due contacts to ``dial_contact``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery.signals import worker_init

from dialstream.broker.celery_app import GIL_SWITCH_INTERVAL
from workers.actions import send_action
from workers.dials import dial_contact
from workers.leg_events import handle_leg_event
from workers.poller import DialPollerStep
from workers.runtime import app
from workers.sweeper import TimerSweeper
from workers.timers import fire_timer
from workers.transfers import transfer_call

__all__ = ["app", "handle_leg_event", "send_action", "dial_contact", "transfer_call", "fire_timer"]

TimerSweeper.fire = staticmethod(fire_timer)
app.steps["worker"].add(TimerSweeper)
app.steps["worker"].add(DialPollerStep)
app.conf.worker_consumer = "workers.consumer:QuickReconnectConsumer"  # back on the queue soon after Redis is


@worker_init.connect
def _tune_for_short_tasks(sender: Any = None, **_: Any) -> None:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    if sender is not None and sender.loglevel > logging.DEBUG:
        # A line per task received and per task done costs more than a millisecond task
        # itself; Flower shows every task. -l DEBUG keeps them.
        for name in ("celery.app.trace", "celery.worker.strategy"):
            logging.getLogger(name).setLevel(logging.WARNING)
