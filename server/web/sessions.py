"""Session search and detail: ``/sessions`` and ``/sessions/{call_id}`` (a clerk sees only their own).

The detail page lists the call's recordings and plays the visitor's and the
clerk's side by side (``client/static/playback.js`` keeps them in sync); the
files come from ``/recordings/{id}`` (:func:`play_recording`), with HTTP
range requests. Only administrators may play recordings, and the clerk of the
call when ``recording_playback_clerk`` is set. Every response that returns
bytes of a recording is logged as a ``recording_played`` event, except the
browser's further range requests of one playback (buffering, seeking), which
the page's playback id ties to the first (:mod:`server.web.playbacks`). A
request that returns no bytes (416, HEAD, an empty file) is not a playback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from sqlalchemy.ext.asyncio import AsyncEngine

from server.keys import DB, EVIDENCE, IDENTITIES, PLAYBACKS, RECORDS, SETTINGS
from server.records.db import calls, followups, kiosks, matters, ratings, users
from server.records.evidence import PARTICIPANTS, RecordingStore
from server.records.identities import Clerk
from server.settings import Settings
from server.web import stats
from server.web.auth import current_user, require_role
from server.web.i18n import N_, translations
from server.web.pages import (
    END_REASONS,
    FOLLOWUP_KINDS,
    OUTCOMES,
    PAGE_SIZE,
    SCORES,
    _page,
    _user,
    fmt_duration,
    fmt_time,
    labels,
    render,
)
from server.web.timeline import ACTOR_ROLES, describe, people_in

# ---------------------------------------------------------------- sessions

MAX_WAIT_MINUTES = 100_000  # past any real wait; a larger number (or inf, NaN) is refused with the reason


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
            if not 0 <= q.min_wait <= MAX_WAIT_MINUTES:  # NaN too
                raise ValueError
        except ValueError:
            q.min_wait = None
            q.problems.append(f"wait over: give a number of minutes from 0 to {MAX_WAIT_MINUTES}")
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
    """Display names for the actors of a timeline and the clerks its data names ("clerk:c-1" -> "Wang Min")."""
    user_ids, kiosk_ids = people_in(timeline)
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
    recs = await call_recordings(request.app[EVIDENCE], call_id)
    actors = await _actor_names(engine, timeline)
    can_play = may_play(user, call, settings)
    players = side_by_side(recs) if can_play else []
    playback = request.app[PLAYBACKS].issue(user.id, call_id) if players else ""
    return render("sessions_detail.html", request, {
        "call": call, "case_calls": case_calls, "timeline": timeline, "matters": call_matters,
        "followups": call_followups, "rating": dict(rating._mapping) if rating else None, "chain": chain,
        "kiosk_name": kiosk, "clerk_name": clerk_name, "actors": actors, "actor_roles": ACTOR_ROLES,
        "describe": functools.partial(describe, names=labels(request), people=actors,
                                      gettext=translations(request).gettext),
        "outcomes": OUTCOMES, "end_reasons": END_REASONS, "scores": SCORES, "kinds": FOLLOWUP_KINDS,
        "fmt_time": functools.partial(fmt_time, tz=settings.tz), "fmt_duration": fmt_duration,
        "recordings": recs, "players": players, "can_play": can_play, "playback": playback,
        "play_total_s": max((p["offset_s"] + p["duration_s"] for p in players), default=0.0),
        "participants": PARTICIPANT_NAMES, "fmt_size": fmt_size, "deleted_note": functools.partial(
            deleted_note, tz=settings.tz, gettext=translations(request).gettext),
    })


# ---------------------------------------------------------------- recordings

PARTICIPANT_NAMES = {"visitor": N_("Visitor"), "clerk": N_("Clerk")}  # translated where shown
PLAYBACK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def may_play(user: Clerk, call: Mapping[str, Any] | None, settings: Settings) -> bool:
    """Administrators may play every recording; the clerk of the call only if ``recording_playback_clerk``."""
    if user.is_admin:
        return True
    return settings.recording_playback_clerk and call is not None and call["clerk_id"] == user.id


def fmt_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def deleted_note(row: Mapping[str, Any], tz: ZoneInfo, gettext: Callable[[str], str]) -> str:
    return gettext("deleted on %(when)s by %(who)s (%(why)s)") % {
        "when": fmt_time(row["deleted_at"], tz), "who": row["deleted_by"] or gettext("unknown"),
        "why": row["delete_reason"] or gettext("no reason given")}


async def call_recordings(store: RecordingStore, call_id: str) -> list[dict[str, Any]]:
    """The call's recordings, each with whether its file is on disk."""
    recs = await store.for_call(call_id)

    def on_disk() -> list[bool]:
        return [r["deleted_at"] is None and store.file_of(r).is_file() for r in recs]

    for r, present in zip(recs, await asyncio.to_thread(on_disk), strict=True):
        r["on_disk"] = present
    return recs


