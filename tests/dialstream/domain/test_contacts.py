"""Contact ingestion: every row gets a verdict, bad rows harm nothing, the file is streamed."""

from __future__ import annotations

import io
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

import pytest

from dialstream.domain.campaign import Contact
from dialstream.domain.contact_files import RejectCode
from dialstream.domain.contacts import ContactRow, RejectedRow, read_contacts
from dialstream.domain.phones import contact_timezone, normalize_number, timezone_for
from dialstream.errors import ConfigurationError
from dialstream.exotel.stream_url import stream_parameters, stream_url


def csv_bytes(*lines: str) -> io.BytesIO:
    return io.BytesIO(("\n".join(lines) + "\n").encode())


def rows(source, **kwargs) -> list[ContactRow | RejectedRow]:
    return list(read_contacts(source, **kwargs))


def offset_hours(zone: str) -> float:
    moment = datetime(2026, 1, 15, 12, tzinfo=timezone.utc)
    return moment.astimezone(ZoneInfo(zone)).utcoffset().total_seconds() / 3600


def test_valid_rows_become_contacts_with_e164_numbers_and_variables():
    """Accepted rows carry an E.164 phone, a row-number id and every other column as a variable."""
    result = rows(csv_bytes("name,phone,amount", "Asha,098123 45678,500", "Bob,+1 (212) 555-0134,7"))
    assert [r.contact for r in result] == [
        Contact("r2", "+919812345678", {"name": "Asha", "amount": "500"}),
        Contact("r3", "+12125550134", {"name": "Bob", "amount": "7"}),
    ]
    assert [r.line_no for r in result] == [2, 3]


@pytest.mark.parametrize("header", ["phone", "Mobile", " MSISDN ", "number", "contact_uri", "phone_number"])
def test_the_phone_column_is_found_under_common_names(header):
    """Without phone_column, the first common phone header is used, whatever its case and spacing."""
    (row,) = rows(csv_bytes(f"name,{header}", "Asha,9812345678"))
    assert row.phone == "+919812345678" and row.variables == {"name": "Asha"}


def test_an_explicit_phone_column_wins_over_auto_detection():
    """phone_column names the column even when another looks like a phone column."""
    (row,) = rows(csv_bytes("phone,alt", "n/a,9812345678"), phone_column="ALT")
    assert row.phone == "+919812345678" and row.variables == {"phone": "n/a"}


@pytest.mark.parametrize(
    "header, message",
    [("name,amount", "no phone column"), ("phone,name,phone", "appears twice")],
)
def test_a_header_without_one_phone_column_fails_the_whole_file(header, message):
    """A file whose header has no phone column, or a duplicated name, raises before any row."""
    with pytest.raises(ConfigurationError, match=message):
        rows(csv_bytes(header, "9812345678,x,y"))


@pytest.mark.parametrize(
    "line, code, reason",
    [
        ("Asha,", RejectCode.MISSING_PHONE, "missing phone (column 'phone' is empty)"),
        ("Asha,call me", RejectCode.UNPARSEABLE, "unparseable number 'call me'"),
        ("Asha,12345", RejectCode.INVALID_NUMBER, "'12345' is not a valid number for its region (region IN)"),
        ("Asha,+1 212 555", RejectCode.INVALID_NUMBER, "(region US)"),
        ("Asha,9812345678,extra", RejectCode.BAD_CSV, "bad CSV: expected 2 columns, found 3"),
        ("Asha", RejectCode.BAD_CSV, "bad CSV: expected 2 columns, found 1"),
    ],
)
def test_each_bad_row_is_rejected_with_a_clear_reason(line, code, reason):
    """A bad row becomes a RejectedRow with its line number, its text, a code and a readable reason."""
    (row,) = rows(csv_bytes("name,phone", line))
    assert isinstance(row, RejectedRow)
    assert (row.line_no, row.raw, row.code) == (2, line, code)
    assert reason in row.reason


def test_a_duplicate_names_the_row_it_repeats():
    """The second occurrence of a number (in any notation) is rejected as a duplicate of the first."""
    result = rows(csv_bytes("phone", "+919812345678", "9812345679", "098123 45678"))
    assert isinstance(result[2], RejectedRow) and result[2].code is RejectCode.DUPLICATE
    assert result[2].reason == "duplicate of row 2 (+919812345678)"


