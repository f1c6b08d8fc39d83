"""How fast ``read_contacts`` ingests a large CSV batch (rows per second).

Generates a 100,000-row CSV in a temporary directory (Indian and US numbers, a few bad,
duplicate and foreign-zone rows, three variables each) and times one full pass of
:func:`dialstream.domain.contacts.read_contacts` over it, DNC screening included (an in-memory set).
Not a test: a figure to watch. Run ``python -m bench.contacts_ingest``.
"""

from __future__ import annotations

import csv
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from dialstream.domain.contacts import ContactRow, read_contacts

__all__ = ["run", "write_batch"]

ROWS = 100_000


def write_batch(path: Path, rows: int = ROWS, *, seed: int = 5) -> None:
    """A realistic batch: mostly valid unique mobiles, with ~1 % of each kind of bad row."""
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "name", "amount", "due_date", "timezone"])
        for i in range(rows):
            roll = rng.random()
            if roll < 0.01:
                phone = "12345"  # not a valid number
            elif roll < 0.02:
                phone = f"+91 98{(i - 1) % rows:08d}"  # a duplicate of the row before
            elif roll < 0.05:
                phone = f"+1 212 555 {i % 10000:04d}"  # New York
            else:
                phone = f"98{i:08d}"  # Indian mobile, national format
            zone = "Asia/Dubai" if roll > 0.99 else ""
            writer.writerow([phone, f"Customer {i}", f"{rng.randint(100, 99999)}", "2026-07-01", zone])


def run(rows: int = ROWS) -> dict[str, Any]:
    """Generate the batch, ingest it once, and return the counts and the rate."""
    with tempfile.TemporaryDirectory(prefix="dialstream-bench-") as tmp:
        path = Path(tmp) / "batch.csv"
        write_batch(path, rows)
        blocked = {f"+9198{i:08d}" for i in range(0, rows, 97)}
        accepted = rejected = 0
        started = time.perf_counter()
        for row in read_contacts(path, dnc=blocked):
            if isinstance(row, ContactRow):
                accepted += 1
            else:
                rejected += 1
        seconds = time.perf_counter() - started
        size = path.stat().st_size
    return {
        "rows": accepted + rejected,
        "accepted": accepted,
        "rejected": rejected,
        "seconds": round(seconds, 3),
        "rows_per_s": round((accepted + rejected) / seconds),
        "file_bytes": size,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
