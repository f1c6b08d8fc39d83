"""Celery tasks: the worker entry point (``celery -A workers.tasks worker ...``).

The tasks only translate between Celery, Redis and the Legs API; what to do for an event
is decided by ``dialstream.domain.leg_state``, whether and when to dial by ``dialstream.domain.dialing``,
how often to retry a request by ``dialstream.domain.retry``.

Every Legs API request first takes its share of the account's budget
(``dialstream.state.pacing``): in-call actions may use all of it, dials only what leaves room for
the actions of the calls already placed. A call holds a concurrency slot
(``dialstream.state.slots``) from its dial to its end, kept alive by its events and by a heartbeat
timer; the contact waits in its campaign's dial queue (``dialstream.domain.redial``) until the
workers' dial poller (``workers.poller``) hands it to :func:`dial_contact`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from celery import Task, group
from celery.exceptions import Retry
from celery.signals import worker_init

from dialstream.broker.celery_app import (
    DIAL_CONTACT,
    GIL_SWITCH_INTERVAL,
    HANDLE_LEG_EVENT,
    SEND_ACTION,
    create_app,
)
from dialstream.broker.messages import task_argsrepr
from dialstream.domain.campaign import CampaignConfig, CampaignState, Contact, LegTag
from dialstream.domain.dialing import (
    Step,
    before_dial,
    next_dial,
    reserve_released,
    stream_released,
    with_history,
)
from dialstream.domain.leg_state import Action, LegRecord, timers_for
from dialstream.domain.limits import SlotCaps
from dialstream.domain.phones import DEFAULT_TIMEZONE, contact_timezone
from dialstream.domain.retry import DEFAULT_RETRY_POLICY
from dialstream.errors import (
    LegsApiClientError,
    LegsApiError,
    LegsApiRateLimited,
    NoBotAvailable,
)
from dialstream.exotel.agentstream import choose_content_type, with_credentials
from dialstream.exotel.events import LegEvent
from dialstream.exotel.legs_api import LegsClient
from dialstream.exotel.stream_url import stream_parameters, stream_url
from dialstream.settings import Settings
from dialstream.state import keys
from dialstream.state.client import connect_settings
from dialstream.state.dial_queue import NOT_HOLDER, SCHEDULED, DialItem, DialQueue
from dialstream.state.dnc import DncList
from dialstream.state.fleet import BotRecord, select_bot
from dialstream.state.leg_commit import (
    add_error,
    call_result,
    commit_event,
    commit_timer,
)
from dialstream.state.pacing import ACTION, DIAL, Pacer
from dialstream.state.secrets import shared_secret
from dialstream.state.slots import Slots
from dialstream.state.store import LEG_TTL, Store
from dialstream.state.timers import TimerQueue, event_timer, leg_timer, slot_timer
from dialstream.state.webhooks import call_completed, leg_event, record_final
from workers.metrics import (
    record_action,
    record_event,
    record_legs_api,
    record_rate_limit_wait,
)
from workers.poller import DialPollerStep
from workers.sweeper import TimerSweeper

__all__ = ["app", "handle_leg_event", "send_action", "dial_contact", "fire_timer"]

log = logging.getLogger("dialstream.workers")


app = create_app(Settings.from_env())

DIAL_WAIT = 2.0  # seconds a dial may wait for budget before its contact goes back to the queue
ACTION_WAIT = 10.0  # seconds an in-call action may wait for budget (the reserve makes it rare)
CAP_RETRY = 0.5  # seconds before a contact refused by a full cap is offered again
CREATE_LEG = "create_leg"  # the kind dials are counted under in dialstream_worker_actions
STREAM_VARS = "stream_vars"  # field of the leg hash: the contact variables for the bot's URL


@dataclass
class _Runtime:
    """Per-process clients: one Redis pool and one pooled httpx client per worker process."""

    settings: Settings
    store: Store
    legs: LegsClient
    timers: TimerQueue
    queue: DialQueue
    slots: Slots
    pacer: Pacer
    dnc: DncList
    tag_secret: bytes  # signs each leg's custom_param (dialstream.state.secrets)
    pid: int


_runtime: _Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> _Runtime:
    """The process's clients, created on first use after a fork (never inherited across one)."""
    global _runtime
    with _runtime_lock:
        if _runtime is None or _runtime.pid != os.getpid():
            settings: Settings = app.conf.dialstream_settings
            client = connect_settings(settings)
            store = Store(client)
            _runtime = _Runtime(
                settings=settings,
                store=store,
                legs=LegsClient(settings.legs_api, observe=record_legs_api),
                timers=TimerQueue(client),
                queue=store.queue,
                slots=Slots(client, settings.account_sid),
                pacer=Pacer(client, settings.account_sid, settings.engine.budget),
                dnc=DncList(client, settings.account_sid, region=settings.engine.default_region),
                tag_secret=shared_secret(client, "tags", settings.tag_secret),
                pid=os.getpid(),
            )
        return _runtime


