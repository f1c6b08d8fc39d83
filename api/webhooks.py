"""``/v1/webhooks``: endpoints (the account's and each campaign's) and the dead letters.

A delivery that failed every attempt of the retry schedule is dead-lettered; replaying it
(or all of them) makes it due again with a fresh schedule, under the same ``webhook-id``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api import auth
from api.campaigns import campaign_id
from api.models import WebhookSpec
from api.problems import RESPONSES, Problem
from dialstream.state.webhooks import Webhooks

__all__ = ["router"]

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=RESPONSES)


class EndpointBody(WebhookSpec):
    campaign_id: str = Field("", description="one campaign's endpoint; empty: the account's, for every campaign")


class ReplayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str] | None = Field(None, description="dead deliveries to replay; omitted: all of them")


def _webhooks(request: Request) -> Webhooks:
    return Webhooks(request.app.state.redis)


@router.get("", dependencies=[auth.read], summary="Every webhook endpoint (secrets are not shown)")
def endpoints(request: Request) -> list[dict[str, Any]]:
    return [e.public() for e in _webhooks(request).endpoints()]


@router.post("", status_code=201, dependencies=[auth.write], summary="Add an endpoint; its secret is shown this once")
def add(body: EndpointBody, request: Request) -> dict[str, Any]:
    cid = campaign_id(request.app.state.engine, body.campaign_id) if body.campaign_id else ""
    endpoint = _webhooks(request).add_endpoint(body.url, campaign_id=cid, events=body.events, secret=body.secret)
    return {**endpoint.public(), "secret": endpoint.secret}


@router.delete("/{endpoint_id}", status_code=204, dependencies=[auth.write], summary="Remove an endpoint")
def remove(endpoint_id: str, request: Request) -> None:
    try:
        _webhooks(request).remove_endpoint(endpoint_id)
    except KeyError as exc:
        raise Problem(404, exc.args[0]) from None


@router.get("/deliveries", dependencies=[auth.read], summary="Deliveries waiting (new or retrying) and dead-lettered")
def counts(request: Request) -> dict[str, int]:
    return _webhooks(request).counts()


@router.get("/dead", dependencies=[auth.read], summary="Dead-lettered deliveries, oldest first")
def dead(request: Request) -> list[dict[str, Any]]:
    return [d.public() for d in _webhooks(request).dead()]


@router.post("/dead/replay", dependencies=[auth.write], summary="Send dead-lettered deliveries again")
def replay(request: Request, body: ReplayBody | None = None) -> dict[str, int]:
    return {"replayed": _webhooks(request).replay(body.ids if body else None)}
