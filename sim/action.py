"""One accepted Legs API action request, as the sandbox records it on its leg."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ActionRecord"]


@dataclass(eq=False)
class ActionRecord:
    """One accepted action request."""

    action_sid: str
    name: str  # start_stream, stop_say, hangup, ...
    custom_param: str
    received_at: float
    trigger: str | None = None  # the event this action is the reaction to
    latency_ms: float | None = None  # trigger emitted -> request received
    params: dict[str, Any] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        return {
            "action_sid": self.action_sid,
            "name": self.name,
            "action_custom_param": self.custom_param,
            "received_at": self.received_at,
            "trigger": self.trigger,
            "latency_ms": self.latency_ms,
            "params": self.params,
        }
