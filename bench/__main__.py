"""``make bench`` / ``python -m bench [SUITE ...]``: run the benchmarks, print a table, write results.json.

Each suite is a module of this package with ``run() -> dict``; every run is bounded, uses
loopback only and stops what it starts. Figures are measured on whatever machine runs
them: compare ratios measured in the same run (e.g. ``dispatch_p50_ratio``), not absolute
numbers across machines.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

SUITES = ("dispatch", "bot_streams", "contacts_ingest", "campaign", "scaling", "redis_outage")
RESULTS = Path(__file__).with_name("results.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("suites", nargs="*", choices=[*SUITES, []], help=f"default: all of {', '.join(SUITES)}")
    args = parser.parse_args(argv)
    console = Console()
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    for name in args.suites or SUITES:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError:
            console.print(f"[yellow]{name}: not available[/]")
            continue
        console.print(f"[bold]{name}[/] ...")
        started = time.monotonic()
        results[name] = {**module.run(), "wall_s": round(time.monotonic() - started, 1)}
        RESULTS.write_text(json.dumps(results, indent=2))
        _print(console, name, results[name])
    console.print(f"results written to {RESULTS}")
    return 0


def _print(console: Console, name: str, result: dict[str, Any]) -> None:
    table = Table(title=name, show_header=False)
    for key, value in _flatten(result):
        table.add_row(key, str(value))
    console.print(table)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        rows = []
        for key, inner in value.items():
            rows += _flatten(inner, f"{prefix}.{key}" if prefix else str(key))
        return rows
    return [(prefix, value)]


if __name__ == "__main__":
    raise SystemExit(main())
