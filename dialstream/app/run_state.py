"""Where a running ``dialstream up`` can be found: ``.ds-run/stack.json`` in its working directory.

``up`` writes the file once every component is ready (its Redis, API, dashboard and Flower
URLs, its ports and pid) and removes it when it stops; the CLI reads it when ``REDIS_URL`` is
unset, so ``dialstream campaign list`` in the same directory just works. A file left by an
``up`` that was killed names a pid that is gone, and is ignored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["STATE_FILE", "write", "read", "remove"]

STATE_FILE = Path(".ds-run") / "stack.json"


def write(state: Mapping[str, Any], directory: Path | None = None) -> Path:
    """Write the running stack's addresses (readable by its user only: it names a Redis)."""
    path = (directory or Path.cwd()) / STATE_FILE
    path.parent.mkdir(exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({**state, "pid": os.getpid()}, indent=1))
    temporary.chmod(0o600)
    temporary.replace(path)
    return path


def read(directory: Path | None = None) -> dict[str, Any] | None:
    """The running stack's state, or None when no live ``up`` wrote one here."""
    path = (directory or Path.cwd()) / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and _alive(int(state.get("pid", 0))) else None


def remove(directory: Path | None = None) -> None:
    ((directory or Path.cwd()) / STATE_FILE).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

