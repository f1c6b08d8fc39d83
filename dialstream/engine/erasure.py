"""Removing data about people on request: a whole campaign, or one number everywhere.

- :func:`purge_campaign` (``dialstream campaign purge ID``) deletes every key of a campaign
  (``Store.campaign_keys`` and its per-minute counters), its legs' records (found in its
  ``legs`` hash and in each result's history), its own DNC list, its call slots and timers,
  its webhook messages, and its id from the campaign sets (webhook endpoints, which are
  configuration, stay). It refuses a campaign that may still write: one that is
  not done or canceled, or still has a dial under way or a call in progress.
- :func:`erase_number` (``dialstream contact erase NUMBER``, the right to erasure) finds every
  contact with the number in every campaign and removes its contact entry (with its
  variables), its queued dials, its legs' records and timers, the webhook messages that carry
  it, and the rejected-row samples that contain its digits; its result becomes a final record of outcome ``erased`` that names
  no one, so the campaign's counts stay whole and it can still finish. It refuses while the
  number is being dialled or on a call (erase it once the call has ended).

Do-not-call lists keep the number: a number someone asked not to be called must stay blocked,
and keeping it for that purpose alone is what erasure laws allow; ``dnc remove`` takes it off.
Finding a number reads every campaign's contacts (there is no index by number: one would be
another copy of every number); erasure is rare, and that is the price of not keeping one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from dialstream.domain.campaign import CampaignState, Contact
from dialstream.state import keys
from dialstream.state.dnc import DncList
from dialstream.state.slots import Slots
from dialstream.state.store import Store

__all__ = ["PurgeReport", "ErasureReport", "purge_campaign", "erase_number", "ERASED"]

ERASED = "erased"  # the outcome an erased contact's final record carries
_PAGE = 1000  # hash fields, set members or keys per SCAN page
_FINISHED = (CampaignState.DONE, CampaignState.CANCELED)


@dataclass(frozen=True)
class PurgeReport:
    campaign_id: str
    keys: int = 0  # keys deleted, legs' records included
    legs: int = 0


@dataclass
class ErasureReport:
    number: str  # E.164
    campaigns: list[str] = field(default_factory=list)
    contacts: int = 0
    legs: int = 0
    rejected_rows: int = 0
    messages: int = 0  # webhook messages that named it
    on_dnc: bool = False  # kept on a do-not-call list (see the module's docstring)


def purge_campaign(store: Store, slots: Slots, dnc: DncList, campaign_id: str) -> PurgeReport:
    """Delete every trace of ``campaign_id``; KeyError if unknown, ValueError if it may still write."""
    client = store.redis
    state = client.hget(keys.campaign(campaign_id), "state")
    if state is None:
        raise KeyError(f"no campaign {campaign_id!r}")
    if CampaignState(state) not in _FINISHED:
        raise ValueError(f"campaign {campaign_id!r} is {state}: cancel it first (dialstream campaign cancel {campaign_id})")
    busy = store.queue.leased(campaign_id) + slots.counts(campaign_id).campaign_calls
    if busy:
        raise ValueError(f"campaign {campaign_id!r} has {busy} dial(s) or call(s) in progress: purge it once they end")
    legs = set(_leg_sids(store, campaign_id, None))
    doomed = [*store.campaign_keys(campaign_id), dnc.key(campaign_id), slots.campaign_key(campaign_id)]
    doomed += client.scan_iter(match=_glob(keys.campaign(campaign_id)) + ":*", count=_PAGE)
    doomed += [key for sid in legs for key in _leg_keys(sid)]
    deleted = sum(client.delete(*chunk) for chunk in _chunks(sorted(set(doomed))))
    _disarm_timers(store, lambda timer: timer.get("campaign") == campaign_id or _timer_leg(timer) in legs)
    deleted += _erase_messages(store, lambda data: data.get("campaign_id") == campaign_id)
    pipe = client.pipeline(transaction=False)
    pipe.srem(keys.campaigns(), campaign_id)
    pipe.srem(keys.running_campaigns(), campaign_id)
    pipe.execute()
    return PurgeReport(campaign_id, deleted, len(legs))


def erase_number(store: Store, slots: Slots, dnc: DncList, number: str) -> ErasureReport:
    """Erase ``number`` (any format ``dnc`` can normalise) everywhere; ValueError if it is unreadable or busy."""
    e164 = dnc.normalize(number)
    report = ErasureReport(e164)
    found = [(campaign_id, contact) for campaign_id in store.campaign_ids() for contact in _contacts_with(store, campaign_id, e164)]
    for campaign_id, contact in found:
        _refuse_if_busy(store, slots, campaign_id, contact.contact_id)
    for campaign_id, contact in found:
        report.legs += _erase_contact(store, campaign_id, contact.contact_id)
        report.contacts += 1
        if campaign_id not in report.campaigns:
            report.campaigns.append(campaign_id)
    for campaign_id in store.campaign_ids():
        report.rejected_rows += _erase_rejected(store, campaign_id, e164)
    report.messages = _erase_messages(store, lambda data: data.get("phone") == e164)
    report.on_dnc = dnc.is_blocked(e164) or any(dnc.is_blocked(e164, c) for c in store.campaign_ids())
    return report


def _contacts_with(store: Store, campaign_id: str, e164: str) -> Iterator[Contact]:
    needle = json.dumps(e164)  # cheap test on the raw JSON before parsing it
    for _, raw in store.redis.hscan_iter(keys.campaign(campaign_id, "contacts"), count=_PAGE):
        if needle in raw and (contact := Contact.from_json(raw)).phone == e164:
            yield contact


def _refuse_if_busy(store: Store, slots: Slots, campaign_id: str, contact_id: str) -> None:
    _, leased_key, _, _ = store.queue.keys(campaign_id)
    leased = any(json.loads(member)[0] == contact_id for member, _ in store.redis.zscan_iter(leased_key, count=_PAGE))
    now_ms = int(store.redis.time()[0]) * 1000
    prefix = f"{campaign_id}:{contact_id}:"  # the call ids of its attempts (LegTag.call_id)
    live = store.redis.zrangebyscore(slots.campaign_key(campaign_id), now_ms, "+inf")
    if leased or any(slot.startswith(prefix) for slot in live):
        raise ValueError(f"the number is being dialled or on a call now (campaign {campaign_id!r}): erase it once the call has ended")


def _erase_contact(store: Store, campaign_id: str, contact_id: str) -> int:
    """Remove one contact's data; returns how many of its legs' records went with it."""
    client = store.redis
    legs = set(_leg_sids(store, campaign_id, contact_id))
    previous = store.result(campaign_id, contact_id) or {}
    due_key, leased_key, leases_key, _ = store.queue.keys(campaign_id)
    queued = [m for m, _ in client.zscan_iter(due_key, count=_PAGE) if json.loads(m)[0] == contact_id]
    pipe = client.pipeline(transaction=False)
    if queued:
        pipe.zrem(due_key, *queued)
        pipe.zrem(leased_key, *queued)
        pipe.hdel(leases_key, *queued)
    pipe.hdel(keys.campaign(campaign_id, "contacts"), contact_id)
    pipe.hdel(keys.campaign(campaign_id, "legs"), contact_id)
    for sid in legs:
        pipe.delete(*_leg_keys(sid))
    erased = {"contact_id": contact_id, "outcome": ERASED, "reason": "erased on request", "attempts": int(previous.get("attempts") or 0)}
    store.record_result(campaign_id, contact_id, {**erased, "history": [], "final": True}, client=pipe)
    pipe.execute()
    _disarm_timers(store, lambda timer: _timer_leg(timer) in legs)
    return len(legs)


def _erase_rejected(store: Store, campaign_id: str, e164: str) -> int:
    """Drop the rejected-row samples whose text holds the number's digits (national or international)."""
    national = _national_digits(e164)
    key = keys.campaign(campaign_id, "rejected")
    doomed = [line for line, raw in store.redis.hscan_iter(key, count=_PAGE) if national in re.sub(r"\D", "", json.loads(raw).get("raw", ""))]
    if doomed:
        store.redis.hdel(key, *doomed)
    return len(doomed)


