"""CSV exports of sessions (calls) and matters for a period.

The files are UTF-8 with a byte-order mark, so spreadsheet programs (Excel in
particular) read the Chinese names right, and use CRLF line ends. Text typed by
people (entity names, notes, rating reasons) is defused against formula
injection: a cell that would start with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from server.records.db import calls, followups, matters, ratings, users
from server.web.stats import Period

BOM = "\ufeff"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

SESSION_COLUMNS = (
    "call_id", "case_id", "requested_at", "answered_at", "ended_at", "district", "region", "field", "language",
    "kiosk_id", "clerk_id", "clerk_name", "wait_s", "handling_s", "abandoned", "end_reason", "ended_by",
    "transferred_from", "matters", "rating", "rating_reason",
)
MATTER_COLUMNS = (
    "matter_id", "call_id", "case_id", "logged_at", "district", "region", "field", "matter_type", "credit_code",
    "entity_name", "outcome", "notes", "clerk_id", "clerk_name", "followup_id", "followup_kind", "due_date",
    "followup_status", "resolved_at",
)


def safe_text(value: str) -> str:
    """Text a spreadsheet will not take for a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def local_iso(ts: float | None, tz: ZoneInfo) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


async def sessions_csv(engine: AsyncEngine, period: Period, tz: ZoneInfo) -> bytes:
    lo, hi = period.bounds(tz)
    n_matters = (sa.select(sa.func.count()).where(matters.c.call_id == calls.c.id)
                 .correlate(calls).scalar_subquery())
    q = (sa.select(calls, users.c.name.label("clerk_name"), ratings.c.score, ratings.c.reason,
                   n_matters.label("n_matters"))
         .select_from(calls.outerjoin(users, users.c.id == calls.c.clerk_id)
                      .outerjoin(ratings, ratings.c.call_id == calls.c.id))
         .where(calls.c.requested_at >= lo, calls.c.requested_at < hi)
         .order_by(calls.c.requested_at, calls.c.id))
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    out = []
    for r in rows:
        m = r._mapping
        wait = None if m["answered_at"] is None else m["answered_at"] - m["requested_at"]
        handling = (None if m["answered_at"] is None or m["ended_at"] is None
                    else m["ended_at"] - m["answered_at"])
        abandoned = m["answered_at"] is None and m["ended_at"] is not None
        out.append([
            m["id"], m["case_id"], local_iso(m["requested_at"], tz), local_iso(m["answered_at"], tz),
            local_iso(m["ended_at"], tz), m["district"], m["region"], m["field"], m["language"], m["kiosk_id"],
            m["clerk_id"] or "", safe_text(m["clerk_name"] or ""), _seconds(wait), _seconds(handling),
            "yes" if abandoned else "no", m["end_reason"] or "", m["ended_by"] or "", m["transferred_from"] or "",
            m["n_matters"], m["score"] or "", safe_text(m["reason"] or ""),
        ])
    return to_csv(SESSION_COLUMNS, out)


async def matters_csv(engine: AsyncEngine, period: Period, tz: ZoneInfo) -> bytes:
    """Matters logged on the calls requested in the period, with their follow-up if any."""
    lo, hi = period.bounds(tz)
    q = (sa.select(matters, calls.c.district, calls.c.region, users.c.name.label("clerk_name"),
                   followups.c.id.label("followup_id"), followups.c.kind.label("followup_kind"),
                   followups.c.due_date, followups.c.status.label("followup_status"), followups.c.resolved_at)
         .select_from(matters.join(calls, calls.c.id == matters.c.call_id)
                      .outerjoin(users, users.c.id == matters.c.clerk_id)
                      .outerjoin(followups, followups.c.matter_id == matters.c.id))
         .where(calls.c.requested_at >= lo, calls.c.requested_at < hi)
         .order_by(matters.c.created_at, matters.c.id))
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    out = []
    for r in rows:
        m = r._mapping
        out.append([
            m["id"], m["call_id"], m["case_id"], local_iso(m["created_at"], tz), m["district"], m["region"],
            m["field"], m["matter_type"], m["credit_code"] or "", safe_text(m["entity_name"] or ""), m["outcome"],
            safe_text(m["notes"] or ""), m["clerk_id"], safe_text(m["clerk_name"] or ""),
            m["followup_id"] if m["followup_id"] is not None else "", m["followup_kind"] or "",
            m["due_date"] or "", m["followup_status"] or "", local_iso(m["resolved_at"], tz),
        ])
    return to_csv(MATTER_COLUMNS, out)
