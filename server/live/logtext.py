"""Text from clients made safe for one log line.

Ids, event names and messages that quote them come from clients; written to the log as they are, a newline
in a ``call_id`` starts a line that looks like the server's own. :func:`shown` escapes every character that is
not printable (newlines, carriage returns, terminal escapes, line and paragraph separators, lone surrogates)
the way Python writes it in a string literal, and cuts what is too long.
"""

from __future__ import annotations

from typing import Any

LOGGED_CHARS = 300


def shown(value: Any, limit: int = LOGGED_CHARS) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in text)
