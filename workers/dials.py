"""Dials: the ``dial_contact`` task, and what follows an attempt that ended.

A contact waits in its campaign's dial queue (``dialstream.state.dial_queue``) until the
workers' dial poller (``workers.poller``) hands it to :func:`dial_contact`. Whether and when
to dial is decided by ``dialstream.domain.dialing``. A dial takes only what leaves the
account's budget a reserve for the in-call actions of the calls already placed
(``dialstream.state.pacing``), and a concurrency slot (``dialstream.state.slots``) that the
call holds from its dial to its end, kept alive by its events and by a heartbeat timer
(``workers.timers``). The caller ID is chosen last, right before the leg is created
(``dialstream.state.caller_ids``), so that only calls placed count against an exophone's daily cap.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from celery import Task

from dialstream.broker.celery_app import DIAL_CONTACT
from dialstream.domain.caller_id import pool_reopens
from dialstream.domain.campaign import CampaignConfig, CampaignState, Contact, LegTag
from dialstream.domain.dialing import Step, after_attempt, before_dial, caller_id_wait, with_history
from dialstream.domain.slot_heartbeat import beat_interval
from dialstream.domain.phones import DEFAULT_TIMEZONE, contact_timezone
from dialstream.domain.reconcile import lookup_after
from dialstream.errors import LegsApiError, LegsApiRateLimited
from dialstream.exotel.actions import ActionKind
from dialstream.exotel.stream_url import stream_parameters
from dialstream.state import keys
from dialstream.state.caller_ids import count_keys, used_counts
from dialstream.state.dial_queue import NOT_HOLDER, SCHEDULED, DialItem
from dialstream.state.leg_commit import call_result
from dialstream.state.pacing import DIAL
from dialstream.state.store import EXOPHONE, LEG_TTL, STREAM_VARS
from dialstream.state.timers import reconcile_timer, slot_timer
from dialstream.state.webhooks import call_completed, record_final
from workers.metrics import record_action, record_rate_limit_wait
from workers.runtime import Runtime, app, runtime

__all__ = ["dial_contact", "attempt_over"]

log = logging.getLogger("dialstream.workers")

DIAL_WAIT = 2.0  # seconds a dial may wait for budget before its contact goes back to the queue
CAP_RETRY = 0.5  # seconds before a contact refused by a full cap is offered again


# No count of Celery retries: create-leg's are bounded by time (DIALSTREAM_DIAL_RETRY_FOR, see _dial_failed).
@app.task(name=DIAL_CONTACT, bind=True, max_retries=None)
def dial_contact(
    self: Task, campaign_id: str, contact_id: str, attempt: int = 1, token: str = "", failing_since: float = 0.0
) -> str:
    """Dial a contact the poller took from its campaign's queue (leased under ``token``).
    ``failing_since``: when this dial's create-leg first failed, on its retries.

    Right before the dial: the campaign must still be running, the number off the DNC list and
    inside its calling window; then a concurrency slot and a budget grant are taken. A contact
    that must wait goes back to the queue for then; one that must not be called is recorded.
    """
    rt = runtime()
    item = DialItem(campaign_id, contact_id, attempt, token=token)
    campaign = rt.store.campaign(campaign_id)  # cached: no round trip after the campaign's first dial
    pool = rt.settings.caller_id_pool(campaign)
    # One round trip for what the dial reads: its lease, contact, campaign state and caller-ID counts.
    pipe = rt.store.redis.pipeline(transaction=False)
    rt.queue.renew(item, rt.settings.engine.dial_lease, rt.clock(), client=pipe)
    pipe.hget(keys.campaign(campaign_id, "contacts"), contact_id)
    pipe.hget(keys.campaign(campaign_id), "state")
    pipe.mget(count_keys(pool.numbers, rt.clock()))
    renewed, raw_contact, state, counts = pipe.execute()
    if not renewed:
        return "superseded"  # its lease ran out here and another worker has the contact, or it was drained
    if campaign is None or raw_contact is None:
        log.error("dial: unknown campaign %s or contact %s", campaign_id, contact_id)
        rt.queue.ack([item])
        return "unknown"
    contact = Contact.from_json(raw_contact)
    blocked = rt.dnc.is_blocked(contact.phone, campaign_id)
    step = before_dial(CampaignState(state), campaign, contact_timezone(contact), rt.clock(), blocked=blocked)
    if step.step is Step.WAIT:
        return _back_to_queue(rt, campaign, contact, item, step.at)
    if step.step is Step.STOP:
        return attempt_over(rt, campaign, item, contact, call_result(None, contact, outcome=step.outcome, reason=step.reason), lease=item)
    call_id = LegTag(campaign_id, contact_id, attempt).call_id
    slot = rt.slots.acquire(campaign_id, call_id, rt.settings.engine.slot_caps(campaign), rt.settings.engine.slot_ttl)
    if not slot:
        return _back_to_queue(rt, campaign, contact, item, rt.clock() + CAP_RETRY)
    waited = time.monotonic()
    grant = rt.pacer.acquire(DIAL, timeout=DIAL_WAIT, call_id=call_id)
    record_rate_limit_wait(DIAL, time.monotonic() - waited, bool(grant))
    if not grant:
        rt.slots.release(call_id)
        return _back_to_queue(rt, campaign, contact, item, rt.clock() + grant.wait)
    caller_id = rt.caller_ids.pick(pool, contact.phone, rt.clock(), used=used_counts(pool.numbers, counts))
    if caller_id is None:
        _give_back(rt, call_id)
        wait = caller_id_wait(campaign, contact_timezone(contact), pool_reopens(pool, rt.clock()))
        rt.store.note_error(campaign_id, wait.reason)  # status says why nothing is dialled
        return _back_to_queue(rt, campaign, contact, item, wait.at)
    try:
        leg = rt.legs.create_leg(
            contact.phone,
            exophone=caller_id.exophone,
            leg_event_endpoint=rt.settings.event_endpoint,
            custom_param=LegTag(campaign_id, contact_id, attempt).encode(rt.tag_secret),
            ring_timeout=campaign.ring_timeout,
            time_limit=campaign.time_limit,
            amd_enable=campaign.amd_enable,
            async_amd=campaign.async_amd,
            record=campaign.record,
        )
    except LegsApiError as exc:
        return _dial_failed(self, rt, campaign, contact, item, exc)
    record_action(ActionKind.CREATE_LEG, "sent")
    _dialled(rt, campaign, contact, item, leg.leg_sid, caller_id.exophone)
    return leg.leg_sid


def _dialled(rt: Runtime, campaign: CampaignConfig, contact: Contact, item: DialItem, leg_sid: str, exophone: str) -> None:
    """The leg exists: the contact's lease is done, the call's slot gets its heartbeat, the
    leg its caller ID, its reconcile timer and the bot's stream URL its variables (one round trip)."""
    call_id = LegTag(item.campaign_id, item.contact_id, item.attempt).call_id
    now = time.time()
    pipe = rt.store.redis.pipeline(transaction=False)
    rt.queue.ack([item], client=pipe)
    pipe.hset(keys.campaign(item.campaign_id, "legs"), item.contact_id, leg_sid)
    rt.store.count_dial(item.campaign_id, now, client=pipe)
    pipe.hset(keys.leg(leg_sid), EXOPHONE, exophone)
    variables = stream_parameters(contact.variables, keys=campaign.stream_variables)
    if variables:
        pipe.hset(keys.leg(leg_sid), STREAM_VARS, json.dumps(variables))
    pipe.expire(keys.leg(leg_sid), LEG_TTL)
    until = now + campaign.ring_timeout + campaign.time_limit + rt.settings.engine.slot_ttl
    rt.timers.arm(slot_timer(item.campaign_id, leg_sid, call_id, until), beat_interval(rt.settings.engine.slot_ttl), client=pipe)
    # Its events may be lost for good: it is looked up once they are overdue (workers.reconcile).
    lookup = lookup_after(None, campaign, rt.settings.engine.reconcile_after, now) or 0.0
    rt.timers.arm(reconcile_timer(item.campaign_id, item.contact_id, item.attempt, leg_sid), lookup, client=pipe)
    pipe.execute()