@app.task(name=HANDLE_LEG_EVENT, bind=True, max_retries=5)
def handle_leg_event(self: Task, payload: dict[str, Any]) -> str:
    """Apply one leg event and dispatch the actions it calls for as one group (not awaited)."""
    return _handle_event(payload)


def _handle_event(payload: dict[str, Any], *, rescue: bool = False) -> str:
    try:
        event = LegEvent.from_task(payload)
    except (KeyError, TypeError) as exc:  # the ingress validated it; this guards other publishers
        log.error("dropping a task that is not a leg event: %r", exc)
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
    record_event(event.event_name, "rescued" if rescue and applied else "applied" if applied else "no-op")
    if rescue and applied:
        log.warning("leg %s: rescued %s that its worker did not finish", event.leg_sid, event.event_name)
    # The worker that ended the leg may have died before recording the call: a re-delivery
    # (or the rescue) of an event after the end finishes that work.
    ending = just_ended or (record.finished and not applied and not _call_recorded(rt, record))
    # What follows the group's publish goes in one round trip.
    pipe = rt.store.redis.pipeline(transaction=False)
    _dispatch(rt, record, campaign, pipe)
    leg_event(pipe, event.event_name, record)  # webhook call.answered
    if ending:
        _call_ended(rt, record, campaign, pipe)  # its rescue stays armed until the call is recorded
        return event.event_name
    if not record.finished:
        _track_call(rt, record, pipe)
    if not rescue:
        rt.timers.disarm(event_timer(payload), client=pipe)  # done: the rescue would find nothing to do
    pipe.execute()
    return event.event_name


def _call_recorded(rt: _Runtime, record: LegRecord) -> bool:
    """Whether the contact's record holds this leg's call (as its latest attempt or in its history)."""
    result = rt.store.result(record.campaign_id, record.contact_id) or {}
    return any(entry.get("leg_sid") == record.leg_sid for entry in (result, *result.get("history", ())))


def _track_call(rt: _Runtime, record: LegRecord, pipe: Any) -> None:
    """Keep what the live call holds in step with its leg: its slot (refreshed), its
    contact's lease (the leg exists: never dial it again), its stream slot and its share of
    the API reserve (given back once no longer needed). Adds to ``pipe``."""
    call_id = LegTag(record.campaign_id, record.contact_id, record.attempt).call_id
    rt.queue.ack([DialItem(record.campaign_id, record.contact_id, record.attempt)], client=pipe)
    rt.slots.refresh(call_id, rt.settings.engine.slot_ttl, client=pipe)
    if stream_released(record):
        rt.slots.release_stream(call_id, client=pipe)
    if reserve_released(record):
        rt.pacer.call_settled(call_id, client=pipe)


