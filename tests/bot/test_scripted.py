"""The scripted bot: loading scripts and running the call flow over real WebSockets."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from pathlib import Path

import pytest
import redis

from bot.config import BotServerConfig
from bot.scripted import DEMO_SCRIPT, Script, ScriptedBot
from bot.server import BotServer
from dialstream.broker.celery_app import EVENTS_QUEUE, TRANSFER_CALL
from dialstream.broker.transfers import TransferRequests
from dialstream.domain.campaign import CampaignConfig, Contact, LegTag
from dialstream.domain.leg_state import LegRecord
from dialstream.domain.transfer import TransferRequest
from dialstream.engine.campaigns import CampaignEngine
from dialstream.errors import ConfigurationError
from dialstream.exotel.agentstream import Clear, MediaFormat, OutboundMark
from dialstream.exotel.audio import silence, tone
from dialstream.state.call_outcomes import CallOutcomes
from tests.bot.exotel import FakeExotel, run, streaming
from tests.utils import wait_for

MULAW = MediaFormat.mulaw(8000)


def marks(exotel: FakeExotel) -> list[str]:
    return [m.name for m in exotel.of_type(OutboundMark)]


def test_demo_script_loads_with_shipped_prompts():
    """The shipped demo script validates and its prompt files exist."""
    script = Script.load(DEMO_SCRIPT)
    assert script.start == "welcome"
    assert script.steps["welcome"].dtmf == {"1": "sales", "2": "support", "3": "later"}
    assert (script.steps["sales"].disposition, script.steps["later"].callback_after) == ("interested", 3600)
    assert all(Path(step.play).is_file() for step in script.steps.values())


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({}, "steps"),
        ({"steps": {"a": {"next": "b"}}}, "unknown step 'b'"),
        ({"start": "x", "steps": {"a": {}}}, "start step 'x'"),
        ({"steps": {"a": {"say": "hi", "play": "a.wav"}}}, "both"),
        ({"steps": {"a": {"play": "missing.wav"}}}, "does not exist"),
        ({"steps": {"a": {"sya": "typo"}}}, "must be a mapping"),
        ({"steps": {"a": {"dtmf": ["1"]}}}, "dtmf"),
        ({"steps": {"a": {}}, "vad": {"loudness": 3}}, "loudness"),
        ({"steps": {"a": {"disposition": "Not OK!"}}}, "disposition code"),
        ({"steps": {"a": {"disposition": {"code": "ok", "blob": "x" * 3000}}}}, "at most 2000"),
        ({"steps": {"a": {"callback_after": "soon"}}}, "callback_after"),
        ({"steps": {"a": {"transfer": "hot"}}}, "transfer"),
        ({"steps": {"a": {"transfer": True, "hangup": True}}}, "does not hang up"),
    ],
)
def test_invalid_scripts_are_refused(raw, fragment, tmp_path):
    """Scripts with dangling references, typos or missing files raise ConfigurationError."""
    with pytest.raises(ConfigurationError, match=fragment):
        Script.from_dict(raw, base=tmp_path)


def test_from_file_prepares_say_prompts(tmp_path):
    """A script's say texts become the bot class's prepared prompts."""
    path = tmp_path / "flow.yaml"
    path.write_text("steps:\n  hello: {say: 'Hello there', next: bye}\n  bye: {say: 'Bye', hangup: true}\n")
    bot = ScriptedBot.from_file(path)
    assert bot.prompts == ("Hello there", "Bye")
    assert bot.script.start == "hello"


def test_dtmf_menu_interrupts_and_follows_the_flow():
    """A key during the welcome clears it, plays the chosen branch, says goodbye and hangs up."""

    async def scenario() -> None:
        async with BotServer(ScriptedBot.demo(), BotServerConfig(port=0)) as server:
            async with streaming(server.url, media_format=MULAW) as exotel:
                await exotel.until(lambda: len(exotel.received) >= 1)
                await exotel.press("1")
                assert (await exotel.closed(timeout=8.0))[0] == 1000
        assert exotel.of_type(Clear)
        assert marks(exotel) == ["step-2-sales", "step-3-goodbye", "hangup"]

    run(scenario())


def test_speech_barges_in_and_ends_a_turn():
    """Caller speech stops the prompt (clear); the end of the turn moves on to the speech branch."""

    async def scenario() -> None:
        async with BotServer(ScriptedBot.demo(), BotServerConfig(port=0)) as server:
            async with streaming(server.url, media_format=MULAW) as exotel:
                await exotel.stream_audio(silence(MULAW, 300))
                await exotel.stream_audio(tone(MULAW, 400, 600, amplitude=0.5))
                await exotel.until(lambda: exotel.of_type(Clear))
                await exotel.stream_audio(silence(MULAW, 900))
                await exotel.until(lambda: "step-2-thanks" in marks(exotel))

    run(scenario())


def test_no_input_moves_on(tmp_path):
    """Silence for no_input_ms after a prompt was heard takes the no_input branch."""
    path = tmp_path / "flow.yaml"
    path.write_text(
        "no_input_ms: 300\nsteps:\n  ask: {say: 'Anyone', no_input: bye}\n  bye: {say: 'Bye', hangup: true}\n"
    )

    async def scenario() -> None:
        async with BotServer(ScriptedBot.from_file(path), BotServerConfig(port=0)) as server:
            async with streaming(server.url, media_format=MULAW) as exotel:
                await exotel.until(lambda: exotel.echoed == ["step-1-ask"])
                await exotel.stream_audio(silence(MULAW, 500), realtime=False)
                assert (await exotel.closed())[0] == 1000
        assert marks(exotel) == ["step-1-ask", "step-2-bye", "hangup"]

    run(scenario())


def test_a_menu_choice_sets_the_disposition_and_a_callback_that_reach_the_report(redis_client):
    """Pressing 3 in the demo sets callback_requested (with its data) and a callback an hour on, in
    Redis beside the leg; the campaign's report and statistics show them."""
    config = CampaignConfig(f"scripted-{uuid.uuid4().hex[:6]}", window="any")
    engine = CampaignEngine(redis_client, "acct")
    engine.submit(config, [Contact("r1", "+919900000001")], paused=True)
    bot = type("Recorded", (ScriptedBot.demo(),), {"outcomes": CallOutcomes(redis_client)})

    async def scenario() -> str:
        async with BotServer(bot, BotServerConfig(port=0)) as server:
            async with FakeExotel(server.url, media_format=MULAW) as exotel:
                leg_sid = f"call-{exotel.stream_sid}"  # the stream's call_sid: the leg
                assert engine.store.save_leg(LegRecord.new(leg_sid, LegTag(config.campaign_id, "r1"), config), 0) > 0
                await exotel.start()
                await exotel.until(lambda: len(exotel.received) >= 1)
                await exotel.press("3")
                assert (await exotel.closed(timeout=8.0))[0] == 1000
        return leg_sid

    asked = time.time()
    leg_sid = run(scenario())
    told = wait_for(lambda: CallOutcomes(redis_client).of_legs([leg_sid])[leg_sid]["callback"], timeout=5)
    assert told is not None and asked + 3599 <= told.due("UTC") <= time.time() + 3600  # to the second
    engine.store.record_result(config.campaign_id, "r1", {"outcome": "completed", "leg_sid": leg_sid})
    [row] = engine.report(config.campaign_id)
    assert (row["disposition"], row["disposition_data"]) == ("callback_requested", {"choice": "menu"})
    assert row["callback_at"] == told.at
    assert engine.status(config.campaign_id).dispositions == {"callback_requested": 1}


