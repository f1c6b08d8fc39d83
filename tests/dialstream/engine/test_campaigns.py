"""Submitting, steering and reporting campaigns against a real Redis, with no workers: what users see before and after the dialing."""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import datetime, timezone

import pytest
from rich.console import Console

from dialstream.app import campaign_cli
from dialstream.domain.campaign import CampaignConfig, CampaignState, Contact
from dialstream.engine.campaigns import REPORT_COLUMNS, CampaignEngine, CampaignStatus
from dialstream.errors import ConfigurationError
from dialstream.settings import Settings
from dialstream.state.dial_queue import DialItem
from tests.utils import database_url, emptied

DB = 9  # this module's database on the session's server
ACCOUNT = "acct"
NOW = datetime(2026, 6, 3, 10, 0, tzinfo=timezone.utc).timestamp()  # a Wednesday: 15:30 in Kolkata, 06:00 in New York

BATCH = (
    "phone,name,amount,timezone\n"
    "98123 45601,Asha,500,\n"  # line 2: fine (national format)
    "12345,Bad,1,\n"  # line 3: not a valid number
    "+91 98123 45601,Again,2,\n"  # line 4: duplicate of line 2
    "+919812345603,Blocked,3,\n"  # line 5: on the DNC list
    "+1 212 555 0134,Bob,7,\n"  # line 6: fine, New York
    "+919812345606,Zoned,8,Mars/Olympus\n"  # line 7: unknown zone
    "+919812345607,Short,9\n"  # line 8: a column missing
    ",Nobody,0,\n"  # line 9: no phone
    "+919812345609,Dubai,4,Asia/Dubai\n"  # line 10: fine, zone from its column
)


@pytest.fixture
def url(redis_url):
    return emptied(database_url(redis_url, DB))


@pytest.fixture
def engine(client):
    return CampaignEngine(client, ACCOUNT)


@pytest.fixture
def batch(tmp_path):
    path = tmp_path / "batch.csv"
    path.write_text(BATCH)
    return path


def test_a_batch_with_malformed_rows_loads_the_good_ones_and_reports_each_bad_one(engine, batch):
    """Invalid, duplicate, DNC, bad-zone, short and phoneless rows are rejected with their line and reason; the rest are queued."""
    engine.dnc.add(["+919812345603"])
    seen = []
    report = engine.submit_file(CampaignConfig("spring"), batch, clock=lambda: NOW, on_rejected=seen.append)
    assert (report.accepted, report.rejected, report.state) == (3, 6, CampaignState.RUNNING)
    assert report.rejected_by_code == {"invalid_number": 1, "duplicate": 1, "dnc": 1, "bad_timezone": 1, "bad_csv": 1, "missing_phone": 1}
    assert [(r.line_no, r.code.value) for r in seen] == [
        (3, "invalid_number"), (4, "duplicate"), (5, "dnc"), (7, "bad_timezone"), (8, "bad_csv"), (9, "missing_phone"),
    ]  # fmt: skip
    assert engine.store.contact("spring", "r2") == Contact("r2", "+919812345601", {"name": "Asha", "amount": "500", "timezone": ""})
    rows = list(engine.report("spring"))
    assert [(r["line"], r["status"], r["outcome"]) for r in rows] == [
        (2, "pending", ""), (3, "rejected", "invalid_number"), (4, "rejected", "duplicate"), (5, "rejected", "dnc"),
        (6, "pending", ""), (7, "rejected", "bad_timezone"), (8, "rejected", "bad_csv"), (9, "rejected", "missing_phone"),
        (10, "pending", ""),
    ]  # fmt: skip
    assert "duplicate of row 2" in rows[2]["reason"] and "12345,Bad" in rows[1]["reason"]
    status = engine.status("spring", now=NOW)
    assert (status.total, status.rejected, status.pending, status.done) == (3, 6, 3, 0)


def test_each_contact_waits_for_its_own_calling_window(engine, batch):
    """With a 09:00-20:00 window at 10:00 UTC, Kolkata and Dubai are due now and New York at 09:00 its time."""
    engine.submit_file(CampaignConfig("windowed", window="09:00-20:00"), batch, clock=lambda: NOW)
    due = {item.contact_id: round(item.due, 3) for item in _queued(engine, "windowed")}  # a microsecond apart: file order
    assert due == {"r2": NOW, "r5": NOW, "r6": datetime(2026, 6, 3, 13, 0, tzinfo=timezone.utc).timestamp(), "r10": NOW}
    status = engine.status("windowed", now=NOW + 1)
    assert (status.pending, status.due_now, round(status.next_due, 3)) == (4, 3, NOW)


