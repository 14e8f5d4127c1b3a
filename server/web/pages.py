"""Shared helpers of the administrator's and review pages: labels, formats, rendering, guards."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from server.keys import RECORDS, SETTINGS
from server.records.identities import Clerk
from server.settings import Settings
from server.web import stats
from server.web.auth import current_user
from server.web.i18n import N_, request_language

PAGE_SIZE = 50
LIVE_POLL_MS = 2000
# Display names of codes, marked for the staff catalog and translated in the templates (``_(outcomes[code])``).
OUTCOMES = {"completed": N_("completed"), "referred": N_("referred"), "yet_to_do": N_("yet to do"),
            "none": N_("no matter logged")}
END_REASONS = {"hangup": N_("hung up"), "cancelled": N_("gave up waiting"),
               "visitor_disconnected": N_("visitor disconnected"),
               "clerk_disconnected": N_("clerk disconnected"), "transferred": N_("transferred"),
               "media_failed": N_("connection lost"), "server_restarted": N_("server restarted")}
SCORES = {"satisfied": N_("satisfied"), "neutral": N_("neutral"), "dissatisfied": N_("dissatisfied")}
FOLLOWUP_TABS = {"open": N_("open"), "due_today": N_("due today"), "overdue": N_("overdue"),
                 "resolved": N_("resolved"), "all": N_("all")}
STATES = {"available": N_("available"), "away": N_("away"), "ringing": N_("ringing"), "busy": N_("busy"),
          "wrap_up": N_("wrap-up"), "queued": N_("queued"), "connecting": N_("connecting"),
          "active": N_("active")}
FOLLOWUP_KINDS = {"simple": N_("simple"), "general": N_("general (3 days)"), "complex": N_("complex (7 days)")}

View = Callable[[web.Request], Awaitable[web.StreamResponse]]


# ---------------------------------------------------------------- names and formats


def district_depth(settings: Settings) -> int:
    """The depth of districts in the region tree (as the routing engine counts them)."""
    return min(2, len(settings.regions.levels))


@dataclass(frozen=True)
class Labels:
    """Display names of fields, regions and matter types in the page's language (from the catalogs in config/)."""

    settings: Settings
    lang: str = "zh"

    def field(self, field_id: str) -> str:
        if field_id not in self.settings.catalog:
            return field_id
        return self.settings.catalog.get(field_id).name(self.lang)

    def matter(self, field_id: str, matter_type: str) -> str:
        if field_id in self.settings.catalog:
            for m in self.settings.catalog.get(field_id).matters:
                if m.id == matter_type:
                    return m.name(self.lang)
        return matter_type

    def region(self, path: str) -> str:
        if path not in self.settings.regions:
            return path
        return self.settings.regions.get(path).name(self.lang)

    def place(self, path: str) -> str:
        """A kiosk's place, from the district down: "嘉定区 / 新城科技园"."""
        if path not in self.settings.regions:
            return path
        return self.settings.regions.display(path, self.lang)

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


def labels(request: web.Request) -> Labels:
    """The display names for this request's language."""
    return Labels(request.app[SETTINGS], request_language(request))


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
    ctx = {"labels": labels(request), "target_s": stats.TARGET_WAIT_S, **context}
    response: web.Response = aiohttp_jinja2.render_template(template, request, ctx, status=status)
    return response


def _user(request: web.Request) -> Clerk:
    user = current_user(request)
    assert user is not None  # guaranteed by require_role
    return user


def api_role(*roles: str) -> Callable[[View], View]:
    """Like :func:`server.web.auth.require_role` for JSON endpoints: 401 without a session, 403 for other roles."""

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

# A page number past this one is taken as this one (still past any real list): its OFFSET must fit the
# databases' 64-bit integers, or SQLite and PostgreSQL refuse the query.
MAX_PAGE = 1_000_000


def _page(value: str | None) -> int:
    try:
        return min(max(1, int(value or "1")), MAX_PAGE)
    except ValueError:
        return 1
