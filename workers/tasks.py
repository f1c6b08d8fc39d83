"""Celery tasks: the worker entry point (``celery -A workers.tasks worker ...``).

The tasks only translate between Celery, Redis and the Legs API; what to do for an event
is decided by ``dialstream.leg_state``, how often to retry by ``dialstream.retry``.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

import redis
from prometheus_client import Counter
from celery import Task, group

from bot.fleet import select_bot
from dialstream.campaign import CampaignConfig, LegTag
from bot.errors import NoBotAvailable
from dialstream.errors import InvalidEvent, LegsApiClientError, LegsApiError
from dialstream.events import LegEvent
from dialstream.leg_state import Action, LegRecord, timers_for
from dialstream.legs_api import LegsClient
from dialstream.retry import DEFAULT_RETRY_POLICY
from dialstream.settings import Settings
from dialstream.store import Store, keys
from dialstream.timers import TimerQueue, leg_timer
from workers.app import DIAL_CONTACT, HANDLE_LEG_EVENT, SEND_ACTION, create_app
from workers.dispatch import add_error, call_result, commit_event, commit_timer, forget_dispatched
from workers.sweeper import TimerSweeper

__all__ = ["app", "handle_leg_event", "send_action", "dial_contact", "fire_timer"]

log = logging.getLogger("dialstream.workers")

EVENTS_RESCUED = Counter("dialstream_events_rescued_total", "Leg events applied by a rescue timer (their worker died)")

app = create_app(Settings.from_env())


@dataclass
class _Runtime:
    """Per-process clients: one Redis pool and one pooled httpx client per worker process."""

    settings: Settings
    store: Store
    legs: LegsClient
    timers: TimerQueue
    pid: int


_runtime: _Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> _Runtime:
    """The process's clients, created on first use after a fork (never inherited across one)."""
    global _runtime
    with _runtime_lock:
        if _runtime is None or _runtime.pid != os.getpid():
            settings: Settings = app.conf.dialstream_settings
            client = redis.Redis.from_url(
                settings.redis_url,
                socket_timeout=settings.redis_socket_timeout,
                socket_connect_timeout=settings.redis_socket_timeout,
                decode_responses=True,
            )
            _runtime = _Runtime(settings, Store(client), LegsClient(settings), TimerQueue(client), os.getpid())
        return _runtime


@app.task(name=HANDLE_LEG_EVENT, bind=True, max_retries=5)
def handle_leg_event(self: Task, payload: dict[str, Any]) -> str:
    """Apply one leg event and dispatch the actions it calls for as one group (not awaited)."""
    return _handle_event(payload)


def _handle_event(payload: dict[str, Any], *, rescue: bool = False) -> str:
    try:
        event = LegEvent.from_dict(payload)
    except InvalidEvent as exc:  # the ingress validates; this guards other publishers
        log.error("dropping malformed event: %s", exc)
        return "invalid"
    tag = LegTag.decode(event.custom_param)
    if tag is None:
        log.warning("leg %s: event %s has no dialstream tag; ignored", event.leg_sid, event.event_name)
        return "untagged"
    rt = runtime()
    campaign = rt.store.campaign(tag.campaign_id)
    if campaign is None:
        log.error("leg %s: unknown campaign %s; event %s ignored", event.leg_sid, tag.campaign_id, event.event_name)
        return "unknown-campaign"
    record, just_ended, applied = commit_event(rt.store, event, tag, campaign)
    if rescue and applied:
        EVENTS_RESCUED.inc()
        log.warning("leg %s: rescued %s that its worker did not finish", event.leg_sid, event.event_name)
    _dispatch(rt, record, campaign)
    if just_ended:
        contact = rt.store.contact(record.campaign_id, record.contact_id)
        rt.store.record_result(record.campaign_id, record.contact_id, call_result(record, contact))
    return event.event_name


def fire_timer(timer: dict[str, Any]) -> str:
    """A timer fired (in a sweeper thread): re-apply a rescued event, or a leg deadline."""
    if timer.get("kind") == "event":
        # Idempotent: a no-op when the worker that took the event handled it.
        return _handle_event(timer["event"], rescue=True)
    rt = runtime()
    campaign = rt.store.campaign(timer["campaign"])
    if campaign is None:
        return "unknown-campaign"
    record = commit_timer(rt.store, timer["leg"], timer["timer"], campaign)
    if record is not None:
        _dispatch(rt, record, campaign)
    return timer["timer"]


TimerSweeper.fire = staticmethod(fire_timer)
app.steps["worker"].add(TimerSweeper)


def _dispatch(rt: _Runtime, record: LegRecord, campaign: CampaignConfig) -> None:
    """Send the outbox as one group (not awaited), arm its timers, then clear it."""
    if not record.outbox:
        return
    group(send_action.s(record.leg_sid, action.to_dict()) for action in record.outbox).apply_async()
    pipe = rt.store.redis.pipeline(transaction=False)
    for timer_id, seconds in timers_for(record, record.outbox, campaign):
        rt.timers.arm(leg_timer(record.campaign_id, record.leg_sid, timer_id), seconds, client=pipe)
    pipe.execute()
    forget_dispatched(rt.store, record.leg_sid, (action.action_id for action in record.outbox))


