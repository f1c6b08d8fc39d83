"""Data about people is bounded: rejected rows are sampled, campaigns expire, and a campaign or a number can be erased on request."""

from __future__ import annotations

import argparse
import io
import json

import pytest
from rich.console import Console

from dialstream.app import contact_cli
from dialstream.domain.campaign import CampaignConfig, CampaignState, Contact
from dialstream.domain.contacts import RejectedRow, read_contacts
from dialstream.engine.campaigns import CampaignEngine
from dialstream.engine.erasure import ERASED
from dialstream.settings import EngineConfig, Settings
from dialstream.state import keys
from tests.utils import database_url, emptied

DB = 2  # this module's database on the session's server
NUMBER = "+919812345601"


@pytest.fixture
def url(redis_url):
    return emptied(database_url(redis_url, DB))


@pytest.fixture
def engine(client):
    return CampaignEngine(client, "acct", EngineConfig(retention_days=2, rejects_kept=10))


def campaign_keys(client, campaign_id: str) -> list[str]:
    return [key for key in client.scan_iter(f"ds:campaign:{campaign_id}*")]


def test_every_rejection_is_counted_but_only_the_first_samples_are_stored(engine, tmp_path):
    """A file of 50 junk rows and 2 good ones: 50 rejections counted by code, 10 stored for the report, the good rows loaded."""
    path = tmp_path / "junk.csv"
    path.write_text("phone\n+919812345601\n" + "".join(f"=cmd|' /C calc'!A{i}\n" for i in range(50)) + "+919812345602\n")
    report = engine.submit_file(CampaignConfig("junk"), path)
    assert (report.accepted, report.rejected, sum(report.rejected_by_code.values())) == (2, 50, 50)
    status = engine.status("junk")
    assert (status.total, status.rejected) == (2, 50)
    rejected = [row for row in engine.report("junk") if row["status"] == "rejected"]
    assert [row["line"] for row in rejected] == list(range(3, 13))


def test_a_file_of_rejected_rows_streams_past_the_dnc_screen():
    """With a DNC check, verdicts on rejected rows come out while the file is read, not all at its end."""
    read = 0

    def lines():
        nonlocal read
        yield b"phone\n"
        for i in range(5000):
            read += 1
            yield f"junk{i}\n".encode()

    source = _Counting(lines())
    rows = read_contacts(source, fmt="csv", dnc=lambda numbers: [])
    first = next(rows)
    assert isinstance(first, RejectedRow) and source.lines_read <= 1100
    assert sum(1 for _ in rows) == 4999


class _Counting(io.RawIOBase):
    """A binary stream over ``lines`` that counts how many it handed out."""

    def __init__(self, lines):
        self._lines = iter(lines)
        self._pending = b""
        self.lines_read = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        while not self._pending:
            line = next(self._lines, b"")
            if not line:
                return 0
            self.lines_read += 1
            self._pending = line
        size = min(len(buffer), len(self._pending))
        buffer[:size], self._pending = self._pending[:size], self._pending[size:]
        return size


def test_a_campaigns_keys_expire_after_its_retention_from_its_last_activity(engine, client):
    """Loading, a call's record and a cancel each give every key of the campaign the retention as its TTL; nothing is left without one."""
    engine.submit(CampaignConfig("kept"), [Contact(f"c{i}", f"+91981234560{i}") for i in range(3)], clock=lambda: 0)
    retention = engine.engine.retention
    assert retention == 2 * 86400
    assert all(0 < client.ttl(key) <= retention for key in campaign_keys(client, "kept"))
    for key in campaign_keys(client, "kept"):
        client.persist(key)
    engine.store.record_result("kept", "c0", {"outcome": "busy"}, final=False)
    assert all(0 < client.ttl(key) <= retention for key in campaign_keys(client, "kept"))
    engine.cancel("kept")
    assert all(0 < client.ttl(key) <= retention for key in campaign_keys(client, "kept"))
    assert client.hget(keys.campaign("kept"), "state") == CampaignState.CANCELED.value


def test_an_expired_campaign_leaves_the_campaign_lists(engine, client):
    """Once Redis expired a campaign's hash, it is no longer listed (and the set forgets it)."""
    engine.submit(CampaignConfig("old"), [Contact("c0", NUMBER)])
    engine.submit(CampaignConfig("new"), [Contact("c0", NUMBER)])
    client.delete(keys.campaign("old"))  # what its TTL does
    assert engine.store.campaign_ids() == ["new"] and engine.store.running_campaigns() == ["new"]
    assert client.smembers(keys.campaigns()) == {"new"}


