"""Redis keys and the operations on them; the Lua scripts live in ``dialstream/lua/``.

Key layout (every key starts with ``ds:``)::

    ds:event:{event_sid}                  ingress de-duplication marker (TTL)
    ds:leg:{leg_sid}                      hash {version, doc}: the LegRecord as JSON
    ds:leg:{leg_sid}:events               set of event_sids applied to the leg
    ds:action:{leg_sid}:{action_id}       claim of one leg action by one Celery task id
    ds:campaigns                          set of campaign ids
    ds:campaign:{id}                      hash {config, total, created_at}
    ds:campaign:{id}:contacts             hash contact_id -> Contact JSON
    ds:campaign:{id}:legs                 hash contact_id -> leg_sid of its latest call
    ds:campaign:{id}:results              hash contact_id -> final call record JSON
    ds:campaign:{id}:done                 set of contact_ids with a final record
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

import redis

from dialstream.campaign import CampaignConfig, Contact
from dialstream.leg_state import LegRecord
from dialstream.lua import script

__all__ = ["Store", "keys", "LEG_TTL"]

LEG_TTL = 7 * 24 * 3600  # a leg's record outlives any call and its report


class keys:  # noqa: N801 - a namespace of key builders, read as keys.leg(sid)
    @staticmethod
    def event(event_sid: str) -> str:
        return f"ds:event:{event_sid}"

    @staticmethod
    def leg(leg_sid: str) -> str:
        return f"ds:leg:{leg_sid}"

    @staticmethod
    def leg_events(leg_sid: str) -> str:
        return f"ds:leg:{leg_sid}:events"

    @staticmethod
    def action(leg_sid: str, action_id: str) -> str:
        return f"ds:action:{leg_sid}:{action_id}"

    campaigns = "ds:campaigns"

    @staticmethod
    def campaign(campaign_id: str, part: str = "") -> str:
        return f"ds:campaign:{campaign_id}" + (f":{part}" if part else "")


class Store:
    """dialstream's state in Redis, over one synchronous client."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._leg_cas = script(client, "leg_cas.lua")
        self._claim = script(client, "claim.lua")
        self._campaign_cache: dict[str, CampaignConfig] = {}

    # Legs

    def load_leg(self, leg_sid: str, event_sid: str = "") -> tuple[LegRecord | None, int, bool]:
        """(record or None, version, whether ``event_sid`` was already applied), read together."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(keys.leg(leg_sid), "version", "doc")
        pipe.sismember(keys.leg_events(leg_sid), event_sid or "-")
        (version, doc), applied = pipe.execute()
        if doc is None:
            return None, 0, bool(applied)
        record = LegRecord.from_dict(json.loads(doc))
        return record, int(version), bool(applied)

    def save_leg(self, record: LegRecord, expected_version: int, event_sid: str = "") -> int:
        """Write ``record`` if the stored version is still ``expected_version``.

        Returns the new version, or -1 when another worker got there first.
        """
        doc = json.dumps(record.to_dict())
        keys_ = [keys.leg(record.leg_sid), keys.leg_events(record.leg_sid)]
        return int(self._leg_cas(keys=keys_, args=[expected_version, doc, event_sid, LEG_TTL]))

    def claim_action(self, leg_sid: str, action_id: str, kind: str, task_id: str) -> str:
        """Whether this task may send the action now.

        Returns ``"claimed"`` (nobody else has, or this is our own retry), ``"duplicate"``
        (another task has it), ``"leg-ended"`` or ``"stream-up"`` (the action is moot).
        """
        result = int(self._claim(keys=[keys.action(leg_sid, action_id), keys.leg(leg_sid)], args=[task_id, LEG_TTL, kind]))
        return {1: "claimed", 0: "duplicate", -1: "leg-ended", -2: "stream-up"}[result]

    # Campaigns

    def create_campaign(self, config: CampaignConfig, contacts: Iterable[Contact]) -> int:
        """Store a campaign and its contacts; returns the number of contacts."""
        total = 0
        pipe = self.redis.pipeline(transaction=False)
        for contact in contacts:
            pipe.hset(keys.campaign(config.campaign_id, "contacts"), contact.contact_id, contact.to_json())
            total += 1
        pipe.hset(
            keys.campaign(config.campaign_id),
            mapping={"config": config.to_json(), "total": total, "created_at": time.time()},
        )
        pipe.sadd(keys.campaigns, config.campaign_id)
        pipe.execute()
        return total

    def campaign(self, campaign_id: str) -> CampaignConfig | None:
        """A campaign's config; cached, since it never changes after creation."""
        cached = self._campaign_cache.get(campaign_id)
        if cached is None:
            raw = self.redis.hget(keys.campaign(campaign_id), "config")
            if raw is None:
                return None
            cached = self._campaign_cache[campaign_id] = CampaignConfig.from_json(raw)
        return cached

    def contact(self, campaign_id: str, contact_id: str) -> Contact | None:
        raw = self.redis.hget(keys.campaign(campaign_id, "contacts"), contact_id)
        return None if raw is None else Contact.from_json(raw)

    def record_result(self, campaign_id: str, contact_id: str, result: dict[str, Any]) -> None:
        """Store a contact's final record; idempotent (the last write wins, done once)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.campaign(campaign_id, "results"), contact_id, json.dumps(result))
        pipe.sadd(keys.campaign(campaign_id, "done"), contact_id)
        pipe.execute()

    def progress(self, campaign_id: str) -> tuple[int, int]:
        """(contacts with a final record, contacts in the campaign)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.scard(keys.campaign(campaign_id, "done"))
        pipe.hget(keys.campaign(campaign_id), "total")
        done, total = pipe.execute()
        return int(done), int(total or 0)

    def results(self, campaign_id: str) -> dict[str, dict[str, Any]]:
        raw = self.redis.hgetall(keys.campaign(campaign_id, "results"))
        return {_text(k): json.loads(v) for k, v in raw.items()}


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
