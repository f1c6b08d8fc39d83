"""The stream URL Exotel connects to: its query's sample rate and custom parameters (``exotel.md`` §4.1).

Exotel's reference server reads ``?sample-rate=`` and forwards up to three other query
parameters to ``start.custom_parameters``.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

from dialstream.exotel.basic_auth import basic_auth_header

__all__ = [
    "MAX_CUSTOM_PARAMETERS",
    "MAX_CUSTOM_PARAMETERS_CHARS",
    "SAMPLE_RATE_PARAMETERS",
    "parameters_from_query",
    "split_credentials",
    "with_credentials",
]

MAX_CUSTOM_PARAMETERS = 3
"""Exotel forwards at most three custom parameters to ``start.custom_parameters``."""
MAX_CUSTOM_PARAMETERS_CHARS = 256
"""...and at most 256 characters of them (the encoded ``k=v&k=v`` text)."""
SAMPLE_RATE_PARAMETERS = ("sample-rate", "sample_rate")
"""Query keys that select the sample rate rather than carry a custom parameter."""


def parameters_from_query(query: str) -> tuple[int | None, dict[str, str]]:
    """Split a stream URL's query into (requested sample rate, custom parameters).

    Exotel's reference server reads ``sample-rate`` (its helper also ``sample_rate``) and
    treats every other key as a custom parameter. A malformed rate counts as absent.
    """
    rate: int | None = None
    custom: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in SAMPLE_RATE_PARAMETERS:
            rate = int(value) if value.isdigit() and int(value) > 0 else None
        else:
            custom[key] = value
    return rate, custom


def split_credentials(url: str) -> tuple[str, str | None]:
    """What Exotel does with ``user:pass@`` in a stream URL: it connects to the URL without
    them and sends them as Basic auth on the upgrade (``exotel.md`` §4.1).

    ``wss://user:pass@host/p`` -> (``wss://host/p``, ``Basic base64(user:pass)``).
    """
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    netloc = parts.hostname or ""
    if ":" in netloc:  # an IPv6 literal
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    header = basic_auth_header(unquote(parts.username), unquote(parts.password or ""))
    return urlunsplit(parts._replace(netloc=netloc)), header


def with_credentials(url: str, user: str, password: str) -> str:
    """``url`` with ``user:password@`` (percent-encoded), which Exotel sends as Basic auth.

    Bots are registered by their bare URL; the credentials are added only to the URL handed
    to Exotel in ``start_stream``. Unchanged when ``user`` is empty or the URL already holds
    credentials of its own (a static URL configured with them).

    Example::

        with_credentials("wss://bot.example/media", "exotel", "s3cret")
        # 'wss://exotel:s3cret@bot.example/media'
    """
    parts = urlsplit(url)
    if not user or parts.username is not None:
        return url
    userinfo = f"{quote(user, safe='')}:{quote(password, safe='')}"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))
