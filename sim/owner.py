"""What a leg's call and a bridge both offer the greetings played and the recordings made on them.

:class:`sim.greeting.Greetings` and :class:`sim.recording.Recorder` run on either; this is
all they ask of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol

from sim.action import ActionRecord
from sim.clock import Clock

__all__ = ["Owner"]


class Owner(Protocol):
    """The leg's call (or the bridge) a greeting plays on or a recording records."""

    clock: Clock

    def emit(self, name: str, *, action: ActionRecord | None = None, detail: dict[str, Any] | None = None) -> Any: ...

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...
