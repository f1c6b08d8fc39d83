"""Admit a validated leg event, de-duplicate it, publish it, and only then acknowledge.

Transport-free: the gRPC servicer and the HTTPS door both call :meth:`EventIngress.accept`
once they have checked the sender's credentials. What is admitted:

- the event is for our account (``account_sid``), else :class:`EventRefused`;
- its name is one Exotel documents (``KNOWN_EVENT_NAMES``), else it is acknowledged and
  dropped (``IGNORED``): Exotel must not retry it, and no worker should spend a task on it;
- it is for a leg dialstream placed: its ``custom_param`` carries our signed tag, or the leg
  already has a record; else it is acknowledged and dropped. So a forged event can neither
  end a live call's record nor make the workers spend the account's API budget.

Events that decide nothing cost no worker task (``dialstream.domain.leg_state``): of a
callee's leg dialstream tagged, a progress-only one (``leg_connecting``, ``leg_ringing``) is
recorded beside the leg's record in one round trip (``RECORDED``; the next commit folds it in),
and so is one the record names as quiet now (``dialstream.domain.kept_events``: a stream
attempt's ``stream_initiated``, a greeting's start and end, the stream's stop as the call
ends), which the accept script below checks atomically; one no rule reads
(``recording_started`` ...) is acknowledged and dropped (``IGNORED``).

One Lua script (``dialstream/state/ingress_accept.lua``) then does, atomically, in one
round trip: claim the ``event_sid`` (a duplicate is acknowledged but not published again),
push the event's Celery task onto the ``events`` queue (a ``leg_answered`` behind the
events of calls already up: ``celery_app.event_priority``), and arm a rescue timer
(``dialstream.state.timers``) so the event is applied even if its worker dies. Either all of
it happened or none: an error raises, the sender retries, and the retry is published rather
than mistaken for a duplicate. An event is never acknowledged and lost.

The task carries the event without the callee's full number (it is masked) and without the
bot credentials a stream URL may echo: a task body and a rescue timer keep a reference to the
contact (the tag), not the number, and never a secret.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import Counter, Histogram

from dialstream.broker.celery_app import event_priority, queue_key
from dialstream.domain.campaign import LegTag
from dialstream.domain.kept_events import KEEPABLE, quiet_key
from dialstream.domain.leg_state import PROGRESS_ONLY, decides_nothing
from dialstream.domain.report import mask_phone
from dialstream.errors import EventPublishError, EventRefused
from dialstream.exotel.agentstream.stream_url import split_credentials
from dialstream.exotel.events import KNOWN_EVENT_NAMES, LegEvent
from dialstream.state import keys
from dialstream.state.scripts import script
from dialstream.state.secrets import shared_secret_async
from dialstream.state.store import QUIET, kept_field, record_progress_event
from dialstream.state.timers import event_timer, gap_timer
from ingress.spool import EventSpool, SpoolFull

__all__ = ["EventIngress", "TaskMessage", "ACCEPTED", "RECORDED", "SPOOLED", "DUPLICATE", "IGNORED", "EVENTS_RECEIVED"]

ACCEPTED = "accepted"
RECORDED = "recorded"  # stored beside its leg's record without a task (progress only, or quiet)
SPOOLED = "spooled"  # durable on the ingress's disk, published when Redis answers (ingress.spool)
DUPLICATE = "duplicate"
IGNORED = "ignored"

# The broker message that runs the event task for a payload at a priority (dialstream.broker.messages.task_message).
TaskMessage = Callable[[dict[str, Any], int], str]

_UNKNOWN_LEG = -1
_KEPT_BESIDE = 2  # ingress_accept.lua kept a quiet event beside the leg's record

EVENTS_RECEIVED = Counter(
    "dialstream_ingress_events_total",
    "Leg events received, by result: accepted, recorded (beside the record, no task: progress only, or one the "
    "record names quiet), no_effect (no rule reads it), spooled (Redis down; on disk until published), "
    "duplicate, invalid, unauthenticated, foreign (another account), unknown_event, unknown_leg, "
    "error (not durable; the sender retries). A spooled event is counted again when it is replayed.",
    ["result"],
)
PUBLISH_SECONDS = Histogram(
    "dialstream_ingress_publish_seconds",
    "Time to de-duplicate and publish one event (one Redis round trip)",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
)


class EventIngress:
    """Admit, de-duplicate and publish leg events of ``account_sid`` onto the broker queue ``queue``.

    ``tag_secret`` is ``DIALSTREAM_TAG_SECRET``; empty, the deployment's shared one in Redis.
    """

    def __init__(
        self,
        redis_client: aioredis.Redis,
        task_message: TaskMessage,
        *,
        queue: str,
        account_sid: str,
        tag_secret: str = "",
        dedupe_ttl: int,
        rescue_after: float,
        spool: EventSpool | None = None,
    ) -> None:
        self._task_message = task_message
        self._queue = queue
        self._account_sid = account_sid
        self._configured_secret = tag_secret
        self._tag_secret = b""  # read from Redis on first use (the ingress may start before Redis answers)
        self._redis = redis_client
        self._spool = spool
        self._ttl = dedupe_ttl
        self._rescue_after = rescue_after
        self._accept = script(redis_client, "ingress_accept.lua")
        self._arm = script(redis_client, "timers_add.lua")

    async def back(self) -> None:
        """Tell the workers this ingress is back (it started, or Redis answers it again): what
        Exotel sent while it was away may be lost for good (it retries for about 2 s), so every
        live leg is looked up at once (a gap timer, ``dialstream.state.timers``). Raises what Redis raises."""
        await self._arm(keys=[keys.timers()], args=[gap_timer(time.time()), 0])

    async def accept(self, event: LegEvent) -> str:
        """Return ``ACCEPTED``, ``SPOOLED``, ``DUPLICATE`` or ``IGNORED`` (acknowledge them all).

        Raises:
            EventRefused: the event is for another account (do not retry).
            EventPublishError: the event could not be made durable now (the sender must retry).
        """
        if event.account_sid != self._account_sid:
            EVENTS_RECEIVED.labels("foreign").inc()
            raise EventRefused(f"event {event.event_sid} is for account {event.account_sid!r}, not this one")
        if event.event_name not in KNOWN_EVENT_NAMES:
            EVENTS_RECEIVED.labels("unknown_event").inc()
            return IGNORED
        payload = _task_payload(event)
        try:
            return await self._publish(event, payload)
        except EventPublishError:
            if self._spool is None:
                EVENTS_RECEIVED.labels("error").inc()
                raise
            try:
                self._spool.append(payload)
            except (SpoolFull, OSError) as exc:
                EVENTS_RECEIVED.labels("error").inc()
                raise EventPublishError(f"could not publish event {event.event_sid}, nor spool it: {exc}") from exc
            EVENTS_RECEIVED.labels(SPOOLED).inc()
            return SPOOLED

    @property
    def spool_has_room(self) -> bool:
        """Whether an event could be made durable without Redis now."""
        return self._spool is not None and len(self._spool) < self._spool.max_events

    async def replay(self) -> int:
        """Publish what the spool holds, oldest first, until Redis fails again; the number published."""
        done = 0
        if self._spool is None:
            return done
        for path, payload in self._spool.pending():
            try:
                await self._publish(LegEvent.from_task(payload), payload)
            except EventPublishError:
                break
            self._spool.remove(path)
            done += 1
        return done

    async def _publish(self, event: LegEvent, payload: dict[str, Any]) -> str:
        started = time.perf_counter()
        try:
            if not self._tag_secret:
                self._tag_secret = await shared_secret_async(self._redis, "tags", self._configured_secret)
            tag = LegTag.verify(event.custom_param, self._tag_secret)
            own_leg = tag is not None and not tag.agent_of  # a callee's leg we tagged (an agent's is the transfer's)
            if own_leg:
                if event.event_name in PROGRESS_ONLY:
                    await record_progress_event(self._redis, event.leg_sid, event.event_name, event.timestamp)
                    EVENTS_RECEIVED.labels(RECORDED).inc()
                    return RECORDED
                if decides_nothing(event.event_name):
                    EVENTS_RECEIVED.labels("no_effect").inc()
                    return IGNORED
            # How the record would name the event if it is quiet now ('' for one never kept).
            quiet = quiet_key(event) if own_leg and event.event_name in KEEPABLE else ""
            keepable = bool(quiet) and "\n" not in quiet
            priority = event_priority(event.event_name)
            published = await self._accept(
                keys=[keys.event(event.event_sid), queue_key(self._queue, priority), keys.timers(), keys.leg(event.leg_sid)],
                args=[
                    event.leg_sid, self._ttl, self._task_message(payload, priority), event_timer(payload), self._rescue_after,
                    "" if tag is not None else "1", QUIET,
                    quiet if keepable else "",
                    kept_field(event.event_name), json.dumps(payload) if keepable else "",
                ],
            )  # fmt: skip
        except Exception as exc:  # any Redis failure means we cannot promise anything
            raise EventPublishError(f"could not publish event {event.event_sid}: {exc}") from exc
        if published == _KEPT_BESIDE:
            EVENTS_RECEIVED.labels(RECORDED).inc()
            return RECORDED
        if published == _UNKNOWN_LEG:
            EVENTS_RECEIVED.labels("unknown_leg").inc()
            return IGNORED
        if not published:
            EVENTS_RECEIVED.labels(DUPLICATE).inc()
            return DUPLICATE
        PUBLISH_SECONDS.observe(time.perf_counter() - started)
        EVENTS_RECEIVED.labels(ACCEPTED).inc()
        return ACCEPTED


def _task_payload(event: LegEvent) -> dict[str, Any]:
    """The event as its task carries it: the callee's number masked, and no bot credentials
    (``stream_initiated`` echoes the stream URL, ``user:pass@`` included)."""
    payload = event.to_dict()
    number = payload["data"].get("contact_uri")
    if isinstance(number, str) and number:
        payload["data"]["contact_uri"] = mask_phone(number)
    detail = payload["event_data"].get("data")
    if isinstance(detail, dict) and isinstance(url := detail.get("stream_url"), str) and "@" in url:
        payload["event_data"] = {**payload["event_data"], "data": {**detail, "stream_url": split_credentials(url)[0]}}
    return payload
