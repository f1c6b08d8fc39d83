"""The Bridges API under ``/v2/accounts/{account_sid}/bridges`` (reference §1.8).

* ``POST /bridges``: ``{leg_sids, bridge_event_endpoint, absorb_dtmf}`` answers 202 (the
  legs are bridged, events follow); ``{bridge_type, max_participants, recording}`` answers
  201 with an empty bridge in state ``created``.
* ``GET /bridges/{sid}``: the get-bridge page's fields.
* ``PUT /bridges/{sid}`` with ``{"action": "stop"}``: 202; 409 once the bridge has ended.
* ``POST /bridges/{sid}/actions`` with ``{exoml, action_custom_param}``: 202 ``{bridge_sid, action_sid}``.
"""

from __future__ import annotations

from aiohttp import web

from sim.bridges import BridgeNotActive, BridgeNotFound, LiveBridge
from sim.clock import rfc3339
from sim.envelope import ACCOUNT, ApiError, envelope, json_body
from sim.exoml import NotImplementedVerb, parse_exoml
from sim.validation import BadRequest, create_bridge_request, custom_param_of

__all__ = ["add_bridge_routes"]


def add_bridge_routes(app: web.Application) -> None:
    bridges = "/v2/accounts/{account_sid}/bridges"
    app.router.add_post(bridges, create_bridge)
    app.router.add_get(bridges + "/{bridge_sid}", get_bridge)
    app.router.add_put(bridges + "/{bridge_sid}", update_bridge)
    app.router.add_post(bridges + "/{bridge_sid}/actions", bridge_action)


def _live(request: web.Request) -> LiveBridge:
    try:
        return request.app[ACCOUNT].bridges.get(request.match_info["bridge_sid"])
    except BridgeNotFound:
        raise ApiError(404, "bridge not found", f"no bridge {request.match_info['bridge_sid']!r} on this account") from None


async def create_bridge(request: web.Request) -> web.Response:
    account = request.app[ACCOUNT]
    try:
        bridge_request = create_bridge_request(await json_body(request, optional=True), account.config.bridges.max_participants)
    except BadRequest as exc:
        raise ApiError(400, exc.message, exc.description) from None
    bridge = account.bridges.create(bridge_request)
    if bridge_request.leg_sids:  # the old developer pages' shape: the legs are bridged now
        data = {
            "bridge_sid": bridge.bridge_sid,
            "created_at": rfc3339(bridge.created_at),
            "account_sid": bridge.account_sid,
            "leg_sids": list(bridge_request.leg_sids),
            "bridge_event_endpoint": bridge.endpoint,
        }
        return envelope(request, 202, data)
    data = {
        "bridge_sid": bridge.bridge_sid,
        "bridge_type": bridge_request.bridge_type,
        "state": bridge.state,
        "date_created": rfc3339(bridge.created_at),
    }
    return envelope(request, 201, data)


async def get_bridge(request: web.Request) -> web.Response:
    return envelope(request, 200, _live(request).bridge.details())


async def update_bridge(request: web.Request) -> web.Response:
    body = await json_body(request)
    action = body.get("action") if isinstance(body, dict) else None
    if action != "stop":
        raise ApiError(400, "invalid action", f'the one bridge update is {{"action": "stop"}}, got {action!r}')
    live = _live(request)
    try:
        bridge = request.app[ACCOUNT].bridges.stop(live.bridge.bridge_sid)
    except BridgeNotActive as exc:
        raise ApiError(409, "bridge not active", str(exc), code="INVALID_BRIDGE_STATE") from None
    data = {
        "bridge_sid": bridge.bridge_sid,
        "created_at": rfc3339(bridge.created_at),
        "account_sid": bridge.account_sid,
        "bridge_event_endpoint": bridge.endpoint,
        "action": "stop",
    }
    return envelope(request, 202, data)


async def bridge_action(request: web.Request) -> web.Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid body", "expected a JSON object with exoml")
    live = _live(request)
    try:
        verbs = parse_exoml(body.get("exoml"), bridge=True)
        custom_param = custom_param_of(body)
        action = request.app[ACCOUNT].bridges.run_actions(live.bridge.bridge_sid, verbs, custom_param)
    except BadRequest as exc:
        raise ApiError(400, exc.message, exc.description) from None
    except NotImplementedVerb as exc:
        raise ApiError(501, f"<{exc.verb}> not implemented", str(exc)) from None
    except BridgeNotActive as exc:
        raise ApiError(409, "bridge not active", str(exc), code="INVALID_BRIDGE_STATE") from None
    return envelope(request, 202, {"bridge_sid": live.bridge.bridge_sid, "action_sid": action.action_sid})