@app.task(name=SEND_ACTION, bind=True, max_retries=DEFAULT_RETRY_POLICY.max_retries)
def send_action(self: Task, leg_sid: str, action_dict: dict[str, Any]) -> str:
    """Send one leg action to the Legs API, at most once per action id."""
    action = Action.from_dict(action_dict)
    rt = runtime()
    claim = rt.store.claim_action(leg_sid, action.action_id, action.kind, self.request.id or "")
    if claim != "claimed":
        return claim
    try:
        _perform(rt, leg_sid, action)
    except LegsApiError as exc:
        delay = DEFAULT_RETRY_POLICY.delay(exc, self.request.retries)
        if delay is not None:
            raise self.retry(countdown=delay, exc=exc) from exc
        _action_failed(rt, leg_sid, action, exc)
        return "failed"
    return "sent"


def _perform(rt: _Runtime, leg_sid: str, action: Action) -> None:
    legs, params = rt.legs, action.params
    custom = action.action_id
    match action.kind:
        case "start_stream":
            url = params.get("url") or _pick_bot_url(rt, leg_sid, avoid_tried=params.get("avoid_tried_bots", False))
            legs.start_stream(
                leg_sid, url, direction=params["direction"], content_type=params["content_type"], action_custom_param=custom
            )
        case "start_say":
            legs.start_say(leg_sid, params["text"], action_custom_param=custom)
        case "start_play":
            legs.start_play(leg_sid, params["url"], action_custom_param=custom)
        case "stop_say":
            legs.stop_say(leg_sid, action_custom_param=custom)
        case "stop_play":
            legs.stop_play(leg_sid, action_custom_param=custom)
        case "stop_stream":
            legs.stop_stream(leg_sid, stream_sid=params.get("stream_sid", ""), action_custom_param=custom)
        case "hangup":
            legs.hangup(leg_sid, action_custom_param=custom)
        case _:
            raise ValueError(f"unknown action kind {action.kind!r}")


def _pick_bot_url(rt: _Runtime, leg_sid: str, *, avoid_tried: bool) -> str:
    """The live bot with the most free capacity (a retry avoids the bots this leg already tried)."""
    tried_key = keys.leg(leg_sid) + ":bots"
    tried = rt.store.redis.smembers(tried_key) if avoid_tried else set()
    try:
        url = select_bot(rt.store.redis, static_urls=rt.settings.bot_urls, exclude=tried)
    except NoBotAvailable as exc:
        raise LegsApiClientError(0, str(exc)) from exc
    rt.store.redis.pipeline(transaction=False).sadd(tried_key, url).expire(tried_key, 3600).execute()
    return url


def _action_failed(rt: _Runtime, leg_sid: str, action: Action, exc: LegsApiError) -> None:
    """Record a failed action; an answered call whose stream cannot start is hung up, not left silent."""
    log.warning("leg %s: %s failed: %s", leg_sid, action.action_id, exc)
    if action.kind == "start_stream":
        add_error(rt.store, leg_sid, f"{action.action_id}: {exc}", reason="bot stream could not be started")
        try:
            rt.legs.hangup(leg_sid, action_custom_param=f"{action.action_id}:fallback")
        except LegsApiError as hangup_exc:
            add_error(rt.store, leg_sid, f"hangup: {hangup_exc}")
    elif not action.kind.startswith("stop_"):
        add_error(rt.store, leg_sid, f"{action.action_id}: {exc}")
    # A failed stop of a greeting that already ended is expected (the race with say_completed).


@app.task(name=DIAL_CONTACT, bind=True, max_retries=DEFAULT_RETRY_POLICY.max_retries)
def dial_contact(self: Task, campaign_id: str, contact_id: str, attempt: int = 1) -> str:
    """Place one call (create leg); its events then drive everything else."""
    rt = runtime()
    campaign = rt.store.campaign(campaign_id)
    contact = rt.store.contact(campaign_id, contact_id)
    if campaign is None or contact is None:
        log.error("dial: unknown campaign %s or contact %s", campaign_id, contact_id)
        return "unknown"
    tag = LegTag(campaign_id, contact_id, attempt)
    try:
        leg = rt.legs.create_leg(
            contact.phone,
            exophone=rt.settings.exophone,
            leg_event_endpoint=rt.settings.event_endpoint,
            custom_param=tag.encode(),
            ring_timeout=campaign.ring_timeout,
            time_limit=campaign.time_limit,
            amd_enable=campaign.amd_enable,
        )
    except LegsApiError as exc:
        delay = DEFAULT_RETRY_POLICY.delay(exc, self.request.retries)
        if delay is not None:
            raise self.retry(countdown=delay, exc=exc) from exc
        rt.store.record_result(campaign_id, contact_id, call_result(None, contact, outcome="failed", reason=str(exc)))
        return "failed"
    rt.store.redis.hset(keys.campaign(campaign_id, "legs"), contact_id, leg.leg_sid)
    return leg.leg_sid

