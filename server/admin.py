"""The administrator's pages (and the clerk's review pages).

* ``/admin``: the live board (queues, clerks, calls in progress), refreshed by
  ``admin.js`` from ``/admin/api/live`` every 2 seconds;
* ``/sessions`` and ``/sessions/{call_id}``: search past calls and open one with its
  case, timeline, matters, rating and hash-chain status. A clerk sees only their own
  calls; every opening of a call is itself logged as a ``viewed`` event;
* ``/followups``: open, due today, overdue and resolved follow-ups; resolve and assign;
* ``/stats``: figures against the 15-minute promise (see :mod:`server.stats`), charts,
  CSV exports (:mod:`server.exports`);
* ``/admin/clerks`` and ``/admin/kiosks``: manage clerks and kiosk devices.

Every change made here is logged in the hash-chained event log, in the same
transaction as the change where there is a row to change.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import sqlalchemy as sa
from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy.ext.asyncio import AsyncEngine

from server import exports, stats
from server.auth import current_user, require_role
from server.db import calls, followups, kiosks, matters, ratings, users
from server.identities import Clerk
from server.keys import DB, IDENTITIES, RECORDS, SETTINGS, SWITCHBOARD
from server.settings import Settings

PAGE_SIZE = 50
LIVE_POLL_MS = 2000
OUTCOMES = {"completed": "已办结 completed", "referred": "已转办 referred", "yet_to_do": "待办 yet to do",
            "none": "无事项 no matter logged"}
END_REASONS = {"hangup": "正常结束 hung up", "cancelled": "排队放弃 gave up waiting",
               "visitor_disconnected": "访客断线 visitor disconnected",
               "clerk_disconnected": "坐席断线 clerk disconnected", "transferred": "转办 transferred"}
SCORES = {"satisfied": "满意 satisfied", "neutral": "一般 neutral", "dissatisfied": "不满意 dissatisfied"}
FOLLOWUP_TABS = {"open": "未办结 open", "due_today": "今日到期 due today", "overdue": "已逾期 overdue",
                 "resolved": "已办结 resolved", "all": "全部 all"}
STATES = {"available": "空闲 available", "away": "离开 away", "ringing": "振铃 ringing", "busy": "通话 busy",
          "wrap_up": "整理 wrap-up", "queued": "排队 queued", "connecting": "接通中 connecting",
          "active": "通话中 active"}
FOLLOWUP_KINDS = {"simple": "简单 simple", "general": "一般 general (3 days)", "complex": "复杂 complex (7 days)"}

View = Callable[[web.Request], Awaitable[web.StreamResponse]]


# ---------------------------------------------------------------- names and formats


def district_depth(settings: Settings) -> int:
    """The depth of districts in the region tree (as the routing engine counts them)."""
    return min(2, len(settings.regions.levels))


@dataclass(frozen=True)
class Labels:
    """Bilingual display names of fields, regions and clerks."""

    settings: Settings

    def field(self, field_id: str) -> str:
        if field_id not in self.settings.catalog:
            return field_id
        f = self.settings.catalog.get(field_id)
        return f"{f.name('zh')} {f.name('en')}" if f.name("zh") != f.name("en") else f.name("en")

    def matter(self, field_id: str, matter_type: str) -> str:
        if field_id in self.settings.catalog:
            for m in self.settings.catalog.get(field_id).matters:
                if m.id == matter_type:
                    return f"{m.name('zh')} {m.name('en')}"
        return matter_type

    def region(self, path: str) -> str:
        if path not in self.settings.regions:
            return path
        r = self.settings.regions.get(path)
        return f"{r.name('zh')} {r.name('en')}" if r.name("zh") != r.name("en") else r.name("en")

    def place(self, path: str) -> str:
        """A kiosk's place, from the district down: "嘉定区 / 新城科技园"."""
        if path not in self.settings.regions:
            return path
        return self.settings.regions.display(path, "zh")

    def districts(self) -> list[tuple[str, str]]:
        depth = district_depth(self.settings)
        return [(p, self.region(p)) for p, r in self.settings.regions.regions.items() if r.level == depth]

    def fields(self) -> list[tuple[str, str]]:
        return [(f.id, self.field(f.id)) for f in self.settings.catalog]

    def regions(self) -> list[tuple[str, str, int]]:
        """Every region (path, name, level), parents before children."""
        tree = self.settings.regions
        out: list[tuple[str, str, int]] = []

        def walk(path: str) -> None:
            out.append((path, self.region(path), tree.get(path).level))
            for child in tree.children(path):
                walk(child)

        for path, r in tree.regions.items():
            if r.level == 1:
                walk(path)
        return out