def _dial_failed(task: Task, rt: Runtime, campaign: CampaignConfig, contact: Contact, item: DialItem, exc: LegsApiError) -> str:
    """create-leg failed: a 5xx or a timeout is Exotel's trouble, not the contact's, so it is
    retried with backoff for up to DIALSTREAM_DIAL_RETRY_FOR seconds, whatever the campaign's
    redial rules (the task keeps its slot and lease, and takes a fresh grant each time); a 429
    sends the contact back for after Retry-After; anything else, or a 5xx outlasting that time,
    ends the attempt as failed, which the campaign's redial rule may retry later."""
    call_id = LegTag(item.campaign_id, item.contact_id, item.attempt).call_id
    rt.store.note_error(item.campaign_id, str(exc))  # status says why nothing is dialled
    if isinstance(exc, LegsApiRateLimited):
        rt.pacer.throttled()
        record_action(ActionKind.CREATE_LEG, "rate_limited")
    else:
        since = float(task.request.kwargs.get("failing_since") or time.time())
        delay = rt.settings.engine.create_leg_retry.delay(exc, task.request.retries, failing_for=time.time() - since)
        if delay is not None:
            record_action(ActionKind.CREATE_LEG, "retry")
            raise task.retry(countdown=delay, exc=exc, kwargs={**task.request.kwargs, "failing_since": since}) from exc
        record_action(ActionKind.CREATE_LEG, "failed")
    _give_back(rt, call_id)
    if isinstance(exc, LegsApiRateLimited):
        return _back_to_queue(rt, campaign, contact, item, rt.clock() + exc.retry_after)
    log.warning("dial %s failed: %s", call_id, exc)
    result = {**call_result(None, contact, outcome="failed", reason=str(exc)), "attempt": item.attempt}
    return attempt_over(rt, campaign, item, contact, result, lease=item)


