"""Looking at processes from /proc, for the tests that prove no process outlives its parent."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["alive", "descendants", "pids_in_groups"]


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _processes() -> dict[int, list[str]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(entry.name)) is not None:
            found[int(entry.name)] = fields
    return found


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``, to check that none outlives it."""
    children: dict[int, list[int]] = {}
    for child, fields in _processes().items():
        children.setdefault(int(fields[1]), []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def pids_in_groups(groups: Iterable[int]) -> set[int]:
    """Live processes whose process group is one of ``groups`` (each child leads its own)."""
    wanted = set(groups)
    return {pid for pid, fields in _processes().items() if int(fields[2]) in wanted and fields[0] != "Z"}
