"""The campaign engine from Python: submit, pause, resume, cancel, watch and report campaigns.

:class:`CampaignEngine` is what ``dialstream campaign ...`` runs; the dialing itself happens
in the workers (``workers.poller`` takes due contacts, ``workers.tasks.dial_contact`` dials).

- Pause stops new dials at once (the pollers only serve running campaigns; a dial already
  handed out sends its contact back); calls in progress finish. Resume picks up where it was.
- Cancel also records every contact not on a call as ``canceled`` at once (with its earlier
  attempts in its history), so every contact has a final record; calls in progress finish
  with their real outcome and are not redialled.
- :meth:`CampaignEngine.status` reads counters kept as the campaign runs: a handful of Redis
  reads whatever the campaign's size.
- :meth:`CampaignEngine.report` gives one row per contact, rejected rows included.
- Both say whose calling window is closed now and until when, in the callee's local time.

Example::

    engine = CampaignEngine(client, settings.account_sid, settings.engine)
    engine.submit_file(CampaignConfig("spring", max_concurrent=20), "batch.csv")
    engine.pause("spring"); engine.resume("spring")
    print(engine.status("spring").done)
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import IO, Any, TextIO

import redis

from dialstream.domain import spreadsheet
from dialstream.domain.call_outcome import told
from dialstream.domain.campaign import CampaignConfig, CampaignState, Contact
from dialstream.domain.dialing import with_history
from dialstream.domain.phones import contact_timezone
from dialstream.domain.progress import DialFacts, waiting_for
from dialstream.domain.windows import CallingWindow, local_iso
from dialstream.engine.erasure import ErasureReport, PurgeReport, erase_number, purge_campaign
from dialstream.engine.submit import SubmitReport, submit_contacts, submit_file
from dialstream.settings import EngineConfig
from dialstream.state import keys
from dialstream.state.call_outcomes import CallOutcomes
from dialstream.state.dial_queue import DialItem
from dialstream.state.dnc import DncList
from dialstream.state.leg_commit import call_result
from dialstream.state.pacing import Pacer
from dialstream.state.slots import Slots
from dialstream.state.store import Store
from dialstream.state.webhooks import campaign_check, record_final

__all__ = ["CampaignEngine", "CampaignStatus", "REPORT_COLUMNS", "new_campaign_id", "write_report_csv"]

REPORT_COLUMNS = (
    "contact_id", "line", "phone", "status", "attempts", "outcome", "disposition", "disposition_data", "callback_at",
    "reason", "leg_sid", "exophone", "agent", "agent_ring_ms", "bridged_at", "recording_url",
    "answered_at", "ended_at", "answered_to_stream_ms", "history", "next_attempt_at", "zone", "window_opens_at",
)  # fmt: skip
_DRAIN = 1000  # contacts canceled per round trip
_ROW_ID = re.compile(r"^r(\d+)$")  # the contact ids read_contacts gives: r{line}


def new_campaign_id(name: str) -> str:
    """An id for a campaign called ``name``: its name in URL-safe words and a random suffix."""
    return f"{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')[:40] or 'campaign'}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class CampaignStatus:
    """A campaign at one moment, from its counters."""

    campaign_id: str
    name: str
    state: CampaignState
    total: int = 0  # contacts accepted
    rejected: int = 0  # rows not accepted (invalid, duplicate, DNC at upload...)
    done: int = 0  # contacts with a final record
    pending: int = 0  # waiting in the queue: new, redials, closed windows, full caps
    due_now: int = 0  # of those, waiting for nothing but room under the caps and budget
    dialing: int = 0  # handed to a dial worker, leg not created yet
    in_flight: int = 0  # calls holding a slot: being placed or up
    dials: int = 0  # calls placed, every attempt counted
    dials_last_minute: float = 0.0
    next_due: float | None = None
    outcomes: Mapping[str, int] = field(default_factory=dict)  # final outcome -> contacts
    dispositions: Mapping[str, int] = field(default_factory=dict)  # disposition code -> calls whose last one it is
    api_used: int = 0  # the account's Legs API requests in the current budget window
    api_limit: int = 0
    throttled: int = 0  # 429s the account got from the Legs API (the pacer should keep it 0)
    waiting_for: tuple[str, ...] = ()  # why contacts wait instead of being dialled (dialstream.domain.progress)
    window: str = ""  # the calling window in force
    # Zones of the campaign's contacts whose window is closed now -> when it opens (their local
    # time, ISO 8601); only while contacts are pending.
    windows_closed: Mapping[str, str] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        # A canceled campaign is over once every contact has its final record, as campaign.finished says
        # (a dial under way at cancel, or a call's end, frees its lease or slot a moment before its record).
        if self.state is CampaignState.CANCELED:
            return self.in_flight == 0 and self.dialing == 0 and self.done >= self.total
        return self.state is CampaignState.DONE

    def to_dict(self) -> dict[str, Any]:
        plain = {"outcomes": dict(self.outcomes), "dispositions": dict(self.dispositions), "windows_closed": dict(self.windows_closed)}
        return {**asdict(self), "state": self.state.value, "waiting_for": list(self.waiting_for), **plain}


class CampaignEngine:
    """Campaigns of one account, over a synchronous Redis client (``decode_responses=True``)."""

    def __init__(self, client: redis.Redis, account: str, engine: EngineConfig | None = None) -> None:
        self.engine = engine or EngineConfig()
        self.store = Store(client)
        self.redis = client
        self.slots = Slots(client, account)
        self.pacer = Pacer(client, account, self.engine.budget)
        self.dnc = DncList(client, account, region=self.engine.default_region)
        self.outcomes = CallOutcomes(client)

    # Submitting

    def submit_file(self, config: CampaignConfig, source: str | Any | IO[bytes], **options: Any) -> SubmitReport:
        """:func:`dialstream.engine.submit.submit_file` with this account's DNC list, default region and data limits."""
        return submit_file(self.store, config, source, **self._submit_options(options))

    def submit(self, config: CampaignConfig, contacts: Iterable[Contact], **options: Any) -> SubmitReport:
        """:func:`dialstream.engine.submit.submit_contacts` with this account's DNC list, default region and data limits."""
        return submit_contacts(self.store, config, contacts, **self._submit_options(options))

    def _submit_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        limits = {"retention": self.engine.retention, "rejects_kept": self.engine.rejects_kept}
        return {"dnc": self.dnc, "region": self.engine.default_region, **limits, **options}

    def resolve(self, ref: str) -> str:
        """The id of the campaign ``ref`` names: its id, its name, or the start of its id, if
        only one campaign matches; KeyError if none does, ValueError if several do."""
        if self.store.campaign(ref) is not None:
            return ref
        ids = self.store.campaign_ids()
        by_name = [cid for cid in ids if (config := self.store.campaign(cid)) is not None and config.name == ref]
        matches = by_name or [cid for cid in ids if cid.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise ValueError(f"{len(matches)} campaigns match {ref!r}: use one of their ids ({', '.join(matches)})")
        raise KeyError(f"no campaign {ref!r}")

    # Control

    def pause(self, campaign_id: str) -> CampaignState:
        return self._move(campaign_id, CampaignState.PAUSED, (CampaignState.RUNNING, CampaignState.PAUSED))

    def resume(self, campaign_id: str) -> CampaignState:
        return self._move(campaign_id, CampaignState.RUNNING, (CampaignState.PAUSED, CampaignState.RUNNING))

    def cancel(self, campaign_id: str) -> int:
        """Stop dialing for good and record every contact not on a call as canceled; returns how many.

        Calls in progress finish, and are not redialled. A dial already under way at this
        moment may still place its call: its real outcome then replaces ``canceled``.
        """
        allowed = (CampaignState.DRAFT, CampaignState.RUNNING, CampaignState.PAUSED, CampaignState.CANCELED)
        self._move(campaign_id, CampaignState.CANCELED, allowed)
        canceled = 0
        while items := self.store.queue.drain(campaign_id, _DRAIN):
            self._record_canceled(campaign_id, items)
            canceled += len(items)
        campaign_check(self.store, campaign_id)
        return canceled

    def purge(self, campaign_id: str) -> PurgeReport:
        """Every trace of a finished or canceled campaign deleted (:mod:`dialstream.engine.erasure`)."""
        self.store.forget(campaign_id)
        return purge_campaign(self.store, self.slots, self.dnc, campaign_id)

    def erase(self, number: str) -> ErasureReport:
        """Every trace of ``number`` erased from every campaign, DNC lists aside (:mod:`dialstream.engine.erasure`)."""
        return erase_number(self.store, self.slots, self.dnc, number)

    def _move(self, campaign_id: str, target: CampaignState, allowed: tuple[CampaignState, ...]) -> CampaignState:
        before, moved = self.store.set_state(campaign_id, target, allowed)
        if before is None:
            raise KeyError(f"no campaign {campaign_id!r}")
        if not moved:
            raise ValueError(f"campaign {campaign_id!r} is {before.value}: it cannot become {target.value}")
        return target

    def _record_canceled(self, campaign_id: str, items: list[DialItem]) -> None:
        ids = [item.contact_id for item in items]
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(keys.campaign(campaign_id, "contacts"), ids)
        pipe.hmget(keys.campaign(campaign_id, "results"), ids)
        contacts, previous = pipe.execute()
        pipe = self.redis.pipeline(transaction=False)
        for item, raw_contact, raw_previous in zip(items, contacts, previous):
            contact = Contact.from_json(raw_contact) if raw_contact else None
            reason = f"the campaign was canceled before attempt {item.attempt}"
            result = call_result(None, contact, outcome="canceled", reason=reason)
            record = with_history(json.loads(raw_previous) if raw_previous else None, result, final=True)
            record_final(self.store, campaign_id, item.contact_id, contact, record, client=pipe)
        pipe.execute()

    # Visibility

    def status(self, campaign_id: str, now: float | None = None) -> CampaignStatus:
        """The campaign's counters now; KeyError for an unknown campaign."""
        now = time.time() if now is None else now
        due_key, leased_key, _, hash_key = self.store.queue.keys(campaign_id)
        minute = int(now // 60)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(hash_key, "config", "state", "total", "last_error", "last_error_at")
        pipe.hgetall(keys.campaign(campaign_id, "counts"))
        pipe.scard(keys.campaign(campaign_id, "done"))
        pipe.zcard(due_key)
        pipe.zcount(due_key, "-inf", now)
        pipe.zcard(leased_key)
        pipe.zrange(due_key, 0, 0, withscores=True)
        pipe.mget(keys.campaign(campaign_id, f"dials:{minute}"), keys.campaign(campaign_id, f"dials:{minute - 1}"))
        pipe.exists(keys.dialer_leader())
        pipe.hkeys(keys.campaign(campaign_id, "zones"))
        pipe.get(keys.dials_held())
        (config, state, total, last_error, last_error_at), counts, done, pending, due_now, dialing, first, rates, dialer, zones, held = (
            pipe.execute()
        )
        if config is None:
            raise KeyError(f"no campaign {campaign_id!r}")
        this_minute, last_minute = rates
        campaign = CampaignConfig.from_json(config)
        slots = self.slots.counts(campaign_id)
        api_used = self.pacer.used()
        budget = self.pacer.budget
        closed = _WindowOpenings(campaign.calling_window, now).closed(zones) if int(pending) else {}
        facts = DialFacts(
            state=state, now=now, pending=int(pending), due_now=int(due_now), dialing=int(dialing),
            in_flight=slots.campaign_calls, next_due=float(first[0][1]) if first else None, window=campaign.window if closed else "",
            max_concurrent=campaign.max_concurrent, account_calls=slots.account_calls, max_calls=self.engine.max_calls,
            api_used=api_used, dial_limit=budget.limit - budget.headroom, dialer_running=bool(dialer), events_backlog=int(held or 0),
            last_error=last_error or "", last_error_at=float(last_error_at) if last_error_at else None,
        )  # fmt: skip
        # Dials in the minute ending now: this minute's, plus the part of the last one still inside.
        into = now / 60 - minute
        rate = int(this_minute or 0) + int(last_minute or 0) * (1 - into)
        outcomes = _counted(counts, "outcome:")
        return CampaignStatus(
            campaign_id=campaign_id,
            name=campaign.name,
            state=CampaignState(state),
            total=int(total or 0),
            rejected=int(counts.get("rejected", 0)),
            done=int(done),
            pending=int(pending),
            due_now=int(due_now),
            dialing=int(dialing),
            in_flight=slots.campaign_calls,
            dials=int(counts.get("dials", 0)),
            dials_last_minute=round(rate, 1),
            next_due=float(first[0][1]) if first else None,
            outcomes=outcomes,
            dispositions=_counted(counts, "disposition:"),
            api_used=api_used,
            api_limit=budget.limit,
            throttled=self.pacer.throttled_count(),
            waiting_for=waiting_for(facts),
            window=campaign.window,
            windows_closed=closed,
        )

    def statuses(self) -> list[CampaignStatus]:
        """Every campaign's status, by id."""
        return [self.status(campaign_id) for campaign_id in self.store.campaign_ids()]

    def report(self, campaign_id: str, now: float | None = None) -> Iterator[dict[str, Any]]:
        """One row per contact (columns :data:`REPORT_COLUMNS`), rejected rows included, in file
        order (contacts submitted from Python: by id). Times are ISO 8601 UTC, except
        ``window_opens_at``: when a waiting contact's closed window opens, in its local time."""
        config = self.store.campaign(campaign_id)
        if config is None:
            raise KeyError(f"no campaign {campaign_id!r}")
        opening = _WindowOpenings(config.calling_window, time.time() if now is None else now)
        results = self.store.results(campaign_id)
        done = set(self.redis.smembers(keys.campaign(campaign_id, "done")))
        due_key, leased_key, _, _ = self.store.queue.keys(campaign_id)
        waiting = {json.loads(m)[0]: score for m, score in self.redis.zscan_iter(due_key, count=_DRAIN)}
        dialing = {json.loads(m)[0] for m, _ in self.redis.zscan_iter(leased_key, count=_DRAIN)}
        by_leg = self.outcomes.of_legs(r.get("leg_sid", "") for r in results.values() if "disposition" not in r)
        rows = [
            _contact_row(c, results.get(c.contact_id), c.contact_id in done, waiting, dialing, opening, by_leg)
            for c in self.store.contacts(campaign_id)
        ]
        rows += [_rejected_row(raw) for raw in self.store.rejected(campaign_id)]
        rows.sort(key=_row_order)
        yield from rows


class _WindowOpenings:
    """When each zone's closed window opens (local ISO 8601), computed once per zone."""

    def __init__(self, window: CallingWindow, now: float) -> None:
        self.window = window
        self._moment = datetime.fromtimestamp(now, timezone.utc)
        self._by_zone: dict[str, str | None] = {}

    def __call__(self, zone: str) -> str | None:
        if zone not in self._by_zone:
            opens = self.window.opens_at(self._moment, zone)
            self._by_zone[zone] = None if opens is None else local_iso(opens, zone)
        return self._by_zone[zone]

    def closed(self, zones: Iterable[str]) -> dict[str, str]:
        """Zone -> when its window opens, for the ``zones`` whose window is closed now."""
        return {zone: opens for zone in sorted(zones) if (opens := self(zone))}


def _contact_row(
    contact: Contact,
    result: Mapping[str, Any] | None,
    final: bool,
    waiting: Mapping[str, float],
    dialing: set[str],
    opening: _WindowOpenings,
    by_leg: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    result = result or {}
    # A call over has what its bot told in its record; one on the line only beside its leg.
    bot_told = result if "disposition" in result else told(**by_leg.get(result.get("leg_sid", ""), {}))
    handed = result.get("transfer") or {}
    zone = contact_timezone(contact)
    opens = opening(zone) if contact.contact_id in waiting and not final else None
    reason = result.get("reason", "") or "; ".join(result.get("errors") or ())
    match = _ROW_ID.match(contact.contact_id)
    if final:
        status = "done"
    elif contact.contact_id in waiting:
        status = "waiting" if result else "pending"
    else:
        status = "dialing" if contact.contact_id in dialing else "in_call"
    return {
        "contact_id": contact.contact_id,
        "line": int(match.group(1)) if match else None,
        "phone": contact.phone,
        "status": status,
        "attempts": int(result.get("attempts") or 0),
        "outcome": result.get("outcome", "") if final else "",
        "disposition": bot_told.get("disposition", ""),
        "disposition_data": dict(bot_told.get("disposition_data") or {}),
        "callback_at": bot_told.get("callback_at") or None,
        "reason": reason or (f"waits for its calling window {opening.window} ({zone}) until {opens}" if opens else ""),
        "leg_sid": result.get("leg_sid", ""),
        "exophone": result.get("exophone", ""),
        "agent": handed.get("agent", ""),  # a transfer's agent, its phone's ringing, the bridge
        "agent_ring_ms": handed.get("agent_ring_ms"),
        "bridged_at": _iso(handed.get("bridged_at")),
        "recording_url": result.get("recording_url", ""),
        "answered_at": _iso(result.get("answered_at")),
        "ended_at": _iso(result.get("ended_at")),
        "answered_to_stream_ms": result.get("answered_to_stream_ms"),
        "history": [entry.get("outcome") for entry in result.get("history") or ()] + ([] if final or not result else [result.get("outcome")]),
        "next_attempt_at": _iso(waiting.get(contact.contact_id)),
        "zone": zone,  # the zone of its calling window
        "window_opens_at": opens,
        "variables": dict(contact.variables),  # the row's other input columns
    }


def _rejected_row(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **dict.fromkeys(REPORT_COLUMNS, None),
        "contact_id": "",
        "line": raw["line_no"],
        "phone": "",
        "status": "rejected",
        "attempts": 0,
        "outcome": raw["code"],
        "disposition": "",
        "disposition_data": {},
        "reason": f"{raw['reason']}: {raw['raw']}",
        "leg_sid": "",
        "exophone": "",
        "history": [],
        "variables": {},
    }


def write_report_csv(rows: Iterable[Mapping[str, Any]], handle: TextIO) -> None:
    """Report rows as CSV: :data:`REPORT_COLUMNS`, then the input columns (``input_`` before a
    name the report already uses); the history as outcomes joined by ';', the disposition's
    data as JSON. Safe to open in a spreadsheet: a cell that could run as a formula is escaped
    (``dialstream.domain.spreadsheet``)."""
    rows = list(rows)
    inputs: dict[str, None] = {}
    for row in rows:
        inputs.update(dict.fromkeys(row.get("variables") or ()))
    names = {name: f"input_{name}" if name in REPORT_COLUMNS else name for name in inputs}
    writer = spreadsheet.DictWriter(handle, fieldnames=[*REPORT_COLUMNS, *names.values()], extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        variables = {names[k]: v for k, v in (row.get("variables") or {}).items()}
        data = json.dumps(row["disposition_data"], separators=(",", ":")) if row.get("disposition_data") else ""
        history = ";".join(str(o) for o in row["history"])
        writer.writerow({**row, **variables, "history": history, "disposition_data": data})


def _counted(counts: Mapping[str, str], prefix: str) -> dict[str, int]:
    """The non-zero counters of ``counts`` whose names start with ``prefix``, by the rest of the name."""
    return {name.removeprefix(prefix): int(n) for name, n in counts.items() if name.startswith(prefix) and int(n)}


def _row_order(row: Mapping[str, Any]) -> tuple[float, str]:
    return (row["line"] if row["line"] is not None else float("inf"), row["contact_id"])


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(float(moment), timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
