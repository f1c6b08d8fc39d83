"""The campaign engine end to end, every part real: the dial poller and dial workers against the
sandbox, with its limits, callee outcomes and time zones.

- pacing: a backlog under a per-minute budget the sandbox enforces too, with two dial and two
  events workers: the budget is used, the sandbox never answers 429, in-call actions are not
  held up by the dials waiting, and the caps hold across processes;
- a dial worker killed holding a slot: the slot is reclaimed and the contact still dialled;
- redials per outcome, DNC added mid-campaign, calling windows across zones, pause, resume
  and cancel, contact variables on the bot's stream URL.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from dialstream.app.demo import fetch_timelines
from dialstream.app.stack import Stack
from dialstream.broker.celery_app import EVENTS_QUEUE
from dialstream.domain.campaign import CampaignConfig, CampaignState, Contact, LegTag
from dialstream.engine.campaigns import CampaignEngine
from dialstream.settings import EngineConfig
from dialstream.state import keys
from tests.utils import wait_for
from tests.workers.dial_crash_app import CRASH_FLAG
from tests.workers.test_faults import running_stack

pytestmark = pytest.mark.e2e

DB = 11  # the database of the stack the behaviour tests share
OWN_DB = 12  # the database of the tests that need a stack of their own (run first: one stack at a time)
CALLEE = {"answer": 1.0, "ring_ms": [100, 300], "talk_ms": [1000, 1500]}
NUMBERS = {
    "+919700000001": "busy",
    "+919700000002": "no-answer",
    "+919700000003": "failed",
    "+919700000004": {"machine": 1.0, "amd_ms": [200, 300]},
    # The human of the AMD campaign: a callee's talk time runs from the pickup, and synchronous AMD
    # listens for up to a second of it before leg_answered; CALLEE's would leave the bot stream
    # a few hundred ms to come up before the hang-up (answered_no_stream on a loaded machine).
    "+919700000005": {"talk_ms": [4000, 5000]},
}


def finish(engine: CampaignEngine, campaign_id: str, timeout: float = 30) -> None:
    wait_for(lambda: engine.status(campaign_id).finished, timeout=timeout)


def calls_of(stack: Stack, campaign_id: str) -> list[dict[str, Any]]:
    """The sandbox's calls for one campaign (each leg's custom_param is its LegTag)."""
    calls = fetch_timelines(stack.sandbox_url).values()
    return [c for c in calls if (tag := LegTag.decode(c["custom_param"])) and tag.campaign_id == campaign_id]


def overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = live = 0
    for _, step in edges:
        live += step
        most = max(most, live)
    return most


BUDGET = 100  # requests/minute, for the dialer and the sandbox alike (Exotel's is 200: the same test, twice as long)
PACING = {"seed": 29, "callee": {"answer": 1.0, "ring_ms": [100, 300], "talk_ms": [2000, 3000]}, "limits": {"requests_per_minute": BUDGET}}


def test_a_backlog_uses_the_budget_without_a_429_keeps_the_caps_and_never_delays_in_call_actions(redis_url, tmp_path):
    """Two campaigns of 40 contacts, two dial and two events workers, the sandbox allowing what the dialer's budget says:
    90 % of the budget is used within seconds and never more, no 429, at most 5 calls per campaign and 8 in all,
    and every answered call gets its bot stream at once although the budget is spent and contacts wait."""
    engine_env = EngineConfig(api_budget=BUDGET, max_calls=8).to_env()
    with running_stack(redis_url, tmp_path, PACING, db=OWN_DB, env=engine_env, dial_workers=2, events_workers=2) as (running, store):
        engine = CampaignEngine(store.redis, running.settings.account_sid, EngineConfig.from_env(engine_env))
        for name, first in (("pa", 0), ("pb", 100)):
            contacts = [Contact(f"c{i}", f"+9193{first + i:08d}") for i in range(40)]
            engine.submit(CampaignConfig(name, max_concurrent=5, greeting_text="Hi", window="any"), contacts)
        wait_for(lambda: engine.pacer.used() >= 0.9 * BUDGET, timeout=25)
        backlog = engine.status("pa").pending + engine.status("pb").pending
        engine.cancel("pa"), engine.cancel("pb")
        finish(engine, "pa"), finish(engine, "pb")
        used, throttled = engine.pacer.used(), engine.pacer.throttled_count()
        results = [*store.results("pa").values(), *store.results("pb").values()]
        calls = fetch_timelines(running.sandbox_url).values()
    assert backlog > 0 and 0.9 * BUDGET <= used <= BUDGET and throttled == 0
    answered = [r for r in results if r.get("answered_at") is not None]
    assert answered and all(r["outcome"] == "completed" and r["streams_started"] == 1 for r in answered)
    by_campaign: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for call in calls:
        by_campaign[LegTag.decode(call["custom_param"]).campaign_id].append((call["timeline"]["dialed"], call["timeline"]["hung_up"]))
    assert max(overlap(by_campaign["pa"]), overlap(by_campaign["pb"])) <= 5
    assert overlap(by_campaign["pa"] + by_campaign["pb"]) <= 8
    # Waiting for budget would mean most of a minute; the backlog waits in Redis, not in front of in-call actions.
    dispatch = [c["figures"]["dispatch_latency_ms"] for c in calls if c["figures"]["dispatch_latency_ms"] is not None]
    assert len(dispatch) == len(answered) and max(dispatch) < 2000, sorted(dispatch)[-5:]


def test_a_dial_worker_killed_holding_a_slot_loses_no_contact_and_no_capacity(redis_url, tmp_path):
    """SIGKILL in the middle of a dial: its slot expires and is reclaimed, its contact is dialled once the lease runs out, every contact ends."""
    env = {"DIALSTREAM_SLOT_TTL": "2", "DIALSTREAM_DIAL_LEASE": "3"}
    scenario = {"seed": 31, "callee": CALLEE}
    with running_stack(redis_url, tmp_path, scenario, db=OWN_DB, env=env, dial_workers=2, worker_app="tests.workers.dial_crash_app") as (running, store):
        engine = CampaignEngine(store.redis, running.settings.account_sid)
        contacts = [Contact(f"k{i}", f"+91920000000{i}") for i in range(5)]
        engine.submit(CampaignConfig("crash", flow="bot_first", max_concurrent=1, window="any"), contacts)
        crashed = wait_for(lambda: store.redis.get(CRASH_FLAG), timeout=10)
        assert engine.status("crash").in_flight == 1  # the dead worker's slot, not yet expired
        finish(engine, "crash", timeout=40)
        status = engine.status("crash")
        leftover = engine.slots.counts("crash")
        calls = calls_of(running, "crash")
    assert status.outcomes == {"completed": 5} and status.dials == 5 == len(calls)
    assert crashed.split(":", 1)[1] in {c["contact_uri"] for c in calls}
    assert (leftover.account_calls, leftover.campaign_calls) == (0, 0)
    assert json.dumps(status.to_dict())  # the status of a finished campaign serialises


def test_an_events_backlog_holds_new_dials_back_until_the_events_workers_catch_up(redis_url, tmp_path):
    """No events worker and 10 leg events waiting, with DIALSTREAM_EVENT_BACKLOG 10: the dial poller places no call
    and says why in the campaign's status; once the backlog is drained every contact is dialled."""
    env = EngineConfig(event_backlog=10).to_env()
    with running_stack(redis_url, tmp_path, {"seed": 37, "callee": CALLEE}, db=OWN_DB, env=env, events_workers=0) as (running, store):
        store.redis.lpush(EVENTS_QUEUE, *(json.dumps({"waiting": n}) for n in range(10)))
        engine = CampaignEngine(store.redis, running.settings.account_sid)
        engine.submit(CampaignConfig("held", flow="bot_first", window="any"), [Contact(f"k{i}", f"+91930000000{i}") for i in range(3)])
        wait_for(lambda: any("held back" in reason for reason in engine.status("held").waiting_for), timeout=20)
        held_status, held_calls = engine.status("held"), calls_of(running, "held")
        store.redis.delete(EVENTS_QUEUE)
        wait_for(lambda: len(calls_of(running, "held")) == 3, timeout=30)
    assert held_calls == [] and held_status.dials == 0 and any("10 leg events" in reason for reason in held_status.waiting_for)


