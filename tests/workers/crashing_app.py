"""The real worker app, plus two faults, each killing its whole node once per test run:

- the first ``leg_answered`` handled (``CRASH_FLAG``): in the middle of handling the event,
  after the message was taken from the queue and before it was acked;
- the first call that ends (``END_CRASH_FLAG``): after the end was committed to the leg's
  record and before the call was recorded for its contact.

Used by test_faults.py as ``celery -A tests.workers.crashing_app worker``. The kill is a
SIGKILL to the worker's own process, from inside the task.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import redis
from celery.signals import task_prerun, worker_init

from dialstream.broker.celery_app import HANDLE_LEG_EVENT
from tests.workers.crash_flags import CRASH_FLAG, END_CRASH_FLAG
from workers import leg_events
from workers.tasks import app

__all__ = ["app", "CRASH_FLAG", "END_CRASH_FLAG"]


def _die_once(flag: str) -> None:
    client = redis.Redis.from_url(app.conf.dialstream_settings.redis_url)
    if client.set(flag, os.getpid(), nx=True):
        os.kill(os.getpid(), signal.SIGKILL)


def _crash_on_first_answer(sender: Any = None, args: Any = None, **_: Any) -> None:
    if getattr(sender, "name", "") == HANDLE_LEG_EVENT and args and args[0].get("event_name") == "leg_answered":
        _die_once(CRASH_FLAG)


_call_ended = leg_events._call_ended


def _crash_before_the_first_call_is_recorded(*args: Any) -> None:
    _die_once(END_CRASH_FLAG)
    _call_ended(*args)


@worker_init.connect
def _install(**_: Any) -> None:
    # In the worker only: a test process importing the flags must keep the real code (a test
    # running _call_ended in-process was SIGKILLed with the whole pytest run).
    task_prerun.connect(_crash_on_first_answer, weak=False)
    leg_events._call_ended = _crash_before_the_first_call_is_recorded
