"""HTTP Basic auth on the bot's WebSocket upgrade.

Exotel sends the ``user:pass@`` of a stream URL as an ``Authorization: Basic`` header on
the upgrade (``exotel.md`` §4.1); the server checks it before accepting the upgrade and
answers 401 otherwise (see :meth:`bot.server.BotServer._admit`).
"""

from __future__ import annotations

from websockets.http11 import Request

from dialstream.exotel.basic_auth import basic_auth_matches

__all__ = ["authorized"]


def authorized(request: Request | None, credentials: tuple[str, str] | None) -> bool:
    """Whether ``request`` carries ``credentials`` as Basic auth (always, if none are required)."""
    if credentials is None:
        return True
    header = request.headers.get("Authorization") if request else None
    return basic_auth_matches(header, *credentials)