@pytest.mark.parametrize(
    "phone, zone, moment, opens",
    [
        ("+1 212 555 0134", "America/New_York", datetime(2026, 6, 3, 2, 24, tzinfo=timezone.utc), "2026-06-03T09:00:00-04:00"),
        ("+44 20 7946 0958", "Europe/London", datetime(2026, 6, 2, 21, 24, tzinfo=timezone.utc), "2026-06-03T09:00:00+01:00"),
    ],
)
def test_without_a_window_a_callee_at_22_24_waits_until_09_00_their_time(engine, tmp_path, phone, zone, moment, opens):
    """The default safe hours queue a US or UK contact submitted at 22:24 its time for 09:00, and status and report say so."""
    path = tmp_path / "late.csv"
    path.write_text(f"phone\n{phone}\n")
    now = moment.timestamp()
    engine.submit_file(CampaignConfig("late"), path, clock=lambda: now)
    assert engine.store.campaign("late").window == "09:00-21:00"
    [item] = _queued(engine, "late")
    assert item.due == datetime.fromisoformat(opens).timestamp()
    status = engine.status("late", now=now)
    assert (status.window, status.windows_closed, status.due_now) == ("09:00-21:00", {zone: opens}, 0)
    assert f"waiting for the calling window 09:00-21:00: {zone} until {opens}" in _rendered(campaign_cli.render_status(status))
    [row] = engine.report("late", now=now)
    assert (row["status"], row["zone"], row["window_opens_at"]) == ("pending", zone, opens)
    assert row["reason"] == f"waits for its calling window 09:00-21:00 ({zone}) until {opens}"
    at_ten = datetime.fromisoformat(opens).timestamp() + 3600
    assert engine.status("late", now=at_ten).windows_closed == {} and next(engine.report("late", now=at_ten))["window_opens_at"] is None


def test_a_bad_file_fails_before_the_campaign_exists(engine, tmp_path):
    """A file without a phone column raises ConfigurationError and leaves no campaign behind."""
    path = tmp_path / "nophone.csv"
    path.write_text("name,amount\nAsha,5\n")
    with pytest.raises(ConfigurationError, match="no phone column"):
        engine.submit_file(CampaignConfig("broken"), path)
    assert engine.store.campaign("broken") is None and engine.store.campaign_ids() == []


def test_contacts_from_python_keep_their_ids_and_are_checked_like_rows(engine):
    """submit() validates numbers, rejects duplicates, and keeps each accepted contact's own id."""
    contacts = [Contact("a", "+919900000001"), Contact("b", "not a number"), Contact("c", "+91 99000 00001"), Contact("d", "09900000004")]
    report = engine.submit(CampaignConfig("py"), contacts)
    assert (report.accepted, report.rejected_by_code) == (2, {"unparseable": 1, "duplicate": 1})
    assert sorted(c.contact_id for c in engine.store.contacts("py")) == ["a", "d"]
    assert engine.store.contact("py", "d").phone == "+919900000004"


def test_a_campaign_id_is_never_reused(engine):
    """Submitting a second batch under an existing id fails instead of mixing the two."""
    engine.submit(CampaignConfig("once"), [Contact("a", "+919900000001")])
    with pytest.raises(ValueError, match="already exists"):
        engine.submit(CampaignConfig("once"), [Contact("b", "+919900000002")])


def test_pause_resume_and_cancel(engine):
    """Pause stops contacts being taken, resume gives them out again, cancel records the waiting ones as canceled."""
    engine.submit(CampaignConfig("ctl", window="any"), [Contact(f"k{i}", f"+91990000000{i}") for i in range(1, 5)])
    queue = engine.store.queue
    assert engine.pause("ctl") is CampaignState.PAUSED and queue.pop_due("ctl", lease=30) == []
    assert engine.resume("ctl") is CampaignState.RUNNING
    taken = queue.pop_due("ctl", limit=1, lease=30)
    assert len(taken) == 1 and engine.status("ctl").dialing == 1
    assert engine.cancel("ctl") == 4  # the three queued and the one leased (its worker finds its lease gone)
    assert not queue.renew(taken[0], 30)
    status = engine.status("ctl")
    assert (status.state, status.done, status.outcomes, status.pending, status.dialing) == (CampaignState.CANCELED, 4, {"canceled": 4}, 0, 0)
    assert engine.cancel("ctl") == 0
    with pytest.raises(ValueError, match="is canceled"):
        engine.resume("ctl")
    with pytest.raises(KeyError):
        engine.pause("nope")


