"""Applying events to records stored in a real Redis: atomic, idempotent, crash-safe."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import uuid

import pytest
import redis
import redis.asyncio as aioredis

from dialstream.domain.campaign import CampaignConfig, Flow, LegTag
from dialstream.domain.leg_state import GreetingState, Phase
from dialstream.domain.transfer import TransferRequest
from dialstream.exotel import events as ev
from dialstream.exotel.events import LegEvent
from dialstream.state import keys
from dialstream.state.leg_commit import add_error, commit_event, commit_timer, commit_transfer
from dialstream.state.store import Store, record_progress_event

_n = itertools.count()


@pytest.fixture
def store(redis_url):
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/4", decode_responses=True)
    yield Store(client)
    client.close()


@pytest.fixture
def leg_sid() -> str:
    return uuid.uuid4().hex


CAMPAIGN = CampaignConfig("camp", flow=Flow.GREETING_SAY, bot_url="ws://bot/media")
TAG = LegTag("camp", "c1")


def event(leg_sid: str, name: str) -> LegEvent:
    kind = ev.LIFECYCLE if name.startswith("leg_") else ev.ACTION
    return LegEvent(uuid.uuid4().hex, kind, name, 100.0 + next(_n), leg_sid)


def test_answered_stores_the_actions_in_the_outbox(store, leg_sid):
    """leg_answered is committed with start_stream and start_say waiting in the outbox."""
    record, ended, _ = commit_event(store, event(leg_sid, ev.LEG_ANSWERED), TAG, CAMPAIGN)
    assert [a.kind for a in record.outbox] == ["start_stream", "start_say"]
    stored, version, _ = store.load_leg(leg_sid)
    assert stored == record and version == 1 and not ended


def test_progress_recorded_by_the_ingress_is_folded_into_the_record_the_next_event_creates(store, leg_sid, redis_url):
    """leg_connecting and leg_ringing stored beside the leg (no record yet) are on the record leg_answered commits."""
    for name, at in ((ev.LEG_CONNECTING, 90.0), (ev.LEG_RINGING, 91.0)):
        asyncio.run(_record(redis_url.rsplit("/", 1)[0] + "/4", leg_sid, name, at))
    record, _, _ = commit_event(store, event(leg_sid, ev.LEG_ANSWERED), TAG, CAMPAIGN)
    assert (record.connecting_at, record.ringing_at, record.phase) == (90.0, 91.0, Phase.ANSWERED)
    stored, _, _ = store.load_leg(leg_sid)
    assert json.loads(store.redis.hget(keys.leg(leg_sid), "doc"))["ringing_at"] == 91.0 and stored == record


async def _record(url: str, leg_sid: str, name: str, at: float) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        await record_progress_event(client, leg_sid, name, at)
    finally:
        await client.aclose()


def test_redelivered_event_has_no_second_effect_but_returns_the_unsent_outbox(store, leg_sid):
    """A worker died after committing but before dispatching: the re-delivery returns the same actions, adds none."""
    answered = event(leg_sid, ev.LEG_ANSWERED)
    first, _, _ = commit_event(store, answered, TAG, CAMPAIGN)
    again, _, _ = commit_event(store, answered, TAG, CAMPAIGN)
    assert again.outbox == first.outbox
    assert store.load_leg(leg_sid)[1] == 1  # nothing written the second time


def test_dispatched_actions_leave_the_outbox(store, leg_sid):
    """Once marked dispatched, actions are left out so a re-delivery sends nothing again,
    and the next transition stores the record without them."""
    answered = event(leg_sid, ev.LEG_ANSWERED)
    record, _, _ = commit_event(store, answered, TAG, CAMPAIGN)
    store.mark_dispatched(leg_sid, [a.action_id for a in record.outbox])
    again, _, _ = commit_event(store, answered, TAG, CAMPAIGN)
    assert again.outbox == ()
    started, _, _ = commit_event(store, event(leg_sid, ev.STREAM_STARTED), TAG, CAMPAIGN)
    assert [a.kind for a in started.outbox] == ["stop_say"]
    doc = json.loads(store.redis.hget(keys.leg(leg_sid), "doc"))
    assert [a["kind"] for a in doc["outbox"]] == ["stop_say"]


def test_marking_part_of_the_outbox_keeps_the_rest(store, leg_sid):
    """A worker that died after publishing only some actions leaves the others for the re-delivery."""
    answered = event(leg_sid, ev.LEG_ANSWERED)
    record, _, _ = commit_event(store, answered, TAG, CAMPAIGN)
    store.mark_dispatched(leg_sid, [record.outbox[0].action_id])
    again, _, _ = commit_event(store, answered, TAG, CAMPAIGN)
    assert again.outbox == record.outbox[1:]


def test_concurrent_events_for_one_leg_are_all_applied(store, leg_sid):
    """Events applied by many threads at once all land: compare-and-set retries lost races."""
    commit_event(store, event(leg_sid, ev.LEG_ANSWERED), TAG, CAMPAIGN)
    barrier = threading.Barrier(3)

    def apply(name: str) -> None:
        barrier.wait()
        commit_event(store, event(leg_sid, name), TAG, CAMPAIGN)

    threads = [threading.Thread(target=apply, args=(name,)) for name in (ev.SAY_STARTED, ev.STREAM_STARTED, ev.LEG_RINGING)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    record, _, _ = store.load_leg(leg_sid)
    assert record.phase is Phase.STREAMING
    assert record.greeting in (GreetingState.STOPPING,)
    assert record.streams_started == 1
    assert [a.kind for a in record.outbox].count("stop_say") >= 1


def test_terminated_reports_that_the_leg_just_ended_once(store, leg_sid):
    """The commit that ends the leg says so; a duplicate of it does not."""
    terminated = event(leg_sid, ev.LEG_TERMINATED)
    _, ended, applied = commit_event(store, terminated, TAG, CAMPAIGN)
    _, ended_again, applied_again = commit_event(store, terminated, TAG, CAMPAIGN)
    assert (ended, ended_again) == (True, False)
    assert (applied, applied_again) == (True, False)


def test_action_claim_belongs_to_one_task_id(store, leg_sid):
    """An action is claimed by one task id; its own retry may claim again, another task may not."""
    assert store.claim_action(leg_sid, "start_say#1", "start_say", "task-a") == "claimed"
    assert store.claim_action(leg_sid, "start_say#1", "start_say", "task-a") == "claimed"
    assert store.claim_action(leg_sid, "start_say#1", "start_say", "task-b") == "duplicate"


def test_late_action_on_a_moved_on_leg_is_refused(store, leg_sid):
    """No stream or greeting is started on a leg whose stream is up, and nothing is sent to an ended leg."""
    commit_event(store, event(leg_sid, ev.LEG_ANSWERED), TAG, CAMPAIGN)
    commit_event(store, event(leg_sid, ev.STREAM_STARTED), TAG, CAMPAIGN)
    assert store.claim_action(leg_sid, "start_stream#1", "start_stream", "late-task") == "stream-up"
    assert store.claim_action(leg_sid, "start_say#1", "start_say", "late-task") == "stream-up"
    commit_event(store, event(leg_sid, ev.LEG_TERMINATED), TAG, CAMPAIGN)
    assert store.claim_action(leg_sid, "stop_say#1", "stop_say", "late-task") == "leg-ended"


def test_a_stream_attempt_a_later_one_superseded_is_refused(store, leg_sid):
    """Its start was given up for lost and another bot tried: the first attempt's request, still
    being retried, must not start a second bot on the call."""
    commit_event(store, event(leg_sid, ev.LEG_ANSWERED), TAG, CAMPAIGN)
    assert store.claim_action(leg_sid, "start_stream#1", "start_stream", "first") == "claimed"
    commit_timer(store, leg_sid, "start_stream#1", CAMPAIGN)  # no stream_started in time: start_stream#2
    assert store.claim_action(leg_sid, "start_stream#1", "start_stream", "first") == "superseded"
    assert store.claim_action(leg_sid, "start_stream#2", "start_stream", "second") == "claimed"


def test_errors_are_appended_with_a_reason(store, leg_sid):
    """add_error keeps every error and sets the reason."""
    commit_event(store, event(leg_sid, ev.LEG_ANSWERED), TAG, CAMPAIGN)
    add_error(store, leg_sid, "first")
    record = add_error(store, leg_sid, "second", reason="bot stream could not be started")
    assert record.errors == ("first", "second")
    assert record.reason == "bot stream could not be started"


def test_an_agents_leg_events_go_to_the_callees_record_and_never_make_one(store, leg_sid):
    """The transfer's agent leg has no record: its events change the callee's (found by its tag), and without one change nothing."""
    agents = CampaignConfig("camp", flow=Flow.BOT_FIRST, bot_url="ws://bot/media", agents=("+918000000001",))
    commit_event(store, event(leg_sid, ev.LEG_ANSWERED), TAG, agents)
    commit_event(store, event(leg_sid, ev.STREAM_STARTED), TAG, agents)
    started = commit_transfer(store, leg_sid, TransferRequest(), agents, 1, 101.0)
    assert [a.kind for a in started.outbox][-1] == "create_leg"
    agent_tag = LegTag("camp", "c1", agent_of=leg_sid)
    record, _, applied = commit_event(store, event("AGENT-" + leg_sid, ev.LEG_RINGING), agent_tag, agents)
    assert applied and record.leg_sid == leg_sid and record.transfer.leg_sid == "AGENT-" + leg_sid
    assert store.load_leg("AGENT-" + leg_sid)[0] is None
    orphan = LegTag("camp", "c1", agent_of="no-such-leg")
    assert commit_event(store, event("AGENT-x", ev.LEG_RINGING), orphan, agents) == (None, False, False)


def test_a_fact_that_comes_after_the_call_was_recorded_is_added_to_its_record(store):
    """patch_result sets fields on the contact's latest call or on one in its history, by leg; no such call: False."""
    campaign_id = f"camp-{uuid.uuid4().hex[:6]}"
    store.record_result(campaign_id, "c1", {"leg_sid": "L2", "outcome": "completed", "history": [{"leg_sid": "L1", "outcome": "busy"}]})
    assert store.patch_result(campaign_id, "c1", "L2", recording_url="https://r/2.wav")
    assert store.patch_result(campaign_id, "c1", "L1", recording_url="https://r/1.wav")
    assert not store.patch_result(campaign_id, "c1", "L3", recording_url="x") and not store.patch_result(campaign_id, "c9", "L1", x=1)
    result = store.result(campaign_id, "c1")
    assert result["recording_url"] == "https://r/2.wav" and result["history"][0]["recording_url"] == "https://r/1.wav"
    assert result["outcome"] == "completed"
