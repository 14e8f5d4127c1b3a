"""Follow-ups: ``/followups`` (open, due today, overdue, resolved), resolve and assign."""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import sqlalchemy as sa
from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy.ext.asyncio import AsyncEngine

from server.keys import DB, IDENTITIES, RECORDS, SETTINGS
from server.records import seals as sealing
from server.records.db import MAX_ID, calls, followups, matters, users
from server.records.identities import Clerk
from server.settings import Settings
from server.web.auth import require_role
from server.web.i18n import translations
from server.web.pages import (
    FOLLOWUP_KINDS,
    FOLLOWUP_TABS,
    PAGE_SIZE,
    _page,
    _user,
    fmt_time,
    local_today,
    render,
)

# ---------------------------------------------------------------- follow-ups


@dataclass
class FollowupQuery:
    tab: str = "open"
    district: str = ""
    field: str = ""
    page: int = 1

    def params(self, page: int | None = None, tab: str | None = None) -> str:
        items = {"tab": tab or self.tab, "district": self.district, "field": self.field,
                 "page": str(page if page is not None else self.page)}
        return urlencode({k: v for k, v in items.items() if v and not (k == "page" and v == "1")})


def parse_followup_query(query: Mapping[str, str], settings: Settings) -> FollowupQuery:
    tab = query.get("tab", "open")
    district = query.get("district", "")
    field_id = query.get("field", "")
    return FollowupQuery(tab=tab if tab in FOLLOWUP_TABS else "open",
                         district=district if district in settings.regions else "",
                         field=field_id if field_id in settings.catalog else "", page=_page(query.get("page")))


def followup_scope(user: Clerk) -> list[sa.ColumnElement[bool]]:
    """A clerk sees follow-ups assigned to them and those from their own calls; an administrator all."""
    if user.is_admin:
        return []
    own_calls = sa.select(calls.c.id).where(calls.c.clerk_id == user.id)
    return [sa.or_(followups.c.assignee == user.id, followups.c.call_id.in_(own_calls))]


def tab_condition(tab: str, today: dt.date) -> sa.ColumnElement[bool]:
    day = today.isoformat()
    is_open = followups.c.status == "open"
    match tab:
        case "open":
            return is_open
        case "due_today":
            return sa.and_(is_open, followups.c.due_date == day)
        case "overdue":
            return sa.and_(is_open, followups.c.due_date < day)
        case "resolved":
            return followups.c.status == "resolved"
    return sa.true()


def _count_if(cond: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(sa.case((cond, 1), else_=0)), 0)


async def followup_overview(engine: AsyncEngine, user: Clerk, q: FollowupQuery, today: dt.date) -> dict[str, Any]:
    scope = followup_scope(user)
    filters = [*scope]
    if q.district:
        filters.append(followups.c.district == q.district)
    if q.field:
        filters.append(followups.c.field == q.field)
    tabs = [k for k in FOLLOWUP_TABS if k != "all"]
    counters = [_count_if(tab_condition(t, today)).label(t) for t in tabs]
    cond = tab_condition(q.tab, today)
    # what it is about: the matter's type, entity and credit code beside the notes
    rows_q = (sa.select(followups, calls.c.clerk_id.label("call_clerk_id"), users.c.name.label("assignee_name"),
                        matters.c.matter_type, matters.c.entity_name, matters.c.credit_code)
              .select_from(followups.outerjoin(calls, calls.c.id == followups.c.call_id)
                           .outerjoin(users, users.c.id == followups.c.assignee)
                           .outerjoin(matters, matters.c.id == followups.c.matter_id))
              .where(*filters, cond)
              .order_by(followups.c.due_date.desc() if q.tab == "resolved" else followups.c.due_date, followups.c.id)
              .limit(PAGE_SIZE).offset((q.page - 1) * PAGE_SIZE))
    async with engine.connect() as conn:
        counts = dict((await conn.execute(sa.select(*counters).where(*filters))).one()._mapping)
        total = int((await conn.execute(sa.select(sa.func.count()).select_from(followups)
                                        .where(*filters, cond))).scalar_one())
        rows = [dict(r._mapping) for r in await conn.execute(rows_q)]
        summary = [dict(r._mapping) for r in await conn.execute(
            sa.select(followups.c.district, followups.c.field, *counters).where(*scope)
            .group_by(followups.c.district, followups.c.field)
            .order_by(followups.c.district, followups.c.field))]
    counts["all"] = sum(int(counts[t]) for t in ("open", "resolved"))
    return {"counts": {k: int(v) for k, v in counts.items()}, "total": total, "rows": rows, "summary": summary}


def _already_resolved(request: web.Request, followup_id: int) -> str:
    return translations(request).gettext("Follow-up %(id)s is already resolved.") % {"id": followup_id}


