"""The Lua scripts dialstream runs in Redis, one file per atomic operation.

Python code loads them with :func:`script` from the module that runs them, so each
script's callers are one ``grep`` away. A line ``--#include name.lua`` is replaced by that
file: how two scripts share a function (Redis gives scripts no imports).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import redis
from redis.client import Pipeline
from redis.commands.core import Script

__all__ = ["script"]


class _Script(Script):
    """A script that a pipeline sends whole (EVAL): redis-py's own would first ask the server
    whether it knows the script (SCRIPT EXISTS), one more round trip on every pipeline that
    runs one, on the hot path of every leg event. The body is a few hundred bytes; the server
    caches it compiled by its hash, so a restart that empties its cache costs nothing either."""

    def __call__(self, keys: Sequence[Any] | None = None, args: Iterable[Any] | None = None, client: Any = None) -> Any:
        if isinstance(client, Pipeline):
            keys = list(keys or ())
            return client.eval(self.script, len(keys), *keys, *(args or ()))
        return super().__call__(keys, args, client)


@functools.cache
def _source(name: str) -> str:
    lines = Path(__file__).with_name(name).read_text().splitlines(keepends=True)
    return "".join(_source(line.split()[1]) if line.startswith("--#include ") else line for line in lines)


def script(client: Any, name: str) -> Any:
    """``name`` (e.g. ``"leg_cas.lua"``) registered on ``client``; EVALSHA with a fallback to EVAL,
    and EVAL in a pipeline."""
    if isinstance(client, redis.Redis):
        return _Script(client, _source(name))
    return client.register_script(_source(name))
