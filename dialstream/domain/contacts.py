"""Streaming contact ingestion: a CSV or JSON-lines batch in, one verdict per row out.

``read_contacts(path)`` yields, in file order, a :class:`ContactRow` for every row that can
be dialled and a :class:`RejectedRow` (with a machine-readable ``code`` and a sentence for
people) for every row that cannot. A bad row never stops the batch; only a problem with the
whole file does (no phone column, a duplicated header name, an unknown format), and that
raises :class:`~dialstream.errors.ConfigurationError` on the first ``next()``.

The file is read as a stream: memory grows with the number of distinct phone numbers (for
duplicate detection), never with the file. Rows are numbered by the physical line they start
on (the CSV header is line 1), and ``r{line}`` is the contact id, stable across re-imports of
the same file.

Per-row variables (every column but the phone) travel with the contact; the bot gets some
of them on its stream URL (:func:`stream_url`), within Exotel's limits of 3 custom
parameters and 256 characters. A ``timezone`` column, when present and non-empty, overrides
the zone guessed from the number (:func:`timezone_for`) for calling windows; it stays among
the variables, so :func:`contact_timezone` finds the same zone from a stored contact.

Example::

    for row in read_contacts("batch.csv", dnc=dnc_list.checker()):
        if isinstance(row, RejectedRow):
            print(f"line {row.line_no}: {row.reason}")
        else:
            contacts.append(row.contact)
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
from collections.abc import (
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
    Set,
)
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as phone_timezone

from dialstream.domain.campaign import Contact
from dialstream.errors import ConfigurationError

__all__ = [
    "ContactRow",
    "RejectedRow",
    "RejectCode",
    "RowResult",
    "DncCheck",
    "read_contacts",
    "check_contacts",
    "normalize_number",
    "timezone_for",
    "contact_timezone",
    "stream_parameters",
    "stream_url",
    "PHONE_COLUMNS",
    "DEFAULT_TIMEZONE",
    "DEFAULT_REGION",
    "STREAM_PARAM_LIMIT",
    "STREAM_PARAM_CHARS",
]

# Header names tried in this order when no phone column is named (case and spaces ignored).
PHONE_COLUMNS = ("phone", "phone_number", "number", "mobile", "mobile_number", "msisdn", "contact_uri")
DEFAULT_TIMEZONE = "Asia/Kolkata"  # the zone of DEFAULT_REGION, used when a number tells none
DEFAULT_REGION = "IN"
TIMEZONE_COLUMN = "timezone"

# Exotel's AgentStream limits on custom parameters appended to the bot URL.
STREAM_PARAM_LIMIT = 3
STREAM_PARAM_CHARS = 256
STREAM_URL_CHARS = 600  # "full URL including query params must be under 600 characters"
# Query parameters Exotel itself reads; they are not custom parameters.
_EXOTEL_URL_PARAMS = frozenset({"sample-rate", "sample_rate"})

_RAW_CHARS = 500  # a rejected row keeps this much of its text: enough to find and fix it
_DNC_BATCH = 1000  # rows per DNC look-up: one round trip each, not one per row


class RejectCode(StrEnum):
    MISSING_PHONE = "missing_phone"
    UNPARSEABLE = "unparseable"
    INVALID_NUMBER = "invalid_number"
    DUPLICATE = "duplicate"
    DNC = "dnc"
    BAD_TIMEZONE = "bad_timezone"
    BAD_CSV = "bad_csv"
    BAD_ENCODING = "bad_encoding"
    BAD_JSON = "bad_json"


@dataclass(frozen=True, slots=True)
class ContactRow:
    """A row that can be dialled: its contact (E.164 phone) and the zone of its calling window."""

    line_no: int
    contact: Contact
    timezone: str = DEFAULT_TIMEZONE

    @property
    def contact_id(self) -> str:
        return self.contact.contact_id

    @property
    def phone(self) -> str:
        return self.contact.phone

    @property
    def variables(self) -> Mapping[str, str]:
        return self.contact.variables


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row that will not be dialled, with why, in words (``reason``) and as a code."""

    line_no: int
    raw: str  # the row as written (bad bytes escaped, at most 500 characters)
    reason: str
    code: RejectCode


RowResult = ContactRow | RejectedRow
# Given E.164 numbers, return those that are blocked; or simply the set of blocked numbers.
DncCheck = Callable[[Sequence[str]], Collection[str]] | Set[str]


# Reading


@dataclass(slots=True)
class _Record:
    """One row as read from the file, before validation; ``fields`` is None when unreadable."""

    line_no: int
    raw: str
    fields: dict[str, str] | None
    error: str = ""
    code: RejectCode = RejectCode.BAD_CSV


