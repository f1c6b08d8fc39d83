"""The bot fleet in Redis: bots register, workers pick one per ``start_stream``.

Each bot process sends a heartbeat every second with its public URL, capacity, current
load and the media formats it accepts; an entry expires ``ttl`` seconds after the last
heartbeat, so a dead bot drops out of selection within seconds without anyone cleaning
up. An external fleet (a team's pipecat servers, a vendor endpoint) is registered
without expiry by ``dialstream bots add``, with its capacity and formats. URLs are bare:
the bots' Basic-auth credentials are never stored here (workers add them from settings).

Key layout (``prefix`` defaults to ``ds:``, as every dialstream key)::

    {prefix}bots            sorted set: url -> expiry (Unix ms, Redis clock); +inf = static
    {prefix}bot:{url}       hash: url, capacity, load, static (0/1), formats (content
                            types, comma-separated; empty: any), updated_ms;
                            expires with the heartbeat TTL unless static

Every multi-step operation is a Lua script beside this module (``fleet_*.lua``), so it
is atomic. The choice itself is the pure :func:`choose_bot`. This module imports
neither asyncio nor websockets: Celery workers call :func:`select_bot` with their
ordinary synchronous Redis client.

Example::

    bot = select_bot(redis_client, static_urls=settings.bot_urls)
    content_type = choose_content_type(bot.formats, campaign.stream_content_type)
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from dialstream.errors import NoBotAvailable
from dialstream.state import keys
from dialstream.state.scripts import script

__all__ = [
    "DEFAULT_TTL",
    "BotRecord",
    "choose_bot",
    "heartbeat",
    "register_external",
    "deregister",
    "live_bots",
    "select_bot",
]

DEFAULT_TTL = 5.0
"""Seconds a registration lives without a heartbeat (bots beat every second)."""


@dataclass(frozen=True, slots=True)
class BotRecord:
    """One registered bot. ``static`` entries (external fleets) never expire and report no
    live load; ``formats`` are the content types it accepts (empty: whatever it is sent)."""

    url: str
    capacity: int
    load: int = 0
    static: bool = False
    formats: tuple[str, ...] = ()

    @property
    def free(self) -> int:
        return self.capacity - self.load


def choose_bot(bots: Iterable[BotRecord], *, avoid: Collection[str] = ()) -> BotRecord | None:
    """The bot a new stream should go to, or ``None`` if none has free capacity.

    Live bots (those that send heartbeats) come first, because their load is measured;
    static entries are the fallback. Among equals, the most free capacity wins, then the
    URL, so the choice is deterministic. URLs in ``avoid`` (bots a retry already tried)
    are chosen only when no other bot has room: avoided, not forbidden, so a one-bot
    fleet still serves retries.
    """
    candidates = [bot for bot in bots if bot.free > 0]
    preferred = [bot for bot in candidates if bot.url not in avoid] or candidates
    if not preferred:
        return None
    return min(preferred, key=lambda bot: (bot.static, -bot.free, bot.url))


def heartbeat(
    client: redis.Redis,
    url: str,
    *,
    capacity: int,
    load: int,
    formats: Sequence[str] = (),
    ttl: float = DEFAULT_TTL,
    prefix: str = keys.PREFIX,
) -> None:
    """Register ``url`` or refresh its registration for ``ttl`` more seconds."""
    args = [url, capacity, load, int(ttl * 1000), 0, ",".join(formats)]
    _run(client, "heartbeat", [keys.bots(prefix), keys.bot(url, prefix)], args)


def register_external(
    client: redis.Redis, url: str, *, capacity: int, formats: Sequence[str], prefix: str = keys.PREFIX
) -> None:
    """Register a bot fleet that sends no heartbeats (one URL, e.g. behind its own balancer);
    it stays until :func:`deregister`. Registering it again replaces capacity and formats."""
    _run(client, "heartbeat", [keys.bots(prefix), keys.bot(url, prefix)], [url, capacity, 0, 0, 1, ",".join(formats)])


def deregister(client: redis.Redis, url: str, *, prefix: str = keys.PREFIX) -> bool:
    """Remove ``url`` from selection at once (a draining bot calls this first); False if it was not registered."""
    return bool(_run(client, "deregister", [keys.bots(prefix), keys.bot(url, prefix)], [url]))


def live_bots(client: redis.Redis, *, prefix: str = keys.PREFIX) -> list[BotRecord]:
    """Every registered bot that has not expired; expired index entries are pruned."""
    rows = _run(client, "snapshot", [keys.bots(prefix)], [keys.bot("", prefix)])
    return [
        BotRecord(
            url=_text(url),
            capacity=int(capacity),
            load=int(load),
            static=_text(static) == "1",
            formats=tuple(part for part in _text(formats).split(",") if part),
        )
        for url, capacity, load, static, formats in rows
    ]


def select_bot(
    client: redis.Redis,
    *,
    prefix: str = keys.PREFIX,
    static_urls: Sequence[str] = (),
    exclude: Collection[str] = (),
    reserve: bool = True,
    pipe: Any = None,
) -> BotRecord:
    """The bot with the most free capacity (its URL and the formats it accepts).

    With ``reserve`` (the default) the chosen live bot's load is counted up at once, so
    that the selections made before its next heartbeat spread over the fleet; the
    heartbeat then replaces the estimate with the measured load (added to ``pipe``, a
    pipeline the caller executes, when given: one round trip less). When no registered bot
    has room, one of ``static_urls`` (``Settings.bot_urls``) is picked at random (formats
    unknown, so the campaign's format goes to it unchanged). URLs in
    ``exclude`` are avoided unless nothing else is available (see :func:`choose_bot`).

    Raises:
        NoBotAvailable: no registered bot has room and ``static_urls`` is empty.
    """
    chosen = choose_bot(live_bots(client, prefix=prefix), avoid=exclude)
    if chosen is not None:
        if reserve and not chosen.static:
            _run(client, "reserve", [keys.bot(chosen.url, prefix)], [], pipe=pipe)
        return chosen
    if static_urls:
        url = random.choice([url for url in static_urls if url not in exclude] or list(static_urls))
        return BotRecord(url, capacity=0, static=True)
    raise NoBotAvailable(
        f"no bot registered under {keys.bots(prefix)!r} has free capacity, and no static bot URL is set"
    )


def _run(client: redis.Redis, name: str, keys: list[str], args: list[Any], *, pipe: Any = None) -> Any:
    """Run ``fleet_<name>.lua`` on ``client``, or add it to ``pipe`` (a pipeline the caller executes)."""
    return script(client, f"fleet_{name}.lua")(keys=keys, args=args, client=pipe)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