def test_purge_refuses_a_live_campaign_then_removes_every_trace(engine, client):
    """A running campaign is not purged; once canceled, its keys, legs' records, own DNC list and timers are gone, other campaigns untouched."""
    engine.submit(CampaignConfig("gone"), [Contact("c0", NUMBER), Contact("c1", "+919812345602")])
    engine.submit(CampaignConfig("stays"), [Contact("c0", NUMBER)])
    engine.dnc.add(["+919812345603"], "gone")
    client.hset(keys.campaign("gone", "legs"), "c0", "LEG1")
    client.hset(keys.leg("LEG1"), mapping={"version": 1, "doc": "{}", "stream_vars": '{"name": "Asha"}'})
    client.sadd(keys.leg("LEG1", "events"), "ev1")
    client.zadd(keys.timers(), {json.dumps({"kind": "leg", "campaign": "gone", "leg": "LEG1", "timer": "t"}): 1})
    client.set(keys.webhook("msg:m1"), json.dumps({"type": "contact.finished", "data": {"campaign_id": "gone", "phone": NUMBER}}))
    client.set(keys.webhook("msg:m2"), json.dumps({"type": "contact.finished", "data": {"campaign_id": "stays", "phone": NUMBER}}))
    with pytest.raises(ValueError, match="is running: cancel it first"):
        engine.purge("gone")
    engine.cancel("gone")
    purged = engine.purge("gone")
    assert purged.legs == 1 and purged.keys >= 5
    assert campaign_keys(client, "gone") == [] and not client.exists(keys.leg("LEG1"), keys.leg("LEG1", "events"))
    assert client.zcard(keys.timers()) == 0 and not client.exists(engine.dnc.key("gone"))
    assert not client.exists(keys.webhook("msg:m1")) and client.exists(keys.webhook("msg:m2"))
    assert engine.store.campaign_ids() == ["stays"] and engine.store.contact("stays", "c0") is not None
    with pytest.raises(KeyError):
        list(engine.report("gone"))
    with pytest.raises(KeyError):
        engine.purge("gone")


def test_erasing_a_number_removes_it_from_every_campaign_but_keeps_it_blocked(engine, client, tmp_path):
    """Contacts, variables, queued dials, legs' records and rejected samples with the number go; results become 'erased'; DNC still blocks it; others are untouched."""
    batch = tmp_path / "b.csv"
    batch.write_text(f"phone,name\n{NUMBER},Asha\n+919812345602,Bob\n98123 45601,Again\n")
    engine.submit_file(CampaignConfig("one"), batch)
    engine.submit(CampaignConfig("two"), [Contact("k", NUMBER, {"name": "Asha"})], paused=True)
    engine.store.queue.drain("one", 1000)  # as if both of "one" were called: r2 done, its leg kept
    client.hset(keys.campaign("one", "legs"), "r2", "LEG2")
    client.hset(keys.leg("LEG2"), mapping={"version": 1, "doc": "{}", "stream_vars": '{"name": "Asha"}'})
    engine.store.record_result("one", "r2", {"outcome": "completed", "phone": NUMBER, "leg_sid": "LEG2", "attempts": 1})
    engine.store.record_result("one", "r3", {"outcome": "completed", "phone": "+919812345602", "attempts": 1})
    engine.dnc.add([NUMBER])
    client.set(keys.webhook("msg:m1"), json.dumps({"type": "contact.finished", "data": {"campaign_id": "one", "phone": NUMBER}}))
    client.set(keys.webhook("msg:m2"), json.dumps({"type": "contact.finished", "data": {"campaign_id": "one", "phone": "+919812345602"}}))

    report = engine.erase("98123 45601")
    assert (report.number, sorted(report.campaigns), report.contacts, report.legs, report.rejected_rows, report.on_dnc) == (
        NUMBER, ["one", "two"], 2, 1, 1, True,
    )  # fmt: skip
    dump = {key: str(client.dump(key)) for key in client.scan_iter("ds:campaign:*")}
    assert not any("45601" in text or "Asha" in text for text in dump.values())
    assert not client.exists(keys.leg("LEG2"))
    assert report.messages == 1 and not client.exists(keys.webhook("msg:m1")) and client.exists(keys.webhook("msg:m2"))
    assert engine.store.result("one", "r2")["outcome"] == ERASED and "phone" not in engine.store.result("one", "r2")
    assert engine.store.contact("one", "r3").phone == "+919812345602"
    assert engine.dnc.is_blocked(NUMBER)
    status = engine.status("one")
    assert (status.state, status.done, status.outcomes) == (CampaignState.DONE, 2, {"completed": 1, ERASED: 1})
    two = engine.status("two")
    assert (two.state, two.pending, two.done, two.outcomes) == (CampaignState.DONE, 0, 1, {ERASED: 1})


def test_a_number_on_a_call_is_not_erased_and_a_bad_number_is_one_line(engine, url):
    """While the number is being dialled erasure is refused; an unreadable number is a one-line error with status 2."""
    engine.submit(CampaignConfig("busy", window="any"), [Contact("c0", NUMBER)], clock=lambda: 0)
    engine.store.queue.pop_due("busy", now=1, limit=1, lease=30)
    with pytest.raises(ValueError, match="being dialled or on a call"):
        engine.erase(NUMBER)
    out = io.StringIO()
    code = contact_cli.run(argparse.Namespace(number="not a number"), Settings.from_env({"REDIS_URL": url}), Console(file=out, width=40))
    assert code == 2 and out.getvalue().count("\n") == 1 and out.getvalue().startswith("dialstream contact: unparseable number")
