"""HTTP for the sandbox: Exotel's Legs API under ``/v2`` and the sandbox's own ``/sim/v1``.

Every ``/v2`` answer is Exotel's envelope ``{request_id, method, http_code, response:
{error_data, data}}``; errors carry ``error_data = {code, message, description}`` and
``data = null``. Checks run in Exotel's order: Basic auth (401), account (403), the
per-minute budget (429 with ``Retry-After``), injected API faults, then the request
itself (400, 404, 409 for an action on a leg that is not answered or already ended,
429 for the concurrent-legs and active-streams limits, 501 for unsimulated ExoML).

``/sim/v1`` is plain JSON without auth: ``GET calls``, ``GET calls/{leg_sid}``,
``GET summary``, ``POST reset``. ``GET /metrics`` has the timeline figures for Prometheus
(``sim.metrics``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from dialstream.exotel.basic_auth import basic_auth_matches
from sim.account import Account, LegNotActive, LegNotFound, LimitExceeded
from sim.clock import rfc3339
from sim.exoml import NotImplementedVerb, parse_exoml
from sim.ids import request_id
from sim.leg import Leg
from sim.metrics import sandbox_registry
from sim.ratelimit import Decision
from sim.validation import (
    NAMED_ACTIONS,
    BadRequest,
    action_params,
    create_leg_request,
    custom_param_of,
)

__all__ = ["build_app", "ApiError"]

_ACCOUNT: web.AppKey[Account] = web.AppKey("account", Account)
_METRICS: web.AppKey[CollectorRegistry] = web.AppKey("metrics", CollectorRegistry)
_DECISION: web.RequestKey[Decision | None] = web.RequestKey("rate_decision", object)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS_CODES = {
    400: "INVALID_PARAMETER",
    401: "AUTHENTICATION_FAILED",
    403: "NOT_AUTHORIZED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    429: "RATE_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    501: "NOT_IMPLEMENTED",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


class ApiError(Exception):
    """An error answer: HTTP ``status`` with ``error_data`` ``{code, message, description}``."""

    def __init__(
        self, status: int, message: str, description: str = "", *, code: str = "", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.code = code or _STATUS_CODES.get(status, "ERROR")
        self.message = message
        self.description = description
        self.headers = headers or {}


def build_app(account: Account) -> web.Application:
    app = web.Application(middlewares=[_legs_api_guard])
    app[_ACCOUNT] = account
    app[_METRICS] = sandbox_registry(account)
    legs = "/v2/accounts/{account_sid}/legs"
    app.router.add_post(legs, create_leg)
    app.router.add_get(legs + "/{leg_sid}", get_leg)
    app.router.add_get(legs + "/{leg_sid}/external-events", external_events)
    app.router.add_get(legs + "/{leg_sid}/external_events", external_events)
    app.router.add_post(legs + "/{leg_sid}/actions", exoml_action)
    app.router.add_post(legs + "/{leg_sid}/actions/{name}", named_action)
    app.router.add_get("/sim/v1/calls", sim_calls)
    app.router.add_get("/sim/v1/calls/{leg_sid}", sim_call)
    app.router.add_get("/sim/v1/summary", sim_summary)
    app.router.add_post("/sim/v1/reset", sim_reset)
    app.router.add_get("/metrics", metrics)
    return app


# Envelope and checks


def envelope(request: web.Request, status: int, data: Any = None, error: ApiError | None = None) -> web.Response:
    error_data = None
    if error is not None:
        error_data = {"code": error.code, "message": error.message, "description": error.description}
    body = {
        "request_id": request_id(),
        "method": request.method,
        "http_code": status,
        "response": {"error_data": error_data, "data": data},
    }
    response = web.json_response(body, status=status)
    if error is not None:
        response.headers.update(error.headers)
    decision = request.get(_DECISION)
    if decision is not None:
        response.headers.update(_rate_headers(request, decision))
    return response


@web.middleware
async def _legs_api_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v2/"):
        return await handler(request)
    account = request.app[_ACCOUNT]
    try:
        _authenticate(request, account)
        account_sid = request.match_info.get("account_sid")
        if account_sid is not None and account_sid != account.config.account_sid:
            raise ApiError(403, "not authorized", f"these credentials have no access to account {account_sid!r}")
        decision = account.admit()
        request[_DECISION] = decision
        if decision is not None and not decision.allowed:
            message = f"Rate limit exceeded. Try again in {decision.retry_after_s} seconds."
            raise ApiError(429, "rate limit exceeded", message, headers={"Retry-After": str(decision.retry_after_s)})
        fault = account.api_fault()
        if fault is not None:
            headers = {"Retry-After": "1"} if fault == 429 else None
            raise ApiError(fault, "injected fault", "this error was injected by the scenario's faults.api", headers=headers)
        return await handler(request)
    except ApiError as error:
        return envelope(request, error.status, error=error)
    except web.HTTPException as exc:  # no such route, wrong method
        return envelope(request, exc.status, error=ApiError(exc.status, exc.reason, f"{request.method} {request.path}"))


def _authenticate(request: web.Request, account: Account) -> None:
    config = account.config
    valid = basic_auth_matches(request.headers.get("Authorization"), config.api_key, config.api_token)
    if not valid:
        raise ApiError(
            401, "authentication failed", "every request needs HTTP Basic auth with the API key and token",
            headers={"WWW-Authenticate": 'Basic realm="exotel-sandbox"'},
        )  # fmt: skip


def _rate_headers(request: web.Request, decision: Decision) -> dict[str, str]:
    reset_at = math.ceil(request.app[_ACCOUNT].clock.now()) + decision.reset_after_s
    return {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(reset_at),  # Unix seconds when the budget is full again
    }


async def _json_body(request: web.Request, *, optional: bool = False) -> Any:
    if not request.can_read_body:
        if optional:
            return {}
        raise ApiError(400, "missing body", "expected a JSON object")
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid JSON", str(exc)) from None


def _leg(request: web.Request) -> Leg:
    try:
        return request.app[_ACCOUNT].leg(request.match_info["leg_sid"])
    except LegNotFound:
        raise ApiError(404, "leg not found", f"no leg {request.match_info['leg_sid']!r} on this account") from None


# Legs API


async def create_leg(request: web.Request) -> web.Response:
    account = request.app[_ACCOUNT]
    try:
        leg_request = create_leg_request(await _json_body(request))
        leg = account.create_leg(leg_request)
    except BadRequest as exc:
        raise ApiError(400, exc.message, exc.description) from None
    except LimitExceeded as exc:
        raise ApiError(429, "concurrent legs limit exceeded", str(exc), code="CONCURRENCY_LIMIT_EXCEEDED", headers={"Retry-After": "1"}) from None
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
    return envelope(request, 200, _leg(request).details(request.app[_ACCOUNT].clock.now(), fields))


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
    body = await _json_body(request, optional=True)
    try:
        params = action_params(name, body)
        custom_param = custom_param_of(body)
    except BadRequest as exc:
        raise ApiError(400, exc.message, exc.description) from None
    return _run(request, [(name, params)], custom_param)


async def exoml_action(request: web.Request) -> web.Response:
    body = await _json_body(request)
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
    account = request.app[_ACCOUNT]
    leg_sid = request.match_info["leg_sid"]
    try:
        action = account.run_actions(leg_sid, verbs, custom_param)
    except LegNotFound:
        raise ApiError(404, "leg not found", f"no leg {leg_sid!r} on this account") from None
    except LegNotActive as exc:
        raise ApiError(409, "leg not in a state for this action", str(exc), code="INVALID_LEG_STATE") from None
    except LimitExceeded as exc:
        raise ApiError(429, "active streams limit exceeded", str(exc), code="STREAM_LIMIT_EXCEEDED", headers={"Retry-After": "1"}) from None
    data = {
        "action_sid": action.action_sid,
        "leg_sid": leg_sid,
        "account_sid": account.config.account_sid,
        "created_at": rfc3339(action.received_at),
        "action_custom_param": custom_param,
        **extra,
    }
    return envelope(request, 202, data)


# The sandbox's own reports


async def sim_calls(request: web.Request) -> web.Response:
    return web.json_response({"calls": request.app[_ACCOUNT].reports()})


async def sim_call(request: web.Request) -> web.Response:
    try:
        return web.json_response(request.app[_ACCOUNT].report(request.match_info["leg_sid"]))
    except LegNotFound:
        return web.json_response({"error": f"no leg {request.match_info['leg_sid']!r}"}, status=404)


async def sim_summary(request: web.Request) -> web.Response:
    return web.json_response(request.app[_ACCOUNT].summary())


async def sim_reset(request: web.Request) -> web.Response:
    await request.app[_ACCOUNT].reset()
    return web.json_response({"reset": True})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(request.app[_METRICS]), headers={"Content-Type": CONTENT_TYPE_LATEST})
