"""The real worker app, plus a fault: the first create-leg request kills its whole node.

Used by test_campaigns.py as ``celery -A tests.workers.dial_crash_app worker``. The kill
comes right before the request leaves, so the dying worker holds what a dial holds by then:
the contact's lease, a concurrency slot and a budget grant, none of them given back.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import redis
from celery.signals import worker_init

from dialstream.exotel.legs_api import CreatedLeg, LegsClient
from workers.tasks import app

__all__ = ["app", "CRASH_FLAG"]

CRASH_FLAG = "test:dial-crashed-once"
_create_leg = LegsClient.create_leg


def _crash_on_first_dial(self: LegsClient, contact_uri: str, **kwargs: Any) -> CreatedLeg:
    client = redis.Redis.from_url(app.conf.dialstream_settings.redis_url)
    if client.set(CRASH_FLAG, f"{os.getpid()}:{contact_uri}", nx=True):
        os.kill(os.getpid(), signal.SIGKILL)
    client.close()
    return _create_leg(self, contact_uri, **kwargs)


@worker_init.connect
def _install(**_: Any) -> None:
    # In the worker only: a test process importing CRASH_FLAG must keep the real client.
    LegsClient.create_leg = _crash_on_first_dial  # type: ignore[method-assign]
