"""handle_leg_event run in this process on a real Redis: what the task does when its commit cannot land."""

from __future__ import annotations

import uuid

from dialstream.domain.campaign import CampaignConfig, Flow, LegTag
from dialstream.domain.leg_state import Phase
from dialstream.exotel import events as ev
from dialstream.exotel.events import LegEvent
from dialstream.state.leg_commit import commit_event
from workers.tasks import handle_leg_event


def leg_event(leg_sid: str, name: str, tag: LegTag) -> LegEvent:
    return LegEvent(uuid.uuid4().hex, ev.LIFECYCLE, name, 100.0, leg_sid, custom_param=tag.encode())


def test_a_leg_event_whose_commit_keeps_losing_to_another_writer_is_retried(worker_runtime, rival_wins_first_run):
    """Another writer wins every compare-and-set of the task's first run (ConcurrentUpdate): the task is retried and applies the event."""
    store = worker_runtime.store
    campaign = CampaignConfig(f"w-{uuid.uuid4().hex[:8]}", flow=Flow.BOT_FIRST, bot_url="ws://bot/media")
    store.create_campaign(campaign)
    tag, leg_sid = LegTag(campaign.campaign_id, "c1"), uuid.uuid4().hex
    commit_event(store, leg_event(leg_sid, ev.LEG_CONNECTING, tag), tag, campaign)
    rival_wins_first_run(handle_leg_event)
    result = handle_leg_event.apply(args=[leg_event(leg_sid, ev.LEG_RINGING, tag).to_dict()])
    assert result.successful(), result.traceback
    assert store.load_leg(leg_sid)[0].phase is Phase.RINGING
