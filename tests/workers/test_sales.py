"""What sales and collections campaigns need, end to end with every part real: caller IDs by
region and rotation under a daily cap; dispositions and callbacks the scripted bot sets; a
voicemail left after an answering machine's beep; warm and cold transfers to an agent, and
agents who do not answer; recorded calls.

Each test runs a small campaign against the sandbox and reads the campaign's own report
(``CampaignEngine.report``), the sandbox's timelines, or both.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from dialstream.app.stack import Stack
from dialstream.domain.caller_id import CallerIdPool, pool_reopens
from dialstream.domain.campaign import CampaignConfig, Contact, LegTag
from dialstream.domain.dialing import MAX_CALLBACKS
from dialstream.engine.campaigns import CampaignEngine
from dialstream.exotel.legs_api import LegsClient
from dialstream.state.store import Store
from dialstream.state.webhooks import Webhooks
from tests.utils import wait_for
from tests.workers.clock_app import CLOCK_OFFSET
from tests.workers.test_campaigns import calls_of
from tests.workers.test_faults import running_stack

pytestmark = pytest.mark.e2e

OWN_DB = 3  # the database of the tests that need a stack of their own (run first: one stack at a time)
DB = 2  # the database of the stack the other tests share
BANGALORE, MUMBAI, NEW_YORK = "+918030752400", "+912261234567", "+12125550100"
CALLEE = {"answer": 1.0, "ring_ms": [100, 300], "talk_ms": [800, 1200]}
GREETING = "Hello, this is Asha from Acme Finance, calling about your loan application."  # about 3 s of speech
SCRIPT = Path(__file__).with_name("sales_script.yaml")  # the bot's menu: 1 a colleague, 3 a callback
LATER = "+919110000001"  # presses 3: "call me back in an hour"
MACHINE = "+919110000002"  # an answering machine: its greeting, then the beep after 3 s
ASKS_AGENT = ("+919110000011", "+919110000012", "+919110000013")  # press 1: the bot asks for a transfer
PRESSES_0 = "+919110000021"  # presses 0, which the bot does not know: a campaign's transfer key
PERSON, RECORDED = "+919110000003", "+919110000031"  # talk for 3 s
AGENT, AWAY = "+918000000001", "+918000000002"  # answers after 2 s; never answers
SHARED = {
    "seed": 43,
    "callee": {"answer": 1.0, "ring_ms": [100, 300], "talk_ms": [20000, 21000]},
    "numbers": {
        LATER: {"dtmf": [{"digit": "3", "after_ms": 500}]},
        MACHINE: {"machine": 1.0, "amd_ms": [400, 600], "beep_ms": [3000, 3500]},
        **{number: {"dtmf": [{"digit": "1", "after_ms": 500}], "talk_ms": [14000, 15000]} for number in ASKS_AGENT},
        PRESSES_0: {"dtmf": [{"digit": "0", "after_ms": 500}], "talk_ms": [14000, 15000]},
        PERSON: {"talk_ms": [3000, 3500]},
        RECORDED: {"talk_ms": [3000, 3500]},
    },
    "agents": {AGENT: 2, AWAY: None},
}


def test_each_call_shows_the_caller_id_of_its_region_else_the_least_used_until_every_one_is_at_its_cap(redis_url, tmp_path):
    """A New York callee sees the New York exophone (its area code), a Bangalore-circle mobile the
    Mumbai one (the region map), UK callees the least used of the rest in turn; with 2 calls a day
    per exophone the seventh contact waits for the first new day at an exophone's home."""
    # The account's ExoPhones (the sandbox refuses any other caller ID); the campaign calls from all three.
    env = {"EXOTEL_EXOPHONES": f"{BANGALORE},{MUMBAI},{NEW_YORK}", "EXOTEL_EXOPHONE_REGIONS": f"+91984={MUMBAI}", "EXOTEL_EXOPHONE_DAILY_CAP": "2"}
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


@pytest.fixture(scope="module")
def sales(redis_url, tmp_path_factory) -> Iterator[tuple[Stack, Store, CampaignEngine]]:
    """One stack for the tests below: the scripted bot of SCRIPT, and workers on a campaign clock the tests can move."""
    with running_stack(
        redis_url, tmp_path_factory.mktemp("sales"), SHARED, db=DB, bot_kind="scripted", bot_script=SCRIPT,
        worker_app="tests.workers.clock_app",
    ) as (running, store):
        yield running, store, CampaignEngine(store.redis, running.settings.account_sid)


