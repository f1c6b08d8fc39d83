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
of them on its stream URL (``dialstream.exotel.stream_url``). A ``timezone`` column, when
present and non-empty, overrides the zone guessed from the number for calling windows
(``dialstream.domain.phones``). A ``scheduled_at`` column schedules the contact's first
attempt: ISO 8601 with an offset (``2026-06-04T10:00:00+05:30``), or without one for the
callee's own wall clock (``2026-06-04 17:00``); it is still dialled inside its calling
window. The file formats are read by ``dialstream.domain.contact_files``.

Example::

    for row in read_contacts("batch.csv", dnc=dnc_list.checker()):
        if isinstance(row, RejectedRow):
            print(f"line {row.line_no}: {row.reason}")
        else:
            contacts.append(row.contact)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import IO

import phonenumbers

from dialstream.domain.campaign import Contact
from dialstream.domain.contact_files import (
    PHONE_COLUMNS,
    Columns,
    Record,
    RejectCode,
    csv_records,
    find_column,
    format_of,
    jsonl_records,
    open_binary,
    shown_text,
)
from dialstream.domain.phones import (
    DEFAULT_REGION,
    DEFAULT_TIMEZONE,
    TIMEZONE_COLUMN,
    as_e164,
    check_zone,
    parse_error_message,
    zone_exists,
    zone_of,
)
from dialstream.domain.windows import moment_in_zone
from dialstream.errors import ConfigurationError

__all__ = ["ContactRow", "RejectedRow", "RowResult", "DncCheck", "read_contacts", "check_contacts", "SCHEDULED_AT_COLUMN"]

SCHEDULED_AT_COLUMN = "scheduled_at"


_DNC_BATCH = 1000  # rows per DNC look-up: one round trip each, not one per row


@dataclass(frozen=True, slots=True)
class ContactRow:
    """A row that can be dialled: its contact (E.164 phone) and the zone of its calling window."""

    line_no: int
    contact: Contact
    timezone: str = DEFAULT_TIMEZONE
    scheduled_at: float | None = None  # Unix seconds of the first attempt asked for (scheduled_at)

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
    fmt = format_of(source, fmt)
    if fmt not in ("csv", "jsonl"):
        raise ConfigurationError(f"contact format {fmt!r}: expected 'csv' or 'jsonl'")
    check_zone(default_timezone)
    with open_binary(source) as stream:
        if fmt == "csv":
            records, columns = csv_records(stream, phone_column, timezone_column, delimiter, encoding)
        else:
            records, columns = jsonl_records(stream, encoding), Columns(None, phone_column, timezone_column)
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
    check_zone(default_timezone)
    ids: dict[int, str] = {}
    seen: set[str] = set()

    def records() -> Iterator[Record]:
        for position, contact in enumerate(contacts, start=1):
            raw = contact.to_json()
            if contact.contact_id in seen:
                yield Record(position, raw, None, f"duplicate contact id {contact.contact_id!r}", RejectCode.DUPLICATE)
                continue
            ids[position] = contact.contact_id
            seen.add(contact.contact_id)
            yield Record(position, raw, {**contact.variables, _PHONE_FIELD: contact.phone})

    columns = Columns(_PHONE_FIELD, None, timezone_column)
    for row in _screen_dnc(_validate(records(), columns, default_region, default_timezone), dnc):
        if isinstance(row, ContactRow):
            row = dataclasses.replace(row, contact=dataclasses.replace(row.contact, contact_id=ids[row.line_no]))
        yield row


_PHONE_FIELD = "\0phone"  # where check_contacts puts the phone: no variable can be called that


# Validating


def _validate(
    records: Iterator[Record],
    columns: Columns,
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
        key = columns.phone if columns.phone is not None else find_column(fields, columns.phone_wanted, PHONE_COLUMNS)
        phone_raw = fields.get(key, "").strip() if key else ""
        if not phone_raw:
            hint = f"column {key!r} is empty" if key else "the row has no phone field"
            yield _reject(record, f"missing phone ({hint})", RejectCode.MISSING_PHONE), record.raw
            continue
        try:
            number = phonenumbers.parse(phone_raw, region)
        except phonenumbers.NumberParseException as exc:
            yield _reject(record, f"unparseable number {phone_raw!r}: {parse_error_message(exc)}", RejectCode.UNPARSEABLE), record.raw
            continue
        if not phonenumbers.is_valid_number(number):
            country = phonenumbers.region_code_for_country_code(number.country_code)
            where = f"region {country}" if country != "ZZ" else f"country code +{number.country_code}"
            yield _reject(record, f"{phone_raw!r} is not a valid number for its region ({where})", RejectCode.INVALID_NUMBER), record.raw
            continue
        e164 = as_e164(number)
        earlier = first_seen.get(e164)
        if earlier is not None:
            yield _reject(record, f"duplicate of row {earlier} ({e164})", RejectCode.DUPLICATE), record.raw
            continue
        first_seen[e164] = record.line_no
        zone = fields.get(columns.timezone, "").strip()
        if zone:
            if not zone_exists(zone):
                yield _reject(record, f"unknown time zone {zone!r} in column {columns.timezone!r}", RejectCode.BAD_TIMEZONE), record.raw
                continue
        else:
            zone = zone_of(number, default_tz)
        scheduled = fields.get(find_column(fields, SCHEDULED_AT_COLUMN) or SCHEDULED_AT_COLUMN, "").strip()
        try:
            at = moment_in_zone(scheduled, zone).timestamp() if scheduled else None
        except ValueError as exc:
            yield _reject(record, f"bad {SCHEDULED_AT_COLUMN}: {exc}", RejectCode.BAD_SCHEDULE), record.raw
            continue
        variables = {name: value for name, value in fields.items() if name and name != key}
        yield ContactRow(record.line_no, Contact(f"r{record.line_no}", e164, variables), zone, at), record.raw


def _reject(record: Record, reason: str, code: RejectCode) -> RejectedRow:
    return RejectedRow(record.line_no, shown_text(record.raw), reason, code)


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
        # Counting rows, not numbers: a file of rejected rows must not pile up here.
        if len(pending) >= _DNC_BATCH:
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
            yield RejectedRow(row.line_no, shown_text(raw), f"{row.phone} is on the do-not-call list", RejectCode.DNC)
        else:
            yield row


# Numbers and zones


# Variables on the bot's stream URL


