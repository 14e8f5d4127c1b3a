"""The administrator's pages (and the clerk's review pages).

* ``/admin``: the live board (queues, clerks, calls in progress), refreshed by
  ``admin.js`` from ``/admin/api/live`` every 2 seconds;
* ``/sessions`` and ``/sessions/{call_id}``: search past calls and open one with its
  case, timeline, matters, rating and hash-chain status. A clerk sees only their own
  calls; every opening of a call is itself logged as a ``viewed`` event;
* ``/followups``: open, due today, overdue and resolved follow-ups; resolve and assign;
* ``/stats``: figures against the 15-minute promise (see :mod:`server.web.stats`), charts,
  CSV exports (:mod:`server.web.exports`);
* ``/admin/clerks`` and ``/admin/kiosks``: manage clerks and kiosk devices.

Every change made here is logged in the hash-chained event log, in the same
transaction as the change where there is a row to change.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from server.keys import DB, ROUTER, SETTINGS
from server.live import liveboard
from server.web import exports, stats
from server.web.auth import require_role
from server.web.followups import assign_followup, followups_page, resolve_followup
from server.web.i18n import translations
from server.web.management import (
    add_clerk,
    add_kiosk,
    clerk_page,
    clerk_token,
    clerks_page,
    edit_clerk,
    kiosks_page,
    revoke_clerk,
    revoke_kiosk,
)
from server.web.pages import (
    LIVE_POLL_MS,
    STATES,
    Labels,
    admin_action,
    api_role,
    fmt_duration,
    fmt_share,
    fmt_time,
    fmt_value,
    labels,
    local_today,
    render,
)
from server.web.sessions import session_detail, sessions_page

# ---------------------------------------------------------------- live board


async def live_payload(app: web.Application, names: Labels) -> dict[str, Any]:
    """The live board's figures, with names in the language of ``names``."""
    settings = app[SETTINGS]
    snap = liveboard.snapshot(app[ROUTER])
    for q in snap["queues"]:
        q["field_name"] = names.field(q["field"])
        q["district_name"] = names.region(q["district"])
        q["over_target"] = q["longest_wait_s"] > stats.TARGET_WAIT_S
    for c in snap["calls"]:
        c["field_name"] = names.field(c["field"])
        c["region_name"] = names.place(c["region"])
    for k in snap["clerks"]:
        k["field_names"] = [names.field(f) for f in k["fields"]]
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
    live = await live_payload(request.app, labels(request))
    return render("admin_board.html", request, {"live": live, "poll_ms": LIVE_POLL_MS,
                                                "fmt_duration": fmt_duration, "states": STATES})


@api_role("admin")
async def live_api(request: web.Request) -> web.StreamResponse:
    return web.json_response(await live_payload(request.app, labels(request)), headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------- statistics and exports


def _period(request: web.Request) -> tuple[stats.Period, list[str]]:
    settings = request.app[SETTINGS]
    return stats.parse_period(request.query.get("from"), request.query.get("to"), local_today(settings))


@require_role("admin")
async def stats_page(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    names = labels(request)
    gettext = translations(request).gettext
    period, problems = _period(request)
    report = await stats.load_stats(request.app[DB], period, settings.tz)
    query = urlencode({"from": period.start.isoformat(), "to": period.end.isoformat()})
    wait_svg = stats.wait_chart_svg(report.by_district, lambda g: names.region(g.district), report.target_s,
                                    gettext("Average and 90th-percentile wait (m:ss)"), gettext)
    calls_svg = stats.calls_chart_svg(report.by_field, lambda g: names.field(g.field),
                                      gettext("Calls per service field"), gettext)
    return render("admin_stats.html", request, {
        "report": report, "period": period, "problems": problems, "query": query, "wait_svg": wait_svg,
        "calls_svg": calls_svg, "fmt_duration": fmt_duration, "fmt_share": fmt_share,
    })


async def _export(request: web.Request, what: str,
                  make: Callable[[AsyncEngine, stats.Period, ZoneInfo, Labels], Awaitable[bytes]]
                  ) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    period, problems = _period(request)
    if problems:
        raise web.HTTPBadRequest(text="; ".join(problems))
    body = await make(request.app[DB], period, settings.tz, labels(request))
    await admin_action(request, "export", what=what, start=period.start.isoformat(), end=period.end.isoformat())
    return web.Response(body=body, content_type="text/csv", charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="{what}-{period.label()}.csv"', "Cache-Control": "no-store"})


@require_role("admin")
async def export_sessions(request: web.Request) -> web.StreamResponse:
    return await _export(request, "sessions", exports.sessions_csv)


@require_role("admin")
async def export_matters(request: web.Request) -> web.StreamResponse:
    return await _export(request, "matters", exports.matters_csv)


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
