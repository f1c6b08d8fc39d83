"""Every error the API answers with, in one shape: RFC 9457 problem details.

``application/problem+json`` with ``type``, ``title``, ``status``, ``detail`` and ``instance``;
a validation error adds ``errors`` (where in the request, and what is wrong). Routes raise
:class:`Problem`; FastAPI's own errors (validation, 404 for an unknown path, 405) and a
:class:`~dialstream.errors.ConfigurationError` from the engine (a bad campaign setting, a file
without a phone column) are turned into the same shape here.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from dialstream.errors import ConfigurationError

__all__ = ["Problem", "install", "PROBLEM_JSON", "RESPONSES"]

PROBLEM_JSON = "application/problem+json"
_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "instance": {"type": "string"}, "errors": {"type": "array", "items": {"type": "object"}},
    },
}  # fmt: skip
# For the OpenAPI document: what every route may answer besides success.
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": HTTPStatus(status).phrase, "content": {PROBLEM_JSON: {"schema": _SCHEMA}}}
    for status in (401, 403, 404, 409, 422)
}


class Problem(Exception):
    """An error answered as problem details."""

    def __init__(self, status: int, detail: str, *, title: str = "", extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.title, self.extra = status, detail, title or HTTPStatus(status).phrase, extra or {}


def _answer(request: Request, status: int, detail: str, title: str = "", headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem details."""

    @app.exception_handler(Problem)
    async def problem(request: Request, exc: Problem) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _answer(request, exc.status, exc.detail, exc.title, headers, **exc.extra)

    @app.exception_handler(ConfigurationError)
    async def configuration(request: Request, exc: ConfigurationError) -> JSONResponse:
        return _answer(request, 422, str(exc), "Invalid campaign or input")

    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"location": ".".join(str(p) for p in error["loc"]), "message": error["msg"]} for error in exc.errors()]
        detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors[:5])
        return _answer(request, 422, detail, "Invalid request", errors=errors)

    @app.exception_handler(HTTPException)
    async def http(request: Request, exc: HTTPException) -> JSONResponse:
        return _answer(request, exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))
