"""The per-call report: dispositions and caller IDs joined to the call records (pure)."""

from __future__ import annotations

from dialstream.domain.call_outcome import Disposition
from dialstream.domain.report import build_report


def test_rows_carry_the_disposition_of_their_leg_and_the_summary_counts_codes():
    """Each row gets its leg's disposition and exophone; the report counts calls per disposition code."""
    results = {
        "a": {"outcome": "completed", "leg_sid": "L1", "exophone": "+918030752400", "answered_at": 1.0},
        "b": {"outcome": "completed", "leg_sid": "L2", "answered_at": 2.0},
        "c": {"outcome": "busy", "leg_sid": "L3"},
    }
    dispositions = {"L1": Disposition("interested", {"choice": "sales"}, 5.0), "L2": Disposition("interested", {}, 6.0)}
    report = build_report("camp", "bot_first", ["a", "b", "c"], results, dispositions=dispositions)
    assert [(r.disposition, r.exophone) for r in report.rows] == [("interested", "+918030752400"), ("interested", ""), ("", "")]
    assert report.rows[0].disposition_data == {"choice": "sales"}
    assert report.dispositions == {"interested": 2} and report.to_dict()["dispositions"] == {"interested": 2}