def side_by_side(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recordings the player starts with: the first playable one of each participant, visitor first,
    each with its offset from the earlier start (the participants' recorders start a few seconds apart)."""
    chosen = []
    for participant in PARTICIPANTS:
        first = next((r for r in recs if r["participant"] == participant and r["on_disk"]), None)
        if first is not None:
            chosen.append(dict(first))
    t0 = min((r["started_at"] for r in chosen), default=0.0)
    for r in chosen:
        r["offset_s"] = r["started_at"] - t0
    return chosen


async def play_recording(request: web.Request) -> web.StreamResponse:
    """One recording's WebM file, with HTTP range requests; the start of each playback is logged.

    Not a page: a request without a login gets 403 (a media element cannot follow a redirect to log in).
    """
    settings = request.app[SETTINGS]
    store = request.app[EVIDENCE]
    user = current_user(request)
    if user is None:
        raise web.HTTPForbidden(text="log in as an administrator to play recordings")
    row = await store.get(int(request.match_info["rec_id"]))
    if row is None:
        raise web.HTTPNotFound(text="no such recording")
    call = await request.app[RECORDS].call(row["call_id"])
    if not may_play(user, call, settings):
        raise web.HTTPForbidden(text="only administrators may play recordings" if not settings.recording_playback_clerk
                                else "only administrators and the clerk of the call may play its recordings")
    if row["deleted_at"] is not None:
        raise web.HTTPGone(text=deleted_note(row, settings.tz, translations(request).gettext))
    path = store.file_of(row)
    if not await asyncio.to_thread(path.is_file):
        raise web.HTTPNotFound(text="the file of this recording is missing (vwindow records verify reports it)")
    playback = request.query.get("playback", "")
    if not PLAYBACK_ID.fullmatch(playback):
        playback = ""
    playbacks = request.app[PLAYBACKS]

    async def before_bytes(count: int) -> None:
        if not playbacks.starts(playback, user.id, row["call_id"], row["id"]):
            return
        try:
            await store.log_played(row, f"user:{user.id}", {
                "name": user.name, "range": request.headers.get("Range", "all")[:100], "bytes": count,
                "playback": playback})
        except BaseException:
            playbacks.unlog(playback, row["id"])
            raise

    return LoggedFileResponse(path, before_bytes, headers={
        "Content-Type": "video/webm", "Cache-Control": "no-store",
        "Content-Disposition": f'inline; filename="{row["call_id"]}-{path.name}"'})


class LoggedFileResponse(web.FileResponse):
    """A file response that awaits ``before_bytes(count)`` just before it sends any of the file's bytes, and only
    then: aiohttp decides the status first (206, 200; 416 for a range it cannot satisfy, 304 for a cached
    copy, nothing for HEAD), and calls ``_sendfile`` only when bytes go out. If the hook raises, nothing is sent."""

    def __init__(self, path: Path, before_bytes: Callable[[int], Awaitable[None]],
                 headers: Mapping[str, str]) -> None:
        super().__init__(path, headers=headers)
        self._before_bytes = before_bytes

    async def _sendfile(self, request: web.BaseRequest, fobj: IO[Any], offset: int,
                        count: int) -> AbstractStreamWriter:
        await self._before_bytes(count)
        return await super()._sendfile(request, fobj, offset, count)
