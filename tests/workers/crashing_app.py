"""The real worker app, plus a fault: the first leg_answered handled kills its whole node.

Used by test_faults.py as ``celery -A tests.workers.crashing_app worker``. The kill comes
from inside the task (SIGKILL to the worker's own process), so it happens in the middle of
handling the event, after the message was taken from the queue and before it was acked.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import redis
from celery.signals import task_prerun

from workers.app import HANDLE_LEG_EVENT
from workers.tasks import app

__all__ = ["app", "CRASH_FLAG"]

CRASH_FLAG = "test:crashed-once"


@task_prerun.connect
def _crash_on_first_answer(sender: Any = None, args: Any = None, **_: Any) -> None:
    if getattr(sender, "name", "") != HANDLE_LEG_EVENT or not args or args[0].get("event_name") != "leg_answered":
        return
    client = redis.Redis.from_url(app.conf.dialstream_settings.redis_url)
    if client.set(CRASH_FLAG, os.getpid(), nx=True):
        os.kill(os.getpid(), signal.SIGKILL)