def test_a_callback_the_bot_scheduled_is_dialled_at_its_time_a_few_times_and_its_disposition_is_reported(sales):
    """The callee presses 3: the bot sets callback_requested and asks for a call in an hour; the contact waits for
    it, is dialled once campaign time reaches it, and after MAX_CALLBACKS callbacks its last call is final; every
    call.completed webhook carries the disposition."""
    running, store, engine = sales
    hooks = Webhooks(store.redis)
    hooks.add_endpoint("http://127.0.0.1:9/crm", campaign_id="later", events=["call.completed"])  # nobody delivers: read below
    engine.submit(CampaignConfig("later", greeting_text=GREETING, window="any"), [Contact("c1", LATER)])
    row = wait_for(lambda: (r := next(engine.report("later")))["status"] == "waiting" and r, timeout=30)
    assert (row["disposition"], row["disposition_data"], row["history"]) == ("callback_requested", {"choice": "menu"}, ["completed"])
    asked = datetime.fromisoformat(row["callback_at"]).timestamp()
    assert asked > time.time() + 3500 and datetime.fromisoformat(row["next_attempt_at"]).timestamp() == pytest.approx(asked, abs=1)
    assert len(calls_of(running, "later")) == 1  # nobody dials it before its time
    moved = time.time()
    store.redis.set(CLOCK_OFFSET, 3700)  # campaign time: past the hour asked for
    wait_for(lambda: engine.status("later").finished, timeout=60)
    row = next(engine.report("later"))
    calls = sorted(calls_of(running, "later"), key=lambda call: call["timeline"]["dialed"])
    assert row["attempts"] == len(calls) == MAX_CALLBACKS + 1 and all(call["timeline"]["dialed"] > moved for call in calls[1:])
    assert row["outcome"] == "completed" and row["disposition"] == "callback_requested" and row["history"] == ["completed"] * MAX_CALLBACKS
    assert engine.status("later").dispositions == {"callback_requested": MAX_CALLBACKS + 1}
    completed = [json.loads(hooks.delivery(d).body)["data"] for d in hooks.take_due(100, 60)]
    assert [c["disposition"] for c in completed] == ["callback_requested"] * len(calls)


def test_a_voicemail_is_left_after_the_machines_beep_while_a_person_gets_the_bot_at_once(sales):
    """With asynchronous AMD both calls start the greeting and the bot at the answer; on the machine they stop,
    the message is said after the beep, and the call ends voicemail_left."""
    running, store, engine = sales
    config = CampaignConfig("vm", greeting_text=GREETING, amd_enable=True, async_amd=True, amd_action="voicemail",
                            voicemail_message="This is Acme Finance about your loan. Please call us back on 1800 200 300.",
                            window="any")  # fmt: skip
    engine.submit(config, [Contact("machine", MACHINE), Contact("person", PERSON)])
    wait_for(lambda: engine.status("vm").finished, timeout=60)
    rows = {row["contact_id"]: row for row in engine.report("vm")}
    calls = {call["contact_uri"]: call for call in calls_of(running, "vm")}
    assert (rows["machine"]["outcome"], rows["person"]["outcome"]) == ("voicemail_left", "completed")
    machine, person = calls[MACHINE], calls[PERSON]
    for call in (machine, person):  # the greeting and the bot at the answer, not after the verdict
        assert {a["name"]: a["trigger"] for a in call["actions"][:2]} == {"start_say": "leg_answered", "start_stream": "leg_answered"}
    voicemail = machine["voicemail"]
    message = next(a for a in machine["actions"] if a["name"] == "start_say" and a["params"]["text"] == config.voicemail_message)
    # Over the machine's greeting played only the greeting and the bot, until the verdict stopped them.
    assert voicemail["voicemail_left"] and message["received_at"] >= voicemail["beep_at"]
    assert machine["hangup_by"] == "api" and not machine["violations"] and person["voicemail"] is None


def transfer_calls(running: Stack, campaign_id: str) -> tuple[dict, dict]:
    """The sandbox's callee leg and agent leg of a campaign's one transferred call."""
    calls = calls_of(running, campaign_id)
    agents = [c for c in calls if LegTag.decode(c["custom_param"]).agent_of]
    [callee] = [c for c in calls if c not in agents]
    assert len(agents) <= 1 and all(LegTag.decode(a["custom_param"]).agent_of == callee["leg_sid"] for a in agents)
    return callee, (agents[0] if agents else {})


