"""The Do-Not-Call list in Redis: numbers never to dial, per account and per campaign.

Key layout (``prefix`` defaults to ``ds``)::

    {prefix}:dnc:{account}                      set of E.164 numbers blocked for every campaign
    {prefix}:dnc:{account}:campaign:{id}        set of E.164 numbers blocked for one campaign

Numbers are normalised to E.164 on the way in and on every check, so ``098123 45678`` and
``+919812345678`` are the same entry. Blocking is lenient on purpose: any number that
parses is stored, even one phonenumbers' metadata calls invalid, because failing to block
is the expensive mistake.

The list is consulted twice: when a batch is ingested (:meth:`DncList.checker`, one round
trip per 1,000 rows) and again right before each dial (:meth:`DncList.is_blocked`, one round
trip), since a number may be added while the campaign runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

import redis

from dialstream.domain.phones import DEFAULT_REGION, normalize_number
from dialstream.state import keys

__all__ = ["DncList", "LoadReport", "is_blocked", "DEFAULT_ACCOUNT"]

DEFAULT_ACCOUNT = "default"
_BATCH = 1000  # numbers per pipeline when loading or adding


@dataclass(frozen=True)
class LoadReport:
    """What :meth:`DncList.load` did: numbers added (new to the set) and lines skipped, with why."""

    added: int = 0
    read: int = 0
    skipped: tuple[tuple[int, str, str], ...] = field(default=())  # (line number, text, reason)


class DncList:
    """One account's DNC sets over a synchronous client (``decode_responses`` either way)."""

    def __init__(
        self, client: redis.Redis, account: str = DEFAULT_ACCOUNT, *, prefix: str = "ds", region: str = DEFAULT_REGION
    ) -> None:
        self.redis = client
        self.account = account
        self.prefix = prefix
        self.region = region

    def key(self, campaign_id: str | None = None) -> str:
        base = keys.dnc(self.account, prefix=self.prefix)
        return f"{base}:campaign:{campaign_id}" if campaign_id else base

    def normalize(self, number: str) -> str:
        """E.164 for ``number``; ValueError if it does not parse as a phone number at all."""
        return normalize_number(number, self.region, strict=False)

    # Changing the list

    def add(self, numbers: Iterable[str], campaign_id: str | None = None) -> int:
        """Block ``numbers`` (account-wide, or for one campaign); returns how many were new.

        Raises ValueError naming the first number that does not parse, before writing any.
        """
        normalized = [self.normalize(number) for number in numbers]
        return self._sadd(normalized, campaign_id)

    def remove(self, numbers: Iterable[str], campaign_id: str | None = None) -> int:
        """Unblock ``numbers``; returns how many were on the list."""
        normalized = [self.normalize(number) for number in numbers]
        removed = 0
        for chunk in _chunks(normalized, _BATCH):
            removed += int(self.redis.srem(self.key(campaign_id), *chunk))
        return removed

    def load(self, source: str | os.PathLike[str] | IO[str], campaign_id: str | None = None) -> LoadReport:
        """Block every number in a file: one per line, ``#`` starts a comment, blank lines ignored.

        Text after a comma is ignored too, so a CSV whose first column is the number loads.
        Lines that are not phone numbers are skipped and reported, not fatal.
        """
        if isinstance(source, (str, os.PathLike)):
            with open(source, encoding="utf-8-sig", errors="replace") as handle:
                return self._load_lines(handle, campaign_id)
        return self._load_lines(source, campaign_id)

    def _load_lines(self, lines: Iterable[str], campaign_id: str | None) -> LoadReport:
        added = read = 0
        skipped: list[tuple[int, str, str]] = []
        batch: list[str] = []
        for line_no, line in enumerate(lines, start=1):
            text = line.split("#", 1)[0].split(",", 1)[0].strip()
            if not text:
                continue
            read += 1
            try:
                batch.append(self.normalize(text))
            except ValueError as exc:
                skipped.append((line_no, line.rstrip("\r\n")[:200], str(exc)))
                continue
            if len(batch) >= _BATCH:
                added += self._sadd(batch, campaign_id)
                batch = []
        added += self._sadd(batch, campaign_id)
        return LoadReport(added, read, tuple(skipped))

    def _sadd(self, numbers: Sequence[str], campaign_id: str | None) -> int:
        if not numbers:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for chunk in _chunks(numbers, _BATCH):
            pipe.sadd(self.key(campaign_id), *chunk)
        return sum(int(n) for n in pipe.execute())

    def clear(self, campaign_id: str | None = None) -> None:
        self.redis.delete(self.key(campaign_id))

    # Checking

    def is_blocked(self, number: str, campaign_id: str | None = None) -> bool:
        """Whether ``number`` may not be dialled (account list, or the campaign's): one round trip."""
        try:
            e164 = self.normalize(number)
        except ValueError:
            return False  # not a phone number: nothing to block, and the dial will fail on its own
        pipe = self.redis.pipeline(transaction=False)
        pipe.sismember(self.key(), e164)
        if campaign_id:
            pipe.sismember(self.key(campaign_id), e164)
        return any(pipe.execute())

    def blocked_among(self, numbers: Sequence[str], campaign_id: str | None = None) -> set[str]:
        """Which of ``numbers`` (E.164, as given) are blocked: one round trip for the lot."""
        if not numbers:
            return set()
        pipe = self.redis.pipeline(transaction=False)
        pipe.smismember(self.key(), list(numbers))
        if campaign_id:
            pipe.smismember(self.key(campaign_id), list(numbers))
        flags = pipe.execute()
        hits = [any(column) for column in zip(*flags)]
        return {number for number, hit in zip(numbers, hits) if hit}

    def checker(self, campaign_id: str | None = None) -> Callable[[Sequence[str]], set[str]]:
        """A ``dnc=`` argument for :func:`dialstream.domain.contacts.read_contacts`."""
        return lambda numbers: self.blocked_among(numbers, campaign_id)

    def count(self, campaign_id: str | None = None) -> int:
        return int(self.redis.scard(self.key(campaign_id)))

    def members(self, campaign_id: str | None = None, limit: int = 1000) -> list[str]:
        """Up to ``limit`` numbers of the list, sorted (the list itself has no order)."""
        found = []
        for number in self.redis.sscan_iter(self.key(campaign_id), count=_BATCH):
            found.append(number.decode() if isinstance(number, bytes) else number)
            if len(found) >= limit:
                break
        return sorted(found)


def is_blocked(
    client: redis.Redis, number: str, campaign_id: str | None = None, *, account: str = DEFAULT_ACCOUNT, prefix: str = "ds"
) -> bool:
    """The dial-time check: is ``number`` on the account's or the campaign's DNC list?"""
    return DncList(client, account, prefix=prefix).is_blocked(number, campaign_id)


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
