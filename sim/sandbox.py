"""The Exotel sandbox in one object: start it inside an event loop, dial against ``url``.

Example::

    async with Sandbox(SandboxConfig(seed=7)) as sandbox:
        print(sandbox.url)        # http://127.0.0.1:41234  (Legs API under /v2, reports under /sim/v1)

A :class:`Sandbox` is the account (:class:`sim.account.Account`) with its HTTP door
(:func:`sim.api.build_app`) listening on ``config.host:config.port``.
"""

from __future__ import annotations

from aiohttp import web

from sim.account import Account
from sim.api import build_app
from sim.config import SandboxConfig

__all__ = ["Sandbox"]


class Sandbox(Account):
    def __init__(self, config: SandboxConfig | None = None) -> None:
        super().__init__(config)
        self._runner: web.AppRunner | None = None
        self._port = self.config.port

    @property
    def url(self) -> str:
        """``http://host:port`` once started (the actual port when ``config.port`` is 0)."""
        return f"http://{self.config.host}:{self._port}"

    async def start(self) -> Sandbox:
        self.open()
        self._runner = web.AppRunner(build_app(self), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self._port = self._runner.addresses[0][1]
        self.public_url = self.url
        return self

    async def stop(self) -> None:
        """Close the listening socket, end every call without further events, close channels."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.close()

    async def __aenter__(self) -> Sandbox:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
