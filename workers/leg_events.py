"""Leg events: the ``handle_leg_event`` task, and the rescue that re-applies an event.

The task only translates between Celery and Redis: what an event calls for is decided by
``dialstream.domain.leg_state`` and committed atomically by ``dialstream.state.leg_commit``;
the actions it calls for are dispatched by ``workers.actions``. The ingress arms a rescue
timer with every event it publishes; the worker that handled the event disarms it, and a
sweeper fires the ones left (``workers.timers``): the event is applied again, idempotently,
which finishes whatever a worker that died left undone.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from dialstream.broker.celery_app import HANDLE_LEG_EVENT
from dialstream.domain.call_outcome import told
from dialstream.domain.campaign import CampaignConfig, LegTag
from dialstream.domain.dialing import reserve_released, stream_released
from dialstream.domain.leg_state import LegRecord
from dialstream.errors import ConcurrentUpdate
from dialstream.exotel.events import LEG_ANSWERED, RECORDING_AVAILABLE, LegEvent
from dialstream.state.dial_queue import DialItem
from dialstream.state.leg_commit import CONCURRENT_RETRY_DELAY, call_result, commit_event
from dialstream.state.store import EXOPHONE
from dialstream.state.timers import event_timer, reconcile_timer
from dialstream.state.webhooks import leg_event
from workers.actions import dispatch, send_now
from workers.dials import attempt_over
from workers.metrics import record_event
from workers.runtime import Runtime, app, runtime

__all__ = ["handle_leg_event", "handle_event", "record_unrecorded_end"]

log = logging.getLogger("dialstream.workers")


@app.task(name=HANDLE_LEG_EVENT, bind=True, max_retries=5)
def handle_leg_event(self: Task, payload: dict[str, Any]) -> str:
    """Apply one leg event and send the actions it calls for, side by side, from this task."""
    try:
        return handle_event(payload, task_id=self.request.id or "")
    except ConcurrentUpdate as exc:
        raise self.retry(countdown=CONCURRENT_RETRY_DELAY, exc=exc) from exc


def handle_event(payload: dict[str, Any], *, rescue: bool = False, task_id: str = "") -> str:
    """Apply one leg event (``rescue``: again, from its rescue timer) and do what follows it.

    The task that took the event (``task_id``) sends its actions itself (``send_now``): its
    re-delivery, with the same id, may claim them again. A rescue hands them to
    ``send_action`` tasks, which find them claimed if the event's task got that far."""
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
    if record is None:
        log.warning("leg %s: event %s of an agent's leg whose call %s has no record; ignored", event.leg_sid, event.event_name, tag.agent_of)
        return "unknown-call"
    record_event(event.event_name, "rescued" if rescue and applied else "applied" if applied else "no-op")
    if rescue and applied:
        log.warning("leg %s: rescued %s that its worker did not finish", event.leg_sid, event.event_name)
    # The worker that ended the leg may have died before recording the call: a re-delivery
    # (or the rescue) of an event after the end finishes that work.
    ending = just_ended or (record.finished and not applied and not _call_recorded(rt, record))
    if applied and record.finished and not just_ended and event.event_name == RECORDING_AVAILABLE:
        # Ready after the call was recorded: added to the record written then.
        rt.store.patch_result(record.campaign_id, record.contact_id, record.leg_sid, recording_url=record.recording_url)
    # What follows the group's publish goes in one round trip.
    pipe = rt.store.redis.pipeline(transaction=False)
    if task_id and not rescue:
        send_now(rt, record, campaign, pipe, claimed_as=task_id)
    else:
        dispatch(rt, record, campaign, pipe)
    leg_event(pipe, event.event_name, record)  # webhook call.answered
    if ending:
        _call_ended(rt, record, campaign, pipe)  # its rescue stays armed until the call is recorded
        return event.event_name
    if not record.finished:
        _track_call(rt, record, pipe)
    if applied and event.event_name == LEG_ANSWERED and event.leg_sid == record.leg_sid and not record.finished:
        # A live call sends no event while it talks: its first look-up is due this long after its answer.
        rt.timers.arm(_reconcile_timer(record), rt.settings.engine.reconcile_after, client=pipe)
    if not rescue:
        rt.timers.disarm(event_timer(payload), client=pipe)  # done: the rescue would find nothing to do
    pipe.execute()
    return event.event_name


def record_unrecorded_end(rt: Runtime, record: LegRecord, campaign: CampaignConfig) -> bool:
    """Record the call of an ended leg whose worker died between ending it and recording it
    (True), unless it is recorded already (False)."""
    if not record.finished or _call_recorded(rt, record):
        return False
    log.warning("leg %s: ended without its call recorded; recording it now", record.leg_sid)
    _call_ended(rt, record, campaign, rt.store.redis.pipeline(transaction=False))
    return True


def _reconcile_timer(record: LegRecord) -> str:
    return reconcile_timer(record.campaign_id, record.contact_id, record.attempt, record.leg_sid)


def _call_recorded(rt: Runtime, record: LegRecord) -> bool:
    """Whether the contact's record holds this leg's call (as its latest attempt or in its history)."""
    result = rt.store.result(record.campaign_id, record.contact_id) or {}
    return any(entry.get("leg_sid") == record.leg_sid for entry in (result, *result.get("history", ())))


def _track_call(rt: Runtime, record: LegRecord, pipe: Any) -> None:
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


def _call_ended(rt: Runtime, record: LegRecord, campaign: CampaignConfig, pipe: Any) -> None:
    """The call is over: give back its slot and reserve (with what ``pipe`` holds), then
    redial its contact or record its final result, with its caller ID and what its bot told
    (disposition, callback)."""
    item = DialItem(record.campaign_id, record.contact_id, record.attempt)
    call_id = LegTag(record.campaign_id, record.contact_id, record.attempt).call_id
    rt.queue.ack([item], client=pipe)
    rt.slots.release(call_id, client=pipe)
    rt.pacer.call_settled(call_id, client=pipe)
    rt.timers.disarm(_reconcile_timer(record), client=pipe)  # nothing left to look up
    pipe.execute()
    contact = rt.store.contact(record.campaign_id, record.contact_id)
    bot_told = told(**rt.outcomes.of_legs([record.leg_sid])[record.leg_sid])
    attempt_over(rt, campaign, item, contact, {**call_result(record, contact), **rt.store.leg_fields(record.leg_sid, EXOPHONE), **bot_told})
