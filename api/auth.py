"""API keys on every request but health, readiness and the dashboard page itself.

``Authorization: Bearer dsk_...``; keys are made with ``dialstream apikey create`` and
checked against their hashes in Redis (``dialstream.state.api_keys``). A ``read`` key may
GET; a ``write`` key may do everything.
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.problems import Problem
from dialstream.state.api_keys import ApiKey, ApiKeys

__all__ = ["read", "write"]

_bearer = HTTPBearer(auto_error=False, description="An API key: dialstream apikey create --scope read|write")


def _require(scope: str):  # noqa: ANN202 - a FastAPI dependency factory
    def check(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> ApiKey:
        if credentials is None:
            raise Problem(401, "an API key is required: Authorization: Bearer <key>")
        key = ApiKeys(request.app.state.redis).verify(credentials.credentials)
        if key is None:
            raise Problem(401, "unknown or revoked API key")
        if not key.allows(scope):
            raise Problem(403, f"this key's scope is {key.scope}; this needs {scope}")
        return key

    return check


read = Depends(_require("read"))
write = Depends(_require("write"))
