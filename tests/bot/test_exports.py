"""Every bot and AgentStream module declares its public names, and they all exist."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import bot
from dialstream.exotel import agentstream

MODULES = sorted(
    {"bot", "dialstream.exotel.agentstream", "dialstream.exotel.audio", "dialstream.exotel.basic_auth"}
    | {f"bot.{info.name}" for info in pkgutil.iter_modules(bot.__path__) if info.name != "__main__"}
    | {f"dialstream.exotel.agentstream.{info.name}" for info in pkgutil.iter_modules(agentstream.__path__)}
)


@pytest.mark.parametrize("name", MODULES)
def test_module_exports_exist(name):
    """A module's __all__ lists only names it defines, without duplicates."""
    module = importlib.import_module(name)
    assert len(set(module.__all__)) == len(module.__all__)
    for exported in module.__all__:
        assert hasattr(module, exported), f"{name}.{exported}"


def test_fleet_does_not_import_websockets():
    """dialstream.state.fleet stays importable by Celery workers without pulling in websockets."""
    import subprocess
    import sys

    code = "import sys, dialstream.state.fleet; sys.exit('websockets' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