def test_the_last_final_record_finishes_the_campaign_and_outcome_counts_follow_replacements(engine):
    """Final records are counted once per contact, a later final one moves the count, an interim one never replaces a final one; the report shows each call's caller ID."""
    engine.submit(CampaignConfig("fin"), [Contact("a", "+919900000001"), Contact("b", "+919900000002")])
    store = engine.store
    store.record_result("fin", "a", {"outcome": "canceled"})
    store.record_result("fin", "a", {"outcome": "completed", "exophone": "+918030752400"})
    store.record_result("fin", "a", {"outcome": "busy"}, final=False)
    assert store.result("fin", "a")["outcome"] == "completed"
    assert {row["contact_id"]: row["exophone"] for row in engine.report("fin")} == {"a": "+918030752400", "b": ""}  # the caller ID used
    store.record_result("fin", "b", {"outcome": "busy"}, final=False)
    assert engine.status("fin").state is CampaignState.RUNNING
    store.record_result("fin", "b", {"outcome": "no_answer"})
    status = engine.status("fin")
    assert (status.state, status.outcomes, status.done) == (CampaignState.DONE, {"completed": 1, "no_answer": 1}, 2)
    assert "fin" not in store.running_campaigns()


def test_a_batch_with_no_good_row_is_done_at_once(engine, tmp_path):
    """Nothing to dial: the campaign is done, its rejected rows still reported."""
    path = tmp_path / "bad.csv"
    path.write_text("phone\n123\n")
    assert engine.submit_file(CampaignConfig("empty"), path).state is CampaignState.DONE
    assert [r["status"] for r in engine.report("empty")] == ["rejected"]


def cli(url: str, *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    campaign_cli.add_parser(parser.add_subparsers(dest="command"))
    console = Console(file=io.StringIO(), width=200)
    status = campaign_cli.run(parser.parse_args(["campaign", *argv]), Settings.from_env({"REDIS_URL": url, "EXOTEL_ACCOUNT_SID": ACCOUNT}), console)
    return status, console.file.getvalue()


def test_the_cli_submits_steers_and_reports(url, engine, batch, tmp_path, capsys):
    """campaign submit/status/pause/resume/report/cancel and dnc work from the command line, per-row rejections included."""
    assert cli(url, "dnc", "add", "+919812345603")[0] == 0
    status, out = cli(url, "submit", str(batch), "--id", "cli", "--window", "mon-fri 09:00-20:00", "--retries", "busy=3/5m,failed=none",
                      "--max-concurrent", "4", "--variables", "name,amount", "--paused", "--rejects", str(tmp_path / "rejects.csv"))  # fmt: skip
    assert status == 0 and "campaign cli paused: 3 contact(s) accepted, 6 rejected" in out
    assert "line 5 rejected (dnc)" in out and "line 8 rejected (bad_csv)" in out
    assert len((tmp_path / "rejects.csv").read_text().splitlines()) == 7
    config = engine.store.campaign("cli")
    assert (config.window, config.max_concurrent, config.stream_variables) == ("mon-fri 09:00-20:00", 4, ("name", "amount"))
    assert config.redial_policy.busy.delay == 300 and config.redial_policy.failed is None
    assert cli(url, "resume", "cli") == (0, "campaign cli is running\n")
    status, out = cli(url, "status", "cli", "--json")
    assert json.loads(out)["pending"] == 3
    assert "pending 3" in cli(url, "status", "cli")[1]
    assert cli(url, "report", "cli", "--csv", str(tmp_path / "r.csv"), "--json", str(tmp_path / "r.json"))[0] == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text())))
    assert list(rows[0]) == [*REPORT_COLUMNS, "name", "amount", "timezone"] and len(rows) == 9
    assert [(row["contact_id"], row["name"]) for row in rows if row["status"] != "rejected"] == [("r2", "Asha"), ("r6", "Bob"), ("r10", "Dubai")]
    assert len(json.loads((tmp_path / "r.json").read_text())["contacts"]) == 9
    assert cli(url, "cancel", "cli")[1].startswith("campaign cli canceled: 3 contact(s) recorded canceled")
    assert cli(url, "pause", "cli")[0] == 2 and cli(url, "status", "nope")[0] == 1
    with pytest.raises(SystemExit):
        cli(url, "submit", str(batch), "--retries", "busy=often")
    capsys.readouterr()  # argparse's complaint about --retries


