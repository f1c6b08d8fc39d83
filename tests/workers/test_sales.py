"""What sales and collections campaigns need, end to end with every part real: caller IDs by
region and rotation under a daily cap.

Each test runs a small campaign against the sandbox and reads the campaign's own report
(``CampaignEngine.report``), the sandbox's timelines, or both.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from dialstream.domain.caller_id import CallerIdPool, pool_reopens
from dialstream.domain.campaign import CampaignConfig, Contact
from dialstream.engine.campaigns import CampaignEngine
from dialstream.exotel.legs_api import LegsClient
from tests.utils import wait_for
from tests.workers.test_campaigns import calls_of
from tests.workers.test_faults import running_stack

pytestmark = pytest.mark.e2e

OWN_DB = 3  # the database of the tests that need a stack of their own (run first: one stack at a time)
BANGALORE, MUMBAI, NEW_YORK = "+918030752400", "+912261234567", "+12125550100"
CALLEE = {"answer": 1.0, "ring_ms": [100, 300], "talk_ms": [800, 1200]}


def test_each_call_shows_the_caller_id_of_its_region_else_the_least_used_until_every_one_is_at_its_cap(redis_url, tmp_path):
    """A New York callee sees the New York exophone (its area code), a Bangalore-circle mobile the
    Mumbai one (the region map), UK callees the least used of the rest in turn; with 2 calls a day
    per exophone the seventh contact waits for the first new day at an exophone's home."""
    env = {"EXOTEL_EXOPHONE_REGIONS": f"+91984={MUMBAI}", "EXOTEL_EXOPHONE_DAILY_CAP": "2"}
    phones = ["+12125550134", "+919845012345", *(f"+4478123456{i:02d}" for i in range(5))]
    with running_stack(redis_url, tmp_path, {"seed": 41, "callee": CALLEE}, db=OWN_DB, env=env) as (running, store):
        engine = CampaignEngine(store.redis, running.settings.account_sid)
        config = CampaignConfig("ids", flow="bot_first", exophones=(BANGALORE, MUMBAI, NEW_YORK), max_concurrent=1, window="any")
        engine.submit(config, [Contact(f"k{i}", phone) for i, phone in enumerate(phones)])
        wait_for(lambda: engine.status("ids").done == 6 and (engine.status("ids").next_due or 0) > time.time() + 3600, timeout=60)
        rows = {row["phone"]: row for row in engine.report("ids")}
        reason = " ".join(engine.status("ids").waiting_for)
        dialled = {call["contact_uri"] for call in calls_of(running, "ids")}
        with LegsClient(running.settings.legs_api) as legs:  # the caller ID the sandbox was asked for
            asked = [legs.get_leg(rows[phone]["leg_sid"])["exophone"] for phone in phones[:6]]
        engine.cancel("ids")
    assert [rows[phone]["exophone"] for phone in phones[:6]] == [NEW_YORK, MUMBAI, BANGALORE, BANGALORE, MUMBAI, NEW_YORK] == asked
    waiting = rows[phones[6]]
    reopens = pool_reopens(CallerIdPool((BANGALORE, MUMBAI, NEW_YORK)), datetime.now(timezone.utc).timestamp())
    assert waiting["status"] == "pending" and phones[6] not in dialled
    assert datetime.fromisoformat(waiting["next_attempt_at"]).timestamp() == pytest.approx(reopens, abs=1)
    assert "every caller ID of the campaign is at its daily cap" in reason
