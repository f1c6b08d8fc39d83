"""send_action run in this process on a real Redis: a failed action recorded, under contention."""

from __future__ import annotations

import uuid

from dialstream.domain.campaign import CampaignConfig, Flow, LegTag
from dialstream.exotel import events as ev
from dialstream.exotel.events import LegEvent
from dialstream.state.leg_commit import commit_event, commit_timer
from workers.tasks import send_action


def test_a_failed_action_whose_record_keeps_losing_to_another_writer_is_retried(worker_runtime, rival_wins_first_run):
    """A second stream attempt finds no bot; another writer wins every compare-and-set of the
    task's first run (ConcurrentUpdate): the task is retried and the failure recorded."""
    store = worker_runtime.store
    campaign = CampaignConfig(f"w-{uuid.uuid4().hex[:8]}", flow=Flow.BOT_FIRST)  # no bot_url: the fleet's, and it is empty
    store.create_campaign(campaign)
    tag, leg_sid = LegTag(campaign.campaign_id, "c1"), uuid.uuid4().hex
    answered = LegEvent(uuid.uuid4().hex, ev.LIFECYCLE, ev.LEG_ANSWERED, 100.0, leg_sid, custom_param=tag.encode())
    first = commit_event(store, answered, tag, campaign)[0].outbox[0]
    record = commit_timer(store, leg_sid, first.action_id, campaign)  # no stream_started in time: a second attempt
    store.mark_dispatched(leg_sid, [action.action_id for action in record.outbox])
    second = next(action for action in record.outbox if action.action_id == "start_stream#2")
    rival_wins_first_run(send_action)
    result = send_action.apply(args=[leg_sid, second.to_dict()])
    assert result.successful(), result.traceback
    assert result.result == "failed"
    assert any(error.startswith("start_stream#2: no bot registered") for error in store.load_leg(leg_sid)[0].errors)
