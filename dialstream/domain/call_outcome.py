"""What a bot reports about its call: a disposition, and a callback the callee asked for. Pure.

A **disposition** is the call's business outcome in the campaign's own words (``interested``,
``promise_to_pay``, ``wrong_number``) with a little data (``amount=500``); the last one a bot
sets for a call is the call's. A **callback** is a time the callee asked to be called again
("call me at 5 pm"): an instant with a zone, or a wall-clock time in the callee's zone.

Both travel from the bot process to the call's record through Redis
(:mod:`dialstream.state.call_outcomes`), keyed by the stream's ``call_sid``, which is the leg.
When to redial for a callback is :func:`dialstream.domain.dialing.callback_dial`.

Example::

    Disposition.create("promise_to_pay", {"amount": 500, "by": "2026-06-10"}, now=time.time())
    CallbackRequest.create("2026-06-03T17:00", now=time.time()).due("Asia/Kolkata")
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from dialstream.domain.windows import moment_in_zone

__all__ = ["Disposition", "CallbackRequest", "told", "MAX_DATA_CHARS", "MAX_CALLBACK_DAYS"]

MAX_DATA_CHARS = 2000  # a disposition's data, as JSON: a few fields, not a transcript
MAX_CALLBACK_DAYS = 60  # a callback further away than this is a mistake, not a plan
_CODE = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")


@dataclass(frozen=True)
class Disposition:
    code: str
    data: Mapping[str, Any] = field(default_factory=dict)
    set_at: float = 0.0

    @classmethod
    def create(cls, code: str, data: Mapping[str, Any], *, now: float) -> Disposition:
        """A checked disposition; ValueError says what is wrong with the code or the data."""
        code = code.strip().lower()
        if not _CODE.match(code):
            raise ValueError(f"disposition code {code!r}: 1-64 of a-z 0-9 _ . : - (starting with a letter or digit)")
        try:
            text = json.dumps(dict(data), separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"disposition {code} data must be JSON values: {exc}") from None
        if len(text) > MAX_DATA_CHARS:
            raise ValueError(f"disposition {code} data is {len(text)} characters of JSON; at most {MAX_DATA_CHARS}")
        return cls(code, json.loads(text), now)

    def to_json(self) -> str:
        return json.dumps({"code": self.code, "data": dict(self.data), "set_at": self.set_at}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Disposition:
        raw = json.loads(text)
        return cls(raw["code"], raw.get("data") or {}, float(raw.get("set_at") or 0))


@dataclass(frozen=True)
class CallbackRequest:
    """``at``: ISO 8601 with an offset (an instant) or without (the callee's wall clock)."""

    at: str
    requested_at: float
    note: str = ""

    @classmethod
    def create(cls, at: datetime | str | float, *, now: float, note: str = "") -> CallbackRequest:
        """From a datetime (naive: the callee's local time), an ISO 8601 string, or Unix seconds.

        ValueError for text that is not ISO 8601, an instant in the past or too far ahead.
        """
        if isinstance(at, (int, float)):
            at = datetime.fromtimestamp(at, timezone.utc)
        text = at.isoformat(timespec="seconds") if isinstance(at, datetime) else at.strip()
        moment = moment_in_zone(text, "UTC")
        # A wall-clock time is judged with the widest offsets a zone can have (UTC-12..+14).
        slack = 60 if _has_offset(text) else 14 * 3600 + 60
        if moment.timestamp() < now - slack:
            raise ValueError(f"callback time {text} is in the past")
        if moment.timestamp() > now + MAX_CALLBACK_DAYS * 86400 + slack:
            raise ValueError(f"callback time {text} is more than {MAX_CALLBACK_DAYS} days away")
        return cls(text, now, note[:200])

    def due(self, zone: str) -> float:
        """The instant asked for (Unix seconds); a wall-clock time is read in ``zone``."""
        return moment_in_zone(self.at, zone).timestamp()

    def to_json(self) -> str:
        return json.dumps({"at": self.at, "requested_at": self.requested_at, "note": self.note}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> CallbackRequest:
        raw = json.loads(text)
        return cls(raw["at"], float(raw.get("requested_at") or 0), raw.get("note", ""))


def told(disposition: Disposition | None = None, callback: CallbackRequest | None = None) -> dict[str, Any]:
    """What the bot told of a call, as fields of the call's record (``disposition``,
    ``disposition_data``, ``callback_at``): the record keeps them once the call is over."""
    return {
        "disposition": disposition.code if disposition else "",
        "disposition_data": dict(disposition.data) if disposition else {},
        "callback_at": callback.at if callback else "",
    }


def _has_offset(text: str) -> bool:
    """Whether ``text`` names an instant: only then do two zones read it the same."""
    return moment_in_zone(text, "UTC") == moment_in_zone(text, "Etc/GMT-14")
