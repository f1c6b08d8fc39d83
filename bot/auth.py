"""HTTP Basic auth on the bot's WebSocket upgrade (Exotel sends ``user:pass@`` of the stream URL so)."""

from __future__ import annotations

import base64
import binascii
import hmac

from websockets.http11 import Request

__all__ = ["authorized"]


def authorized(request: Request | None, credentials: tuple[str, str] | None) -> bool:
    """Whether ``request`` carries ``credentials`` as Basic auth (always, if none are required)."""
    if credentials is None:
        return True
    header = request.headers.get("Authorization", "") if request else ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        supplied = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = f"{credentials[0]}:{credentials[1]}".encode()
    return hmac.compare_digest(supplied, expected)