def test_a_warm_transfer_the_bot_asks_for_whispers_to_the_agent_then_bridges_the_callee(sales):
    """The callee presses 1: the bot asks for a transfer; its stream stops, the callee hears the hold message, the
    agent's leg is created beside the callee's and, answered, hears the whisper before the bridge; outcome transferred."""
    running, store, engine = sales
    config = CampaignConfig("warm", greeting_text=GREETING, agents=(AGENT,), transfer_mode="warm", hold_message="Please hold, connecting you.",
                            whisper_message="A loan customer who asked for a person.", window="any")  # fmt: skip
    engine.submit(config, [Contact("c1", ASKS_AGENT[0])])
    wait_for(lambda: engine.status("warm").finished, timeout=60)
    [row] = engine.report("warm")
    callee, agent = transfer_calls(running, "warm")
    assert (row["outcome"], row["disposition"], row["agent"]) == ("transferred", "wants_agent", AGENT)
    assert row["agent_ring_ms"] > 0 and datetime.fromisoformat(row["bridged_at"]).timestamp() >= callee["timeline"]["answered"]
    said_to_callee = [a["params"]["text"] for a in callee["actions"] if a["name"] == "start_say"]
    assert said_to_callee == [GREETING, config.hold_message] and callee["streams"][0]["stop_reason"] == "stopped"
    whisper = [a for a in agent["actions"] if a["name"] == "start_say"]
    assert [a["params"]["text"] for a in whisper] == [config.whisper_message]
    bridge = callee["bridges"][0]
    assert set(bridge["legs"]) == {callee["leg_sid"], agent["leg_sid"]} and bridge["joined_at"] > whisper[0]["received_at"]
    assert agent["contact_uri"] == AGENT and not callee["warnings"] and not agent["warnings"]  # co-located: no warning
    assert not callee["violations"] and not agent["violations"]


def test_a_cold_transfer_by_the_campaigns_key_bridges_at_the_agents_answer(sales):
    """The callee presses 0, the campaign's transfer key, unknown to the bot: the workers transfer the call cold
    (no whisper); the agent's answer brings the bridge; outcome transferred."""
    running, store, engine = sales
    config = CampaignConfig("cold", greeting_text=GREETING, agents=(AGENT,), transfer_key="0", window="any")
    engine.submit(config, [Contact("c1", PRESSES_0)])
    wait_for(lambda: engine.status("cold").finished, timeout=60)
    [row] = engine.report("cold")
    callee, agent = transfer_calls(running, "cold")
    assert (row["outcome"], row["agent"]) == ("transferred", AGENT) and row["bridged_at"]
    assert not [a for a in agent["actions"] if a["name"] == "start_say"] and callee["bridges"][0]["legs"]
    assert agent["timeline"]["answered"] <= callee["bridges"][0]["joined_at"]


def test_an_agent_who_does_not_answer_sends_the_call_back_to_the_bot_or_to_the_fallback_message(sales):
    """The agent never answers within 5 s: one call goes back to a new bot stream and completes; the other
    hears the fallback message and is hung up; neither is bridged, both record why."""
    running, store, engine = sales
    back = CampaignConfig("back", greeting_text=GREETING, agents=(AWAY,), agent_ring_timeout=5, transfer_fallback="bot", window="any")
    sorry = CampaignConfig("sorry", greeting_text=GREETING, agents=(AWAY,), agent_ring_timeout=5, transfer_fallback="message",
                           fallback_message="Sorry, no colleague is free right now. We will call you back.", window="any")  # fmt: skip
    engine.submit(back, [Contact("c1", ASKS_AGENT[1])])
    engine.submit(sorry, [Contact("c1", ASKS_AGENT[2])])
    wait_for(lambda: engine.status("back").finished and engine.status("sorry").finished, timeout=90)
    for campaign_id in ("back", "sorry"):
        [row] = engine.report(campaign_id)
        assert (row["outcome"], row["agent"], row["bridged_at"]) == ("completed", AWAY, None)
        result = store.result(campaign_id, "c1")
        assert result["transfer"]["state"] == "failed" and "no-answer" in result["transfer"]["reason"]
    callee, agent = transfer_calls(running, "back")
    assert callee["streams_started"] == 2 and agent["terminal_status"] == "no-answer" and not callee["bridges"]
    callee, _ = transfer_calls(running, "sorry")
    said = [a["params"]["text"] for a in callee["actions"] if a["name"] == "start_say"]
    assert said[-1] == sorry.fallback_message and callee["hangup_by"] == "api" and callee["streams_started"] == 1


def test_a_recorded_campaigns_calls_have_their_recording_url_in_the_report(sales):
    """With record on, each leg is created recording; the URL of recording_available is in the report and serves the WAV."""
    running, store, engine = sales
    engine.submit(CampaignConfig("rec", flow="bot_first", record=True, window="any"), [Contact("c1", RECORDED)])
    wait_for(lambda: engine.status("rec").finished, timeout=60)
    [row] = engine.report("rec")
    [call] = calls_of(running, "rec")
    [recording] = call["recordings"]
    assert row["outcome"] == "completed" and row["recording_url"] == recording["url"] and recording["available"]
    response = httpx.get(row["recording_url"], auth=(running.settings.api_key, running.settings.api_token))
    assert response.status_code == 200 and response.content[:4] == b"RIFF"
