"""Contact files as a stream of records: CSV (any delimiter, a header row) or JSON lines.

The readers turn bytes into :class:`Record` s numbered by the physical line they start on, and
bytes that are not a row (bad encoding, bad JSON, a broken quote) into records carrying their
reject reason; ``dialstream.domain.contacts`` judges the rows. Nothing is read ahead, so a
file of any size streams in bounded memory.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Any

from dialstream.errors import ConfigurationError

__all__ = ["PHONE_COLUMNS", "RAW_CHARS", "RejectCode", "Record", "Columns", "format_of", "open_binary", "csv_records", "jsonl_records", "find_column", "shown_text"]


class RejectCode(StrEnum):
    MISSING_PHONE = "missing_phone"
    UNPARSEABLE = "unparseable"
    INVALID_NUMBER = "invalid_number"
    DUPLICATE = "duplicate"
    DNC = "dnc"
    BAD_TIMEZONE = "bad_timezone"
    BAD_SCHEDULE = "bad_schedule"
    BAD_CSV = "bad_csv"
    BAD_ENCODING = "bad_encoding"
    BAD_JSON = "bad_json"


# Header names tried in this order when no phone column is named (case and spaces ignored).
PHONE_COLUMNS = ("phone", "phone_number", "number", "mobile", "mobile_number", "msisdn", "contact_uri")


@dataclass(slots=True)
class Record:
    """One row as read from the file, before validation; ``fields`` is None when unreadable."""

    line_no: int
    raw: str
    fields: dict[str, str] | None
    error: str = ""
    code: RejectCode = RejectCode.BAD_CSV


@dataclass(frozen=True, slots=True)
class Columns:
    """Where a row's phone and zone are: fixed by a CSV header, looked up per JSON line."""

    phone: str | None  # the header name; None: find it in each row
    phone_wanted: str | None  # what the caller asked for (None: auto-detect)
    timezone: str


def format_of(source: object, fmt: str | None) -> str:
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
def open_binary(source: str | os.PathLike[str] | IO[bytes] | IO[str]) -> Iterator[IO[bytes]]:
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


def csv_records(
    stream: IO[bytes], phone_column: str | None, timezone_column: str, delimiter: str, encoding: str
) -> tuple[Iterator[Record], Columns]:
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
        return iter(()), Columns(None, phone_column, timezone_column)
    phone_key = find_column(names, phone_column, PHONE_COLUMNS)
    timezone_key = find_column(names, timezone_column) or timezone_column
    consumed.clear()
    rows = _csv_rows(reader, text, consumed, names, reader.line_num + 1)
    return rows, Columns(phone_key, phone_column, timezone_key)


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
    if find_column(names, phone_column, PHONE_COLUMNS) is None:
        wanted = repr(phone_column) if phone_column else "one of " + ", ".join(PHONE_COLUMNS)
        raise ConfigurationError(f"no phone column in the CSV header {names}: expected {wanted}")
    return names


def _csv_rows(reader: Any, text: io.TextIOWrapper, consumed: list[str], names: list[str], line_no: int) -> Iterator[Record]:
    width = len(names)
    try:
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Record(line_no, shown_text("".join(consumed)), None, f"bad CSV: {exc}", RejectCode.BAD_CSV)
                consumed.clear()
                line_no = reader.line_num + 1
                continue
            raw = "".join(consumed)
            consumed.clear()
            start, line_no = line_no, reader.line_num + 1
            if not values:
                continue  # a blank line is not a row
            if not raw.isascii() and _has_surrogates(raw):
                yield Record(start, shown_text(raw), None, "undecodable bytes: the row is not valid text in the file's encoding", RejectCode.BAD_ENCODING)
            elif len(values) != width:
                yield Record(start, shown_text(raw), None, f"bad CSV: expected {width} columns, found {len(values)}", RejectCode.BAD_CSV)
            else:
                yield Record(start, raw, dict(zip(names, values)))
    finally:
        _detach(text)


def _detach(text: io.TextIOWrapper) -> None:
    """Let go of the caller's stream: a collected TextIOWrapper would close it."""
    with contextlib.suppress(ValueError):
        text.detach()


def jsonl_records(stream: IO[bytes], encoding: str) -> Iterator[Record]:
    for line_no, line in enumerate(stream, start=1):
        try:
            text = line.decode(encoding)
        except UnicodeDecodeError:
            yield Record(line_no, shown_text(line.decode(encoding, "backslashreplace")), None, "undecodable bytes: the line is not valid text in the file's encoding", RejectCode.BAD_ENCODING)
            continue
        if line_no == 1:
            text = text.removeprefix("\ufeff")
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except ValueError as exc:
            yield Record(line_no, shown_text(text), None, f"bad JSON: {exc}", RejectCode.BAD_JSON)
            continue
        if not isinstance(value, dict):
            yield Record(line_no, shown_text(text), None, f"bad JSON: expected an object, found {type(value).__name__}", RejectCode.BAD_JSON)
            continue
        yield Record(line_no, text, {str(key).strip(): _as_text(item) for key, item in value.items()})


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"))  # true, 12, [1,2]: as JSON wrote them


def find_column(names: Iterable[str], wanted: str | None, candidates: Sequence[str] = ()) -> str | None:
    """The name of column ``wanted`` (case and spaces ignored), else of the first candidate present."""
    by_folded = {name.strip().lower(): name for name in names if name}
    if wanted:
        return by_folded.get(wanted.strip().lower())
    for candidate in candidates:
        if candidate in by_folded:
            return by_folded[candidate]
    return None


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


RAW_CHARS = 500  # a rejected row keeps this much of its text: enough to find and fix it


def shown_text(raw: str) -> str:
    """A row's text as people should see it: undecodable bytes escaped, no line end, bounded."""
    if not raw.isascii() and _has_surrogates(raw):
        raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    raw = raw.rstrip("\r\n")
    return raw if len(raw) <= RAW_CHARS else raw[:RAW_CHARS] + "..."
