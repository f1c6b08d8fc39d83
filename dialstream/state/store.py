"""Legs and campaigns in Redis: leg records by compare-and-set, campaigns, contacts and results.

Keys are named in ``dialstream.state.keys``; the Lua scripts sit beside this module.

A campaign's state moves ``draft -> running <-> paused``, then ``done`` when every contact has
its final record, or ``canceled`` from any state but done (``campaign_state.lua``).

Retention: a campaign's hash keeps its ``retention`` (seconds, from ``DIALSTREAM_RETENTION_DAYS``
when it was created). Every state move and every call record sets the TTL of all its keys
(:meth:`Store.campaign_keys`) to it, and loading a batch sets it on the keys it writes: so a
campaign's contacts, results and rejected rows expire that long after its last activity,
whether it finished, was canceled, or stalled. The campaign sets forget expired ids lazily.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import redis

from dialstream.domain.campaign import CampaignConfig, CampaignState, Contact
from dialstream.domain.contacts import RejectedRow
from dialstream.domain.leg_record import LegRecord
from dialstream.domain.kept_events import KEEPABLE, apply_kept, quiet_events
from dialstream.domain.leg_state import PROGRESS_ONLY, record_progress
from dialstream.exotel.actions import ActionKind
from dialstream.exotel.events import LegEvent
from dialstream.state import keys
from dialstream.state.dial_queue import DialQueue
from dialstream.state.scripts import script

__all__ = [
    "Store", "LEG_TTL", "RATE_BUCKET_TTL", "STREAM_VARS", "EXOPHONE", "QUIET", "progress_field", "kept_field", "record_progress_event",
]  # fmt: skip

LEG_TTL = 7 * 24 * 3600  # a leg's record outlives any call and its report
STREAM_VARS = "stream_vars"  # field of the leg hash: the contact variables for the bot's stream URL
EXOPHONE = "exophone"  # field of the leg hash: the caller ID the leg was created with
STREAM_ACCEPTED = "stream_accepted"  # field of the leg hash: "<start_stream action id> <Unix s>", its last acceptance
# Field of the leg hash: the events that would call for no action now (kept_events.quiet_events,
# one per line), written with each record; the ingress keeps those beside it (ingress_accept.lua).
QUIET = "quiet"
_PROGRESS_NAMES = sorted(PROGRESS_ONLY)
_KEPT_NAMES = sorted(KEEPABLE)
RATE_BUCKET_TTL = 300  # a minute's dial count is kept this long: long enough to read the last minute
_SCAN = 1000  # hash fields per HSCAN page when reading a whole campaign


class Store:
    """dialstream's state in Redis, over one synchronous client."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._leg_cas = script(client, "leg_cas.lua")
        self._claim = script(client, "claim.lua")
        self._record = script(client, "record_result.lua")
        self._state = script(client, "campaign_state.lua")
        self.queue = DialQueue(client)
        self._campaign_cache: dict[str, CampaignConfig] = {}

    # Legs

    def load_leg(
        self, leg_sid: str, event_sid: str = "", *, initial: LegRecord | None = None
    ) -> tuple[LegRecord | None, int, bool]:
        """(record or None, version, whether ``event_sid`` was already applied), read together;
        ``initial`` is the record to start from when none is stored yet.

        The record's outbox leaves out the actions already dispatched (:meth:`mark_dispatched`),
        and it has the events the ingress recorded beside it applied: progress-only ones
        (:func:`record_progress_event`) and those it kept as quiet (``dialstream.domain.kept_events``).
        """
        fields = ["version", "doc", *map(progress_field, _PROGRESS_NAMES), *map(kept_field, _KEPT_NAMES)]
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(keys.leg(leg_sid), fields)
        pipe.sismember(keys.leg(leg_sid, "events"), event_sid or "-")
        pipe.smembers(keys.leg(leg_sid, "sent"))
        (version, doc, *beside), applied, sent = pipe.execute()
        progress, kept = beside[: len(_PROGRESS_NAMES)], [json.loads(event) for event in beside[len(_PROGRESS_NAMES) :] if event]
        record = initial if doc is None else LegRecord.from_dict(json.loads(doc))
        if record is None:
            return None, 0, bool(applied)
        if sent and record.outbox:
            record = dataclasses.replace(record, outbox=tuple(a for a in record.outbox if a.action_id not in sent))
        stamps = {name: float(stamp) for name, stamp in zip(_PROGRESS_NAMES, progress) if stamp is not None}
        if stamps:
            record = record_progress(record, stamps)
        if kept and (campaign := self.campaign(record.campaign_id)) is not None:
            record = apply_kept(record, map(LegEvent.from_task, kept), campaign)
        return record, int(version or 0), bool(applied)

    def leg_fields(self, leg_sid: str, *names: str) -> dict[str, str]:
        """Fields of the leg's hash besides its record (:data:`EXOPHONE` ...); a missing one is ""."""
        values = self.redis.hmget(keys.leg(leg_sid), names)
        return {name: _text(value) if value is not None else "" for name, value in zip(names, values)}

    def mark_dispatched(self, leg_sid: str, action_ids: Iterable[str], *, client: Any = None) -> None:
        """Record that these outbox actions are Celery's to deliver now (``client`` may be a pipeline).

        A set beside the record, not a rewrite of it: no compare-and-set round trips on the
        hot path; the next transition saves the record without them.
        """
        target = client if client is not None else self.redis
        target.sadd(keys.leg(leg_sid, "sent"), *action_ids)
        target.expire(keys.leg(leg_sid, "sent"), LEG_TTL)

    def save_leg(self, record: LegRecord, expected_version: int, event_sid: str = "") -> int:
        """Write ``record`` if the stored version is still ``expected_version``.

        Returns the new version, or -1 when another worker got there first.
        """
        doc = json.dumps(record.to_dict())
        keys_ = [keys.leg(record.leg_sid), keys.leg(record.leg_sid, "events")]
        quiet = "\n".join(quiet_events(record))
        return int(self._leg_cas(keys=keys_, args=[expected_version, doc, event_sid, LEG_TTL, QUIET, quiet, *map(kept_field, _KEPT_NAMES)]))

    def claim_action(self, leg_sid: str, action_id: str, kind: ActionKind, task_id: str) -> str:
        """Whether this task may send the action now.

        Returns ``"claimed"`` (nobody else has, or this is our own retry), ``"duplicate"``
        (another task has it), ``"leg-ended"``, ``"stream-up"`` or ``"superseded"`` (the action
        is moot: a later stream attempt replaced this one).
        """
        claim_keys = [keys.action(leg_sid, action_id), keys.leg(leg_sid)]
        result = int(self._claim(keys=claim_keys, args=[task_id, LEG_TTL, kind, action_id]))
        return {1: "claimed", 0: "duplicate", -1: "leg-ended", -2: "stream-up", -3: "superseded"}[result]

    def stream_accepted(self, leg_sid: str, action_id: str, at: float) -> None:
        """The Legs API accepted the stream attempt ``action_id`` at ``at`` (Unix s): its bot's time starts now."""
        self.redis.hset(keys.leg(leg_sid), STREAM_ACCEPTED, f"{action_id} {at}")

    def stream_accepted_at(self, leg_sid: str, action_id: str) -> float | None:
        """When the Legs API accepted the stream attempt ``action_id`` (None: not yet, or never)."""
        accepted = self.leg_fields(leg_sid, STREAM_ACCEPTED)[STREAM_ACCEPTED].split()
        return float(accepted[1]) if len(accepted) == 2 and accepted[0] == action_id else None

    # Campaigns

    def campaign_keys(self, campaign_id: str) -> list[str]:
        """Every key a campaign owns (but its per-minute dial counts, which expire on their own)."""
        parts = ("", "contacts", "legs", "results", "done", "counts", "rejected", "zones", "agent_turn")
        return [keys.campaign(campaign_id, part) for part in parts] + self.queue.keys(campaign_id)[:3]

    def create_campaign(self, config: CampaignConfig, contacts: Iterable[Contact] = (), *, retention: int = 0) -> int:
        """Store a campaign as a draft (nothing is dialled) with ``contacts``; returns their number.
        ``retention``: seconds its data is kept after its last activity (0: for ever).

        Raises ValueError if the campaign id is taken: a second batch never mixes into a campaign.
        """
        if not self.redis.hsetnx(keys.campaign(config.campaign_id), "config", config.to_json()):
            raise ValueError(f"campaign {config.campaign_id!r} already exists")
        total = 0
        pipe = self.redis.pipeline(transaction=False)
        for contact in contacts:
            pipe.hset(keys.campaign(config.campaign_id, "contacts"), contact.contact_id, contact.to_json())
            total += 1
        fields = {"state": CampaignState.DRAFT.value, "total": total, "created_at": time.time()}
        pipe.hset(keys.campaign(config.campaign_id), mapping={**fields, **({"retention": retention} if retention else {})})
        if retention:
            for key in self.campaign_keys(config.campaign_id):
                pipe.expire(key, retention)
        pipe.sadd(keys.campaigns(), config.campaign_id)
        pipe.execute()
        return total

    def add_contacts(self, campaign_id: str, batch: Sequence[tuple[Contact, float]], *, retention: int = 0) -> None:
        """Store contacts of a draft and queue their first dial, each not before its time."""
        if not batch:
            return
        pipe = self.redis.pipeline(transaction=False)
        contacts = keys.campaign(campaign_id, "contacts")
        pipe.hset(contacts, mapping={c.contact_id: c.to_json() for c, _ in batch})
        self.queue.add(campaign_id, ((contact.contact_id, 1, due) for contact, due in batch), client=pipe)
        if retention:
            pipe.expire(contacts, retention)
            pipe.expire(self.queue.keys(campaign_id)[0], retention)
        pipe.execute()

    def count_zones(self, campaign_id: str, zones: Mapping[str, int]) -> None:
        """Count contacts per time zone, so that status can say whose calling window is closed."""
        if not zones:
            return
        pipe = self.redis.pipeline(transaction=False)
        for zone, count in zones.items():
            pipe.hincrby(keys.campaign(campaign_id, "zones"), zone, count)
        pipe.execute()

    def add_rejected(self, campaign_id: str, samples: Sequence[RejectedRow], counts: Mapping[str, int], *, retention: int = 0) -> None:
        """Count rejected rows by code (``counts``), and keep ``samples`` of them, with why, for the report."""
        if not samples and not counts:
            return
        pipe = self.redis.pipeline(transaction=False)
        rejected = keys.campaign(campaign_id, "rejected")
        if samples:
            pipe.hset(rejected, mapping={str(r.line_no): json.dumps(asdict(r)) for r in samples})
        counter = keys.campaign(campaign_id, "counts")
        pipe.hincrby(counter, "rejected", sum(counts.values()))
        for code, count in counts.items():
            pipe.hincrby(counter, f"rejected:{code}", count)
        if retention:
            pipe.expire(rejected, retention)
            pipe.expire(counter, retention)
        pipe.execute()

    def start_campaign(self, campaign_id: str, total: int, *, paused: bool = False) -> CampaignState:
        """A loaded draft of ``total`` contacts starts (or waits, ``paused``); with none it is done."""
        self.redis.hset(keys.campaign(campaign_id), "total", total)
        target = CampaignState.DONE if total == 0 else CampaignState.PAUSED if paused else CampaignState.RUNNING
        self.set_state(campaign_id, target, (CampaignState.DRAFT,))
        return target

    def set_state(self, campaign_id: str, target: CampaignState, allowed: Iterable[CampaignState]) -> tuple[CampaignState | None, bool]:
        """Move the campaign to ``target`` if it is in an ``allowed`` state.

        Returns (the state it was in, or None for an unknown campaign; whether it moved).
        """
        before, moved = self._state(
            keys=[keys.campaign(campaign_id), keys.running_campaigns(), *self.campaign_keys(campaign_id)],
            args=[campaign_id, target.value, time.time(), *(state.value for state in allowed)],
        )
        return (None if before is None else CampaignState(_text(before))), bool(moved)

    def campaign(self, campaign_id: str) -> CampaignConfig | None:
        """A campaign's config; cached, since it never changes after creation."""
        cached = self._campaign_cache.get(campaign_id)
        if cached is None:
            raw = self.redis.hget(keys.campaign(campaign_id), "config")
            if raw is None:
                return None
            cached = self._campaign_cache[campaign_id] = CampaignConfig.from_json(raw)
        return cached

    def forget(self, campaign_id: str) -> None:
        """Drop this process's cached config of a campaign (it is being deleted)."""
        self._campaign_cache.pop(campaign_id, None)

    def campaign_ids(self) -> list[str]:
        return self._existing(keys.campaigns())

    def running_campaigns(self) -> list[str]:
        return self._existing(keys.running_campaigns())

    def _existing(self, set_key: str) -> list[str]:
        """The campaign ids in ``set_key`` whose campaign still exists; expired ones leave the set."""
        ids = sorted(_text(c) for c in self.redis.smembers(set_key))
        pipe = self.redis.pipeline(transaction=False)
        for campaign_id in ids:
            pipe.exists(keys.campaign(campaign_id))
        present = pipe.execute() if ids else []
        gone = [campaign_id for campaign_id, exists in zip(ids, present) if not exists]
        if gone:
            self.redis.srem(set_key, *gone)
        return [campaign_id for campaign_id, exists in zip(ids, present) if exists]

    def contact(self, campaign_id: str, contact_id: str) -> Contact | None:
        raw = self.redis.hget(keys.campaign(campaign_id, "contacts"), contact_id)
        return None if raw is None else Contact.from_json(raw)

    def contacts(self, campaign_id: str) -> Iterator[Contact]:
        """Every contact of the campaign, a page at a time (in no particular order)."""
        for _, raw in self.redis.hscan_iter(keys.campaign(campaign_id, "contacts"), count=_SCAN):
            yield Contact.from_json(raw)

    def rejected(self, campaign_id: str) -> list[dict[str, Any]]:
        """The rows that were not accepted, in file order."""
        rows = [json.loads(raw) for _, raw in self.redis.hscan_iter(keys.campaign(campaign_id, "rejected"), count=_SCAN)]
        return sorted(rows, key=lambda row: row["line_no"])

    def note_error(self, campaign_id: str, error: str, *, client: Any = None) -> None:
        """Remember the latest Legs API error on a dial of the campaign: status shows it as a reason."""
        (client or self.redis).hset(keys.campaign(campaign_id), mapping={"last_error": error[:300], "last_error_at": time.time()})

    def count_dial(self, campaign_id: str, now: float, *, client: Any) -> None:
        """Count a placed call, in all and in its minute (``client``: a pipeline)."""
        client.hincrby(keys.campaign(campaign_id, "counts"), "dials", 1)
        bucket = keys.campaign(campaign_id, f"dials:{int(now // 60)}")
        client.incr(bucket)
        client.expire(bucket, RATE_BUCKET_TTL)

    def record_result(
        self, campaign_id: str, contact_id: str, result: Mapping[str, Any], *, final: bool = True, client: Any = None
    ) -> None:
        """Store a contact's latest record; a final one is counted once (its last outcome
        wins) and may finish the campaign. An interim one never replaces a final one.
        ``client`` may be a pipeline."""
        self._record(
            keys=[
                keys.campaign(campaign_id, "results"),
                keys.campaign(campaign_id, "done"),
                keys.campaign(campaign_id, "counts"),
                keys.campaign(campaign_id),
                keys.running_campaigns(),
                *self.campaign_keys(campaign_id),
            ],
            args=[contact_id, json.dumps(result), "1" if final else "0", str(result.get("outcome", "")), campaign_id, time.time()],
            client=client,
        )

    def patch_result(self, campaign_id: str, contact_id: str, leg_sid: str, **fields: Any) -> bool:
        """Set ``fields`` on the contact's record of the call on ``leg_sid`` (its latest attempt's, or
        one in its history): a fact that came after the call was recorded. False if there is none."""
        key = keys.campaign(campaign_id, "results")
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.hget(key, contact_id)
                    result = json.loads(raw) if raw is not None else {}
                    calls = [result, *result.get("history", ())]
                    call = next((c for c in calls if c.get("leg_sid") == leg_sid), None)
                    if call is None:
                        return False
                    call.update(fields)
                    pipe.multi()
                    pipe.hset(key, contact_id, json.dumps(result))
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue

    def result(self, campaign_id: str, contact_id: str) -> dict[str, Any] | None:
        raw = self.redis.hget(keys.campaign(campaign_id, "results"), contact_id)
        return None if raw is None else json.loads(raw)

    def progress(self, campaign_id: str) -> tuple[int, int]:
        """(contacts with a final record, contacts in the campaign)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.scard(keys.campaign(campaign_id, "done"))
        pipe.hget(keys.campaign(campaign_id), "total")
        done, total = pipe.execute()
        return int(done), int(total or 0)

    def results(self, campaign_id: str) -> dict[str, dict[str, Any]]:
        """Every contact's latest record (final or not), by contact id."""
        raw = self.redis.hscan_iter(keys.campaign(campaign_id, "results"), count=_SCAN)
        return {_text(k): json.loads(v) for k, v in raw}


def kept_field(event_name: str) -> str:
    """The field of the leg hash holding the task payload of a quiet ``event_name`` the ingress kept there."""
    return f"kept:{event_name}"


def progress_field(event_name: str) -> str:
    """The field of the leg hash holding the timestamp of its progress-only event ``event_name``."""
    return f"progress:{event_name}"


async def record_progress_event(client: Any, leg_sid: str, event_name: str, timestamp: float) -> None:
    """Record a progress-only event beside its leg's record, in one atomic round trip over an
    asyncio client: the first timestamp of each event is kept (as the state machine keeps it),
    and a leg hash this creates (the event came before its dial's bookkeeping) gets the leg's TTL."""
    pipe = client.pipeline(transaction=True)
    pipe.hsetnx(keys.leg(leg_sid), progress_field(event_name), repr(timestamp))
    pipe.expire(keys.leg(leg_sid), LEG_TTL, nx=True)
    await pipe.execute()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
