"""Exotel's response envelope and the errors every ``/v2`` handler raises.

Every ``/v2`` answer is ``{request_id, method, http_code, response: {error_data, data}}``;
errors carry ``error_data = {code, message, description}`` and ``data = null``. Answers
also carry the per-minute budget's ``X-RateLimit-*`` headers once the guard
(:mod:`sim.api`) has spent a request of it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

from sim.account import Account
from sim.ids import request_id
from sim.ratelimit import Decision

__all__ = ["ACCOUNT", "DECISION", "ApiError", "envelope", "json_body"]

ACCOUNT: web.AppKey[Account] = web.AppKey("account", Account)
DECISION: web.RequestKey[Decision | None] = web.RequestKey("rate_decision", object)

STATUS_CODES = {
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
        self.code = code or STATUS_CODES.get(status, "ERROR")
        self.message = message
        self.description = description
        self.headers = headers or {}



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
    decision = request.get(DECISION)
    if decision is not None:
        response.headers.update(rate_headers(request, decision))
    return response


def rate_headers(request: web.Request, decision: Decision) -> dict[str, str]:
    reset_at = math.ceil(request.app[ACCOUNT].clock.now()) + decision.reset_after_s
    return {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(reset_at),  # Unix seconds when the budget is full again
    }


async def json_body(request: web.Request, *, optional: bool = False) -> Any:
    if not request.can_read_body:
        if optional:
            return {}
        raise ApiError(400, "missing body", "expected a JSON object")
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid JSON", str(exc)) from None


