"""Hand a campaign to the engine: its contacts, checked row by row, into its dial queue.

:func:`submit_file` streams a CSV or JSON-lines batch (``dialstream.domain.contacts.read_contacts``)
and :func:`submit_contacts` takes contacts built in Python; both store each accepted contact,
queue its first dial for when its calling window opens, keep every rejected row with its
reason (invalid, duplicate, DNC...), then start the campaign. A row's ``scheduled_at`` is
its first dial's time, moved into its calling window like a callback. Nothing is dialled here: the
workers' dial poller takes contacts from the queue as the caps and the API budget allow.

The campaign is a draft while it loads, so no contact is dialled before the whole batch is
in (and its total known), and memory stays flat whatever the file's size: rows go to Redis
a thousand at a time. Rejected rows are all counted (by code) but only the first
``rejects_kept`` are stored, as samples for the report: a file of junk costs a few counters,
not a copy of itself. Every key written gets the campaign's ``retention`` as its TTL.

Example::

    report = submit_file(store, CampaignConfig("spring", window="09:00-20:00"), "batch.csv",
                         dnc=DncList(client, settings.account_sid))
    print(report.accepted, report.rejected_by_code)
"""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, TypedDict, Unpack

from dialstream.domain.campaign import CampaignConfig, CampaignState, Contact
from dialstream.domain.contacts import ContactRow, RejectedRow, RowResult, check_contacts, read_contacts
from dialstream.domain.dialing import callback_dial
from dialstream.domain.phones import DEFAULT_REGION
from dialstream.errors import ConfigurationError
from dialstream.settings import EngineConfig
from dialstream.state.dial_queue import in_order
from dialstream.state.dnc import DncList
from dialstream.state.store import Store

__all__ = ["SubmitReport", "Loading", "submit_file", "submit_contacts"]

_BATCH = 1000  # rows per Redis round trip
_DEFAULTS = EngineConfig()


@dataclass(frozen=True)
class SubmitReport:
    """What a submission did. The rejected rows themselves are in the campaign's report."""

    campaign_id: str
    state: CampaignState
    accepted: int = 0
    rejected: int = 0
    rejected_by_code: Mapping[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return (self.accepted + self.rejected) / self.seconds if self.seconds > 0 else 0.0


class Loading(TypedDict, total=False):
    """How either submission loads its rows (the defaults: :func:`_load`'s)."""

    paused: bool  # leave the campaign paused once loaded, instead of starting it
    clock: Callable[[], float]  # the time now (Unix s): when first dials are due
    on_rejected: Callable[[RejectedRow], None] | None  # called with each bad row as it is met
    retention: int  # seconds every key written lives
    rejects_kept: int  # how many rejected rows are stored as the report's samples


def submit_file(
    store: Store,
    config: CampaignConfig,
    source: str | os.PathLike[str] | IO[bytes] | IO[str],
    *,
    dnc: DncList | None = None,
    region: str = DEFAULT_REGION,
    phone_column: str | None = None,
    fmt: str | None = None,
    **loading: Unpack[Loading],
) -> SubmitReport:
    """Create campaign ``config`` from a CSV/JSONL file and start it (or leave it ``paused``).

    A problem with the whole file (no phone column, an unknown format, no row at all) raises
    ConfigurationError before anything is stored; a bad row is rejected on its own and
    passed to ``on_rejected`` as it is met. ``retention`` (seconds) and ``rejects_kept``:
    see the module's docstring; the other ``loading`` options: :class:`Loading`.
    """
    checker = dnc.checker(config.campaign_id) if dnc is not None else None
    rows = read_contacts(source, phone_column=phone_column, default_region=region, fmt=fmt, dnc=checker)
    return _load(store, config, rows, **loading)


def submit_contacts(
    store: Store,
    config: CampaignConfig,
    contacts: Iterable[Contact],
    *,
    dnc: DncList | None = None,
    region: str = DEFAULT_REGION,
    **loading: Unpack[Loading],
) -> SubmitReport:
    """:func:`submit_file` for contacts built in Python; each keeps its contact id."""
    checker = dnc.checker(config.campaign_id) if dnc is not None else None
    rows = check_contacts(contacts, default_region=region, dnc=checker)
    return _load(store, config, rows, **loading)


def _load(
    store: Store,
    config: CampaignConfig,
    rows: Iterator[RowResult],
    *,
    paused: bool = False,
    clock: Callable[[], float] = time.time,
    on_rejected: Callable[[RejectedRow], None] | None = None,
    retention: int = _DEFAULTS.retention,
    rejects_kept: int = _DEFAULTS.rejects_kept,
) -> SubmitReport:
    started = time.perf_counter()
    first = next(rows, None)  # a bad file fails here, before the campaign exists
    if first is None:
        raise ConfigurationError("no contacts: the input has no rows")
    now = clock()
    opening: dict[str, float] = {}  # the window's next opening per zone, as of ``now``

    def not_before(zone: str) -> float:
        if zone not in opening:
            moment = datetime.fromtimestamp(now, timezone.utc)
            opening[zone] = config.calling_window.next_allowed(moment, zone).timestamp()
        return opening[zone]

    store.create_campaign(config, retention=retention)
    accepted: list[tuple[Contact, float]] = []
    samples: list[RejectedRow] = []
    batch_codes: Counter[str] = Counter()  # rejections since the last round trip
    total = kept = 0
    codes: Counter[str] = Counter()
    zones: Counter[str] = Counter()
    for row in itertools.chain(() if first is None else (first,), rows):
        if isinstance(row, ContactRow):
            due = not_before(row.timezone) if row.scheduled_at is None else callback_dial(config, row.scheduled_at, row.timezone, now)
            accepted.append((row.contact, in_order(due, total)))  # file order among equals
            zones[row.timezone] += 1
            total += 1
        else:
            batch_codes[row.code.value] += 1
            if kept < rejects_kept:
                samples.append(row)
                kept += 1
            if on_rejected is not None:
                on_rejected(row)
        if len(accepted) + batch_codes.total() >= _BATCH:
            store.add_contacts(config.campaign_id, accepted, retention=retention)
            store.add_rejected(config.campaign_id, samples, batch_codes, retention=retention)
            codes += batch_codes
            accepted, samples, batch_codes = [], [], Counter()
    store.add_contacts(config.campaign_id, accepted, retention=retention)
    store.add_rejected(config.campaign_id, samples, batch_codes, retention=retention)
    codes += batch_codes
    store.count_zones(config.campaign_id, zones)
    state = store.start_campaign(config.campaign_id, total, paused=paused)
    return SubmitReport(config.campaign_id, state, total, sum(codes.values()), dict(codes), time.perf_counter() - started)