def read_contacts(
    source: str | os.PathLike[str] | IO[bytes] | IO[str],
    *,
    phone_column: str | None = None,
    default_region: str = DEFAULT_REGION,
    fmt: str | None = None,
    dnc: DncCheck | None = None,
    timezone_column: str = TIMEZONE_COLUMN,
    default_timezone: str = DEFAULT_TIMEZONE,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> Iterator[RowResult]:
    """Yield a :class:`ContactRow` or a :class:`RejectedRow` for every row of ``source``.

    ``source`` is a path or an open file (binary preferred: a text file cannot report
    undecodable bytes per row). ``fmt`` is ``"csv"`` or ``"jsonl"``; None decides by the
    file name's suffix (``.csv``, ``.jsonl``/``.ndjson``; a file object without a name is CSV).
    ``phone_column`` None picks the first header in :data:`PHONE_COLUMNS`. Numbers without a
    country code are read as ``default_region`` numbers. ``dnc`` rejects blocked numbers; a
    callable is asked once per 1,000 rows, so a Redis-backed list costs one round trip each.
    A problem with the whole file raises ConfigurationError on the first ``next()``.
    """
    fmt = _format_of(source, fmt)
    if fmt not in ("csv", "jsonl"):
        raise ConfigurationError(f"contact format {fmt!r}: expected 'csv' or 'jsonl'")
    _check_zone(default_timezone)
    with _binary(source) as stream:
        if fmt == "csv":
            records, columns = _csv_records(stream, phone_column, timezone_column, delimiter, encoding)
        else:
            records, columns = _jsonl_records(stream, encoding), _Columns(None, phone_column, timezone_column)
        checked = _validate(records, columns, default_region, default_timezone)
        try:
            yield from _screen_dnc(checked, dnc)
        finally:
            # A consumer may stop early: let go of the caller's stream now, not at GC time.
            checked.close()
            getattr(records, "close", lambda: None)()


def check_contacts(
    contacts: Iterable[Contact],
    *,
    default_region: str = DEFAULT_REGION,
    dnc: DncCheck | None = None,
    timezone_column: str = TIMEZONE_COLUMN,
    default_timezone: str = DEFAULT_TIMEZONE,
) -> Iterator[RowResult]:
    """:func:`read_contacts`' verdicts for contacts built in Python: the same checks, in order.

    Each accepted contact keeps its own id (its phone becomes E.164); ``line_no`` is its
    position from 1. A second contact with an id already seen is rejected as a duplicate.
    """
    _check_zone(default_timezone)
    ids: dict[int, str] = {}
    seen: set[str] = set()

    def records() -> Iterator[_Record]:
        for position, contact in enumerate(contacts, start=1):
            raw = contact.to_json()
            if contact.contact_id in seen:
                yield _Record(position, raw, None, f"duplicate contact id {contact.contact_id!r}", RejectCode.DUPLICATE)
                continue
            ids[position] = contact.contact_id
            seen.add(contact.contact_id)
            yield _Record(position, raw, {**contact.variables, _PHONE_FIELD: contact.phone})

    columns = _Columns(_PHONE_FIELD, None, timezone_column)
    for row in _screen_dnc(_validate(records(), columns, default_region, default_timezone), dnc):
        if isinstance(row, ContactRow):
            row = dataclasses.replace(row, contact=dataclasses.replace(row.contact, contact_id=ids[row.line_no]))
        yield row


_PHONE_FIELD = "\0phone"  # where check_contacts puts the phone: no variable can be called that


@dataclass(frozen=True, slots=True)
class _Columns:
    """Where a row's phone and zone are: fixed by a CSV header, looked up per JSON line."""

    phone: str | None  # the header name; None: find it in each row
    phone_wanted: str | None  # what the caller asked for (None: auto-detect)
    timezone: str


def _format_of(source: object, fmt: str | None) -> str:
    if fmt is not None:
        return fmt.lower()
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", None)
    if not isinstance(name, str):
        return "csv"
    lowered = name.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    raise ConfigurationError(f"cannot tell the format of {name!r} from its name: pass fmt='csv' or fmt='jsonl'")


@contextlib.contextmanager
def _binary(source: str | os.PathLike[str] | IO[bytes] | IO[str]) -> Iterator[IO[bytes]]:
    """A buffered binary stream of ``source``; closed afterwards only if we opened it."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:
            yield handle
    elif isinstance(source, io.TextIOBase):
        # Already decoded (a StringIO, sys.stdin): re-encoded lazily, so it stays a stream.
        yield io.BufferedReader(_EncodedText(source))  # type: ignore[arg-type]
    else:
        yield source  # type: ignore[misc]


class _EncodedText(io.RawIOBase):
    """A read-only binary view of a text stream (UTF-8), for callers that hold a StringIO."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self._text.read(65536)
            if not chunk:
                return 0
            self._pending = chunk.encode("utf-8", "surrogateescape")
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _csv_records(
    stream: IO[bytes], phone_column: str | None, timezone_column: str, delimiter: str, encoding: str
) -> tuple[Iterator[_Record], _Columns]:
    """(the data rows as records, where the phone and zone are); reads the header now."""
    # surrogateescape keeps undecodable bytes instead of failing the whole file; a row that
    # contains any is rejected on its own. utf-8-sig drops an Excel byte-order mark.
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    text = io.TextIOWrapper(stream, encoding=codec, errors="surrogateescape", newline="")  # type: ignore[type-var]
    consumed: list[str] = []

    def lines() -> Iterator[str]:
        for line in text:
            consumed.append(line)  # csv.reader does not expose a row's text; we keep it
            yield line

    reader = csv.reader(lines(), delimiter=delimiter)
    try:
        names = _csv_header(reader, phone_column)
    except BaseException:
        _detach(text)
        raise
    if names is None:  # an empty file
        _detach(text)
        return iter(()), _Columns(None, phone_column, timezone_column)
    phone_key = _find_column(names, phone_column, PHONE_COLUMNS)
    timezone_key = _find_column(names, timezone_column) or timezone_column
    consumed.clear()
    rows = _csv_rows(reader, text, consumed, names, reader.line_num + 1)
    return rows, _Columns(phone_key, phone_column, timezone_key)


def _csv_header(reader: Any, phone_column: str | None) -> list[str] | None:
    """The header's column names (the first non-blank line), or None for an empty file."""
    try:
        header = next((row for row in reader if row), None)
    except csv.Error as exc:
        raise ConfigurationError(f"the CSV header is unreadable: {exc}") from None
    if header is None:
        return None
    names = [name.strip() for name in header]
    if _has_surrogates("".join(names)):
        raise ConfigurationError("the CSV header is not valid text in the file's encoding")
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise ConfigurationError(f"column {name!r} appears twice in the CSV header")
        seen.add(name)
    if _find_column(names, phone_column, PHONE_COLUMNS) is None:
        wanted = repr(phone_column) if phone_column else "one of " + ", ".join(PHONE_COLUMNS)
        raise ConfigurationError(f"no phone column in the CSV header {names}: expected {wanted}")
    return names


def _csv_rows(reader: Any, text: io.TextIOWrapper, consumed: list[str], names: list[str], line_no: int) -> Iterator[_Record]:
    width = len(names)
    try:
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield _Record(line_no, _shown("".join(consumed)), None, f"bad CSV: {exc}", RejectCode.BAD_CSV)
                consumed.clear()
                line_no = reader.line_num + 1
                continue
            raw = "".join(consumed)
            consumed.clear()
            start, line_no = line_no, reader.line_num + 1
            if not values:
                continue  # a blank line is not a row
            if not raw.isascii() and _has_surrogates(raw):
                yield _Record(start, _shown(raw), None, "undecodable bytes: the row is not valid text in the file's encoding", RejectCode.BAD_ENCODING)
            elif len(values) != width:
                yield _Record(start, _shown(raw), None, f"bad CSV: expected {width} columns, found {len(values)}", RejectCode.BAD_CSV)
            else:
                yield _Record(start, raw, dict(zip(names, values)))
    finally:
        _detach(text)


def _detach(text: io.TextIOWrapper) -> None:
    """Let go of the caller's stream: a collected TextIOWrapper would close it."""
    with contextlib.suppress(ValueError):
        text.detach()


def _jsonl_records(stream: IO[bytes], encoding: str) -> Iterator[_Record]:
    for line_no, line in enumerate(stream, start=1):
        try:
            text = line.decode(encoding)
        except UnicodeDecodeError:
            yield _Record(line_no, _shown(line.decode(encoding, "backslashreplace")), None, "undecodable bytes: the line is not valid text in the file's encoding", RejectCode.BAD_ENCODING)
            continue
        if line_no == 1:
            text = text.removeprefix("\ufeff")
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except ValueError as exc:
            yield _Record(line_no, _shown(text), None, f"bad JSON: {exc}", RejectCode.BAD_JSON)
            continue
        if not isinstance(value, dict):
            yield _Record(line_no, _shown(text), None, f"bad JSON: expected an object, found {type(value).__name__}", RejectCode.BAD_JSON)
            continue
        yield _Record(line_no, text, {str(key).strip(): _as_text(item) for key, item in value.items()})


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"))  # true, 12, [1,2]: as JSON wrote them


def _find_column(names: Iterable[str], wanted: str | None, candidates: Sequence[str] = ()) -> str | None:
    """The name of column ``wanted`` (case and spaces ignored), else of the first candidate present."""
    by_folded = {name.strip().lower(): name for name in names if name}
    if wanted:
        return by_folded.get(wanted.strip().lower())
    for candidate in candidates:
        if candidate in by_folded:
            return by_folded[candidate]
    return None


# Validating


def _validate(
    records: Iterator[_Record],
    columns: _Columns,
    region: str,
    default_tz: str,
) -> Iterator[tuple[RowResult, str]]:
    """(verdict, the row's text) for every record; the text is for a later DNC rejection."""
    first_seen: dict[str, int] = {}
    for record in records:
        fields = record.fields
        if fields is None:
            yield RejectedRow(record.line_no, record.raw, record.error, record.code), record.raw
            continue
        key = columns.phone if columns.phone is not None else _find_column(fields, columns.phone_wanted, PHONE_COLUMNS)
        phone_raw = fields.get(key, "").strip() if key else ""
        if not phone_raw:
            hint = f"column {key!r} is empty" if key else "the row has no phone field"
            yield _reject(record, f"missing phone ({hint})", RejectCode.MISSING_PHONE), record.raw
            continue
        try:
            number = phonenumbers.parse(phone_raw, region)
        except phonenumbers.NumberParseException as exc:
            yield _reject(record, f"unparseable number {phone_raw!r}: {_parse_message(exc)}", RejectCode.UNPARSEABLE), record.raw
            continue
        if not phonenumbers.is_valid_number(number):
            country = phonenumbers.region_code_for_country_code(number.country_code)
            where = f"region {country}" if country != "ZZ" else f"country code +{number.country_code}"
            yield _reject(record, f"{phone_raw!r} is not a valid number for its region ({where})", RejectCode.INVALID_NUMBER), record.raw
            continue
        e164 = _e164(number)
        earlier = first_seen.get(e164)
        if earlier is not None:
            yield _reject(record, f"duplicate of row {earlier} ({e164})", RejectCode.DUPLICATE), record.raw
            continue
        first_seen[e164] = record.line_no
        zone = fields.get(columns.timezone, "").strip()
        if zone:
            if not _zone_exists(zone):
                yield _reject(record, f"unknown time zone {zone!r} in column {columns.timezone!r}", RejectCode.BAD_TIMEZONE), record.raw
                continue
        else:
            zone = _zone_of(number, default_tz)
        variables = {name: value for name, value in fields.items() if name and name != key}
        yield ContactRow(record.line_no, Contact(f"r{record.line_no}", e164, variables), zone), record.raw


def _reject(record: _Record, reason: str, code: RejectCode) -> RejectedRow:
    return RejectedRow(record.line_no, _shown(record.raw), reason, code)


def _parse_message(exc: phonenumbers.NumberParseException) -> str:
    return str(getattr(exc, "_msg", "") or exc)


def _screen_dnc(rows: Iterator[tuple[RowResult, str]], dnc: DncCheck | None) -> Iterator[RowResult]:
    """Reject rows on the DNC list, asking ``dnc`` about a batch of rows at a time, in order."""
    if dnc is None:
        for row, _ in rows:
            yield row
        return
    check: Callable[[Sequence[str]], Collection[str]]
    if callable(dnc):
        check = dnc
    else:
        blocked_set = dnc
        check = lambda numbers: [n for n in numbers if n in blocked_set]  # noqa: E731
    pending: list[tuple[RowResult, str]] = []
    numbers: list[str] = []
    for row, raw in rows:
        pending.append((row, raw))
        if isinstance(row, ContactRow):
            numbers.append(row.phone)
            if len(numbers) >= _DNC_BATCH:
                yield from _flush(pending, numbers, check)
    yield from _flush(pending, numbers, check)


def _flush(
    pending: list[tuple[RowResult, str]], numbers: list[str], check: Callable[[Sequence[str]], Collection[str]]
) -> Iterator[RowResult]:
    blocked = set(check(numbers)) if numbers else set()
    rows = list(pending)
    pending.clear()
    numbers.clear()
    for row, raw in rows:
        if isinstance(row, ContactRow) and row.phone in blocked:
            yield RejectedRow(row.line_no, _shown(raw), f"{row.phone} is on the do-not-call list", RejectCode.DNC)
        else:
            yield row


def _shown(raw: str) -> str:
    """A row's text as people should see it: undecodable bytes escaped, no line end, bounded."""
    if not raw.isascii() and _has_surrogates(raw):
        raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    raw = raw.rstrip("\r\n")
    return raw if len(raw) <= _RAW_CHARS else raw[:_RAW_CHARS] + "..."


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# Numbers and zones


def _e164(number: phonenumbers.PhoneNumber) -> str:
    # format_number(E164) costs as much as parsing; this is what it computes for E.164.
    return f"+{number.country_code}{phonenumbers.national_significant_number(number)}"


def normalize_number(text: str, region: str = DEFAULT_REGION, *, strict: bool = True) -> str:
    """``text`` as E.164; raises ValueError when unparseable, or (``strict``) not a valid number."""
    try:
        number = phonenumbers.parse(text.strip(), region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"unparseable number {text!r}: {_parse_message(exc)}") from None
    if strict and not phonenumbers.is_valid_number(number):
        raise ValueError(f"{text!r} is not a valid number")
    return _e164(number)


def timezone_for(e164: str, *, default: str = DEFAULT_TIMEZONE, region: str = DEFAULT_REGION) -> str:
    """The IANA zone of a phone number (the first phonenumbers lists), else ``default``.

    Numbers of one country but several zones (US toll-free, Australian mobiles) get the
    first zone listed, a guess: give such rows a ``timezone`` column.
    """
    try:
        number = phonenumbers.parse(e164, region)
    except phonenumbers.NumberParseException:
        return default
    return _zone_of(number, default)


def _zone_of(number: phonenumbers.PhoneNumber, default: str) -> str:
    zones = phone_timezone.time_zones_for_number(number)
    if not zones or zones[0] == phone_timezone.UNKNOWN_TIMEZONE:
        return default
    return zones[0]


def contact_timezone(contact: Contact, *, default: str = DEFAULT_TIMEZONE, column: str = TIMEZONE_COLUMN) -> str:
    """The zone for a stored contact's calling window: its ``timezone`` variable, else its number's."""
    zone = contact.variables.get(column, "").strip()
    if zone and _zone_exists(zone):
        return zone
    return timezone_for(contact.phone, default=default)


@lru_cache(maxsize=1024)
def _zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError; "../x" a ValueError
        return False
    return True


def _check_zone(name: str) -> None:
    if not _zone_exists(name):
        raise ConfigurationError(f"unknown time zone {name!r}")


# Variables on the bot's stream URL


def stream_parameters(
    variables: Mapping[str, str],
    *,
    keys: Sequence[str] = (),
    limit: int = STREAM_PARAM_LIMIT,
    max_chars: int = STREAM_PARAM_CHARS,
) -> dict[str, str]:
    """The variables that go on the stream URL: at most ``limit`` pairs, ``max_chars`` encoded.

    Candidates are ``keys`` in that order (those the row has), else every variable in column
    order. A pair that does not fit is skipped whole, never truncated: a cut value would
    reach the bot looking complete. The rest stay available from the contact record.
    """
    return dict(_choose(variables, keys, [], limit, max_chars))


def _choose(
    variables: Mapping[str, str], keys: Sequence[str], present: list[tuple[str, str]], limit: int, max_chars: int
) -> list[tuple[str, str]]:
    """Pairs to add to ``present`` so that all of them fit ``limit`` pairs and ``max_chars``."""
    taken = {name for name, _ in present}
    names = [k for k in (keys or variables) if k in variables and k not in taken]
    chosen: list[tuple[str, str]] = []
    for name in names:
        if len(present) + len(chosen) >= limit:
            break
        trial = [*chosen, (name, variables[name])]
        if len(urlencode(present + trial)) <= max_chars:
            chosen = trial
    return chosen


def stream_url(
    base_url: str,
    variables: Mapping[str, str],
    *,
    keys: Sequence[str] = (),
    limit: int = STREAM_PARAM_LIMIT,
    max_chars: int = STREAM_PARAM_CHARS,
) -> str:
    """``base_url`` with the row's chosen variables appended as custom parameters.

    Custom parameters already on ``base_url`` count against the limits (Exotel's own
    ``sample-rate`` does not), and the whole URL stays under Exotel's 600 characters.
    """
    parts = urlsplit(base_url)
    existing = parse_qsl(parts.query, keep_blank_values=True)
    custom = [(k, v) for k, v in existing if k not in _EXOTEL_URL_PARAMS]
    pairs = _choose(variables, keys, custom, limit, max_chars)
    while True:
        url = urlunsplit(parts._replace(query=urlencode(existing + pairs)))
        if len(url) < STREAM_URL_CHARS or not pairs:
            return url
        pairs.pop()
