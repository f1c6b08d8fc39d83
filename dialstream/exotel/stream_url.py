"""A contact's variables on the bot's stream URL, within Exotel's limits.

AgentStream hands a stream URL's query parameters to the bot as ``start.custom_parameters``:
"up to 3 key-value pairs ... max 256 chars total", and a Connect stream URL must stay "under 600
characters" (shared/reference/exotel.md, section 4.1). Exotel's own ``sample-rate`` parameter
is not a custom parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["STREAM_PARAM_LIMIT", "STREAM_PARAM_CHARS", "STREAM_URL_CHARS", "stream_parameters", "stream_url"]


# Exotel's AgentStream limits on custom parameters appended to the bot URL.
STREAM_PARAM_LIMIT = 3


STREAM_PARAM_CHARS = 256


STREAM_URL_CHARS = 600  # "full URL including query params must be under 600 characters"


# Query parameters Exotel itself reads; they are not custom parameters.
_EXOTEL_URL_PARAMS = frozenset({"sample-rate", "sample_rate"})


def stream_parameters(
    variables: Mapping[str, str],
    *,
    keys: Sequence[str] = (),
    limit: int = STREAM_PARAM_LIMIT,
    max_chars: int = STREAM_PARAM_CHARS,
) -> dict[str, str]:
    """The variables that go on the stream URL: at most ``limit`` pairs, ``max_chars`` encoded.

    Candidates are ``keys`` in that order (those the row has), else every variable in column
    order. A pair that does not fit is skipped whole, never truncated: a cut value would
    reach the bot looking complete. The rest stay available from the contact record.
    """
    return dict(_choose(variables, keys, [], limit, max_chars))


def _choose(
    variables: Mapping[str, str], keys: Sequence[str], present: list[tuple[str, str]], limit: int, max_chars: int
) -> list[tuple[str, str]]:
    """Pairs to add to ``present`` so that all of them fit ``limit`` pairs and ``max_chars``."""
    taken = {name for name, _ in present}
    names = [k for k in (keys or variables) if k in variables and k not in taken]
    chosen: list[tuple[str, str]] = []
    for name in names:
        if len(present) + len(chosen) >= limit:
            break
        trial = [*chosen, (name, variables[name])]
        if len(urlencode(present + trial)) <= max_chars:
            chosen = trial
    return chosen


def stream_url(
    base_url: str,
    variables: Mapping[str, str],
    *,
    keys: Sequence[str] = (),
    limit: int = STREAM_PARAM_LIMIT,
    max_chars: int = STREAM_PARAM_CHARS,
) -> str:
    """``base_url`` with the row's chosen variables appended as custom parameters.

    Custom parameters already on ``base_url`` count against the limits (Exotel's own
    ``sample-rate`` does not), and the whole URL stays under Exotel's 600 characters.
    """
    parts = urlsplit(base_url)
    existing = parse_qsl(parts.query, keep_blank_values=True)
    custom = [(k, v) for k, v in existing if k not in _EXOTEL_URL_PARAMS]
    pairs = _choose(variables, keys, custom, limit, max_chars)
    while True:
        url = urlunsplit(parts._replace(query=urlencode(existing + pairs)))
        if len(url) < STREAM_URL_CHARS or not pairs:
            return url
        pairs.pop()
