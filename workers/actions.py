"""Leg actions: dispatching a leg's outbox, and the ``send_action`` task that sends one action.

A leg's actions leave its outbox as one Celery group (not awaited, its messages in one round
trip), each a ``send_action`` task. The task claims its action (at most one sender per
action id), takes its share of the account's budget (``dialstream.state.pacing``: in-call
actions may use all of it) and calls the Legs API; how often to retry is decided by
``dialstream.domain.retry``: a stop or a hang-up answered 429 is retried at once, not after
the Retry-After meant for the other requests.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from celery import Task, group
from celery.exceptions import Retry

from dialstream.broker.celery_app import SEND_ACTION
from dialstream.broker.messages import task_argsrepr
from dialstream.domain.campaign import CampaignConfig, LegTag
from dialstream.domain.leg_state import Action, LegRecord, hangs_up_after, timers_for
from dialstream.domain.retry import DEFAULT_RETRY_POLICY, RetryPolicy, action_retry_policy
from dialstream.errors import ConcurrentUpdate, LegsApiError, LegsApiRateLimited, NoBotAvailable
from dialstream.exotel.actions import ActionKind
from dialstream.exotel.agentstream import choose_content_type, with_credentials
from dialstream.exotel.stream_url import stream_url
from dialstream.state import keys
from dialstream.state.fleet import BotRecord, select_bot
from dialstream.state.leg_commit import CONCURRENT_RETRY_DELAY, add_error, commit_failure
from dialstream.state.pacing import ACTION
from dialstream.state.store import EXOPHONE, STREAM_VARS
from dialstream.state.timers import leg_timer
from workers.metrics import record_action, record_rate_limit_wait
from workers.runtime import Runtime, app, runtime

__all__ = ["send_action", "dispatch", "ACTION_WAIT"]

log = logging.getLogger("dialstream.workers")

ACTION_WAIT = 10.0  # seconds an in-call action may wait for budget (the reserve makes it rare)


def dispatch(rt: Runtime, record: LegRecord, campaign: CampaignConfig, pipe: Any) -> None:
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
    except ConcurrentUpdate as exc:  # recording a failed action lost to other writers of the leg
        record_action(action.kind, "retry")
        raise self.retry(countdown=CONCURRENT_RETRY_DELAY, exc=exc) from exc
    record_action(action.kind, result)
    return result


def _send_action(self: Task, leg_sid: str, action: Action) -> str:
    rt = runtime()
    # An action on another leg of the call (the agent's) is claimed as that leg's: it may have to
    # act after the callee's leg ended (hang the agent up).
    claim = rt.store.claim_action(action.on_leg or leg_sid, action.action_id, action.kind, self.request.id or "")
    if claim != "claimed":
        return claim
    waited = time.monotonic()
    grant = rt.pacer.acquire(ACTION, timeout=ACTION_WAIT)
    record_rate_limit_wait(ACTION, time.monotonic() - waited, bool(grant))
    if not grant:
        raise self.retry(countdown=grant.wait)
    try:
        _perform(rt, leg_sid, action)
    except NoBotAvailable as exc:
        _action_failed(rt, leg_sid, action, exc)
        return "failed"
    except LegsApiError as exc:
        if isinstance(exc, LegsApiRateLimited):
            rt.pacer.throttled()
        policy = action_retry_policy(action.kind)
        if policy.in_place:
            # A stop or a hang-up: retried here at once, whatever Retry-After says, not queued behind other tasks.
            last = _retry_in_place(rt, policy, lambda: _perform(rt, leg_sid, action), exc)
            if last is None:
                return "sent"
            _action_failed(rt, leg_sid, action, last)
            return "failed"
        delay = policy.delay(exc, self.request.retries)
        if delay is not None:
            raise self.retry(countdown=delay, exc=exc) from exc
        _action_failed(rt, leg_sid, action, exc)
        return "failed"
    return "sent"


def _retry_in_place(
    rt: Runtime, policy: RetryPolicy, send: Callable[[], object], error: LegsApiError
) -> LegsApiError | None:
    """Retry ``send`` (a request that failed with ``error``) as ``policy`` says, in this task,
    each try under a budget grant of its own; None once it went through, else the last error."""
    retries = 0
    while (delay := policy.delay(error, retries)) is not None:
        retries += 1
        time.sleep(delay)
        if not rt.pacer.acquire(ACTION, timeout=ACTION_WAIT):
            break
        try:
            send()
            return None
        except LegsApiError as exc:
            if isinstance(exc, LegsApiRateLimited):
                rt.pacer.throttled()
            error = exc
    return error


def _perform(rt: Runtime, leg_sid: str, action: Action) -> None:
    """Send ``action``: a stream goes to the campaign's bot or else the fleet's emptiest one,
    with the contact's variables on its URL, the bots' credentials and a format the bot takes;
    a transfer's agent leg and bridge get this deployment's event endpoint."""
    params = action.params
    if action.kind is ActionKind.CREATE_LEG:
        _dial_agent(rt, leg_sid, params)
        return
    if action.kind is ActionKind.CREATE_BRIDGE:
        rt.legs.create_bridge(params["leg_sids"], bridge_event_endpoint=rt.settings.event_endpoint)
        return
    if action.kind is ActionKind.START_STREAM:
        given = params.get("url")
        bot = BotRecord(given, 0) if given else _pick_bot(rt, leg_sid, avoid_tried=params.get("avoid_tried_bots", False))
        variables = rt.store.redis.hget(keys.leg(leg_sid), STREAM_VARS)
        url = stream_url(bot.url, json.loads(variables)) if variables else bot.url
        # The registry holds bare URLs; the bots' credentials go only to Exotel.
        url = with_credentials(url, rt.settings.bot_auth_user, rt.settings.bot_auth_password)
        params = {**params, "url": url, "content_type": choose_content_type(bot.formats, params["content_type"])}
    rt.legs.act(action.on_leg or leg_sid, action.kind, params, action_custom_param=action.action_id)


def _dial_agent(rt: Runtime, leg_sid: str, params: dict[str, Any]) -> None:
    """A transfer's agent leg, beside the callee's leg and with its caller ID, tagged so that
    its events come to the callee's record."""
    record, _, _ = rt.store.load_leg(leg_sid)
    if record is None:  # its outbox held this action: only a record expired since lands here
        log.warning("leg %s: no record left; its transfer is dropped", leg_sid)
        return
    tag = LegTag(record.campaign_id, record.contact_id, record.attempt, agent_of=leg_sid)
    rt.legs.create_leg(
        params["contact_uri"],
        exophone=rt.store.leg_fields(leg_sid, EXOPHONE)[EXOPHONE] or rt.settings.exophone,
        leg_event_endpoint=rt.settings.event_endpoint,
        custom_param=tag.encode(rt.tag_secret),
        reference_leg_sid=leg_sid,
        ring_timeout=params["ring_timeout"],
    )