def test_a_transfer_step_and_every_key_pressed_reach_the_workers_queue(redis_url, tmp_path):
    """Each key goes to the events queue as a transfer_call (the workers decide if it is the transfer key);
    a step with transfer: warm asks for a warm transfer once its prompt was heard."""
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/1")  # nobody consumes this database's queue
    client.delete(EVENTS_QUEUE)
    path = tmp_path / "flow.yaml"
    path.write_text("steps:\n  ask: {say: 'Press 1 for a colleague', dtmf: {'1': agent}}\n  agent: {say: 'Connecting you.', transfer: warm}\n")
    bot = type("Transferring", (ScriptedBot.from_file(path),), {"transfers": TransferRequests(client)})

    async def scenario() -> str:
        async with BotServer(bot, BotServerConfig(port=0)) as server:
            async with FakeExotel(server.url, media_format=MULAW) as exotel:
                await exotel.start()
                await exotel.until(lambda: len(exotel.received) >= 1)
                await exotel.press("1")
                await exotel.until(lambda: "step-2-agent" in exotel.echoed)
                await asyncio.to_thread(wait_for, lambda: client.llen(EVENTS_QUEUE) == 2, 5)
                return f"call-{exotel.stream_sid}"

    leg_sid = run(scenario())
    tasks = [json.loads(m) for m in reversed(client.lrange(EVENTS_QUEUE, 0, -1))]
    client.delete(EVENTS_QUEUE)
    client.close()
    assert [t["headers"]["task"] for t in tasks] == [TRANSFER_CALL, TRANSFER_CALL]
    args = [json.loads(base64.b64decode(t["body"]))[0] for t in tasks]
    assert args == [[leg_sid, TransferRequest(key="1").to_dict()], [leg_sid, TransferRequest(mode="warm").to_dict()]]