def test_undecodable_bytes_reject_only_their_row():
    """A row with bytes that are not UTF-8 is rejected, its bytes shown escaped; its neighbours pass."""
    data = io.BytesIO(b"name,phone\nA,9812345678\nB\xff\xfe,9812345679\nC,9812345670\n")
    first, bad, last = rows(data)
    assert isinstance(bad, RejectedRow) and bad.code is RejectCode.BAD_ENCODING
    assert bad.raw == "B\\xff\\xfe,9812345679" and bad.line_no == 3
    assert (first.phone, last.phone) == ("+919812345678", "+919812345670")


def test_rows_keep_their_physical_line_numbers_across_blank_lines_and_quoted_newlines():
    """Blank lines are skipped and a quoted multi-line field keeps the next row's line number right."""
    result = rows(csv_bytes("phone,note", "", "9812345678,\"two", "lines\"", "bad,x", "9812345679,ok"))
    assert [(r.line_no, type(r).__name__) for r in result] == [(3, "ContactRow"), (5, "RejectedRow"), (6, "ContactRow")]
    assert result[0].variables == {"note": "two\nlines"}
    assert result[2].contact_id == "r6"


def test_a_byte_order_mark_and_crlf_line_ends_are_handled():
    """Excel's UTF-8 BOM does not end up in the first header name, and CRLF rows parse."""
    (row,) = rows(io.BytesIO("\ufeffphone,name\r\n9812345678,Asha\r\n".encode()))
    assert row.phone == "+919812345678" and row.variables == {"name": "Asha"}


def test_text_streams_and_paths_are_read_too(tmp_path):
    """A StringIO and a path read like a binary file; the format follows the file name."""
    path = tmp_path / "batch.jsonl"
    path.write_text('{"phone": "9812345678"}\n')
    assert [r.phone for r in rows(io.StringIO("phone\n9812345678\n"))] == ["+919812345678"]
    assert [r.phone for r in rows(path)] == ["+919812345678"]
    with pytest.raises(ConfigurationError, match="fmt="):
        rows(tmp_path / "batch.xlsx")


def test_json_lines_are_objects_with_any_phone_key_and_json_values_as_text():
    """Each JSON line is an object; numbers and booleans become their JSON text, null an empty string."""
    data = '{"mobile": 919812345678, "vip": true, "tags": ["a"], "note": null}\n\n{"phone": "+12125550134", "n": 1.5}\n'
    first, second = rows(io.StringIO(data), fmt="jsonl")
    assert first.contact == Contact("r1", "+919812345678", {"vip": "true", "tags": '["a"]', "note": ""})
    assert second.contact == Contact("r3", "+12125550134", {"n": "1.5"})


@pytest.mark.parametrize(
    "line, reason",
    [
        ("{not json", "bad JSON: Expecting property name"),
        ("[1, 2]", "bad JSON: expected an object, found list"),
        ('{"name": "no phone"}', "missing phone (the row has no phone field)"),
    ],
)
def test_bad_json_lines_are_rejected_alone(line, reason):
    """A malformed or phone-less JSON line is rejected with its reason; the next line is read."""
    bad, good = rows(io.StringIO(line + '\n{"phone": "9812345678"}\n'), fmt="jsonl")
    assert isinstance(bad, RejectedRow) and reason in bad.reason and bad.raw == line
    assert good.phone == "+919812345678"


def test_undecodable_json_line_is_rejected():
    """A JSON line with bytes that are not UTF-8 is rejected as bad encoding."""
    bad, good = rows(io.BytesIO(b'{"phone": "98123\xff"}\n{"phone": "9812345678"}\n'), fmt="jsonl")
    assert bad.code is RejectCode.BAD_ENCODING and good.line_no == 2


def test_dnc_numbers_are_rejected_in_order_and_asked_about_in_batches():
    """The DNC check is called once per batch of rows, and blocked rows are rejected in place."""
    calls: list[int] = []

    def blocked(numbers):
        calls.append(len(numbers))
        return {n for n in numbers if n.endswith("7")}

    lines = ["phone"] + [f"98{i:08d}" for i in range(2500)]
    result = rows(csv_bytes(*lines), dnc=blocked)
    assert calls == [1000, 1000, 500]
    assert [r.line_no for r in result] == list(range(2, 2502))
    rejected = [r for r in result if isinstance(r, RejectedRow)]
    assert len(rejected) == 250 and all(r.code is RejectCode.DNC for r in rejected)
    assert rejected[0].raw == "9800000007" and "do-not-call" in rejected[0].reason


