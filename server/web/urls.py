"""Where a redirect may go: a path on this site, parsed, never pattern-matched alone."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

PRINTABLE_ASCII = frozenset(chr(c) for c in range(0x21, 0x7F))


def local_path(value: str | None, default: str) -> str:
    """``value`` if it is an absolute path on this site (with its query), else ``default``.

    Refused: anything with a character outside printable ASCII (browsers drop tabs and line breaks from a
    URL, so ``/\\t/evil.example`` would become ``//evil.example``; spaces and other controls have no place in
    an encoded path either), a backslash (browsers read ``\\`` as ``/``), a scheme or a host after parsing,
    and a path that does not start with exactly one ``/`` (``//host`` is another site).
    """
    if (not value or any(ch not in PRINTABLE_ASCII for ch in value) or "\\" in value or not value.startswith("/")
            or value.startswith("//")):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return default
    return urlunsplit(("", "", parts.path, parts.query, parts.fragment))