def _rendered(renderable) -> str:
    console = Console(file=io.StringIO(), width=200)
    console.print(renderable)
    return console.file.getvalue()


def _queued(engine: CampaignEngine, campaign_id: str) -> list[DialItem]:
    due_key = engine.store.queue.keys(campaign_id)[0]
    return [DialItem(campaign_id, json.loads(m)[0], json.loads(m)[1], score) for m, score in engine.redis.zrange(due_key, 0, -1, withscores=True)]


def test_contacts_due_together_are_dialled_in_file_order(engine, tmp_path):
    """Rows r2..r13, all due at once, leave the queue in file order, not in text order of their ids (r10 before r2)."""
    path = tmp_path / "ordered.csv"
    path.write_text("phone\n" + "".join(f"+9198123456{i:02d}\n" for i in range(12)))
    engine.submit_file(CampaignConfig("ordered"), path, clock=lambda: NOW)
    taken = engine.store.queue.pop_due("ordered", NOW + 1, 100, lease=30)
    assert [item.contact_id for item in taken] == [f"r{line}" for line in range(2, 14)]
    assert all(abs(item.due - NOW) < 0.001 for item in taken)


def test_cli_mistakes_are_one_line_and_campaigns_are_named_by_name(url, tmp_path):
    """A missing file, an empty file and a bad DNC number each print one line and exit 2; a name stands for its id; list keeps ids whole."""
    for argv, expected in (
        (("submit", str(tmp_path / "nowhere.csv")), "No such file or directory"),
        (("dnc", "add", "+919812345611", "call me maybe"), "call me maybe"),
    ):
        status, out = cli(url, *argv)
        assert status == 2 and expected in out and len(out.strip().splitlines()) == 1 and "Traceback" not in out
    (tmp_path / "empty.csv").write_text("phone,name\n")
    assert cli(url, "submit", str(tmp_path / "empty.csv")) == (2, "dialstream campaign: no contacts: the input has no rows\n")
    (tmp_path / "one.csv").write_text("phone\n+919812345612\n")
    assert cli(url, "submit", str(tmp_path / "one.csv"), "--name", "a rather long campaign name for a narrow terminal")[0] == 0
    campaign_id = cli(url, "list")[1].splitlines()[1].split()[0]
    assert campaign_id.startswith("a-rather-long-campaign-name-for-a-narrow-") and len(campaign_id) > 40
    assert cli(url, "pause", "a rather long campaign name for a narrow terminal") == (0, f"campaign {campaign_id} is paused\n")
    console = Console(file=io.StringIO(), width=40)
    parser = argparse.ArgumentParser()
    campaign_cli.add_parser(parser.add_subparsers(dest="command"))
    campaign_cli.run(parser.parse_args(["campaign", "list"]), Settings.from_env({"REDIS_URL": url, "EXOTEL_ACCOUNT_SID": ACCOUNT}), console)
    assert campaign_id in console.file.getvalue()


