"""The Lua scripts dialstream runs in Redis, one file per atomic operation.

Python code loads them with :func:`script` from the module that runs them, so each
script's callers are one ``grep`` away. A line ``--#include name.lua`` is replaced by that
file: how two scripts share a function (Redis gives scripts no imports).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

__all__ = ["script"]


@functools.cache
def _source(name: str) -> str:
    lines = Path(__file__).with_name(name).read_text().splitlines(keepends=True)
    return "".join(_source(line.split()[1]) if line.startswith("--#include ") else line for line in lines)


def script(client: Any, name: str) -> Any:
    """``name`` (e.g. ``"leg_cas.lua"``) registered on ``client``; EVALSHA with a fallback to EVAL."""
    return client.register_script(_source(name))
