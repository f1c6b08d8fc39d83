"""CSV written for people's spreadsheets never holds a cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io

import pytest

from dialstream.domain.spreadsheet import DictWriter, writer

DANGEROUS = ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "|x", "%0A"]


@pytest.mark.parametrize("cell", DANGEROUS)
def test_a_cell_starting_like_a_formula_is_escaped_with_a_quote(cell: str) -> None:
    """Cells starting with = + - @ | % tab or CR come back, once read as CSV, behind a leading quote."""
    out = io.StringIO()
    writer(out).writerow([cell])
    (read,) = next(csv.reader(io.StringIO(out.getvalue())))
    assert read.startswith("'") and read.lstrip("'").replace("\\|", "|") == cell


def test_numbers_and_plain_text_are_written_as_they_are() -> None:
    """Negative and decimal numbers, empty cells and ordinary text are untouched; dict rows and headers go through the same escape."""
    out = io.StringIO()
    writer(out).writerow([-3, "-4.5", 2.5, "", None, "Asha, 500"])
    assert out.getvalue() == '-3,-4.5,2.5,,,"Asha, 500"\r\n'
    out = io.StringIO()
    rows = DictWriter(out, fieldnames=["phone", "=reason"], extrasaction="ignore")
    rows.writeheader()
    rows.writerow({"phone": "+919812345678", "=reason": "\tbad", "ignored": 1})
    assert out.getvalue() == "phone,'=reason\r\n'+919812345678,'\tbad\r\n"
