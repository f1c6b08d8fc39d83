"""HTTP for the sandbox: Exotel's APIs under ``/v2`` and the sandbox's own ``/sim/v1``.

Every ``/v2`` request passes the checks in Exotel's order before its handler runs: Basic
auth (401), account (403), the per-minute budget (429 with ``Retry-After``), injected API
faults; answers use Exotel's envelope (:mod:`sim.envelope`). The handlers live in
:mod:`sim.api_legs` (the Legs API) and :mod:`sim.api_bridges` (the Bridges API).

``/sim/v1`` is plain JSON without auth: ``GET calls``, ``GET calls/{leg_sid}``,
``GET bridges``, ``GET summary``, ``POST reset``, ``GET recordings/{sid}.wav``.
``GET /metrics`` has the timeline figures for Prometheus (``sim.metrics``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from dialstream.exotel.basic_auth import basic_auth_matches
from sim.account import Account, LegNotFound
from sim.api_bridges import add_bridge_routes
from sim.api_legs import add_leg_routes
from sim.envelope import ACCOUNT, DECISION, ApiError, envelope
from sim.metrics import sandbox_registry
from sim.recording import wav

__all__ = ["build_app"]

_METRICS: web.AppKey[CollectorRegistry] = web.AppKey("metrics", CollectorRegistry)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(account: Account) -> web.Application:
    app = web.Application(middlewares=[_exotel_api_guard])
    app[ACCOUNT] = account
    app[_METRICS] = sandbox_registry(account)
    add_leg_routes(app)
    add_bridge_routes(app)
    app.router.add_get("/sim/v1/calls", sim_calls)
    app.router.add_get("/sim/v1/bridges", sim_bridges)
    app.router.add_get("/sim/v1/recordings/{recording_sid}.wav", sim_recording)
    app.router.add_get("/sim/v1/calls/{leg_sid}", sim_call)
    app.router.add_get("/sim/v1/summary", sim_summary)
    app.router.add_post("/sim/v1/reset", sim_reset)
    app.router.add_get("/metrics", metrics)
    return app


@web.middleware
async def _exotel_api_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v2/"):
        return await handler(request)
    account = request.app[ACCOUNT]
    try:
        _authenticate(request, account)
        account_sid = request.match_info.get("account_sid")
        if account_sid is not None and account_sid != account.config.account_sid:
            raise ApiError(403, "not authorized", f"these credentials have no access to account {account_sid!r}")
        decision = account.admit()
        request[DECISION] = decision
        if decision is not None and not decision.allowed:
            message = f"Rate limit exceeded. Try again in {decision.retry_after_s} seconds."
            raise ApiError(429, "rate limit exceeded", message, headers={"Retry-After": str(decision.retry_after_s)})
        fault = account.api_fault()
        if fault is not None:
            headers = {"Retry-After": "1"} if fault == 429 else None
            raise ApiError(fault, "injected fault", "this error was injected by the scenario's faults.api", headers=headers)
        return await handler(request)
    except ApiError as error:
        account.errors_served[error.status] += 1
        return envelope(request, error.status, error=error)
    except web.HTTPException as exc:  # no such route, wrong method
        return envelope(request, exc.status, error=ApiError(exc.status, exc.reason, f"{request.method} {request.path}"))


def _authenticate(request: web.Request, account: Account) -> None:
    config = account.config
    if not basic_auth_matches(request.headers.get("Authorization"), config.api_key, config.api_token):
        raise ApiError(
            401, "authentication failed", "every request needs HTTP Basic auth with the API key and token",
            headers={"WWW-Authenticate": 'Basic realm="exotel-sandbox"'},
        )  # fmt: skip


# The sandbox's own reports


async def sim_calls(request: web.Request) -> web.Response:
    return web.json_response({"calls": request.app[ACCOUNT].reports()})


async def sim_call(request: web.Request) -> web.Response:
    try:
        return web.json_response(request.app[ACCOUNT].report(request.match_info["leg_sid"]))
    except LegNotFound:
        return web.json_response({"error": f"no leg {request.match_info['leg_sid']!r}"}, status=404)


async def sim_bridges(request: web.Request) -> web.Response:
    return web.json_response({"bridges": request.app[ACCOUNT].bridges.reports()})


async def sim_recording(request: web.Request) -> web.Response:
    """A recording's audio, at the URL of its recording_available event."""
    account = request.app[ACCOUNT]
    recording = account.recordings.get(request.match_info["recording_sid"])
    if recording is None:
        return web.json_response({"error": f"no recording {request.match_info['recording_sid']!r}"}, status=404)
    return web.Response(body=wav(recording, account.clock.now()), content_type="audio/wav")


async def sim_summary(request: web.Request) -> web.Response:
    return web.json_response(request.app[ACCOUNT].summary())


async def sim_reset(request: web.Request) -> web.Response:
    await request.app[ACCOUNT].reset()
    return web.json_response({"reset": True})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(request.app[_METRICS]), headers={"Content-Type": CONTENT_TYPE_LATEST})