def test_a_set_works_as_the_dnc_list():
    """A plain set of E.164 numbers can serve as the DNC list."""
    result = rows(csv_bytes("phone", "9812345678", "9812345679"), dnc={"+919812345679"})
    assert [type(r).__name__ for r in result] == ["ContactRow", "RejectedRow"]


def test_the_file_is_streamed_not_loaded_whole():
    """The first rows come out after reading a small part of a large file."""

    class Tracking(io.BytesIO):
        furthest = 0

        def read(self, size=-1):
            data = super().read(size)
            Tracking.furthest = max(Tracking.furthest, self.tell())
            return data

        def read1(self, size=-1):
            data = super().read1(size)
            Tracking.furthest = max(Tracking.furthest, self.tell())
            return data

        def readinto(self, buffer):
            n = super().readinto(buffer)
            Tracking.furthest = max(Tracking.furthest, self.tell())
            return n

    body = "phone,name\n" + "".join(f"98{i:08d},Customer {i}\n" for i in range(50_000))
    source = Tracking(body.encode())
    stream = read_contacts(source)
    first = [next(stream) for _ in range(10)]
    assert all(isinstance(r, ContactRow) for r in first)
    assert Tracking.furthest < len(body) // 10


def test_time_zone_comes_from_the_number_unless_the_row_names_one():
    """Each row's zone is its number's, or its own timezone column when set; unknown zones are rejected."""
    result = rows(csv_bytes("phone,timezone", "9812345678,", "+12125550134,", "+61293744000,", "9812345679,Asia/Dubai", "9812345670,Mars/Base"))
    zones = [r.timezone for r in result[:4]]
    assert [offset_hours(z) for z in zones] == [5.5, -5.0, 11.0, 4.0]
    assert result[4].code is RejectCode.BAD_TIMEZONE and "Mars/Base" in result[4].reason


def test_timezone_for_falls_back_to_the_default():
    """A number with no zone in phonenumbers' data, or no number at all, gets the default zone."""
    assert offset_hours(timezone_for("+12125550134")) == -5.0
    assert timezone_for("+80012345678", default="Europe/Paris") == "Europe/Paris"  # international freephone
    assert timezone_for("not a number", default="UTC") == "UTC"


def test_a_stored_contact_gets_the_same_zone_back():
    """contact_timezone reads the timezone variable, else the number's zone."""
    assert contact_timezone(Contact("r1", "+12125550134", {"timezone": "America/Chicago"})) == "America/Chicago"
    assert offset_hours(contact_timezone(Contact("r2", "+12125550134", {}))) == -5.0


def test_normalize_number_is_strict_unless_asked_not_to_be():
    """normalize_number returns E.164, and raises for invalid numbers unless strict=False."""
    assert normalize_number("098123 45678") == "+919812345678"
    with pytest.raises(ValueError):
        normalize_number("12345")
    assert normalize_number("12345", strict=False) == "+9112345"


def test_stream_parameters_respect_exotels_limits():
    """At most three pairs of at most 256 encoded characters; a pair that does not fit is skipped whole."""
    variables = {"name": "Asha", "essay": "x" * 300, "amount": "500", "due": "2026-07-01", "lang": "hi"}
    assert stream_parameters(variables) == {"name": "Asha", "amount": "500", "due": "2026-07-01"}
    assert stream_parameters(variables, keys=["lang", "essay", "name"]) == {"lang": "hi", "name": "Asha"}
    chosen = stream_parameters({f"k{i}": "é" * 30 for i in range(3)})
    assert len(urlencode(chosen)) <= 256 and len(chosen) == 1  # each pair encodes to 184 chars


def test_stream_url_appends_within_the_limits_left_by_the_base_url():
    """Custom parameters already on the bot URL count against the three; sample-rate does not."""
    url = stream_url("wss://bot.example/media?sample-rate=16000&campaign=c1", {"name": "Asha Rao", "amount": "5", "x": "y"})
    assert parse_qsl(urlsplit(url).query) == [("sample-rate", "16000"), ("campaign", "c1"), ("name", "Asha Rao"), ("amount", "5")]
    assert len(stream_url("wss://b/" + "p" * 590, {"name": "Asha"})) < 600
