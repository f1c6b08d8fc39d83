"""The account's shared things: health and readiness, the do-not-call list, the bot fleet.

``/healthz`` answers while the process runs; ``/readyz`` only while Redis answers too (what
a load balancer or Kubernetes should route on). Neither needs a key.
"""

from __future__ import annotations

from typing import Any

import redis
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from api import auth
from api.models import NumbersBody
from api.problems import RESPONSES, Problem
from dialstream.state.dnc import DncList
from dialstream.state.fleet import live_bots

__all__ = ["router"]

router = APIRouter(responses=RESPONSES)


@router.get("/healthz", tags=["health"], summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["health"], summary="The process can serve: Redis answers", responses={503: {"description": "Redis is unreachable"}})
def readyz(request: Request) -> JSONResponse:
    try:
        request.app.state.redis.ping()
    except redis.RedisError as exc:
        return JSONResponse({"status": "unavailable", "redis": str(exc)}, status_code=503)
    return JSONResponse({"status": "ready", "redis": "ok"})


def _dnc(request: Request) -> DncList:
    return request.app.state.engine.dnc


def _normalized(dnc: DncList, numbers: list[str]) -> list[str]:
    try:
        return [dnc.normalize(number) for number in numbers]
    except ValueError as exc:
        raise Problem(422, f"not a phone number: {exc}") from None


@router.get("/v1/dnc", tags=["dnc"], dependencies=[auth.read], summary="Numbers on the account's (or a campaign's) DNC list")
def dnc_list(request: Request, campaign_id: str = "", limit: int = Query(1000, ge=1, le=100_000)) -> dict[str, Any]:
    dnc = _dnc(request)
    return {"campaign_id": campaign_id or None, "count": dnc.count(campaign_id or None), "numbers": dnc.members(campaign_id or None, limit)}


@router.post("/v1/dnc", tags=["dnc"], dependencies=[auth.write], summary="Add numbers to the DNC list (checked before every dial)")
def dnc_add(body: NumbersBody, request: Request) -> dict[str, Any]:
    dnc = _dnc(request)
    numbers = _normalized(dnc, body.numbers)
    return {"added": dnc.add(numbers, body.campaign_id or None), "numbers": numbers}


@router.get("/v1/dnc/{number}", tags=["dnc"], dependencies=[auth.read], summary="Whether a number may not be dialled")
def dnc_check(number: str, request: Request, campaign_id: str = "") -> dict[str, Any]:
    dnc = _dnc(request)
    (e164,) = _normalized(dnc, [number])
    return {"number": e164, "blocked": dnc.is_blocked(e164, campaign_id or None)}


@router.delete("/v1/dnc/{number}", tags=["dnc"], dependencies=[auth.write], summary="Take a number off the DNC list")
def dnc_remove(number: str, request: Request, campaign_id: str = "") -> dict[str, Any]:
    dnc = _dnc(request)
    (e164,) = _normalized(dnc, [number])
    if not dnc.remove([e164], campaign_id or None):
        raise Problem(404, f"{e164} is not on the list")
    return {"removed": e164}


@router.get("/v1/bots", tags=["bots"], dependencies=[auth.read], summary="The live bot fleet: each bot's URL, capacity and load")
def bots(request: Request) -> list[dict[str, Any]]:
    fleet = live_bots(request.app.state.redis)
    return [{"url": b.url, "capacity": b.capacity, "load": b.load, "free": b.free, "static": b.static} for b in fleet]
