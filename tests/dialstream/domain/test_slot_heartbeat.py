"""A call's slot heartbeat: beats while the call lives, gives the slot back once it ended."""

from __future__ import annotations

import dataclasses

from dialstream.domain.campaign import CampaignConfig, Flow, LegTag
from dialstream.domain.leg_record import LegRecord, Phase
from dialstream.domain.slot_heartbeat import Beat, beat_interval, heartbeat

LIVE = LegRecord.new("L1", LegTag("camp", "c1"), CampaignConfig("camp", flow=Flow.BOT_FIRST, bot_url="ws://bot"))


def test_a_live_call_keeps_its_slot_until_its_time_is_up():
    """The heartbeat of a call not ended (or not heard of yet) refreshes its slot until ``until``, then stops."""
    answered = dataclasses.replace(LIVE, phase=Phase.ANSWERED, answered_at=5.0)
    assert heartbeat(None, now=10.0, until=20.0) is Beat.REFRESH
    assert heartbeat(answered, now=20.0, until=20.0) is Beat.REFRESH
    assert heartbeat(answered, now=20.5, until=20.0) is Beat.EXPIRE


def test_an_ended_call_releases_its_slot():
    """The heartbeat of a call whose leg ended gives its slot back, whatever the time."""
    ended = dataclasses.replace(LIVE, phase=Phase.ENDED)
    assert heartbeat(ended, now=10.0, until=20.0) is Beat.RELEASE
    assert heartbeat(ended, now=30.0, until=20.0) is Beat.RELEASE


def test_a_slot_beats_three_times_per_lifetime():
    """A slot that lives 30 s unrefreshed beats every 10 s: a late beat does not lose it."""
    assert beat_interval(30.0) == 10.0
