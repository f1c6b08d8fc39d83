"""Leg actions: sending a leg's outbox, and the ``send_action`` task that sends one action.

The task that handled a leg event sends the actions it calls for itself, side by side
(:func:`send_now`): no second trip through the queue, so a stop or a stream goes out as soon
as its event is committed, and a call costs one task fewer per action. Anywhere else (a timer,
a rescue, a failure's fallback) the outbox leaves as one Celery group (:func:`dispatch`, not
awaited), each a ``send_action`` task, but for its stops, run at once where they were decided
(a greeting over the bot cannot wait its turn in a queue). Either way an action is claimed
first (at most one sender per action id), takes its share of the account's budget
(``dialstream.state.pacing``: in-call actions may use all of it) and calls the Legs API; how
often to retry is decided by ``dialstream.domain.retry``: a stop or a hang-up answered 429 is
retried at once, in place, not after the Retry-After meant for the other requests; any other
action that must wait (no budget now, an error worth retrying) goes on as a ``send_action``
task under the same claim.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from celery import Task, group

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

__all__ = ["send_action", "dispatch", "send_now", "retry_in_place", "ACTION_WAIT"]

log = logging.getLogger("dialstream.workers")

ACTION_WAIT = 10.0  # seconds an in-call action may wait for budget (the reserve makes it rare)
_SIDE_BY_SIDE = 8  # threads per process sending an event's second and later actions


class _Later(Exception):
    """The action must be sent again ``delay`` seconds from now (``cause``: why)."""

    def __init__(self, delay: float, cause: Exception | None = None) -> None:
        super().__init__(delay)
        self.delay, self.cause = delay, cause


_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _side_by_side() -> ThreadPoolExecutor:
    """The process's threads for an event's extra actions, created after a fork, never inherited."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(_SIDE_BY_SIDE, thread_name_prefix="leg-action"))
        return _pool[1]


def send_now(rt: Runtime, record: LegRecord, campaign: CampaignConfig, pipe: Any, *, claimed_as: str) -> None:
    """Send the outbox from this thread, its actions side by side, each claimed as
    ``claimed_as:<action id>`` (the event task's id: its re-delivery may claim them again); add
    to ``pipe`` the arming of their timers and their marking as dispatched. An action that
    must wait goes on as a ``send_action`` task under the same claim."""
    if not record.outbox:
        return
    first, *others = record.outbox
    pool = _side_by_side()
    extra = [pool.submit(_send_inline, rt, record.leg_sid, action, f"{claimed_as}:{action.action_id}") for action in others]
    _send_inline(rt, record.leg_sid, first, f"{claimed_as}:{first.action_id}")
    for done in extra:
        done.result()
    _dispatched(rt, record, campaign, pipe)


def _send_inline(rt: Runtime, leg_sid: str, action: Action, claim: str) -> None:
    later = None
    try:
        result = _send_action(rt, leg_sid, action, claim, retries=0)
    except _Later as wait:
        later = wait.delay
    except ConcurrentUpdate:  # recording a failed action lost to other writers of the leg: as the task does
        later = CONCURRENT_RETRY_DELAY
    except Exception:  # noqa: BLE001 - as a failing task would: logged, the event's other actions still go
        log.exception("leg %s: sending %s failed", leg_sid, action.action_id)
        result = "error"
    if later is not None:
        # Its own task from now on, under the same claim (the task's id is the claim's).
        args = (leg_sid, action.to_dict())
        send_action.apply_async(args, task_id=claim, countdown=later, retries=1, argsrepr=task_argsrepr(SEND_ACTION, args))
        result = "retry"
    record_action(action.kind, result)


def dispatch(rt: Runtime, record: LegRecord, campaign: CampaignConfig, pipe: Any) -> None:
    """Send the outbox: its stops here and now, the rest as one group (not awaited, its
    messages in one round trip); add to ``pipe`` the arming of its timers and the marking of
    its actions as dispatched.

    A stop (of the greeting once the bot's stream started, say) is sent by the thread that
    decided it, as its task would send it: queued, it waited behind every task of a burst of
    answers (the chaos suite: 300-600 ms of greeting over the bot when 30 calls answered at once)."""
    if not record.outbox:
        return
    signatures, stops = [], []
    for action in record.outbox:
        if action.kind.stops:
            stops.append(action)
            continue
        args = (record.leg_sid, action.to_dict())
        # Flower shows the leg and action, not a greeting's text or a bot URL with contact variables.
        signatures.append(send_action.signature(args, argsrepr=task_argsrepr(SEND_ACTION, args)))
    if signatures:
        with app.producer_or_acquire() as producer, producer.batch():
            group(signatures).apply_async(producer=producer)
    _dispatched(rt, record, campaign, pipe)
    for action in stops:
        # As an event's task sends its actions (claimed, paced, retried in place; one that must
        # wait goes on as its own task), under a claim of its own: no task decided it.
        _send_inline(rt, record.leg_sid, action, f"{uuid.uuid4().hex}:{action.action_id}")


