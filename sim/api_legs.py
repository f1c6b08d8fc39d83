"""The Legs API under ``/v2/accounts/{account_sid}/legs``: create, look up, act.

Handlers translate requests into :class:`~sim.account.Account` calls and its exceptions
into Exotel's error answers: 400 (a body or ExoML that does not validate), 404 (no such
leg or action), 409 (an action on a leg that is not answered or already ended), 429 (the
concurrent-legs and active-streams limits), 501 (documented ExoML the sandbox does not
simulate).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sim.account import LegNotActive, LegNotFound, LimitExceeded
from sim.bridges import BridgeNotActive, BridgeNotFound
from sim.clock import rfc3339
from sim.envelope import ACCOUNT, ApiError, envelope, json_body
from sim.exoml import NotImplementedVerb, parse_exoml
from sim.leg import Leg
from sim.validation import NAMED_ACTIONS, BadRequest, action_params, create_leg_request, custom_param_of

__all__ = ["add_leg_routes"]


def add_leg_routes(app: web.Application) -> None:
    legs = "/v2/accounts/{account_sid}/legs"
    app.router.add_post(legs, create_leg)
    app.router.add_get(legs + "/{leg_sid}", get_leg)
    app.router.add_get(legs + "/{leg_sid}/external-events", external_events)
    app.router.add_get(legs + "/{leg_sid}/external_events", external_events)
    app.router.add_post(legs + "/{leg_sid}/actions", exoml_action)
    app.router.add_post(legs + "/{leg_sid}/actions/{name}", named_action)


def _limit_error(exc: LimitExceeded) -> ApiError:
    """429 with the limit's own code: CONCURRENCY_LIMIT_EXCEEDED (legs, a <Dial> too) or STREAM_LIMIT_EXCEEDED."""
    if exc.limit == "active_streams":
        return ApiError(429, "active streams limit exceeded", str(exc), code="STREAM_LIMIT_EXCEEDED", headers={"Retry-After": "1"})
    return ApiError(429, "concurrent legs limit exceeded", str(exc), code="CONCURRENCY_LIMIT_EXCEEDED", headers={"Retry-After": "1"})


def _leg(request: web.Request) -> Leg:
    try:
        return request.app[ACCOUNT].leg(request.match_info["leg_sid"])
    except LegNotFound:
        raise ApiError(404, "leg not found", f"no leg {request.match_info['leg_sid']!r} on this account") from None


async def create_leg(request: web.Request) -> web.Response:
    account = request.app[ACCOUNT]
    try:
        leg_request = create_leg_request(await json_body(request))
        leg = account.create_leg(leg_request)
    except BadRequest as exc:
        raise ApiError(400, exc.message, exc.description) from None
    except LimitExceeded as exc:
        raise _limit_error(exc) from None
    data = {
        "leg_sid": leg.leg_sid,
        "created_at": rfc3339(leg.created_at),
        "account_sid": leg.account_sid,
        "contact_uri": leg_request.contact_uri,
        "network_type": leg_request.network_type,
        "exophone": leg_request.exophone,
        "custom_param": leg_request.custom_param,
        "leg_event_endpoint": leg_request.leg_event_endpoint,
    }
    return envelope(request, 202, data)


async def get_leg(request: web.Request) -> web.Response:
    fields = {f.strip() for f in request.query.get("fields", "").split(",") if f.strip()}
    return envelope(request, 200, _leg(request).details(request.app[ACCOUNT].clock.now(), fields))


async def external_events(request: web.Request) -> web.Response:
    leg = _leg(request)
    name = request.query.get("event_name")
    records = [r for r in leg.events if name is None or r.name == name]
    data = {
        "sid": leg.leg_sid,
        "account_sid": leg.account_sid,
        "event_type": sorted({r.event["event_type"] for r in records}),
        "external_events": [r.external_event() for r in records],
    }
    return envelope(request, 200, data)


async def named_action(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in NAMED_ACTIONS:  # hang-up included: the documented way is the ExoML <Hangup/>
        raise ApiError(404, "unknown action", f"{name!r} is not one of {NAMED_ACTIONS}")
    body = await json_body(request, optional=True)
    try:
        params = action_params(name, body)
        custom_param = custom_param_of(body)
    except BadRequest as exc:
        raise ApiError(400, exc.message, exc.description) from None
    return _run(request, [(name, params)], custom_param)


async def exoml_action(request: web.Request) -> web.Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid body", "expected a JSON object with exoml")
    try:
        verbs = parse_exoml(body.get("exoml"))
        custom_param = custom_param_of(body)
    except BadRequest as exc:
        raise ApiError(400, exc.message, exc.description) from None
    except NotImplementedVerb as exc:
        raise ApiError(501, f"<{exc.verb}> not implemented", str(exc)) from None
    return _run(request, verbs, custom_param, exoml=body["exoml"])


def _run(request: web.Request, verbs: list[tuple[str, dict[str, Any]]], custom_param: str, **extra: str) -> web.Response:
    account = request.app[ACCOUNT]
    leg_sid = request.match_info["leg_sid"]
    try:
        action = account.run_actions(leg_sid, verbs, custom_param)
    except LegNotFound:
        raise ApiError(404, "leg not found", f"no leg {leg_sid!r} on this account") from None
    except LegNotActive as exc:
        raise ApiError(409, "leg not in a state for this action", str(exc), code="INVALID_LEG_STATE") from None
    except BridgeNotFound as exc:
        raise ApiError(404, "bridge not found", f"no bridge {exc} on this account") from None
    except BridgeNotActive as exc:
        raise ApiError(409, "bridge not active", str(exc), code="INVALID_BRIDGE_STATE") from None
    except BadRequest as exc:  # a reference the request names does not hold (an exophone, a leg)
        raise ApiError(400, exc.message, exc.description) from None
    except LimitExceeded as exc:
        raise _limit_error(exc) from None
    data = {
        "action_sid": action.action_sid,
        "leg_sid": leg_sid,
        "account_sid": account.config.account_sid,
        "created_at": rfc3339(action.received_at),
        "action_custom_param": custom_param,
        **extra,
    }
    return envelope(request, 202, data)
