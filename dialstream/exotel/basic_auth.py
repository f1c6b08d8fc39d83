"""HTTP Basic auth, the one scheme every Exotel door uses: the Legs API, the stream URL's
``user:pass@`` (sent as a header on the upgrade), and the HTTPS event endpoint.

One parser for every server that checks it (the bot, the sandbox's API, the ingress's
HTTPS door) and one builder for every client; comparison is constant-time.

Example::

    header = basic_auth_header("exotel", "s3cret")     # 'Basic ZXhvdGVsOnMzY3JldA=='
    basic_auth_matches(header, "exotel", "s3cret")     # True
"""

from __future__ import annotations

import base64
import binascii
import hmac

__all__ = ["basic_auth_header", "parse_basic_auth", "basic_auth_matches"]


def basic_auth_header(user: str, password: str) -> str:
    """The ``Authorization`` header value for ``user`` and ``password``."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an ``Authorization`` header; ``None`` if it is absent, not
    Basic, or not base64 of UTF-8 ``user:password``."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def basic_auth_matches(header: str | None, user: str, password: str) -> bool:
    """Whether ``header`` carries exactly ``user`` and ``password`` (compared in constant time)."""
    supplied = parse_basic_auth(header)
    if supplied is None:
        return False
    # Both compared whatever the first gives, so timing tells nothing about which was wrong.
    user_ok = hmac.compare_digest(supplied[0].encode(), user.encode())
    password_ok = hmac.compare_digest(supplied[1].encode(), password.encode())
    return user_ok and password_ok
