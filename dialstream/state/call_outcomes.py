"""What bots report about their calls, kept in Redis beside the leg: dispositions and callbacks.

The bot process writes (``bot.api.Bot.set_disposition`` / ``schedule_callback``), keyed by the
stream's ``call_sid``, which is the leg's sid; the report, the campaign's statistics and, at
the end of the call, the worker read. A disposition set again replaces the earlier one, and
the campaign's count per code (``disposition:{code}`` in its counts hash) moves with it, in
one Lua script (``disposition_set.lua``). Both expire with the leg's record.

Example::

    outcomes = CallOutcomes(client)
    outcomes.set_disposition(leg_sid, Disposition.create("interested", {}, now=time.time()))
    outcomes.of_legs([leg_sid])[leg_sid]["disposition"].code     # "interested"
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import redis

from dialstream.domain.call_outcome import CallbackRequest, Disposition
from dialstream.state import keys
from dialstream.state.scripts import script
from dialstream.state.store import LEG_TTL

__all__ = ["CallOutcomes"]


class CallOutcomes:
    """Dispositions and callback requests per leg, over a synchronous Redis client."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._set = script(client, "disposition_set.lua")

    def set_disposition(self, leg_sid: str, disposition: Disposition) -> None:
        """Record the call's disposition; counted for the leg's campaign when it is one."""
        doc = self.redis.hget(keys.leg(leg_sid), "doc")
        campaign_id = json.loads(doc).get("campaign_id", "") if doc else ""
        counts = keys.campaign(campaign_id, "counts") if campaign_id else ""
        self._set(keys=[keys.leg(leg_sid, "disposition"), counts], args=[disposition.to_json(), disposition.code, LEG_TTL])

    def request_callback(self, leg_sid: str, request: CallbackRequest) -> None:
        """Record that the callee asked to be called back (the last request wins)."""
        self.redis.set(keys.leg(leg_sid, "callback"), request.to_json(), ex=LEG_TTL)

    def of_legs(self, leg_sids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Leg sid -> {"disposition": Disposition | None, "callback": CallbackRequest | None},
        for every leg given, in one round trip."""
        sids = list(dict.fromkeys(s for s in leg_sids if s))
        pipe = self.redis.pipeline(transaction=False)
        for sid in sids:
            pipe.get(keys.leg(sid, "disposition"))
            pipe.get(keys.leg(sid, "callback"))
        raw = pipe.execute() if sids else []
        return {
            sid: {
                "disposition": Disposition.from_json(d) if d else None,
                "callback": CallbackRequest.from_json(c) if c else None,
            }
            for sid, d, c in zip(sids, raw[::2], raw[1::2])
        }