def _dispatched(rt: Runtime, record: LegRecord, campaign: CampaignConfig, pipe: Any) -> None:
    """Add to ``pipe`` the arming of the outbox's timers and the marking of its actions as dispatched."""
    for timer_id, seconds in timers_for(record, record.outbox, campaign):
        rt.timers.arm(leg_timer(record.campaign_id, record.leg_sid, timer_id), seconds, client=pipe)
    rt.store.mark_dispatched(record.leg_sid, [action.action_id for action in record.outbox], client=pipe)


@app.task(name=SEND_ACTION, bind=True, max_retries=DEFAULT_RETRY_POLICY.max_retries)
def send_action(self: Task, leg_sid: str, action_dict: dict[str, Any]) -> str:
    """Send one leg action to the Legs API, at most once per action id."""
    action = Action.from_dict(action_dict)
    try:
        result = _send_action(runtime(), leg_sid, action, self.request.id or "", retries=self.request.retries)
    except _Later as later:
        record_action(action.kind, "retry")
        if later.cause is None:
            raise self.retry(countdown=later.delay) from None
        raise self.retry(countdown=later.delay, exc=later.cause) from later.cause
    except ConcurrentUpdate as exc:  # recording a failed action lost to other writers of the leg
        record_action(action.kind, "retry")
        raise self.retry(countdown=CONCURRENT_RETRY_DELAY, exc=exc) from exc
    record_action(action.kind, result)
    return result


def _send_action(rt: Runtime, leg_sid: str, action: Action, claimer: str, *, retries: int) -> str:
    """Claim ``action`` for ``claimer`` and send it; raises :class:`_Later` when it must be
    tried again (``retries``: tries so far)."""
    # An action on another leg of the call (the agent's) is claimed as that leg's: it may have to
    # act after the callee's leg ended (hang the agent up).
    claim = rt.store.claim_action(action.on_leg or leg_sid, action.action_id, action.kind, claimer)
    if claim != "claimed":
        return claim
    waited = time.monotonic()
    grant = rt.pacer.acquire(ACTION, timeout=ACTION_WAIT)
    record_rate_limit_wait(ACTION, time.monotonic() - waited, bool(grant))
    if not grant:
        raise _Later(grant.wait)
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
            last = retry_in_place(rt, policy, lambda: _perform(rt, leg_sid, action), exc)
            if last is None:
                return "sent"
            _action_failed(rt, leg_sid, action, last)
            return "failed"
        delay = policy.delay(exc, retries)
        if delay is not None:
            raise _Later(delay, exc) from exc
        _action_failed(rt, leg_sid, action, exc)
        return "failed"
    if action.kind is ActionKind.START_STREAM:
        # The bot's time to start the stream runs from here, however long the request took to get through.
        rt.store.stream_accepted(leg_sid, action.action_id, time.time())
    return "sent"


def retry_in_place(
    rt: Runtime, policy: RetryPolicy, send: Callable[[], object], error: LegsApiError
) -> LegsApiError | None:
    """Retry ``send`` (a request that failed with ``error``) as ``policy`` says, in this task,
    each try under a budget grant of its own (waited for no longer than the policy's time
    bound leaves); None once it went through, else the last error."""
    retries, first_failed = 0, time.monotonic()
    while (delay := policy.delay(error, retries, failing_for=time.monotonic() - first_failed)) is not None:
        retries += 1
        time.sleep(delay)
        left = ACTION_WAIT if policy.give_up_after is None else policy.give_up_after - (time.monotonic() - first_failed)
        if left <= 0 or not rt.pacer.acquire(ACTION, timeout=min(ACTION_WAIT, left)):
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
        # What choosing a bot writes and the contact's variables go in one round trip.
        pipe = rt.store.redis.pipeline(transaction=False)
        bot = BotRecord(given, 0) if given else _pick_bot(rt, leg_sid, pipe, avoid_tried=params.get("avoid_tried_bots", False))
        pipe.hget(keys.leg(leg_sid), STREAM_VARS)
        variables = pipe.execute()[-1]
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


def _pick_bot(rt: Runtime, leg_sid: str, pipe: Any, *, avoid_tried: bool) -> BotRecord:
    """The live bot with the most free capacity (a retry avoids the bots this leg already tried);
    its reservation and its place among the leg's tried bots are added to ``pipe``.

    Raises NoBotAvailable when there is none."""
    tried_key = keys.leg(leg_sid, "bots")
    tried = rt.store.redis.smembers(tried_key) if avoid_tried else set()
    bot = select_bot(rt.store.redis, static_urls=rt.settings.bot_urls, exclude=tried, pipe=pipe)
    pipe.sadd(tried_key, bot.url).expire(tried_key, 3600)
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
        last = retry_in_place(rt, action_retry_policy(ActionKind.HANGUP), hangup, hangup_exc)
        if last is not None:
            add_error(rt.store, leg_sid, f"hangup: {last}")