def _call_ended(rt: _Runtime, record: LegRecord, campaign: CampaignConfig, pipe: Any) -> None:
    """The call is over: give back its slot and reserve (with what ``pipe`` holds), then
    redial its contact or record its final result."""
    item = DialItem(record.campaign_id, record.contact_id, record.attempt)
    call_id = LegTag(record.campaign_id, record.contact_id, record.attempt).call_id
    rt.queue.ack([item], client=pipe)
    rt.slots.release(call_id, client=pipe)
    rt.pacer.call_settled(call_id, client=pipe)
    pipe.execute()
    contact = rt.store.contact(record.campaign_id, record.contact_id)
    _attempt_over(rt, campaign, item, contact, call_result(record, contact))


def _attempt_over(
    rt: _Runtime, campaign: CampaignConfig, item: DialItem, contact: Contact | None, result: dict[str, Any], *, lease: DialItem | None = None
) -> str:
    """Attempt ``item.attempt`` ended with ``result``: queue the next dial if the campaign's
    redial rule says so, else record the contact's final result. ``lease`` is the contact's
    lease to give up (a dial that could not be placed), atomically with the redial."""
    campaign_id, contact_id = item.campaign_id, item.contact_id
    call_completed(rt.store.redis, campaign_id, result)  # webhook
    previous = rt.store.result(campaign_id, contact_id) if item.attempt > 1 else None
    zone = contact_timezone(contact) if contact else DEFAULT_TIMEZONE
    due = next_dial(campaign, str(result.get("outcome")), item.attempt, zone, time.time())
    if due is not None:
        scheduled = rt.queue.schedule(DialItem(campaign_id, contact_id, item.attempt + 1), due, lease=lease)
        if scheduled == SCHEDULED:
            rt.store.record_result(campaign_id, contact_id, with_history(previous, result, final=False, next_at=due), final=False)
            return "redial"
        if scheduled == NOT_HOLDER:
            return "superseded"
        # The campaign was canceled (the lease is given up): this attempt goes to the history, the contact ends canceled.
        previous = with_history(previous, result, final=False)
        result = call_result(None, contact, outcome="canceled", reason=f"the campaign was canceled before attempt {item.attempt + 1}")
        lease = None
    record_final(rt.store, campaign_id, contact_id, contact, with_history(previous, result, final=True))  # + webhooks
    if lease is not None:
        rt.queue.ack([lease])  # after the record: a worker dying in between leaves the contact to be taken again
    return str(result.get("outcome"))


def fire_timer(timer: dict[str, Any]) -> str:
    """A timer fired (in a sweeper thread): re-apply a rescued event, a call's slot
    heartbeat, or a leg deadline."""
    if timer.get("kind") == "event":
        # Idempotent: a no-op when the worker that took the event handled it.
        return _handle_event(timer["event"], rescue=True)
    if timer.get("kind") == "slot":
        return _heartbeat(timer)
    rt = runtime()
    campaign = rt.store.campaign(timer["campaign"])
    if campaign is None:
        return "unknown-campaign"
    record = commit_timer(rt.store, timer["leg"], timer["timer"], campaign)
    if record is not None:
        pipe = rt.store.redis.pipeline(transaction=False)
        _dispatch(rt, record, campaign, pipe)
        pipe.execute()
    return timer["timer"]


TimerSweeper.fire = staticmethod(fire_timer)
app.steps["worker"].add(TimerSweeper)
app.steps["worker"].add(DialPollerStep)


