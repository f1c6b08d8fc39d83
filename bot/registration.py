"""The bot process's membership of the fleet in Redis: heartbeats while it serves, deregistration on drain.

The fleet itself (keys, Lua, selection) is :mod:`dialstream.state.fleet`; this is the bot's
side of it, a thin asyncio shell that calls it from a thread so a slow Redis never stalls
the event loop every stream's audio depends on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import redis

from bot.config import Registration
from dialstream.state import fleet
from dialstream.state.client import connect

__all__ = ["FleetMembership"]

log = logging.getLogger("dialstream.bot")


class FleetMembership:
    """Registers ``url`` with its capacity and live load until :meth:`leave`.

    ``load`` is read at every heartbeat (the number of streams in progress).
    """

    def __init__(self, registration: Registration, url: str, *, capacity: int, load: Callable[[], int]) -> None:
        self.registration = registration
        self.url = url
        self.capacity = capacity
        self._load = load
        self._redis: redis.Redis | None = None
        self._task: asyncio.Task[None] | None = None

    async def join(self) -> None:
        """First heartbeat now, then one every ``Registration.heartbeat`` seconds."""
        self._redis = connect(self.registration.redis_url, timeout=self.registration.heartbeat * 2)
        await self._heartbeat()
        self._task = asyncio.create_task(self._heartbeat_loop(), name="bot-heartbeat")

    async def leave(self) -> None:
        """Stop the heartbeats and drop out of selection at once (a draining bot calls this first)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._redis is not None:
            try:
                await asyncio.to_thread(fleet.deregister, self._redis, self.url, prefix=self.registration.key_prefix)
            except redis.RedisError as exc:
                log.warning("fleet deregistration failed (the entry will expire): %s", exc)
            self._redis.close()
            self._redis = None

    async def _heartbeat(self) -> None:
        assert self._redis is not None
        registration = self.registration
        try:
            await asyncio.to_thread(
                fleet.heartbeat,
                self._redis,
                self.url,
                capacity=self.capacity,
                load=self._load(),
                formats=registration.formats,
                ttl=registration.ttl,
                prefix=registration.key_prefix,
            )
        except redis.RedisError as exc:
            # Redis down must not take calls down: the bot keeps serving and drops out of
            # selection by expiry until a heartbeat succeeds again.
            log.warning("fleet heartbeat failed: %s", exc)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.registration.heartbeat)
            await self._heartbeat()
