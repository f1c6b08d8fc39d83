"""Text from the outside, made safe to put in a log line.

Event fields (leg_sid, event_sid, stream_sid, custom_param, error texts ...) come from the
network: a leg_sid containing a newline would forge a second log line, an ANSI escape would
repaint a terminal, and a megabyte-long field would flood the log. Every log line that
carries such data passes it through :func:`for_log`: control and other non-printable
characters (newlines, escapes, bidi overrides, line separators) are written as Python
escapes (``\\n``, ``\\x1b``, ``\\u202e``) and the text is cut at ``limit`` characters.

Example::

    log.warning("leg %s: %s", for_log(event.leg_sid), for_log(exc))
"""

from __future__ import annotations

__all__ = ["for_log", "LOG_FIELD_LIMIT"]

LOG_FIELD_LIMIT = 200  # characters of one field in a log line: more than any sid, less than a flood
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def for_log(value: object, limit: int = LOG_FIELD_LIMIT) -> str:
    """``value`` as text for one log line: one line, printable, at most ``limit`` characters (plus a note)."""
    text = value if isinstance(value, str) else str(value)
    extra = len(text) - limit
    if extra > 0:
        text = text[:limit]
    if not text.isprintable():
        text = "".join(char if char.isprintable() else _escape(char) for char in text)
    return f"{text}...(+{extra} chars)" if extra > 0 else text


def _escape(char: str) -> str:
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