def _national_digits(e164: str) -> str:
    return str(phonenumbers.parse(e164).national_number)


def _leg_sids(store: Store, campaign_id: str, contact_id: str | None) -> Iterator[str]:
    """The legs of one contact (or, with None, of every contact): its latest and those in its history."""
    client = store.redis
    if contact_id is None:
        for _, sid in client.hscan_iter(keys.campaign(campaign_id, "legs"), count=_PAGE):
            yield sid
        results: Iterable[dict[str, Any]] = store.results(campaign_id).values()
    else:
        if sid := client.hget(keys.campaign(campaign_id, "legs"), contact_id):
            yield sid
        results = [store.result(campaign_id, contact_id) or {}]
    for result in results:
        for entry in [result, *(result.get("history") or ())]:
            if entry.get("leg_sid"):
                yield entry["leg_sid"]


def _leg_keys(leg_sid: str) -> list[str]:
    return [keys.leg(leg_sid), *(keys.leg(leg_sid, part) for part in keys.LEG_PARTS)]


def _erase_messages(store: Store, doomed: Callable[[dict[str, Any]], bool]) -> int:
    """Delete the webhook messages whose data ``doomed`` says is about what is erased (their
    pending deliveries then find them gone, as if expired); returns how many."""
    client = store.redis
    found = [key for key in client.scan_iter(match=_glob(keys.webhook("msg:")) + "*", count=_PAGE) if _about(client.get(key), doomed)]
    for chunk in _chunks(found):
        client.delete(*chunk)
    return len(found)


def _about(body: str | None, doomed: Callable[[dict[str, Any]], bool]) -> bool:
    try:
        data = json.loads(body or "{}").get("data")
    except ValueError:
        return False
    return isinstance(data, dict) and doomed(data)


def _timer_leg(timer: dict[str, Any]) -> str:
    """The leg a timer is about: its own field, or the leg event it re-applies."""
    return str(timer.get("leg") or (timer.get("event") or {}).get("leg_sid") or "")


def _disarm_timers(store: Store, doomed: Callable[[dict[str, Any]], bool]) -> None:
    """Remove the timers ``doomed(timer)`` says belong to what is being erased."""
    key = keys.timers()
    members = [m for m, _ in store.redis.zscan_iter(key, count=_PAGE) if doomed(json.loads(m))]
    for chunk in _chunks(members):
        store.redis.zrem(key, *chunk)


def _glob(text: str) -> str:
    """``text`` as a literal in a SCAN pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _chunks(items: list[str], size: int = _PAGE) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