@pytest.fixture(scope="module")
def stack(redis_url, tmp_path_factory) -> Iterator[tuple[Stack, CampaignEngine]]:
    """One stack for the behaviour tests: every callee answers as CALLEE says but the few NUMBERS above."""
    scenario = {"seed": 23, "callee": CALLEE, "numbers": NUMBERS}
    with running_stack(redis_url, tmp_path_factory.mktemp("campaigns"), scenario, db=DB) as (running, store):
        yield running, CampaignEngine(store.redis, running.settings.account_sid)


def test_each_outcome_is_redialled_by_its_own_rule(stack):
    """Busy is dialled 3 times, no-answer and failed twice, a machine once (its rule is off), an answered call once."""
    running, engine = stack
    retries = {"busy": {"max_attempts": 3, "delay": 0.5}, "no_answer": {"max_attempts": 2, "delay": 0.5},
               "failed": {"max_attempts": 2, "delay": 0.5}, "machine": None}  # fmt: skip
    config = CampaignConfig("redials", flow="bot_first", ring_timeout=2, amd_enable=True, retries=retries, window="any")
    numbers = list(NUMBERS)
    engine.submit(config, [Contact(f"k{i}", number) for i, number in enumerate(numbers, 1)])
    finish(engine, "redials")
    rows = {row["phone"]: row for row in engine.report("redials")}
    expected = {"+919700000001": ("busy", 3), "+919700000002": ("no_answer", 2), "+919700000003": ("failed", 2),
                "+919700000004": ("machine", 1), "+919700000005": ("completed", 1)}  # fmt: skip
    assert {phone: (row["outcome"], row["attempts"]) for phone, row in rows.items()} == expected
    assert rows["+919700000001"]["history"] == ["busy", "busy"]
    dialled = defaultdict(int)
    for call in calls_of(running, "redials"):
        dialled[call["contact_uri"]] += 1
    assert {phone: attempts for phone, (_, attempts) in expected.items()} == dialled


