"""CSV that is safe to open in a spreadsheet: no cell of ours is ever run as a formula.

Reports and rejected rows carry text from uploaded files and from callees' data; a cell that
starts with ``=``, ``+``, ``-``, ``@`` (or ``|``, ``%``), a tab or a carriage return can be read
by Excel, LibreOffice or Sheets as a formula (CSV injection). ``defusedcsv`` (a drop-in for
the ``csv`` module) prefixes such cells with ``'``; it leaves the tab and the carriage return,
which OWASP lists too, so :func:`writer` and :class:`DictWriter` add those. Numbers stay
numbers (``-3`` is written as is); a phone ``+9198...`` is written ``'+9198...``.

Example::

    with open("report.csv", "w", newline="") as handle:
        out = DictWriter(handle, fieldnames=["phone", "reason"])
        out.writeheader()
        out.writerow({"phone": "+919812345678", "reason": "=HYPERLINK(...)"})
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from defusedcsv import csv as defused

__all__ = ["writer", "DictWriter"]

_ALSO_UNSAFE = ("\t", "\r")  # leading characters defusedcsv does not escape


def _escape_whitespace(value: Any) -> Any:
    """A leading tab or carriage return escaped the way defusedcsv escapes the rest."""
    return "'" + value if isinstance(value, str) and value.startswith(_ALSO_UNSAFE) else value


class _Writer:
    """defusedcsv's writer, with leading tabs and carriage returns escaped too."""

    def __init__(self, handle: Any, **options: Any) -> None:
        self._writer = defused.writer(handle, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([_escape_whitespace(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(handle: Any, **options: Any) -> _Writer:
    """``csv.writer(handle, **options)`` with every cell made safe."""
    return _Writer(handle, **options)


class DictWriter(defused.DictWriter):
    """``csv.DictWriter`` with every cell (the header too) made safe."""

    def __init__(self, handle: Any, fieldnames: Iterable[str], **options: Any) -> None:
        super().__init__(handle, fieldnames, **options)
        self.writer = _Writer(handle)