def _give_back(rt: Runtime, call_id: str) -> None:
    """A dial that will not be placed now gives back its concurrency slot and budget reserve."""
    pipe = rt.store.redis.pipeline(transaction=False)
    rt.slots.release(call_id, client=pipe)
    rt.pacer.call_settled(call_id, client=pipe)
    pipe.execute()


def _back_to_queue(rt: Runtime, campaign: CampaignConfig, contact: Contact, item: DialItem, at: float) -> str:
    """Send a leased contact back to wait in its queue until ``at``."""
    scheduled = rt.queue.schedule(item, at, lease=item)
    if scheduled == SCHEDULED:
        return "waiting"
    if scheduled == NOT_HOLDER:
        return "superseded"
    reason = "the campaign was canceled before this dial"
    return attempt_over(rt, campaign, item, contact, call_result(None, contact, outcome="canceled", reason=reason), lease=item)


def attempt_over(
    rt: Runtime, campaign: CampaignConfig, item: DialItem, contact: Contact | None, result: dict[str, Any], *, lease: DialItem | None = None
) -> str:
    """Attempt ``item.attempt`` ended with ``result``: queue the next dial for the callback its
    callee asked for, or as the campaign's redial rule says, else record the contact's final
    result. ``lease`` is the contact's lease to give up (a dial that could not be placed),
    atomically with the redial."""
    campaign_id, contact_id = item.campaign_id, item.contact_id
    call_completed(rt.store.redis, campaign_id, result)  # webhook
    previous = rt.store.result(campaign_id, contact_id) if item.attempt > 1 else None
    zone = contact_timezone(contact) if contact else DEFAULT_TIMEZONE
    asked, callbacks = str(result.get("callback_at") or ""), int((previous or {}).get("callbacks") or 0)
    redial = after_attempt(campaign, str(result.get("outcome")), item.attempt, zone, rt.clock(), callback_at=asked, callbacks=callbacks)
    result, due = {**result, "callbacks": redial.callbacks}, redial.at
    if due is not None:
        scheduled = rt.queue.schedule(DialItem(campaign_id, contact_id, item.attempt + 1), due, lease=lease)
        if scheduled == SCHEDULED:
            rt.store.record_result(campaign_id, contact_id, with_history(previous, result, final=False, next_at=due), final=False)
            return "redial"
        if scheduled == NOT_HOLDER:
            return "superseded"
        # The campaign was canceled: this attempt goes to the history, the contact ends canceled.
        previous = with_history(previous, result, final=False)
        result = call_result(None, contact, outcome="canceled", reason=f"the campaign was canceled before attempt {item.attempt + 1}")
    record_final(rt.store, campaign_id, contact_id, contact, with_history(previous, result, final=True))  # + webhooks
    if lease is not None:
        rt.queue.ack([lease])  # after the record: a worker dying in between leaves the contact to be taken again
    return str(result.get("outcome"))
