"""The real worker app on a campaign clock a test moves: real time plus the seconds held in
Redis under ``CLOCK_OFFSET``.

Used as ``celery -A tests.workers.clock_app worker``: the dial poller and every task read
campaign time through ``Runtime.clock`` (``workers.runtime.campaign_clock``), so a test sets the
offset to an hour and the campaign acts as if an hour had passed (a callback asked for in an
hour is due) without waiting for it.
"""

from __future__ import annotations

import functools
import time

import redis

from workers.tasks import app

__all__ = ["app", "CLOCK_OFFSET"]

CLOCK_OFFSET = "test:clock-offset"


@functools.cache
def _client() -> redis.Redis:
    # On first use, in the worker: a test process importing CLOCK_OFFSET has no Redis URL in its settings.
    return redis.Redis.from_url(app.conf.dialstream_settings.redis_url)


def _campaign_time() -> float:
    return time.time() + float(_client().get(CLOCK_OFFSET) or 0)


app.conf.dialstream_clock = _campaign_time
