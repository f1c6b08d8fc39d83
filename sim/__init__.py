"""The Exotel sandbox: a local, measurable stand-in for Exotel's Legs API and AgentStream.

Run it with ``python -m sim`` (or ``dialstream sim``), or inside an event loop::

    async with Sandbox(SandboxConfig(seed=7)) as sandbox:
        ...  # dial against sandbox.url

See ``sim/README.md`` for the scenario schema and the ``/sim/v1`` reports.
"""

from __future__ import annotations

from sim.config import DeliveryPolicy, Limits, MediaConfig, SandboxConfig, Timing
from sim.sandbox import Sandbox

__all__ = ["Sandbox", "SandboxConfig", "Timing", "MediaConfig", "Limits", "DeliveryPolicy"]
