"""Webhooks as the Standard Webhooks scheme defines them: events, stable ids, signatures, retries.

Pure: the payloads are built from records the workers already have, the signature is an
HMAC, the retry schedule a list of delays. ``dialstream.state.webhooks`` stores and schedules
deliveries; ``workers.webhooks`` sends them.

Events (``type``), each a JSON body ``{"type", "timestamp", "data"}``:

- ``call.answered``: a callee picked up (campaign, contact, attempt, leg, when);
- ``call.completed``: a call ended (outcome, reason, timings, the bot's disposition if it set one);
- ``contact.finished``: a contact has its final outcome (attempts, history, its input columns);
- ``campaign.finished``: every contact of the campaign has its final outcome (counts per outcome).

Each message has an id derived from what it is about (``msg_`` + a hash of the event type and
the leg, contact or campaign), so an event emitted twice (a worker re-running after a crash)
is the same message, and a receiver de-duplicates on ``webhook-id``: at least once, never
two different ids for one fact.

Signature (https://www.standardwebhooks.com): ``webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">`` with the endpoint's secret ``whsec_<base64 key>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from dialstream.errors import ConfigurationError

__all__ = [
    "EVENT_TYPES",
    "SECRET_PREFIX",
    "DEFAULT_RETRY_SCHEDULE",
    "message_id",
    "message",
    "new_secret",
    "check_secret",
    "sign",
    "headers",
    "next_delay",
    "call_answered",
    "call_completed",
    "contact_finished",
    "campaign_finished",
    "iso",
]

EVENT_TYPES = ("call.answered", "call.completed", "contact.finished", "campaign.finished")
SECRET_PREFIX = "whsec_"
# Seconds after each failed attempt before the next (the schedule Standard Webhooks' authors
# use): about 28 hours in all, then the delivery is dead-lettered.
DEFAULT_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


def message_id(event_type: str, *about: str) -> str:
    """The stable id of the message saying ``event_type`` about ``about`` (leg, contact...)."""
    digest = hashlib.sha256("\x1f".join((event_type, *about)).encode()).digest()
    return "msg_" + base64.b32encode(digest[:15]).decode().lower()


def message(event_type: str, data: Mapping[str, Any], at: float) -> dict[str, Any]:
    """The JSON body of one webhook."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event {event_type!r}")
    return {"type": event_type, "timestamp": iso(at), "data": dict(data)}


def new_secret() -> str:
    """A fresh endpoint secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_secret(secret: str) -> str:
    """``secret`` if it is a ``whsec_`` base64 key of 24 to 64 bytes; ConfigurationError otherwise."""
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError:
        key = b""
    if not secret.startswith(SECRET_PREFIX) or not 24 <= len(key) <= 64:
        raise ConfigurationError("a webhook secret is 'whsec_' followed by 24 to 64 bytes in base64")
    return secret


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one delivery attempt."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header of one delivery attempt (``timestamp``: when it is sent, Unix seconds)."""
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def next_delay(attempts: int, schedule: Sequence[float] = DEFAULT_RETRY_SCHEDULE) -> float | None:
    """Seconds to wait after ``attempts`` failed attempts; None: give up (dead-letter)."""
    return schedule[attempts - 1] if 1 <= attempts <= len(schedule) else None


def iso(moment: float | None) -> str | None:
    """Unix seconds as ISO 8601 UTC with milliseconds (``...Z``)."""
    if moment is None:
        return None
    return datetime.fromtimestamp(float(moment), timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def call_answered(campaign_id: str, contact_id: str, attempt: int, leg_sid: str, answered_at: float | None) -> dict[str, Any]:
    return {"campaign_id": campaign_id, "contact_id": contact_id, "attempt": attempt, "leg_sid": leg_sid, "answered_at": iso(answered_at)}


def call_completed(campaign_id: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """From a call's record (``dialstream.state.leg_commit.call_result``)."""
    answered, ended = result.get("answered_at"), result.get("ended_at")
    data = {
        "campaign_id": campaign_id,
        "contact_id": result.get("contact_id", ""),
        "attempt": result.get("attempt", 0),
        "leg_sid": result.get("leg_sid", ""),
        "outcome": result.get("outcome", ""),
        "reason": result.get("reason", ""),
        "answered_at": iso(answered),
        "stream_started_at": iso(result.get("stream_started_at")),
        "ended_at": iso(ended),
        "timings": {
            "answered_to_stream_ms": result.get("answered_to_stream_ms"),
            "answered_to_first_audio_ms": first_audio_ms(result),
            "talk_seconds": None if answered is None or ended is None else round(float(ended) - float(answered), 3),
        },
    }
    if result.get("disposition"):
        data["disposition"] = result["disposition"]
    return data


def first_audio_ms(result: Mapping[str, Any]) -> float | None:
    """Answer -> first audio dialstream knows of: the greeting's start (say/play_started), else
    the bot's stream start. Exotel's event times, not what the callee's ear got."""
    answered = result.get("answered_at")
    starts = [t for t in (result.get("greeting_started_at"), result.get("stream_started_at")) if t is not None]
    if answered is None or not starts:
        return None
    return round((min(starts) - answered) * 1000, 1)


def contact_finished(campaign_id: str, phone: str, variables: Mapping[str, str], record: Mapping[str, Any]) -> dict[str, Any]:
    """From a contact's final record: its last attempt, its history and its input columns."""
    data = {
        "campaign_id": campaign_id,
        "contact_id": record.get("contact_id", ""),
        "phone": phone,
        "outcome": record.get("outcome", ""),
        "reason": record.get("reason", ""),
        "attempts": record.get("attempts") or record.get("attempt") or 0,
        "leg_sid": record.get("leg_sid", ""),
        # Every attempt's outcome, the final one last.
        "attempt_outcomes": [entry.get("outcome") for entry in record.get("history") or ()] + [record.get("outcome", "")],
        "variables": dict(variables),
    }
    if record.get("disposition"):
        data["disposition"] = record["disposition"]
    return data


def campaign_finished(campaign_id: str, name: str, state: str, total: int, outcomes: Mapping[str, int]) -> dict[str, Any]:
    return {"campaign_id": campaign_id, "name": name, "state": state, "total": total, "outcomes": dict(outcomes)}