async def _followups_response(request: web.Request, q: FollowupQuery, error: str = "", status: int = 200,
                              error_id: int | None = None) -> web.Response:
    settings = request.app[SETTINGS]
    user = _user(request)
    today = local_today(settings)
    data = await followup_overview(request.app[DB], user, q, today)
    pages = max(1, -(-data["total"] // PAGE_SIZE))
    clerks = [c for c in await request.app[IDENTITIES].clerks() if not c.revoked] if user.is_admin else []
    return render("followups.html", request, {
        **data, "q": q, "today": today.isoformat(), "tabs": FOLLOWUP_TABS, "kinds": FOLLOWUP_KINDS,
        "clerks": clerks, "error": error, "error_id": error_id, "back": q.params(),
        "fmt_time": functools.partial(fmt_time, tz=settings.tz),
        "tab_url": lambda tab: f"/followups?{q.params(page=1, tab=tab)}",
        "prev_url": f"/followups?{q.params(q.page - 1)}" if q.page > 1 else None,
        "next_url": f"/followups?{q.params(q.page + 1)}" if q.page < pages else None, "pages": pages,
    }, status=status)


@require_role("clerk", "admin")
async def followups_page(request: web.Request) -> web.StreamResponse:
    return await _followups_response(request, parse_followup_query(request.query, request.app[SETTINGS]))


def _back(form: MultiDictProxy[Any], settings: Settings) -> FollowupQuery:
    """The list the form was sent from (a query string in the hidden field ``back``)."""
    return parse_followup_query(dict(parse_qsl(str(form.get("back", "")))), settings)


async def _followup_row(request: web.Request) -> sa.RowMapping:
    try:
        fid = int(request.match_info["id"])
        if not 0 < fid <= MAX_ID:
            raise ValueError(fid)
    except ValueError:
        raise web.HTTPNotFound(text="no such follow-up") from None
    async with request.app[DB].connect() as conn:
        row = (await conn.execute(sa.select(followups, calls.c.clerk_id.label("call_clerk_id"))
                                  .select_from(followups.outerjoin(calls, calls.c.id == followups.c.call_id))
                                  .where(followups.c.id == fid))).first()
    if row is None:
        raise web.HTTPNotFound(text=f"no follow-up {fid}")
    return row._mapping


@require_role("clerk", "admin")
async def resolve_followup(request: web.Request) -> web.StreamResponse:
    user = _user(request)
    settings = request.app[SETTINGS]
    row = await _followup_row(request)
    if not user.is_admin and user.id not in (row["assignee"], row["call_clerk_id"]):
        raise web.HTTPForbidden(text="this follow-up is neither assigned to you nor from one of your calls")
    form = await request.post()
    back = _back(form, settings)
    note = str(form.get("note", "")).strip()
    if not note:
        return await _followups_response(request, back, translations(request).gettext(
            "Say how it was resolved: the note is required."), 400, row["id"])
    if row["status"] != "open":
        return await _followups_response(request, back, _already_resolved(request, row["id"]), 409)
    now = time.time()
    on_time = dt.datetime.fromtimestamp(now, settings.tz).date().isoformat() <= row["due_date"]
    async with request.app[DB].begin() as conn:
        resolved = await sealing.update(conn, followups, row["id"], {
            "status": "resolved", "resolved_at": now, "resolved_by": user.id, "resolution_note": note[:4000]},
            followups.c.status == "open")
        if resolved is None:
            raise web.HTTPConflict(text=f"follow-up {row['id']} was resolved meanwhile")
        # the note itself stays in the follow-up row (its salted seal goes in the log): free text is kept out of
        # the permanent log
        await request.app[RECORDS].append(
            conn, "followup_resolved", actor=f"user:{user.id}", call_id=row["call_id"], case_id=row["case_id"],
            field=row["field"], region=row["region"], at=now, seals=sealing.seal(followups, resolved),
            data={"followup_id": row["id"], "due_date": row["due_date"], "on_time": on_time, "by": user.name})
    raise web.HTTPSeeOther(f"/followups?{back.params()}")


@require_role("admin")
async def assign_followup(request: web.Request) -> web.StreamResponse:
    user = _user(request)
    settings = request.app[SETTINGS]
    row = await _followup_row(request)
    form = await request.post()
    back = _back(form, settings)
    assignee = str(form.get("assignee", "")).strip()
    clerk = await request.app[IDENTITIES].user(assignee) if assignee else None
    if clerk is None or clerk.revoked or clerk.role != "clerk":
        return await _followups_response(request, back,
                                         translations(request).gettext("Choose an active clerk to assign it to."),
                                         400, row["id"])
    if row["status"] != "open":
        return await _followups_response(request, back, _already_resolved(request, row["id"]), 409)
    async with request.app[DB].begin() as conn:
        assigned = await sealing.update(conn, followups, row["id"], {"assignee": clerk.id})
        await request.app[RECORDS].append(
            conn, "followup_assigned", actor=f"user:{user.id}", call_id=row["call_id"], case_id=row["case_id"],
            field=row["field"], region=row["region"], seals=sealing.seal(followups, assigned) if assigned else None,
            data={"followup_id": row["id"], "assignee": clerk.id, "assignee_name": clerk.name,
                  "previous": row["assignee"], "by": user.name})
    raise web.HTTPSeeOther(f"/followups?{back.params()}")
