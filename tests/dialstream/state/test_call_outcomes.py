"""Dispositions and callbacks beside the leg in Redis: the campaign's count per code follows each call's last one."""

from __future__ import annotations

import uuid

from dialstream.domain.call_outcome import CallbackRequest, Disposition
from dialstream.domain.campaign import CampaignConfig, LegTag
from dialstream.domain.leg_state import LegRecord
from dialstream.state import keys
from dialstream.state.call_outcomes import CallOutcomes
from dialstream.state.store import LEG_TTL, Store

NOW = 1_780_000_000.0


def test_a_replaced_disposition_moves_the_campaigns_count(client):
    """Two calls set codes; one changes its mind: counts are per call's last code, and each leg keeps its own."""
    campaign = CampaignConfig(f"disp-{uuid.uuid4().hex[:6]}")
    store, outcomes = Store(client), CallOutcomes(client)
    legs = [f"leg-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for number, leg in enumerate(legs, 1):
        store.save_leg(LegRecord.new(leg, LegTag(campaign.campaign_id, f"r{number}"), campaign), 0)
    outcomes.set_disposition(legs[0], Disposition.create("not_interested", {}, now=NOW))
    outcomes.set_disposition(legs[1], Disposition.create("interested", {}, now=NOW))
    outcomes.set_disposition(legs[0], Disposition.create("interested", {"after": "objection"}, now=NOW + 5))
    outcomes.set_disposition(legs[1], Disposition.create("interested", {}, now=NOW + 6))  # the same again: counted once
    counts = client.hgetall(keys.campaign(campaign.campaign_id, "counts"))
    assert {k: int(v) for k, v in counts.items()} == {"disposition:not_interested": 0, "disposition:interested": 2}
    told = outcomes.of_legs([*legs, "", "no-such-leg"])
    assert told[legs[0]]["disposition"] == Disposition("interested", {"after": "objection"}, NOW + 5)
    assert told["no-such-leg"] == {"disposition": None, "callback": None} and "" not in told
    assert 0 < client.ttl(keys.leg(legs[0], "disposition")) <= LEG_TTL


def test_a_leg_no_campaign_placed_keeps_its_disposition_uncounted_and_a_callback_request(client):
    """A leg without a record (a call dialstream did not place) still stores what its bot said."""
    outcomes = CallOutcomes(client)
    leg = f"foreign-{uuid.uuid4().hex[:8]}"
    outcomes.set_disposition(leg, Disposition.create("spoke", {}, now=NOW))
    outcomes.request_callback(leg, CallbackRequest.create("2026-06-03T17:00", now=NOW))
    told = outcomes.of_legs([leg])[leg]
    assert (told["disposition"].code, told["callback"].at) == ("spoke", "2026-06-03T17:00")