def _pick_bot(rt: Runtime, leg_sid: str, *, avoid_tried: bool) -> BotRecord:
    """The live bot with the most free capacity (a retry avoids the bots this leg already tried).

    Raises NoBotAvailable when there is none."""
    tried_key = keys.leg_bots(leg_sid)
    tried = rt.store.redis.smembers(tried_key) if avoid_tried else set()
    bot = select_bot(rt.store.redis, static_urls=rt.settings.bot_urls, exclude=tried)
    rt.store.redis.pipeline(transaction=False).sadd(tried_key, bot.url).expire(tried_key, 3600).execute()
    return bot


def _action_failed(rt: Runtime, leg_sid: str, action: Action, exc: LegsApiError | NoBotAvailable) -> None:
    """Do what the state machine says a failed action calls for (``apply_failure``, ``hangs_up_after``)."""
    log.warning("leg %s: %s failed: %s", leg_sid, action.action_id, exc)
    record = commit_failure(rt.store, leg_sid, action, exc)
    if record is not None and record.outbox and (campaign := rt.store.campaign(record.campaign_id)):
        pipe = rt.store.redis.pipeline(transaction=False)
        dispatch(rt, record, campaign, pipe)  # the fallback message
        pipe.execute()
    if not hangs_up_after(action, exc):
        return
    if not rt.pacer.acquire(ACTION, timeout=ACTION_WAIT):
        add_error(rt.store, leg_sid, "hangup: no API budget left; the call ends at its time limit")
        return
    hangup = partial(rt.legs.hangup, leg_sid, action_custom_param=f"{action.action_id}:fallback")
    try:
        hangup()
    except LegsApiError as hangup_exc:
        last = _retry_in_place(rt, action_retry_policy(ActionKind.HANGUP), hangup, hangup_exc)
        if last is not None:
            add_error(rt.store, leg_sid, f"hangup: {last}")