def test_every_campaign_setting_has_a_flag_stored_in_the_config(url, engine, batch):
    """AMD, voicemail, timeouts, stream, messages, recording, exophones, agents and transfer flags reach the stored config."""
    status, out = cli(url, "submit", str(batch), "--id", "flags", "--window", "any", "--ring-timeout", "25", "--time-limit", "600",
                      "--exophones", "+918030752400, +912261234567", "--record", "--stream-start-timeout", "2.5",
                      "--stream-attempts", "3", "--content-type", "audio/L16;rate=16000", "--stream-direction", "unidirectional",
                      "--hold-message", "Please hold.", "--fallback-message", "Sorry, bye.", "--amd", "async",
                      "--voicemail-message", "Call us back on 080 3075 2400.", "--agents", "+919900000001,+919900000002",
                      "--transfer-mode", "warm", "--agent-ring-timeout", "15", "--transfer-fallback", "message",
                      "--transfer-key", "0", "--whisper-message", "A customer about a loan.", "--paused")  # fmt: skip
    assert status == 0, out
    config = engine.store.campaign("flags")
    assert (config.window, config.ring_timeout, config.time_limit, config.record) == ("any", 25, 600, True)
    assert config.exophones == ("+918030752400", "+912261234567")
    assert (config.stream_start_timeout, config.max_stream_attempts, config.stream_content_type, config.stream_direction) == (
        2.5, 3, "audio/L16;rate=16000", "unidirectional",
    )  # fmt: skip
    assert (config.hold_message, config.fallback_message) == ("Please hold.", "Sorry, bye.")
    assert (config.amd_enable, config.async_amd, config.amd_action, config.voicemail_message) == (True, True, "voicemail", "Call us back on 080 3075 2400.")
    assert config.agents == ("+919900000001", "+919900000002")
    assert (config.transfer_mode, config.agent_ring_timeout, config.transfer_fallback, config.transfer_key) == ("warm", 15, "message", "0")
    assert config.whisper_message == "A customer about a loan."
    defaults = CampaignConfig("d")
    assert cli(url, "submit", str(batch), "--id", "plain", "--paused")[0] == 0
    plain = engine.store.campaign("plain")
    assert (plain.window, plain.amd_enable, plain.record, plain.agents, plain.ring_timeout) == ("09:00-21:00", False, False, (), defaults.ring_timeout)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--voicemail-message", "Hi"], "--voicemail-message needs --amd on"),
        (["--amd", "on", "--amd-action", "voicemail"], "needs a voicemail_message"),
        (["--time-limit", "20000"], "time_limit 20000"),
        (["--agents", "+91123"], "agent '+91123' is not an E.164 number"),
        (["--exophones", "080 3075 2400"], "exophone '080 3075 2400'"),
        (["--transfer-key", "5"], "a transfer key needs agent numbers"),
        (["--agents", "+919900000001", "--agent-ring-timeout", "1"], "agent_ring_timeout 1"),
        (["--content-type", "mulaw"], "stream content type 'mulaw'"),
        (["--window", "9 to 5"], "calling window '9 to 5'"),
    ],
)
def test_a_bad_setting_is_one_line_and_creates_nothing(url, engine, batch, flags, message):
    """Each bad setting is refused with one clear line (exit 2) before a campaign exists."""
    status, out = cli(url, "submit", str(batch), "--id", "bad", *flags)
    assert status == 2 and message in out and "Traceback" not in out and len(out.strip().splitlines()) == 1, out
    assert engine.store.campaign("bad") is None


def test_a_scheduled_at_column_schedules_the_first_attempt_inside_the_window(engine, tmp_path):
    """scheduled_at with an offset is that instant, without one the callee's wall clock; a time outside the
    window waits for its opening; an empty one is dialled as usual; a bad one is rejected with its line."""
    path = tmp_path / "scheduled.csv"
    path.write_text(
        "phone,scheduled_at\n"
        "+919812345601,2026-06-04T10:00:00+05:30\n"  # line 2: an instant
        "+1 212 555 0134,2026-06-04 17:00\n"  # line 3: 17:00 in New York
        "+1 212 555 0135,2026-06-03T23:30\n"  # line 4: 23:30 New York, outside 09:00-21:00
        "+919812345604,\n"  # line 5: not scheduled
        "+919812345605,next tuesday\n"  # line 6: not a time
    )
    report = engine.submit_file(CampaignConfig("sched"), path, clock=lambda: NOW)
    assert (report.accepted, report.rejected_by_code) == (4, {"bad_schedule": 1})
    due = {item.contact_id: round(item.due, 2) for item in _queued(engine, "sched")}  # file order adds microseconds
    assert due == {
        "r2": datetime.fromisoformat("2026-06-04T10:00:00+05:30").timestamp(),
        "r3": datetime.fromisoformat("2026-06-04T17:00:00-04:00").timestamp(),
        "r4": datetime.fromisoformat("2026-06-04T09:00:00-04:00").timestamp(),
        "r5": NOW,  # 15:30 in Kolkata: inside the window
    }
    rows = {row["line"]: row for row in engine.report("sched", now=NOW)}
    assert rows[3]["next_attempt_at"] == "2026-06-04T21:00:00.000Z"
    assert rows[6]["status"] == "rejected" and "bad scheduled_at: 'next tuesday' is not an ISO 8601 time" in rows[6]["reason"]


def test_a_canceled_campaign_is_finished_only_once_every_contact_has_its_final_record():
    """A dial under way at cancel frees its lease (or a call's end its slot) a moment before its
    contact's record is written: with nothing dialing or on a call but a record missing, the
    campaign is not finished yet, as its campaign.finished webhook is not sent yet."""
    recording = CampaignStatus("c", "c", CampaignState.CANCELED, total=10, done=9)
    assert not recording.finished
    assert CampaignStatus("c", "c", CampaignState.CANCELED, total=10, done=10).finished
    assert not CampaignStatus("c", "c", CampaignState.CANCELED, total=10, done=10, dialing=1).finished
    assert CampaignStatus("c", "c", CampaignState.DONE, total=10, done=10).finished
