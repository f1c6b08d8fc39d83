"""for_log: text from events is one printable, bounded log line."""

from __future__ import annotations

import logging

from dialstream.exotel.log_text import LOG_FIELD_LIMIT, for_log


def test_a_newline_in_a_leg_sid_cannot_forge_a_log_line(caplog) -> None:
    """A leg_sid with a newline, a carriage return and a fake second record logs as one line, escaped."""
    forged = "CA123\nERROR ingress: all events dropped\r"
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("leg %s answered", for_log(forged))
    assert caplog.text.count("\n") == 1
    assert "leg CA123\\nERROR ingress: all events dropped\\r answered" in caplog.text


def test_escapes_terminal_and_bidi_controls_and_keeps_printable_unicode() -> None:
    """ANSI escapes, NUL, DEL, bidi overrides and line separators are escaped; accents and scripts are kept."""
    assert for_log("\x1b[31mred\x00\x7f") == "\\x1b[31mred\\x00\\x7f"
    assert for_log("abc\u202edef\u2028") == "abc\\u202edef\\u2028"
    assert for_log("José नमस्ते") == "José नमस्ते"
    assert for_log(12) == "12"


def test_long_fields_are_cut_and_say_by_how_much() -> None:
    """A field over the limit is cut to it, with the number of characters left out."""
    assert for_log("x" * (LOG_FIELD_LIMIT + 50)) == "x" * LOG_FIELD_LIMIT + "...(+50 chars)"
    assert for_log("abcdef", limit=3) == "abc...(+3 chars)"
    assert for_log("\n" * 5, limit=2) == "\\n\\n...(+3 chars)"