@worker_init.connect
def _tune_for_short_tasks(sender: Any = None, **_: Any) -> None:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    if sender is not None and sender.loglevel > logging.DEBUG:
        # A line per task received and per task done costs more than a millisecond task
        # itself; Flower shows every task. -l DEBUG keeps them.
        for name in ("celery.app.trace", "celery.worker.strategy"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _heartbeat(timer: dict[str, Any]) -> str:
    """Keep a live call's slot from expiring (calls can talk for long without an event), and
    arm the next beat; a call that ended, or outlived any time limit, lets its slot go."""
    rt = runtime()
    record, _, _ = rt.store.load_leg(timer["leg"])
    call_id = timer["call"]
    if record is not None and record.finished:
        rt.slots.release(call_id)
        return "released"
    if time.time() > timer["until"]:
        return "expired"
    ttl = rt.settings.engine.slot_ttl
    if not rt.slots.refresh(call_id, ttl):
        # Lapsed (its workers were all down for a while): the call is live, so count it again, cap or not.
        rt.slots.acquire(timer["campaign"], call_id, SlotCaps(), ttl)
    rt.timers.arm(slot_timer(timer["campaign"], timer["leg"], call_id, timer["until"]), ttl / 3)
    return "refreshed"


def _dispatch(rt: _Runtime, record: LegRecord, campaign: CampaignConfig, pipe: Any) -> None:
    """Send the outbox as one group (not awaited, its messages in one round trip); add to
    ``pipe`` the arming of its timers and the marking of its actions as dispatched."""
    if not record.outbox:
        return
    signatures = []
    for action in record.outbox:
        args = (record.leg_sid, action.to_dict())
        # Flower shows the leg and action, not a greeting's text or a bot URL with contact variables.
        signatures.append(send_action.signature(args, argsrepr=task_argsrepr(SEND_ACTION, args)))
    with app.producer_or_acquire() as producer, producer.batch():
        group(signatures).apply_async(producer=producer)
    for timer_id, seconds in timers_for(record, record.outbox, campaign):
        rt.timers.arm(leg_timer(record.campaign_id, record.leg_sid, timer_id), seconds, client=pipe)
    rt.store.mark_dispatched(record.leg_sid, [action.action_id for action in record.outbox], client=pipe)


@app.task(name=SEND_ACTION, bind=True, max_retries=DEFAULT_RETRY_POLICY.max_retries)
def send_action(self: Task, leg_sid: str, action_dict: dict[str, Any]) -> str:
    """Send one leg action to the Legs API, at most once per action id."""
    action = Action.from_dict(action_dict)
    try:
        result = _send_action(self, leg_sid, action)
    except Retry:
        record_action(action.kind, "retry")
        raise
    record_action(action.kind, result)
    return result


def _send_action(self: Task, leg_sid: str, action: Action) -> str:
    rt = runtime()
    claim = rt.store.claim_action(leg_sid, action.action_id, action.kind, self.request.id or "")
    if claim != "claimed":
        return claim
    waited = time.monotonic()
    grant = rt.pacer.acquire(ACTION, timeout=ACTION_WAIT)
    record_rate_limit_wait(ACTION, time.monotonic() - waited, bool(grant))
    if not grant:
        raise self.retry(countdown=grant.wait)
    try:
        _perform(rt, leg_sid, action)
    except LegsApiError as exc:
        if isinstance(exc, LegsApiRateLimited):
            rt.pacer.throttled()
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
            given = params.get("url")
            bot = BotRecord(given, 0) if given else _pick_bot(rt, leg_sid, avoid_tried=params.get("avoid_tried_bots", False))
            variables = rt.store.redis.hget(keys.leg(leg_sid), STREAM_VARS)
            url = stream_url(bot.url, json.loads(variables)) if variables else bot.url
            # The registry holds bare URLs; the bots' credentials go only to Exotel.
            url = with_credentials(url, rt.settings.bot_auth_user, rt.settings.bot_auth_password)
            content_type = choose_content_type(bot.formats, params["content_type"])
            legs.start_stream(
                leg_sid, url, direction=params["direction"], content_type=content_type, action_custom_param=custom
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


def _pick_bot(rt: _Runtime, leg_sid: str, *, avoid_tried: bool) -> BotRecord:
    """The live bot with the most free capacity (a retry avoids the bots this leg already tried)."""
    tried_key = keys.leg_bots(leg_sid)
    tried = rt.store.redis.smembers(tried_key) if avoid_tried else set()
    try:
        bot = select_bot(rt.store.redis, static_urls=rt.settings.bot_urls, exclude=tried)
    except NoBotAvailable as exc:
        raise LegsApiClientError(0, str(exc)) from exc
    rt.store.redis.pipeline(transaction=False).sadd(tried_key, bot.url).expire(tried_key, 3600).execute()
    return bot


def _action_failed(rt: _Runtime, leg_sid: str, action: Action, exc: LegsApiError) -> None:
    """Record a failed action; an answered call whose stream cannot start is hung up, not left silent."""
    log.warning("leg %s: %s failed: %s", leg_sid, action.action_id, exc)
    if action.kind == "start_stream":
        add_error(rt.store, leg_sid, f"{action.action_id}: {exc}", reason="bot stream could not be started")
        if exc.status == 409:
            return  # the leg is no longer up (the callee hung up first): nothing to hang up
        if not rt.pacer.acquire(ACTION, timeout=ACTION_WAIT):
            add_error(rt.store, leg_sid, "hangup: no API budget left; the call ends at its time limit")
            return
        try:
            rt.legs.hangup(leg_sid, action_custom_param=f"{action.action_id}:fallback")
        except LegsApiError as hangup_exc:
            add_error(rt.store, leg_sid, f"hangup: {hangup_exc}")
    elif not action.kind.startswith("stop_"):
        add_error(rt.store, leg_sid, f"{action.action_id}: {exc}")
    # A failed stop of a greeting that already ended is expected (the race with say_completed).


@app.task(name=DIAL_CONTACT, bind=True, max_retries=DEFAULT_RETRY_POLICY.max_retries)
def dial_contact(self: Task, campaign_id: str, contact_id: str, attempt: int = 1, token: str = "") -> str:
    """Dial a contact the poller took from its campaign's queue (leased under ``token``).

    Right before the dial: the campaign must still be running, the number off the DNC list and
    inside its calling window; then a concurrency slot and a budget grant are taken. A contact
    that must wait goes back to the queue for then; one that must not be called is recorded.
    """
    rt = runtime()
    item = DialItem(campaign_id, contact_id, attempt, token=token)
    pipe = rt.store.redis.pipeline(transaction=False)
    rt.queue.renew(item, rt.settings.engine.dial_lease, client=pipe)
    pipe.hget(keys.campaign(campaign_id, "contacts"), contact_id)
    pipe.hget(keys.campaign(campaign_id), "state")
    renewed, raw_contact, state = pipe.execute()
    if not renewed:
        return "superseded"  # its lease ran out here and another worker has the contact, or it was drained
    campaign = rt.store.campaign(campaign_id)
    if campaign is None or raw_contact is None:
        log.error("dial: unknown campaign %s or contact %s", campaign_id, contact_id)
        rt.queue.ack([item])
        return "unknown"
    contact = Contact.from_json(raw_contact)
    blocked = rt.dnc.is_blocked(contact.phone, campaign_id)
    step = before_dial(CampaignState(state), campaign, contact_timezone(contact), time.time(), blocked=blocked)
    if step.step is Step.WAIT:
        return _back_to_queue(rt, campaign, contact, item, step.at)
    if step.step is Step.STOP:
        return _attempt_over(rt, campaign, item, contact, call_result(None, contact, outcome=step.outcome, reason=step.reason), lease=item)
    call_id = LegTag(campaign_id, contact_id, attempt).call_id
    slot = rt.slots.acquire(campaign_id, call_id, rt.settings.engine.slot_caps(campaign), rt.settings.engine.slot_ttl)
    if not slot:
        return _back_to_queue(rt, campaign, contact, item, time.time() + CAP_RETRY)
    waited = time.monotonic()
    grant = rt.pacer.acquire(DIAL, timeout=DIAL_WAIT, call_id=call_id)
    record_rate_limit_wait(DIAL, time.monotonic() - waited, bool(grant))
    if not grant:
        rt.slots.release(call_id)
        return _back_to_queue(rt, campaign, contact, item, time.time() + grant.wait)
    try:
        leg = rt.legs.create_leg(
            contact.phone,
            exophone=rt.settings.exophone,
            leg_event_endpoint=rt.settings.event_endpoint,
            custom_param=LegTag(campaign_id, contact_id, attempt).encode(rt.tag_secret),
            ring_timeout=campaign.ring_timeout,
            time_limit=campaign.time_limit,
            amd_enable=campaign.amd_enable,
        )
    except LegsApiError as exc:
        return _dial_failed(self, rt, campaign, contact, item, exc)
    record_action(CREATE_LEG, "sent")
    _dialled(rt, campaign, contact, item, leg.leg_sid)
    return leg.leg_sid


def _dialled(rt: _Runtime, campaign: CampaignConfig, contact: Contact, item: DialItem, leg_sid: str) -> None:
    """The leg exists: the contact's lease is done, the call's slot gets its heartbeat, the
    bot's stream URL its variables (one round trip)."""
    call_id = LegTag(item.campaign_id, item.contact_id, item.attempt).call_id
    now = time.time()
    pipe = rt.store.redis.pipeline(transaction=False)
    rt.queue.ack([item], client=pipe)
    pipe.hset(keys.campaign(item.campaign_id, "legs"), item.contact_id, leg_sid)
    rt.store.count_dial(item.campaign_id, now, client=pipe)
    variables = stream_parameters(contact.variables, keys=campaign.stream_variables)
    if variables:
        pipe.hset(keys.leg(leg_sid), STREAM_VARS, json.dumps(variables))
        pipe.expire(keys.leg(leg_sid), LEG_TTL)
    until = now + campaign.ring_timeout + campaign.time_limit + rt.settings.engine.slot_ttl
    rt.timers.arm(slot_timer(item.campaign_id, leg_sid, call_id, until), rt.settings.engine.slot_ttl / 3, client=pipe)
    pipe.execute()


def _dial_failed(task: Task, rt: _Runtime, campaign: CampaignConfig, contact: Contact, item: DialItem, exc: LegsApiError) -> str:
    """create-leg failed: a 5xx is retried after a short backoff (the task keeps its slot and lease, and takes
    a fresh grant); a 429 sends the contact back for after Retry-After; anything else ends the
    attempt as failed, which the campaign's redial rule may retry later."""
    call_id = LegTag(item.campaign_id, item.contact_id, item.attempt).call_id
    rt.store.note_error(item.campaign_id, str(exc))  # status says why nothing is dialled
    if isinstance(exc, LegsApiRateLimited):
        rt.pacer.throttled()
        record_action(CREATE_LEG, "rate_limited")
    else:
        delay = DEFAULT_RETRY_POLICY.delay(exc, task.request.retries)
        if delay is not None:
            record_action(CREATE_LEG, "retry")
            raise task.retry(countdown=delay, exc=exc) from exc
        record_action(CREATE_LEG, "failed")
    pipe = rt.store.redis.pipeline(transaction=False)
    rt.slots.release(call_id, client=pipe)
    rt.pacer.call_settled(call_id, client=pipe)
    pipe.execute()
    if isinstance(exc, LegsApiRateLimited):
        return _back_to_queue(rt, campaign, contact, item, time.time() + exc.retry_after)
    log.warning("dial %s failed: %s", call_id, exc)
    result = {**call_result(None, contact, outcome="failed", reason=str(exc)), "attempt": item.attempt}
    return _attempt_over(rt, campaign, item, contact, result, lease=item)


def _back_to_queue(rt: _Runtime, campaign: CampaignConfig, contact: Contact, item: DialItem, at: float) -> str:
    """Send a leased contact back to wait in its queue until ``at``."""
    scheduled = rt.queue.schedule(item, at, lease=item)
    if scheduled == SCHEDULED:
        return "waiting"
    if scheduled == NOT_HOLDER:
        return "superseded"
    reason = "the campaign was canceled before this dial"
    return _attempt_over(rt, campaign, item, contact, call_result(None, contact, outcome="canceled", reason=reason))
