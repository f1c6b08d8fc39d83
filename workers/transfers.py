"""Transfers: the ``transfer_call`` task, a bot's request to hand its call to a human agent.

Bots publish it (``dialstream.broker.transfers``), for a transfer they ask for and for every
key the callee presses. What it calls for is decided by ``dialstream.domain.transfer``: this
task takes the campaign's agent turn, commits the start of the transfer on the callee's leg
record and dispatches its actions (``workers.actions``); the agent leg's events then come
through ``workers.leg_events`` like any other.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from dialstream.broker.celery_app import TRANSFER_CALL
from dialstream.domain.transfer import TransferRequest, wanted
from dialstream.errors import ConcurrentUpdate
from dialstream.state import keys
from dialstream.state.leg_commit import CONCURRENT_RETRY_DELAY, commit_transfer
from workers.actions import dispatch
from workers.runtime import app, runtime

__all__ = ["transfer_call"]

log = logging.getLogger("dialstream.workers")


@app.task(name=TRANSFER_CALL, bind=True, max_retries=5)
def transfer_call(self: Task, leg_sid: str, request_dict: dict[str, Any]) -> str:
    """Begin the transfer of the call on ``leg_sid`` that ``request_dict`` asks for, if it is one."""
    rt = runtime()
    request = TransferRequest.from_dict(request_dict)
    record, _, _ = rt.store.load_leg(leg_sid)
    campaign = rt.store.campaign(record.campaign_id) if record is not None else None
    if record is None or campaign is None:
        log.warning("transfer: leg %s has no call record; ignored", leg_sid)
        return "unknown-leg"
    if not wanted(request, campaign):
        return "not-a-transfer"  # a key the callee pressed for the bot
    turn = rt.store.redis.incr(keys.agent_turn(record.campaign_id))
    try:
        record = commit_transfer(rt.store, leg_sid, request, campaign, turn, rt.clock())
    except ConcurrentUpdate as exc:
        raise self.retry(countdown=CONCURRENT_RETRY_DELAY, exc=exc) from exc
    if record is None or record.transfer is None:
        return "ignored"
    pipe = rt.store.redis.pipeline(transaction=False)
    dispatch(rt, record, campaign, pipe)
    pipe.execute()
    return record.transfer.state.value
