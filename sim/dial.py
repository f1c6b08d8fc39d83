"""``<Dial>``: a leg's action that creates a second leg and bridges it to the first when it answers.

On leg A, ``<Dial contactUri exophone networkType absorbDtmf timeout customParam record/>``:

1. leg B is created co-located with A (``reference_leg_sid`` = A) with A's event
   endpoint, so B's own lifecycle events (``leg_connecting``...) go there too;
2. ``dial_initiated {bridge_sid, second_leg_sid}`` on A;
3. when B answers, A and B are bridged (:meth:`sim.bridges.Bridges.bridge_dial`) and A
   gets ``dial_success {bridge_sid, second_leg_sid}``;
4. ``dial_completed {bridge_sid, second_leg_sid, dial_status}`` on A when it is over:
   B's terminal status if it never answered, ``completed`` once the bridge ended.

When A ends, the legs it dialled are hung up (``hangup_by: peer``); when B ends, A stays up.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sim.action import ActionRecord
from sim.bridges import Bridges
from sim.call import Call
from sim.leg import Leg, LegRequest

__all__ = ["Dials"]


class Dials:
    def __init__(self, bridges: Bridges) -> None:
        self._bridges = bridges
        self._host = bridges.host
        self._dialled: dict[str, list[str]] = {}  # leg_sid -> the legs it dialled

    def dial(self, call: Call, params: dict[str, Any], action: ActionRecord) -> Leg:
        """Create the second leg now (a refusal reaches the API), then bridge it when it answers."""
        leg, contact_uri = call.leg, params["contact_uri"]
        request = LegRequest(
            contact_uri=contact_uri, exophone=params.get("exophone") or leg.request.exophone,
            leg_event_endpoint=leg.request.leg_event_endpoint, custom_param=params.get("custom_param", ""),
            network_type=params.get("network_type") or ("voip" if contact_uri.startswith("sip:") else "pstn"),
            timeout=params.get("timeout", 30), ring_timeout=params.get("timeout", 30),
            reference_leg_sid=leg.leg_sid, record=params.get("record", False),
        )  # fmt: skip
        second = self._host.create_leg(request)
        self._dialled.setdefault(leg.leg_sid, []).append(second.leg_sid)
        bridge_sid = self._host.sids()
        call.emit("dial_initiated", action=action, detail={"bridge_sid": bridge_sid, "second_leg_sid": second.leg_sid})
        call.spawn(self._dialling(call, self._host.calls[second.leg_sid], bridge_sid, action, params))
        return second

    async def _dialling(self, call: Call, second: Call, bridge_sid: str, action: ActionRecord, params: dict[str, Any]) -> None:
        detail = {"bridge_sid": bridge_sid, "second_leg_sid": second.leg.leg_sid}
        answered = asyncio.create_task(second.answered.wait())
        ended = asyncio.create_task(second.ended.wait())
        try:
            await asyncio.wait({answered, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            answered.cancel()
            ended.cancel()
        if not second.answered.is_set() or second.ending or not second.leg.live:
            await second.ended.wait()
            call.emit("dial_completed", action=action, detail={**detail, "dial_status": second.leg.terminal_status})
            return
        live = self._bridges.bridge_dial(call, second, bridge_sid, params.get("absorb_dtmf", False), action)
        call.emit("dial_success", action=action, detail=detail)
        await live.ended.wait()
        call.emit("dial_completed", action=action, detail={**detail, "dial_status": "completed"})

    def leg_ended(self, call: Call) -> None:
        """Hook run as a leg ends: the legs it dialled are hung up."""
        for leg_sid in self._dialled.pop(call.leg.leg_sid, []):
            dialled = self._host.calls.get(leg_sid)
            if dialled is not None and dialled.leg.live and not dialled.ending:
                dialled.hangup(by="peer")

    def forget(self) -> None:
        self._dialled.clear()
