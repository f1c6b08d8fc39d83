"""The sandbox's own code stays readable: no import cycles, small files."""

from __future__ import annotations

from pathlib import Path

import grimp

import sim

MAX_LINES = 400  # the sandbox's own limit (the project's hard limit is 450)


def test_sim_has_no_import_cycle_not_even_through_local_or_type_checking_imports() -> None:
    """No two sim modules import each other, directly or through others, counting every import statement."""
    graph = grimp.build_graph("sim", "dialstream", cache_dir=None)
    modules = sorted(m for m in graph.modules if m.startswith("sim"))
    cycles = [
        (a, b)
        for i, a in enumerate(modules)
        for b in modules[i + 1 :]
        if graph.find_shortest_chain(a, b) and graph.find_shortest_chain(b, a)
    ]
    assert cycles == []


def test_sim_files_are_under_400_lines() -> None:
    """Every sandbox source file has fewer than 400 lines."""
    root = Path(sim.__file__).parent
    long = {p.name: n for p in root.glob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) >= MAX_LINES}
    assert long == {}
