"""The DNC list in Redis: normalised entries, account and campaign scope, one round trip per check."""

from __future__ import annotations

import io

import pytest
from redis.connection import Connection

from dialstream.domain.contact_files import RejectCode
from dialstream.domain.contacts import RejectedRow, read_contacts
from dialstream.state.dnc import DncList, is_blocked


@pytest.fixture
def dnc(client, prefix):
    return DncList(client, "acct", prefix=prefix)


def test_numbers_in_any_notation_are_one_entry(dnc):
    """Adding a national-format number blocks its E.164 form and every other spelling of it."""
    assert dnc.add(["098123 45678"]) == 1
    assert dnc.add(["+91 98123-45678"]) == 0  # the same number again
    assert dnc.is_blocked("+919812345678") and dnc.is_blocked("9812345678")
    assert not dnc.is_blocked("+919812345679")


def test_a_campaign_list_blocks_only_that_campaign(dnc):
    """A campaign's DNC entry blocks that campaign's calls; the account list blocks every campaign."""
    dnc.add(["+919812345678"], campaign_id="c1")
    dnc.add(["+919812345679"])
    assert dnc.is_blocked("+919812345678", "c1")
    assert not dnc.is_blocked("+919812345678", "c2") and not dnc.is_blocked("+919812345678")
    assert dnc.is_blocked("+919812345679", "c2")


def test_removing_unblocks(dnc):
    """remove() takes a number off the list and says how many were there."""
    dnc.add(["+919812345678", "+12125550134"])
    assert dnc.remove(["9812345678", "+919800000000"]) == 1
    assert not dnc.is_blocked("+919812345678") and dnc.count() == 1


def test_an_unparseable_number_is_refused_before_anything_is_written(dnc):
    """add() raises ValueError for a non-number and leaves the list unchanged."""
    with pytest.raises(ValueError, match="unparseable"):
        dnc.add(["+919812345678", "call me"])
    assert dnc.count() == 0


def test_loading_a_file_skips_comments_and_reports_bad_lines(dnc, tmp_path):
    """load() reads one number per line, ignores blanks, comments and trailing CSV fields, and lists what it skipped."""
    path = tmp_path / "dnc.txt"
    path.write_text("# opted out\n098123 45678\n\n+12125550134, complaint 2026-01-02\nnot a number\n+919812345678\n")
    report = dnc.load(path)
    assert (report.added, report.read) == (2, 4)
    assert [(line, reason.split(":")[0]) for line, _, reason in report.skipped] == [(5, "unparseable number 'not a number'")]
    assert dnc.is_blocked("+12125550134")


def test_loading_many_numbers_from_a_stream(dnc):
    """A long list loads in batches from an open text stream."""
    numbers = "".join(f"98{i:08d}\n" for i in range(2500))
    report = dnc.load(io.StringIO(numbers), campaign_id="c1")
    assert report.added == 2500 and dnc.count("c1") == 2500 and dnc.count() == 0


def test_the_dial_time_check_is_one_round_trip(dnc, monkeypatch):
    """is_blocked() with a campaign checks both lists with a single request to Redis."""
    dnc.add(["+919812345678"], campaign_id="c1")
    dnc.redis.ping()  # connect first, so only the check itself is counted
    sent: list[bytes] = []
    original = Connection.send_packed_command

    def counting(self, command, *args, **kwargs):
        sent.append(command)
        return original(self, command, *args, **kwargs)

    monkeypatch.setattr(Connection, "send_packed_command", counting)
    assert is_blocked(dnc.redis, "+919812345678", "c1", account="acct", prefix=dnc.prefix)
    assert len(sent) == 1


def test_blocked_among_checks_a_batch_against_both_lists(dnc):
    """blocked_among() returns exactly the given numbers found on the account or campaign list."""
    dnc.add(["+919812345678"])
    dnc.add(["+919812345679"], campaign_id="c1")
    batch = ["+919812345678", "+919812345679", "+919812345670"]
    assert dnc.blocked_among(batch, "c1") == {"+919812345678", "+919812345679"}
    assert dnc.blocked_among(batch) == {"+919812345678"}
    assert dnc.blocked_among([]) == set()


def test_ingestion_rejects_rows_on_the_redis_list(dnc):
    """read_contacts(dnc=dnc.checker(campaign)) rejects rows blocked account-wide or for the campaign."""
    dnc.add(["+919812345678"])
    dnc.add(["+919812345679"], campaign_id="c1")
    data = io.BytesIO(b"phone\n9812345678\n9812345679\n9812345670\n")
    result = list(read_contacts(data, dnc=dnc.checker("c1")))
    assert [r.code if isinstance(r, RejectedRow) else "ok" for r in result] == [RejectCode.DNC, RejectCode.DNC, "ok"]