def test_a_number_put_on_the_dnc_list_mid_campaign_is_never_dialled(stack, tmp_path):
    """Contacts dialled one at a time from a CSV: the third, blocked while the first is on the line, ends as dnc; the others' variables reach the bot."""
    running, engine = stack
    path = tmp_path / "batch.csv"
    path.write_text("phone,name,amount\n+919600000001,Asha,500\n+919600000002,Bob,7\nbad,x,1\n+919600000003,Chen,12\n+919600000004,Dev,9\n")
    report = engine.submit_file(CampaignConfig("dnc-mid", flow="bot_first", max_concurrent=1, window="any"), path)
    assert (report.accepted, report.rejected) == (4, 1)
    wait_for(lambda: engine.redis.hget(keys.campaign("dnc-mid", "legs"), "r2"), timeout=10)
    engine.dnc.add(["+919600000003"], "dnc-mid")
    finish(engine, "dnc-mid")
    rows = {row["line"]: row for row in engine.report("dnc-mid")}
    assert [rows[line]["outcome"] for line in (2, 3, 4, 5, 6)] == ["completed", "completed", "unparseable", "dnc", "completed"]
    assert rows[5]["attempts"] == 0
    calls = calls_of(running, "dnc-mid")
    assert sorted(c["contact_uri"] for c in calls) == ["+919600000001", "+919600000002", "+919600000004"]
    for call in calls:
        query = parse_qs(urlsplit(call["streams"][0]["url"]).query)
        assert set(query) == {"name", "amount"}


def test_each_contact_is_dialled_inside_its_own_calling_window(stack):
    """With a window open now in Kolkata and closed in New York, the Indian contacts are called and the US ones wait for their morning."""
    running, engine = stack
    now = datetime.now(timezone.utc)
    kolkata = now.astimezone(ZoneInfo("Asia/Kolkata"))
    window = f"{kolkata - timedelta(hours=3):%H:%M}-{kolkata + timedelta(hours=3):%H:%M}"  # New York is 9.5-10.5 h behind
    contacts = [Contact("in1", "+919500000001"), Contact("us1", "+12125550101"), Contact("in2", "+919500000002"), Contact("us2", "+12125550102")]
    engine.submit(CampaignConfig("zones", flow="bot_first", window=window), contacts)
    wait_for(lambda: engine.status("zones").done == 2, timeout=15)
    status = engine.status("zones")
    opens = CampaignConfig("x", window=window).calling_window.next_allowed(now, "America/New_York").timestamp()
    assert (status.pending, status.outcomes) == (2, {"completed": 2}) and status.next_due == pytest.approx(opens, abs=1)
    assert sorted(c["contact_uri"] for c in calls_of(running, "zones")) == ["+919500000001", "+919500000002"]
    assert engine.cancel("zones") == 2
    assert engine.status("zones").outcomes == {"completed": 2, "canceled": 2}


def test_pause_holds_new_dials_resume_restarts_them_and_cancel_lets_live_calls_finish(stack):
    """Paused: no dial while the calls on the line finish; resumed: dialing again; canceled: the rest canceled, live calls complete."""
    running, engine = stack
    engine.submit(CampaignConfig("steer", flow="bot_first", max_concurrent=2, window="any"), [Contact(f"s{i}", f"+9194000000{i:02d}") for i in range(10)])
    wait_for(lambda: engine.status("steer").dials >= 2, timeout=10)
    engine.pause("steer")
    wait_for(lambda: engine.status("steer").in_flight == 0, timeout=10)
    held = engine.status("steer").dials
    time.sleep(1.0)
    assert engine.status("steer").dials == held and held < 10
    engine.resume("steer")
    wait_for(lambda: engine.status("steer").in_flight > 0, timeout=10)
    canceled = engine.cancel("steer")
    finish(engine, "steer")
    status = engine.status("steer")
    assert status.state is CampaignState.CANCELED and status.done == 10 and sum(status.outcomes.values()) == 10
    # A dial already under way when the campaign was canceled still places its call, whose outcome replaces "canceled".
    assert status.outcomes["canceled"] <= canceled and status.outcomes["completed"] == status.dials
    assert len(calls_of(running, "steer")) == status.dials
