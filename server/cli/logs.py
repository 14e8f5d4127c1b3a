"""Log lines that cannot be forged: what a client sent is logged, and a line break in it would start a line of
its own ("... login failed for x\\n2026-12-02 ... login ok admin"). Every control character of a record's message
is escaped; a traceback the record carries stays as it is (its text is the server's, not a client's)."""

from __future__ import annotations

import logging

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_ESCAPES.update({0x2028: "\\u2028", 0x2029: "\\u2029", ord("\\"): "\\\\"})


def one_line(text: str) -> str:
    """``text`` with every control character escaped (and the backslash, so an escape cannot be faked)."""
    return text.translate(_ESCAPES)


class OneLineFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = one_line(record.message)
        return super().formatMessage(record)
