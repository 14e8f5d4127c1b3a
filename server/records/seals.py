"""Rows bound to the hash chain: every row a page, statistic or export reads carries a seal in the log.

The tables the administrator's pages read besides the events themselves
(``calls``, ``matters``, ``followups``, ``ratings``) are written only together
with an event, in the same transaction, and that event carries a **seal** of
each row it wrote: the SHA-256 of the row's whole content as it stands after
the write (:func:`digest`). The seals are part of the event's hashed content,
so the hash chain protects them; the row is bound to the chain by hash.

:class:`RowCheck` re-derives the state of every sealed row from the chain
(the last seal of each row wins) and compares it with the tables: a row
edited behind the application's back ("altered"), one inserted without an
event ("not in the log"), one deleted ("missing") are named by table and id.

Content the permanent log must not hold in clear (a callback's phone number,
notes and resolution notes) is still covered: ``matters`` and ``followups``
rows carry a random ``salt`` that enters the digest, so the seal in the log
reveals nothing about it (and a guessable value such as a phone number cannot
be found by trying), while any change to it shows.

A column whose value is NULL is left out of the digest, so a nullable column
added by a later migration leaves earlier seals valid.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.records.db import calls, followups, matters, ratings

SEALED: dict[str, tuple[sa.Table, str]] = {
    "calls": (calls, "id"),
    "matters": (matters, "id"),
    "followups": (followups, "id"),
    "ratings": (ratings, "call_id"),
}
"""The sealed tables by name, each with its key column."""

Seals = dict[str, dict[str, str]]
"""What an event carries: ``{table: {row key (as text): digest}}``."""


def _value(v: Any) -> Any:
    return repr(v) if isinstance(v, float) else v  # floats exactly, as the chain hashes ``at``


def digest(table: sa.Table, row: Mapping[str, Any]) -> str:
    """The SHA-256 of ``row`` of ``table``: every column not NULL, as canonical JSON."""
    body = {c.name: _value(row[c.name]) for c in table.columns if row.get(c.name) is not None}
    text = json.dumps({"table": table.name, "row": body}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def seal(table: sa.Table, row: Mapping[str, Any]) -> Seals:
    """The seal of one row, to give the event that wrote it."""
    return {table.name: {str(row[SEALED[table.name][1]]): digest(table, row)}}


def merged(*parts: Seals | None) -> Seals | None:
    out: Seals = {}
    for part in parts:
        for name, rows in (part or {}).items():
            out.setdefault(name, {}).update(rows)
    return out or None


def new_salt() -> str:
    return secrets.token_hex(16)


async def insert(conn: AsyncConnection, table: sa.Table, values: Mapping[str, Any]) -> dict[str, Any]:
    """Insert one row (with a fresh salt where the table has one); return it as stored, id and defaults included."""
    values = dict(values)
    if "salt" in table.c and values.get("salt") is None:
        values["salt"] = new_salt()
    row = (await conn.execute(table.insert().values(**values).returning(*table.c))).one()
    return dict(row._mapping)


async def update(conn: AsyncConnection, table: sa.Table, key: Any, values: Mapping[str, Any],
                 *where: sa.ColumnElement[bool]) -> dict[str, Any] | None:
    """Update the row ``key`` (and ``where``); return it as it now stands, or None when no row matched."""
    col = table.c[SEALED[table.name][1]]
    row = (await conn.execute(table.update().where(col == key, *where).values(**values)
                              .returning(*table.c))).first()
    return dict(row._mapping) if row is not None else None


@dataclass(frozen=True)
class RowProblem:
    table: str
    key: str
    problem: str  # altered | not in the log | missing
    detail: str = ""

    def describe(self) -> str:
        text = f"{self.table} {self.key}: {self.problem}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass(frozen=True)
class RowsStatus:
    checked: int
    problems: tuple[RowProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        if self.ok:
            return f"rows intact: {self.checked} rows of {', '.join(SEALED)} match their seals in the log"
        lines = [f"rows: {len(self.problems)} BAD of {self.checked} rows of {', '.join(SEALED)}"]
        lines += [f"  {p.describe()}" for p in self.problems]
        return "\n".join(lines)


class RowCheck:
    """Collects the seals of a chain walk (:meth:`visit`), then checks the tables against them (:meth:`check`).

    Other writers may go on while the tables are read. A row changed after the walk has the seal of its
    change in an event appended after it (written in one transaction with the row), so a row that differs
    from its last walked seal is looked up again among the seals of a second, later walk (:meth:`visit_late`):
    it passes if it matches one of those. An older seal never makes a row pass.
    """

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], tuple[str, int]] = {}  # (table, key) -> (digest, event id)
        self.late: dict[tuple[str, str], set[str]] = {}
        self.suspects: list[tuple[str, str, str, dict[str, Any] | None]] = []

    def visit(self, event: Mapping[str, Any]) -> None:
        for name, rows in (event.get("seals") or {}).items():
            for key, value in rows.items():
                self.last[(name, key)] = (value, event["id"])

    def visit_late(self, event: Mapping[str, Any]) -> None:
        for name, rows in (event.get("seals") or {}).items():
            for key, value in rows.items():
                self.late.setdefault((name, key), set()).add(value)

    async def scan(self, conn: AsyncConnection, batch: int = 5000) -> int:
        """Read every sealed table; keep the rows that do not match their last seal. Returns the rows read."""
        read = 0
        for name, (table, key_name) in SEALED.items():
            key_col = table.c[key_name]
            last_key: Any = None
            while True:
                query = table.select().order_by(key_col).limit(batch)
                if last_key is not None:
                    query = query.where(key_col > last_key)
                rows = (await conn.execute(query)).all()
                if not rows:
                    break
                for r in rows:
                    m = dict(r._mapping)
                    key = str(m[key_name])
                    read += 1
                    found = self.last.pop((name, key), None)
                    got = digest(table, m)
                    if found is None:
                        self.suspects.append((name, key, got, None))
                    elif found[0] != got:
                        self.suspects.append((name, key, got, {"event": found[1]}))
                last_key = rows[-1]._mapping[key_name]
        return read

    def result(self, read: int) -> RowsStatus:
        """After :meth:`scan` and the late walk: the rows that match no seal they may match, and the sealed rows
        that are gone."""
        problems: list[RowProblem] = []
        for name, key, got, info in self.suspects:
            if got in self.late.get((name, key), ()):
                continue
            if info is None:
                problems.append(RowProblem(name, key, "not in the log", "no event seals this row"))
            else:
                problems.append(RowProblem(name, key, "altered", f"its content does not match its seal in event "
                                           f"{info['event']}"))
        for (name, key), (_, event_id) in sorted(self.last.items(), key=lambda kv: kv[1][1]):
            problems.append(RowProblem(name, key, "missing", f"sealed by event {event_id}, the row is gone"))
        return RowsStatus(read + len(self.last), tuple(problems))


def seals_of_rows(table: sa.Table, rows: Iterable[Mapping[str, Any]]) -> Seals:
    out: Seals = {}
    for row in rows:
        for name, part in seal(table, row).items():
            out.setdefault(name, {}).update(part)
    return out
