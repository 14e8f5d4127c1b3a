"""CSV exports of sessions (calls) and matters for a period.

The files are UTF-8 with a byte-order mark, so spreadsheet programs (Excel in
particular) read the Chinese names right, and use CRLF line ends. Every text
cell is defused against formula injection, not only text typed by people (call
ids are URL-safe base64 and may start with ``-``): a cell whose first character
after any leading spaces, tabs or line breaks is ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return, or their full-width forms (``＝ ＋ － ＠``), gets a
leading apostrophe. Districts, fields and matter types come with their names in
the page's language beside their ids.
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
from server.web.pages import Labels
from server.web.stats import Period

BOM = "\ufeff"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
# what a spreadsheet may skip before it reads a formula (spaces, line breaks, the ideographic space)
_LEADING = " \t\r\n\u3000\u00a0"

SESSION_COLUMNS = (
    "call_id", "case_id", "requested_at", "answered_at", "ended_at", "district", "district_name", "region",
    "region_name", "field", "field_name", "language",
    "kiosk_id", "clerk_id", "clerk_name", "wait_s", "handling_s", "abandoned", "end_reason", "ended_by",
    "transferred_from", "matters", "rating", "rating_reason",
)
MATTER_COLUMNS = (
    "matter_id", "call_id", "case_id", "logged_at", "district", "district_name", "region", "region_name", "field",
    "field_name", "matter_type", "matter_type_name", "credit_code",
    "entity_name", "outcome", "notes", "clerk_id", "clerk_name", "followup_id", "followup_kind", "due_date",
    "followup_status", "resolved_at",
)


def safe_text(value: str) -> str:
    """Text a spreadsheet will not take for a formula."""
    if value.startswith(_FORMULA_START) or value.lstrip(_LEADING).startswith(_FORMULA_START):
        return "'" + value
    return value


def _safe_cell(value: Any) -> Any:
    return safe_text(value) if isinstance(value, str) else value


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
    writer.writerows([_safe_cell(v) for v in row] for row in rows)
    return out.getvalue().encode("utf-8")


async def sessions_csv(engine: AsyncEngine, period: Period, tz: ZoneInfo, names: Labels) -> bytes:
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
            local_iso(m["ended_at"], tz), m["district"], names.region(m["district"]), m["region"],
            names.place(m["region"]), m["field"], names.field(m["field"]), m["language"], m["kiosk_id"],
            m["clerk_id"] or "", m["clerk_name"] or "", _seconds(wait), _seconds(handling),
            "yes" if abandoned else "no", m["end_reason"] or "", m["ended_by"] or "", m["transferred_from"] or "",
            m["n_matters"], m["score"] or "", m["reason"] or "",
        ])
    return to_csv(SESSION_COLUMNS, out)


async def matters_csv(engine: AsyncEngine, period: Period, tz: ZoneInfo, names: Labels) -> bytes:
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
            m["id"], m["call_id"], m["case_id"], local_iso(m["created_at"], tz), m["district"],
            names.region(m["district"]), m["region"], names.place(m["region"]), m["field"], names.field(m["field"]),
            m["matter_type"], names.matter(m["field"], m["matter_type"]), m["credit_code"] or "",
            m["entity_name"] or "", m["outcome"], m["notes"] or "", m["clerk_id"], m["clerk_name"] or "",
            m["followup_id"] if m["followup_id"] is not None else "", m["followup_kind"] or "",
            m["due_date"] or "", m["followup_status"] or "", local_iso(m["resolved_at"], tz),
        ])
    return to_csv(MATTER_COLUMNS, out)