def fmt_time(ts: float | None, tz: ZoneInfo) -> str:
    if ts is None:
        return "–"
    return dt.datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(seconds: float | None) -> str:
    """m:ss, or h:mm:ss from an hour on; "–" for none."""
    if seconds is None:
        return "–"
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def fmt_share(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def fmt_value(value: object) -> str:
    """An event's data value for people: true/false, "–" for none, JSON for lists and mappings."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def local_today(settings: Settings) -> dt.date:
    return dt.datetime.now(settings.tz).date()


def render(template: str, request: web.Request, context: Mapping[str, Any], status: int = 200) -> web.Response:
    ctx = {"labels": Labels(request.app[SETTINGS]), "target_s": stats.TARGET_WAIT_S, **context}
    response: web.Response = aiohttp_jinja2.render_template(template, request, ctx, status=status)
    return response


def _user(request: web.Request) -> Clerk:
    user = current_user(request)
    assert user is not None  # guaranteed by require_role
    return user


def api_role(*roles: str) -> Callable[[View], View]:
    """Like :func:`server.auth.require_role` for JSON endpoints: 401 without a session, 403 for other roles."""

    def wrap(view: View) -> View:
        @functools.wraps(view)
        async def guarded(request: web.Request) -> web.StreamResponse:
            user = current_user(request)
            if user is None:
                raise web.HTTPUnauthorized(text='{"error": "log in first"}', content_type="application/json")
            if roles and user.role not in roles:
                raise web.HTTPForbidden(text='{"error": "your role may not use this"}', content_type="application/json")
            return await view(request)

        return guarded

    return wrap


async def admin_action(request: web.Request, action: str, **data: Any) -> None:
    """Log a management action (never a token or password) in the event log."""
    user = _user(request)
    await request.app[RECORDS].log("admin_action", actor=f"user:{user.id}",
                                   data={"action": action, "by": user.name, **data})


# ---------------------------------------------------------------- live board


async def live_payload(app: web.Application) -> dict[str, Any]:
    settings = app[SETTINGS]
    labels = Labels(settings)
    snap = app[SWITCHBOARD].snapshot()
    for q in snap["queues"]:
        q["field_name"] = labels.field(q["field"])
        q["district_name"] = labels.region(q["district"])
        q["over_target"] = q["longest_wait_s"] > stats.TARGET_WAIT_S
    for c in snap["calls"]:
        c["field_name"] = labels.field(c["field"])
        c["region_name"] = labels.place(c["region"])
    for k in snap["clerks"]:
        k["field_names"] = [labels.field(f) for f in k["fields"]]
    today = local_today(settings)
    report = await stats.load_stats(app[DB], stats.Period(today, today), settings.tz)
    t = report.total
    snap["today"] = {
        "date": today.isoformat(), "calls": t.calls, "answered": t.answered, "abandoned": t.abandoned,
        "avg_wait": fmt_duration(t.avg_wait_s), "p90_wait": fmt_duration(t.p90_wait_s),
        "within_target": fmt_share(t.within_target_share), "avg_wait_ok": t.avg_wait_ok,
    }
    snap["target_s"] = stats.TARGET_WAIT_S
    snap["updated"] = dt.datetime.now(settings.tz).strftime("%H:%M:%S")
    return snap


@require_role("admin")
async def board(request: web.Request) -> web.StreamResponse:
    return render("admin_board.html", request, {"live": await live_payload(request.app), "poll_ms": LIVE_POLL_MS,
                                                "fmt_duration": fmt_duration, "states": STATES})


@api_role("admin")
async def live_api(request: web.Request) -> web.StreamResponse:
    return web.json_response(await live_payload(request.app), headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------- sessions


@dataclass
class SessionQuery:
    start: dt.date | None = None
    end: dt.date | None = None
    district: str = ""
    field: str = ""
    clerk: str = ""
    outcome: str = ""
    min_wait: float | None = None  # minutes
    page: int = 1
    problems: list[str] = dataclasses.field(default_factory=list)

    def params(self, page: int | None = None) -> str:
        items = {"from": self.start.isoformat() if self.start else "", "to": self.end.isoformat() if self.end else "",
                 "district": self.district, "field": self.field, "clerk": self.clerk, "outcome": self.outcome,
                 "min_wait": "" if self.min_wait is None else f"{self.min_wait:g}",
                 "page": str(page if page is not None else self.page)}
        return urlencode({k: v for k, v in items.items() if v and not (k == "page" and v == "1")})


def _page(value: str | None) -> int:
    try:
        return max(1, int(value or "1"))
    except ValueError:
        return 1


def parse_session_query(query: Mapping[str, str], settings: Settings) -> SessionQuery:
    q = SessionQuery(page=_page(query.get("page")))
    for name, attr in (("from", "start"), ("to", "end")):
        try:
            setattr(q, attr, stats.parse_date(query.get(name)))
        except ValueError as exc:
            q.problems.append(f"{name}: {exc}")
    district = query.get("district", "").strip()
    if district:
        if district in settings.regions:
            q.district = district
        else:
            q.problems.append(f"district: unknown region {district!r}")
    field_id = query.get("field", "").strip()
    if field_id:
        if field_id in settings.catalog:
            q.field = field_id
        else:
            q.problems.append(f"field: unknown service field {field_id!r}")
    q.clerk = query.get("clerk", "").strip()
    outcome = query.get("outcome", "").strip()
    if outcome:
        if outcome in OUTCOMES:
            q.outcome = outcome
        else:
            q.problems.append(f"outcome: must be one of {', '.join(OUTCOMES)}")
    min_wait = query.get("min_wait", "").strip()
    if min_wait:
        try:
            q.min_wait = float(min_wait)
            if q.min_wait < 0:
                raise ValueError
        except ValueError:
            q.min_wait = None
            q.problems.append("wait over: give a number of minutes, 0 or more")
    return q


def waited_expr() -> sa.ColumnElement[Any]:
    """Seconds a call waited: until it was answered, or until the visitor gave up."""
    return sa.func.coalesce(calls.c.answered_at, calls.c.ended_at) - calls.c.requested_at


def session_conditions(q: SessionQuery, tz: ZoneInfo, only_clerk: str | None) -> list[sa.ColumnElement[bool]]:
    conds: list[sa.ColumnElement[bool]] = []
    if only_clerk is not None:
        conds.append(calls.c.clerk_id == only_clerk)
    if q.start is not None:
        conds.append(calls.c.requested_at >= stats.Period(q.start, q.start).bounds(tz)[0])
    if q.end is not None:
        conds.append(calls.c.requested_at < stats.Period(q.end, q.end).bounds(tz)[1])
    if q.district:
        conds.append(calls.c.district == q.district)
    if q.field:
        conds.append(calls.c.field == q.field)
    if q.clerk:
        conds.append(calls.c.clerk_id == q.clerk)
    if q.outcome == "none":
        conds.append(~sa.exists().where(matters.c.call_id == calls.c.id))
    elif q.outcome:
        conds.append(sa.exists().where(matters.c.call_id == calls.c.id, matters.c.outcome == q.outcome))
    if q.min_wait is not None:
        conds.append(waited_expr() > q.min_wait * 60)
    return conds


async def search_sessions(engine: AsyncEngine, q: SessionQuery, tz: ZoneInfo, only_clerk: str | None,
                          page_size: int = PAGE_SIZE) -> tuple[int, list[dict[str, Any]]]:
    """The number of matching calls and the rows of page ``q.page``, newest first."""
    conds = session_conditions(q, tz, only_clerk)
    count_q = sa.select(sa.func.count()).select_from(calls).where(*conds)
    rows_q = (sa.select(calls, users.c.name.label("clerk_name"), ratings.c.score)
              .select_from(calls.outerjoin(users, users.c.id == calls.c.clerk_id)
                           .outerjoin(ratings, ratings.c.call_id == calls.c.id))
              .where(*conds).order_by(calls.c.requested_at.desc(), calls.c.id)
              .limit(page_size).offset((q.page - 1) * page_size))
    async with engine.connect() as conn:
        total = int((await conn.execute(count_q)).scalar_one())
        rows = [dict(r._mapping) for r in await conn.execute(rows_q)]
        ids = [r["id"] for r in rows]
        outcomes: dict[str, list[str]] = {}
        if ids:
            for m in await conn.execute(sa.select(matters.c.call_id, matters.c.outcome)
                                        .where(matters.c.call_id.in_(ids)).order_by(matters.c.id)):
                outcomes.setdefault(m.call_id, []).append(m.outcome)
    for r in rows:
        r["outcomes"] = outcomes.get(r["id"], [])
        r["wait_s"] = None if r["answered_at"] is None else r["answered_at"] - r["requested_at"]
        r["abandoned"] = r["answered_at"] is None and r["ended_at"] is not None
        r["waited_s"] = (None if r["answered_at"] is None and r["ended_at"] is None
                         else (r["answered_at"] or r["ended_at"]) - r["requested_at"])
        r["handling_s"] = (None if r["answered_at"] is None or r["ended_at"] is None
                           else r["ended_at"] - r["answered_at"])
    return total, rows


@require_role("clerk", "admin")
async def sessions_page(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    user = _user(request)
    q = parse_session_query(request.query, settings)
    only = None if user.is_admin else user.id
    if only is not None:
        q.clerk = ""  # a clerk's search is always over their own calls
    total, rows = await search_sessions(request.app[DB], q, settings.tz, only)
    pages = max(1, -(-total // PAGE_SIZE))
    clerks = await request.app[IDENTITIES].clerks() if user.is_admin else []
    return render("sessions.html", request, {
        "q": q, "rows": rows, "total": total, "pages": pages, "clerks": clerks, "outcomes": OUTCOMES,
        "end_reasons": END_REASONS, "scores": SCORES, "fmt_time": functools.partial(fmt_time, tz=settings.tz),
        "fmt_duration": fmt_duration,
        "prev_url": f"/sessions?{q.params(q.page - 1)}" if q.page > 1 else None,
        "next_url": f"/sessions?{q.params(q.page + 1)}" if q.page < pages else None,
    })


async def _actor_names(engine: AsyncEngine, timeline: list[dict[str, Any]]) -> dict[str, str]:
    """Display names for the actors of a timeline ("clerk:c-1" -> "Wang Min")."""
    user_ids, kiosk_ids = set(), set()
    for e in timeline:
        kind, _, ident = str(e["actor"]).partition(":")
        if kind in ("clerk", "user"):
            user_ids.add(ident)
        elif kind == "kiosk":
            kiosk_ids.add(ident)
    names: dict[str, str] = {}
    async with engine.connect() as conn:
        if user_ids:
            for r in await conn.execute(sa.select(users.c.id, users.c.name).where(users.c.id.in_(user_ids))):
                names[f"clerk:{r.id}"] = names[f"user:{r.id}"] = r.name
        if kiosk_ids:
            for r in await conn.execute(sa.select(kiosks.c.id, kiosks.c.name).where(kiosks.c.id.in_(kiosk_ids))):
                names[f"kiosk:{r.id}"] = r.name
    return names


@require_role("clerk", "admin")
async def session_detail(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    records = request.app[RECORDS]
    engine = request.app[DB]
    user = _user(request)
    call_id = request.match_info["call_id"]
    call = await records.call(call_id)
    if call is None:
        raise web.HTTPNotFound(text=f"no call {call_id} on record")
    if not user.is_admin and call["clerk_id"] != user.id:
        raise web.HTTPForbidden(text="this call was not yours: a clerk may open only their own calls")
    await records.call_event(call_id, "viewed", f"user:{user.id}", {"name": user.name})
    timeline = await records.timeline(call_id)
    chain = await records.verify_call(call_id)
    async with engine.connect() as conn:
        case_calls = [dict(r._mapping) for r in await conn.execute(
            sa.select(calls.c.id, calls.c.field, calls.c.requested_at, calls.c.clerk_id, calls.c.end_reason,
                      calls.c.transferred_from, users.c.name.label("clerk_name"))
            .select_from(calls.outerjoin(users, users.c.id == calls.c.clerk_id))
            .where(calls.c.case_id == call["case_id"]).order_by(calls.c.requested_at, calls.c.id))]
        call_matters = [dict(r._mapping) for r in await conn.execute(
            matters.select().where(matters.c.call_id == call_id).order_by(matters.c.id))]
        call_followups = {r.matter_id: dict(r._mapping) for r in await conn.execute(
            followups.select().where(followups.c.call_id == call_id))}
        rating = (await conn.execute(ratings.select().where(ratings.c.call_id == call_id))).first()
        kiosk = (await conn.execute(sa.select(kiosks.c.name).where(kiosks.c.id == call["kiosk_id"]))).scalar()
        clerk_name = (await conn.execute(sa.select(users.c.name).where(users.c.id == call["clerk_id"]))).scalar()
    call["wait_s"] = None if call["answered_at"] is None else call["answered_at"] - call["requested_at"]
    call["handling_s"] = (None if call["answered_at"] is None or call["ended_at"] is None
                          else call["ended_at"] - call["answered_at"])
    return render("sessions_detail.html", request, {
        "call": call, "case_calls": case_calls, "timeline": timeline, "matters": call_matters,
        "followups": call_followups, "rating": dict(rating._mapping) if rating else None, "chain": chain,
        "kiosk_name": kiosk, "clerk_name": clerk_name, "actors": await _actor_names(engine, timeline),
        "outcomes": OUTCOMES, "end_reasons": END_REASONS, "scores": SCORES, "kinds": FOLLOWUP_KINDS,
        "fmt_time": functools.partial(fmt_time, tz=settings.tz), "fmt_duration": fmt_duration,
    })


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
    rows_q = (sa.select(followups, calls.c.clerk_id.label("call_clerk_id"), users.c.name.label("assignee_name"))
              .select_from(followups.outerjoin(calls, calls.c.id == followups.c.call_id)
                           .outerjoin(users, users.c.id == followups.c.assignee))
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
        return await _followups_response(request, back, "Say how it was resolved: the note is required. "
                                         "请填写办理结果。", 400, row["id"])
    if row["status"] != "open":
        return await _followups_response(request, back, f"Follow-up {row['id']} is already resolved.", 409)
    now = time.time()
    on_time = dt.datetime.fromtimestamp(now, settings.tz).date().isoformat() <= row["due_date"]
    async with request.app[DB].begin() as conn:
        res = await conn.execute(followups.update().where(followups.c.id == row["id"], followups.c.status == "open")
                                 .values(status="resolved", resolved_at=now, resolved_by=user.id,
                                         resolution_note=note[:4000]))
        if res.rowcount != 1:
            raise web.HTTPConflict(text=f"follow-up {row['id']} was resolved meanwhile")
        # the note itself stays in the follow-up row: free text is kept out of the permanent log
        await request.app[RECORDS].append(
            conn, "followup_resolved", actor=f"user:{user.id}", call_id=row["call_id"], case_id=row["case_id"],
            field=row["field"], region=row["region"], at=now,
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
        return await _followups_response(request, back, "Choose an active clerk to assign it to. 请选择在岗坐席。",
                                         400, row["id"])
    if row["status"] != "open":
        return await _followups_response(request, back, f"Follow-up {row['id']} is already resolved.", 409)
    async with request.app[DB].begin() as conn:
        await conn.execute(followups.update().where(followups.c.id == row["id"]).values(assignee=clerk.id))
        await request.app[RECORDS].append(
            conn, "followup_assigned", actor=f"user:{user.id}", call_id=row["call_id"], case_id=row["case_id"],
            field=row["field"], region=row["region"],
            data={"followup_id": row["id"], "assignee": clerk.id, "assignee_name": clerk.name,
                  "previous": row["assignee"], "by": user.name})
    raise web.HTTPSeeOther(f"/followups?{back.params()}")


# ---------------------------------------------------------------- statistics and exports


def _period(request: web.Request) -> tuple[stats.Period, list[str]]:
    settings = request.app[SETTINGS]
    return stats.parse_period(request.query.get("from"), request.query.get("to"), local_today(settings))


@require_role("admin")
async def stats_page(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    labels = Labels(settings)
    period, problems = _period(request)
    report = await stats.load_stats(request.app[DB], period, settings.tz)
    query = urlencode({"from": period.start.isoformat(), "to": period.end.isoformat()})
    wait_svg = stats.wait_chart_svg(report.by_district, lambda g: labels.region(g.district).split(" ")[0],
                                    report.target_s, "平均与第90百分位等待 Average and 90th-percentile wait (min)")
    calls_svg = stats.calls_chart_svg(report.by_field, lambda g: labels.field(g.field),
                                      "各领域来电 Calls per service field")
    return render("admin_stats.html", request, {
        "report": report, "period": period, "problems": problems, "query": query, "wait_svg": wait_svg,
        "calls_svg": calls_svg, "fmt_duration": fmt_duration, "fmt_share": fmt_share,
    })


async def _export(request: web.Request, what: str,
                  make: Callable[[AsyncEngine, stats.Period, ZoneInfo], Awaitable[bytes]]) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    period, problems = _period(request)
    if problems:
        raise web.HTTPBadRequest(text="; ".join(problems))
    body = await make(request.app[DB], period, settings.tz)
    await admin_action(request, "export", what=what, start=period.start.isoformat(), end=period.end.isoformat())
    return web.Response(body=body, content_type="text/csv", charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="{what}-{period.label()}.csv"', "Cache-Control": "no-store"})


@require_role("admin")
async def export_sessions(request: web.Request) -> web.StreamResponse:
    return await _export(request, "sessions", exports.sessions_csv)


@require_role("admin")
async def export_matters(request: web.Request) -> web.StreamResponse:
    return await _export(request, "matters", exports.matters_csv)


# ---------------------------------------------------------------- clerks


@dataclass
class ClerkForm:
    name: str = ""
    center: str = ""
    fields: list[str] = dataclasses.field(default_factory=list)
    regions: list[str] = dataclasses.field(default_factory=list)
    languages: list[str] = dataclasses.field(default_factory=list)
    username: str = ""
    password: str = ""
    errors: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, clerk: Clerk) -> ClerkForm:
        return cls(clerk.name, clerk.center, list(clerk.fields), list(clerk.regions), list(clerk.languages),
                   clerk.username or "")


MIN_PASSWORD = 10


def parse_clerk_form(form: MultiDictProxy[Any], settings: Settings, with_login: bool) -> ClerkForm:
    """Read and check the clerk form against the catalog, the region tree and the offered languages."""
    f = ClerkForm(
        name=str(form.get("name", "")).strip(), center=str(form.get("center", "")).strip(),
        fields=[str(v) for v in form.getall("fields", [])], regions=[str(v) for v in form.getall("regions", [])],
        languages=[str(v) for v in form.getall("languages", [])],
        username=str(form.get("username", "")).strip(), password=str(form.get("password", "")),
    )
    if not f.name:
        f.errors["name"] = "A name is required. 请填写姓名。"
    elif len(f.name) > 200:
        f.errors["name"] = "At most 200 characters."
    if len(f.center) > 200:
        f.errors["center"] = "At most 200 characters."
    bad = [x for x in f.fields if x not in settings.catalog]
    if bad or not f.fields:
        f.errors["fields"] = (f"Unknown service field: {', '.join(bad)}" if bad
                              else "Choose at least one service field. 请至少选择一个业务领域。")
    bad = [x for x in f.regions if x not in settings.regions]
    if bad or not f.regions:
        f.errors["regions"] = (f"Unknown region: {', '.join(bad)}" if bad
                               else "Choose at least one region the clerk covers. 请至少选择一个区域。")
    bad = [x for x in f.languages if x not in settings.languages]
    if bad or not f.languages:
        f.errors["languages"] = (f"Unknown language: {', '.join(bad)}" if bad
                                 else "Choose at least one language. 请至少选择一种语言。")
    if with_login and (f.username or f.password):
        if not f.username:
            f.errors["username"] = "A password needs a username."
        elif len(f.username) > 100 or any(c.isspace() for c in f.username):
            f.errors["username"] = "A username has no spaces and at most 100 characters."
        if len(f.password) < MIN_PASSWORD:
            f.errors["password"] = f"A password needs at least {MIN_PASSWORD} characters."
    return f


async def _clerks_response(request: web.Request, form: ClerkForm | None = None, issued: dict[str, str] | None = None,
                           status: int = 200) -> web.Response:
    settings = request.app[SETTINGS]
    response = render("admin_clerks.html", request, {
        "clerks": await request.app[IDENTITIES].clerks(), "form": form or ClerkForm(languages=[settings.languages[0]]),
        "issued": issued, "languages": settings.languages,
    }, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _console_url(request: web.Request, path: str, token: str) -> str:
    return f"{request.url.origin()}{path}#token={token}"


@require_role("admin")
async def clerks_page(request: web.Request) -> web.StreamResponse:
    return await _clerks_response(request)


@require_role("admin")
async def add_clerk(request: web.Request) -> web.StreamResponse:
    form = parse_clerk_form(await request.post(), request.app[SETTINGS], with_login=True)
    if form.username and "username" not in form.errors:
        async with request.app[DB].connect() as conn:
            taken = (await conn.execute(sa.select(users.c.id).where(users.c.username == form.username))).first()
        if taken is not None:
            form.errors["username"] = "This username is taken. 用户名已被使用。"
    if form.errors:
        return await _clerks_response(request, form, status=400)
    try:
        clerk, token = await request.app[IDENTITIES].add_clerk(
            form.name, form.fields, form.regions, form.languages, center=form.center,
            username=form.username or None, password=form.password or None)
    except sa.exc.IntegrityError:  # the username was taken meanwhile
        form.errors["username"] = "This username is taken. 用户名已被使用。"
        return await _clerks_response(request, form, status=400)
    await admin_action(request, "clerk_added", clerk_id=clerk.id, name=clerk.name, center=clerk.center,
                       fields=form.fields, regions=form.regions, languages=form.languages,
                       username=form.username or None)
    return await _clerks_response(request, issued={
        "kind": "clerk", "id": clerk.id, "name": clerk.name, "token": token,
        "url": _console_url(request, "/clerk", token)})


async def _clerk(request: web.Request) -> Clerk:
    clerk = await request.app[IDENTITIES].user(request.match_info["id"])
    if clerk is None or clerk.role != "clerk":
        raise web.HTTPNotFound(text="no such clerk")
    return clerk


def _edit_response(request: web.Request, clerk: Clerk, form: ClerkForm, status: int = 200) -> web.Response:
    return render("admin_clerk_edit.html", request, {"clerk": clerk, "form": form,
                                                     "languages": request.app[SETTINGS].languages}, status=status)


@require_role("admin")
async def clerk_page(request: web.Request) -> web.StreamResponse:
    clerk = await _clerk(request)
    return _edit_response(request, clerk, ClerkForm.of(clerk))


@require_role("admin")
async def edit_clerk(request: web.Request) -> web.StreamResponse:
    clerk = await _clerk(request)
    form = parse_clerk_form(await request.post(), request.app[SETTINGS], with_login=False)
    form.username = clerk.username or ""
    if form.password and len(form.password) < MIN_PASSWORD:
        form.errors["password"] = f"A password needs at least {MIN_PASSWORD} characters."
    if form.password and not clerk.username:
        form.errors["password"] = "This clerk has no username to log in with; add them again with one."
    if form.errors:
        return _edit_response(request, clerk, form, 400)
    identities = request.app[IDENTITIES]
    await identities.update_clerk(clerk.id, name=form.name, center=form.center, fields=form.fields,
                                  regions=form.regions, languages=form.languages)
    if form.password:
        await identities.set_password(clerk.id, form.password)
    await admin_action(request, "clerk_changed", clerk_id=clerk.id, name=form.name, center=form.center,
                       fields=form.fields, regions=form.regions, languages=form.languages,
                       password_changed=bool(form.password))
    raise web.HTTPSeeOther("/admin/clerks")


@require_role("admin")
async def revoke_clerk(request: web.Request) -> web.StreamResponse:
    clerk = await _clerk(request)
    if await request.app[IDENTITIES].revoke(clerk.id):
        await admin_action(request, "clerk_revoked", clerk_id=clerk.id, name=clerk.name)
    raise web.HTTPSeeOther("/admin/clerks")


@require_role("admin")
async def clerk_token(request: web.Request) -> web.StreamResponse:
    clerk = await _clerk(request)
    token = await request.app[IDENTITIES].new_token_for(clerk.id)
    if token is None:
        raise web.HTTPConflict(text="this clerk is revoked; add them again instead")
    await admin_action(request, "clerk_token_issued", clerk_id=clerk.id, name=clerk.name)
    return await _clerks_response(request, issued={
        "kind": "clerk", "id": clerk.id, "name": clerk.name, "token": token,
        "url": _console_url(request, "/clerk", token)})


# ---------------------------------------------------------------- kiosks


async def _kiosks_response(request: web.Request, form: Mapping[str, str] | None = None,
                           errors: Mapping[str, str] | None = None, issued: dict[str, str] | None = None,
                           status: int = 200) -> web.Response:
    response = render("admin_kiosks.html", request, {
        "kiosks": await request.app[IDENTITIES].kiosks(), "form": form or {"name": "", "region": ""},
        "errors": errors or {}, "issued": issued,
    }, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


@require_role("admin")
async def kiosks_page(request: web.Request) -> web.StreamResponse:
    return await _kiosks_response(request)


@require_role("admin")
async def add_kiosk(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    data = await request.post()
    form = {"name": str(data.get("name", "")).strip(), "region": str(data.get("region", "")).strip()}
    errors = {}
    if not form["name"] or len(form["name"]) > 200:
        errors["name"] = "Give the kiosk a name (at most 200 characters). 请填写名称。"
    if form["region"] not in settings.regions:
        errors["region"] = "Choose the region the kiosk stands in. 请选择所在区域。"
    if errors:
        return await _kiosks_response(request, form, errors, status=400)
    kiosk, token = await request.app[IDENTITIES].add_kiosk(form["name"], form["region"])
    await admin_action(request, "kiosk_added", kiosk_id=kiosk.id, name=kiosk.name, region=kiosk.region)
    return await _kiosks_response(request, issued={
        "kind": "kiosk", "id": kiosk.id, "name": kiosk.name, "token": token,
        "url": _console_url(request, "/kiosk", token)})


@require_role("admin")
async def revoke_kiosk(request: web.Request) -> web.StreamResponse:
    identities = request.app[IDENTITIES]
    kiosk = await identities.kiosk(request.match_info["id"])
    if kiosk is None:
        raise web.HTTPNotFound(text="no such kiosk")
    if await identities.revoke(kiosk.id):
        await admin_action(request, "kiosk_revoked", kiosk_id=kiosk.id, name=kiosk.name)
    raise web.HTTPSeeOther("/admin/kiosks")


# ---------------------------------------------------------------- routes


def setup_routes(app: web.Application) -> None:
    settings = app[SETTINGS]
    env = aiohttp_jinja2.get_env(app)
    env.filters["vw_time"] = functools.partial(fmt_time, tz=settings.tz)
    env.filters["vw_duration"] = fmt_duration
    env.filters["vw_share"] = fmt_share
    env.filters["vw_value"] = fmt_value
    r = app.router
    r.add_get("/admin", board, name="admin")
    r.add_get("/admin/api/live", live_api, name="admin_live")
    r.add_get("/sessions", sessions_page, name="sessions")
    r.add_get("/sessions/{call_id}", session_detail, name="session")
    r.add_get("/followups", followups_page, name="followups")
    r.add_post("/followups/{id}/resolve", resolve_followup)
    r.add_post("/followups/{id}/assign", assign_followup)
    r.add_get("/stats", stats_page, name="stats")
    r.add_get("/stats/export/sessions.csv", export_sessions)
    r.add_get("/stats/export/matters.csv", export_matters)
    r.add_get("/admin/clerks", clerks_page, name="admin_clerks")
    r.add_post("/admin/clerks", add_clerk)
    r.add_get("/admin/clerks/{id}", clerk_page)
    r.add_post("/admin/clerks/{id}", edit_clerk)
    r.add_post("/admin/clerks/{id}/revoke", revoke_clerk)
    r.add_post("/admin/clerks/{id}/token", clerk_token)
    r.add_get("/admin/kiosks", kiosks_page, name="admin_kiosks")
    r.add_post("/admin/kiosks", add_kiosk)
    r.add_post("/admin/kiosks/{id}/revoke", revoke_kiosk)
