"""The administrator's and reviewer's pages: sessions, detail with hash-chain status, follow-ups, management."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from server.app import create_app
from server.keys import DB, IDENTITIES, RECORDS, SETTINGS
from server.live import liveboard
from server.records.db import events, followups, matters, ratings
from server.records.identities import Clerk
from server.settings import load_settings
from tests.conftest import NewDatabase
from tests.server.conftest import ENGLISH
from tests.server.test_auth import Client, ClientFactory, login

pytestmark = pytest.mark.databases

JIADING = "sh/jiading"
PUTUO = "sh/putuo"
JIADING_PARK = "sh/jiading/xincheng/park-3"
PUTUO_PARK = "sh/putuo/changshou/park-1"
PASSWORD = "a long enough password"
CALL_ROW_RE = re.compile(r'data-call-id="([^"]+)"')


@dataclass
class World:
    client: Client
    app: web.Application
    admin: Clerk
    clerk_a: Clerk
    clerk_b: Clerk
    calls: dict[str, str] = field(default_factory=dict)  # label -> call id

    async def as_admin(self) -> str:
        return await login(self.client, "admin", PASSWORD)

    async def as_clerk_a(self) -> str:
        return await login(self.client, "alice", PASSWORD)

    async def as_clerk_b(self) -> str:
        return await login(self.client, "bob", PASSWORD)


async def add_call(app: web.Application, *, region: str, field_id: str, clerk: Clerk | None, requested_at: float,
                   wait_s: float | None, handling_s: float = 300.0, abandoned_after_s: float | None = None,
                   outcomes: tuple[str, ...] = (), score: str | None = None, case_id: str | None = None) -> str:
    """A finished call through the real Records API (so its events are hash-chained), with matters and a rating."""
    records = app[RECORDS]
    call_id = secrets.token_urlsafe(12)
    district = "/".join(region.split("/")[:2])
    await records.open_call({"id": call_id, "case_id": case_id or call_id, "kiosk_id": "k-test", "field": field_id,
                             "language": "zh", "region": region, "district": district,
                             "requested_at": requested_at}, actor="kiosk:k-test", data={"language": "zh"})
    if wait_s is None:
        ended = requested_at + (abandoned_after_s or 60)
        await records.call_event(call_id, "ended", "visitor", {"reason": "cancelled"},
                                 update={"ended_at": ended, "end_reason": "cancelled", "ended_by": "visitor"})
        return call_id
    assert clerk is not None
    answered = requested_at + wait_s
    await records.call_event(call_id, "accepted", f"clerk:{clerk.id}", {"clerk_id": clerk.id},
                             update={"answered_at": answered, "clerk_id": clerk.id})
    await records.call_event(call_id, "ended", "clerk", {"reason": "hangup"},
                             update={"ended_at": answered + handling_s, "end_reason": "hangup", "ended_by": "clerk"})
    async with app[DB].begin() as conn:
        for outcome in outcomes:
            await conn.execute(matters.insert().values(
                call_id=call_id, case_id=case_id or call_id, clerk_id=clerk.id, field=field_id,
                matter_type="tax-consultation", outcome=outcome, created_at=answered + handling_s))
        if score:
            await conn.execute(ratings.insert().values(call_id=call_id, score=score, at=answered + handling_s))
    return call_id


@pytest.fixture
async def world(aiohttp_client: ClientFactory, tmp_path: Path, new_database: NewDatabase) -> World:
    app = create_app(load_settings(data_dir=tmp_path, database_url=new_database()))
    client = await aiohttp_client(app, headers=ENGLISH)  # the checks below read the pages' English texts
    ids = app[IDENTITIES]
    admin, _ = await ids.add_user("Ada Admin", "admin", username="admin", password=PASSWORD)
    clerk_a, _ = await ids.add_user("Alice Clerk", "clerk", fields=["tax", "market"], regions=[JIADING],
                                    languages=["zh"], username="alice", password=PASSWORD)
    clerk_b, _ = await ids.add_user("Bob Clerk", "clerk", fields=["tax", "social"], regions=[PUTUO],
                                    languages=["zh"], username="bob", password=PASSWORD)
    w = World(client, app, admin, clerk_a, clerk_b)
    tz = app[SETTINGS].tz
    day = dt.datetime(2026, 3, 2, 10, 0, tzinfo=tz).timestamp()  # a Monday
    w.calls["a_tax_short"] = await add_call(app, region=JIADING_PARK, field_id="tax", clerk=clerk_a,
                                            requested_at=day, wait_s=120, outcomes=("completed",),
                                            score="satisfied")
    w.calls["a_market_long"] = await add_call(app, region=JIADING_PARK, field_id="market", clerk=clerk_a,
                                              requested_at=day + 3600, wait_s=20 * 60,
                                              outcomes=("yet_to_do", "completed"))
    w.calls["b_tax_mid"] = await add_call(app, region=PUTUO_PARK, field_id="tax", clerk=clerk_b,
                                          requested_at=day + 86400, wait_s=10 * 60, outcomes=("referred",))
    w.calls["b_social_none"] = await add_call(app, region=PUTUO_PARK, field_id="social", clerk=clerk_b,
                                              requested_at=day + 2 * 86400, wait_s=16 * 60,
                                              case_id=w.calls["b_tax_mid"])
    w.calls["abandoned"] = await add_call(app, region=JIADING_PARK, field_id="tax", clerk=None,
                                          requested_at=day + 3 * 86400, wait_s=None, abandoned_after_s=25 * 60)
    return w


async def listed(w: World, query: str = "") -> set[str]:
    resp = await w.client.get(f"/sessions{query}")
    assert resp.status == 200, await resp.text()
    return set(CALL_ROW_RE.findall(await resp.text()))


def ids(w: World, *labels: str) -> set[str]:
    return {w.calls[label] for label in labels}


# ---------------------------------------------------------------- sessions


async def test_admin_sees_all_sessions_a_clerk_only_theirs(world: World) -> None:
    await world.as_admin()
    assert await listed(world) == set(world.calls.values())
    await world.as_clerk_a()
    assert await listed(world) == ids(world, "a_tax_short", "a_market_long")
    # a clerk cannot widen the search to someone else's calls
    assert await listed(world, f"?clerk={world.clerk_b.id}") == ids(world, "a_tax_short", "a_market_long")


async def test_session_filters(world: World) -> None:
    await world.as_admin()
    assert await listed(world, "?field=tax") == ids(world, "a_tax_short", "b_tax_mid", "abandoned")
    assert await listed(world, f"?district={PUTUO}") == ids(world, "b_tax_mid", "b_social_none")
    assert await listed(world, f"?district={JIADING}&field=tax") == ids(world, "a_tax_short", "abandoned")
    # wait strictly above N minutes; an abandoned call counts with the time it waited before giving up
    assert await listed(world, "?min_wait=15") == ids(world, "a_market_long", "b_social_none", "abandoned")
    assert await listed(world, "?min_wait=16") == ids(world, "a_market_long", "abandoned")
    assert await listed(world, "?min_wait=10") == ids(world, "a_market_long", "b_social_none", "abandoned")
    assert await listed(world, "?outcome=completed") == ids(world, "a_tax_short", "a_market_long")
    assert await listed(world, "?outcome=yet_to_do") == ids(world, "a_market_long")
    assert await listed(world, "?outcome=referred") == ids(world, "b_tax_mid")
    assert await listed(world, "?outcome=none") == ids(world, "b_social_none", "abandoned")
    assert await listed(world, f"?clerk={world.clerk_b.id}") == ids(world, "b_tax_mid", "b_social_none")
    # dates are local days, both ends included
    assert await listed(world, "?from=2026-03-03&to=2026-03-04") == ids(world, "b_tax_mid", "b_social_none")
    assert await listed(world, "?to=2026-03-02") == ids(world, "a_tax_short", "a_market_long")
    await world.as_clerk_a()
    assert await listed(world, "?field=market") == ids(world, "a_market_long")


async def test_bad_filters_are_reported_not_crashing(world: World) -> None:
    await world.as_admin()
    resp = await world.client.get("/sessions?from=yesterday&min_wait=-3&outcome=lost&district=mars&page=x")
    assert resp.status == 200
    html = await resp.text()
    assert "not a date" in html and "wait over" in html and "outcome" in html and "unknown region" in html
    assert set(CALL_ROW_RE.findall(html)) == set(world.calls.values())


async def test_sessions_paginate_by_50(world: World) -> None:
    tz = world.app[SETTINGS].tz
    base = dt.datetime(2026, 4, 1, 9, 0, tzinfo=tz).timestamp()
    made = [await add_call(world.app, region=JIADING_PARK, field_id="housing", clerk=world.clerk_a,
                           requested_at=base + i * 60, wait_s=30) for i in range(52)]
    await world.as_admin()
    first = await listed(world, "?field=housing")
    second = await listed(world, "?field=housing&page=2")
    assert len(first) == 50 and len(second) == 2 and first | second == set(made)
    resp = await world.client.get("/sessions?field=housing")
    assert "page=2" in await resp.text()


async def test_the_page_shows_local_times_waits_and_abandoned(world: World) -> None:
    await world.as_admin()
    html = await (await world.client.get("/sessions")).text()
    assert "2026-03-02 10:00:00" in html  # Asia/Shanghai local time
    assert "2:00" in html and "20:00" in html  # waits as m:ss
    assert "abandoned" in html


# ---------------------------------------------------------------- session detail


async def viewed_events(w: World, call_id: str) -> list[dict[str, Any]]:
    return [e for e in await w.app[RECORDS].timeline(call_id) if e["kind"] == "viewed"]


async def test_a_clerk_opens_only_their_own_sessions(world: World) -> None:
    own, other = world.calls["a_tax_short"], world.calls["b_tax_mid"]
    await world.as_clerk_a()
    resp = await world.client.get(f"/sessions/{other}")
    assert resp.status == 403
    assert await viewed_events(world, other) == []  # a refused view is no view
    resp = await world.client.get(f"/sessions/{own}")
    assert resp.status == 200
    html = await resp.text()
    assert "Tax" in html and "satisfied" in html and "completed" in html
    assert (await world.client.get("/sessions/no-such-call")).status == 404


async def test_every_view_is_recorded(world: World) -> None:
    call_id = world.calls["a_tax_short"]
    await world.as_admin()
    assert (await world.client.get(f"/sessions/{call_id}")).status == 200
    await world.as_clerk_a()
    assert (await world.client.get(f"/sessions/{call_id}")).status == 200
    assert (await world.client.get(f"/sessions/{call_id}")).status == 200
    seen = await viewed_events(world, call_id)
    assert [e["actor"] for e in seen] == [f"user:{world.admin.id}", f"user:{world.clerk_a.id}",
                                          f"user:{world.clerk_a.id}"]
    assert seen[0]["data"] == {"name": "Ada Admin"}
    assert all(e["at"] > 0 for e in seen)


async def test_case_spanning_departments_is_linked(world: World) -> None:
    await world.as_admin()
    html = await (await world.client.get(f"/sessions/{world.calls['b_social_none']}")).text()
    assert f'href="/sessions/{world.calls["b_tax_mid"]}"' in html
    assert "Calls of this case" in html


async def test_hash_chain_status_intact_then_broken(world: World) -> None:
    call_id = world.calls["a_market_long"]
    await world.as_admin()
    html = await (await world.client.get(f"/sessions/{call_id}")).text()
    assert "hash chain: intact" in html and "BROKEN" not in html
    [accepted] = [e for e in await world.app[RECORDS].timeline(call_id) if e["kind"] == "accepted"]
    async with world.app[DB].begin() as conn:  # someone edits the log behind the application's back
        await conn.execute(events.update().where(events.c.id == accepted["id"])
                           .values(actor=f"clerk:{world.clerk_b.id}"))
    html = await (await world.client.get(f"/sessions/{call_id}")).text()
    assert f"hash chain: BROKEN at event {accepted['id']}:" in html
    assert "altered" in html
    assert "intact" not in html


async def test_concurrent_views_keep_the_chain_whole(world: World) -> None:
    """Views are logged while other events are written: the chain must not fork (SQLite ignores FOR UPDATE)."""
    await world.as_admin()
    call_id = world.calls["a_tax_short"]
    results = await asyncio.gather(
        *[world.client.get(f"/sessions/{call_id}") for _ in range(8)],
        *[world.app[RECORDS].log("test_event", actor="system", data={"i": i}) for i in range(8)])
    assert all(getattr(r, "status", 200) == 200 for r in results)
    assert len(await viewed_events(world, call_id)) == 8
    status = await world.app[RECORDS].verify()
    assert status.ok, status.describe()


# ---------------------------------------------------------------- follow-ups


async def add_followup(w: World, call_label: str, due: dt.date, *, assignee: Clerk | None = None,
                       status: str = "open") -> int:
    call = await w.app[RECORDS].call(w.calls[call_label])
    assert call is not None
    async with w.app[DB].begin() as conn:
        res = await conn.execute(followups.insert().values(
            source="matter", call_id=call["id"], case_id=call["case_id"], field=call["field"], region=call["region"],
            district=call["district"], kind="general", opened_at=call["requested_at"], due_date=due.isoformat(),
            assignee=assignee.id if assignee else call["clerk_id"], status=status,
            resolved_at=call["requested_at"] if status == "resolved" else None, description=f"fu {call_label}"))
        return int(res.inserted_primary_key[0])  # type: ignore[index]


def followup_ids(html: str) -> set[int]:
    return {int(x) for x in re.findall(r'data-followup-id="(\d+)"', html)}


async def test_followup_tabs_by_today_in_shanghai(world: World) -> None:
    today = dt.datetime.now(world.app[SETTINGS].tz).date()
    due_today = await add_followup(world, "a_market_long", today)
    overdue = await add_followup(world, "a_tax_short", today - dt.timedelta(days=2))
    later = await add_followup(world, "b_tax_mid", today + dt.timedelta(days=3))
    done = await add_followup(world, "b_social_none", today - dt.timedelta(days=1), status="resolved")
    await world.as_admin()

    async def tab(name: str, extra: str = "") -> set[int]:
        resp = await world.client.get(f"/followups?tab={name}{extra}")
        assert resp.status == 200
        return followup_ids(await resp.text())

    assert await tab("open") == {due_today, overdue, later}
    assert await tab("due_today") == {due_today}
    assert await tab("overdue") == {overdue}
    assert await tab("resolved") == {done}
    assert await tab("all") == {due_today, overdue, later, done}
    assert await tab("open", f"&district={PUTUO}") == {later}
    assert await tab("open", "&field=market") == {due_today}
    await world.as_clerk_a()  # only follow-ups of alice's calls or assigned to her
    assert await tab("all") == {due_today, overdue}


async def test_resolve_needs_csrf_and_a_note_and_is_logged(world: World) -> None:
    today = dt.datetime.now(world.app[SETTINGS].tz).date()
    fid = await add_followup(world, "a_market_long", today + dt.timedelta(days=1))
    theirs = await add_followup(world, "b_tax_mid", today)
    csrf = await world.as_clerk_a()
    resp = await world.client.post(f"/followups/{fid}/resolve", data={"note": "done"}, allow_redirects=False)
    assert resp.status == 403
    resp = await world.client.post(f"/followups/{fid}/resolve", data={"note": "  ", "csrf_token": csrf},
                                   allow_redirects=False)
    assert resp.status == 400 and "note is required" in await resp.text()
    resp = await world.client.post(f"/followups/{theirs}/resolve", data={"note": "x", "csrf_token": csrf},
                                   allow_redirects=False)
    assert resp.status == 403  # not hers
    resp = await world.client.post(f"/followups/{fid}/resolve", allow_redirects=False,
                                   data={"note": "Lease received, change registered.", "csrf_token": csrf,
                                         "back": "tab=open&field=market"})
    assert resp.status == 303 and resp.headers["Location"] == "/followups?tab=open&field=market"
    async with world.app[DB].connect() as conn:
        row = (await conn.execute(followups.select().where(followups.c.id == fid))).one()._mapping
    assert row["status"] == "resolved" and row["resolved_by"] == world.clerk_a.id
    assert row["resolution_note"] == "Lease received, change registered."
    [event] = [e for e in await world.app[RECORDS].timeline(world.calls["a_market_long"])
               if e["kind"] == "followup_resolved"]
    assert event["actor"] == f"user:{world.clerk_a.id}"
    assert event["data"]["followup_id"] == fid and event["data"]["on_time"] is True
    assert event["case_id"] == world.calls["a_market_long"]
    resp = await world.client.post(f"/followups/{fid}/resolve", data={"note": "again", "csrf_token": csrf},
                                   allow_redirects=False)
    assert resp.status == 409
    assert (await world.app[RECORDS].verify()).ok


async def test_admin_assigns_a_followup(world: World) -> None:
    fid = await add_followup(world, "b_tax_mid", dt.date(2026, 3, 5))
    csrf = await world.as_clerk_a()
    resp = await world.client.post(f"/followups/{fid}/assign", data={"assignee": world.clerk_a.id,
                                                                     "csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 403
    csrf = await world.as_admin()
    resp = await world.client.post(f"/followups/{fid}/assign", data={"assignee": "c-nobody", "csrf_token": csrf},
                                   allow_redirects=False)
    assert resp.status == 400
    resp = await world.client.post(f"/followups/{fid}/assign", data={"assignee": world.clerk_a.id,
                                                                     "csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303
    [event] = [e for e in await world.app[RECORDS].timeline(world.calls["b_tax_mid"])
               if e["kind"] == "followup_assigned"]
    assert event["data"]["assignee"] == world.clerk_a.id and event["data"]["previous"] == world.clerk_b.id
    await world.as_clerk_a()  # now alice sees it too
    html = await (await world.client.get("/followups?tab=all")).text()
    assert fid in followup_ids(html)


# ---------------------------------------------------------------- clerks and kiosks


def issued_token(html: str) -> str:
    found = re.search(r'id="issued-token"[^>]*value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)


async def admin_actions(w: World) -> list[dict[str, Any]]:
    async with w.app[DB].connect() as conn:
        rows = await conn.execute(events.select().where(events.c.kind == "admin_action").order_by(events.c.id))
        return [dict(r._mapping) for r in rows]


async def test_admin_adds_a_clerk_whose_token_works(world: World) -> None:
    csrf = await world.as_admin()
    form = [("name", "Wang Min"), ("center", "Jiading center"), ("fields", "tax"), ("fields", "market"),
            ("regions", JIADING), ("languages", "zh"), ("languages", "en")]
    resp = await world.client.post("/admin/clerks", data=form, allow_redirects=False)
    assert resp.status == 403  # no CSRF token
    resp = await world.client.post("/admin/clerks", data=[*form, ("csrf_token", csrf)], allow_redirects=False)
    assert resp.status == 200
    html = await resp.text()
    token = issued_token(html)
    assert f"/clerk#token={token}" in html
    assert resp.headers["Cache-Control"] == "no-store"
    clerk = await world.app[IDENTITIES].clerk_by_token(token)
    assert clerk is not None and clerk.name == "Wang Min"
    assert clerk.fields == ("tax", "market") and clerk.regions == (JIADING,) and clerk.languages == ("zh", "en")
    # the list shows it, without the token
    html = await (await world.client.get("/admin/clerks")).text()
    assert "Wang Min" in html and token not in html
    [action] = await admin_actions(world)
    assert action["actor"] == f"user:{world.admin.id}" and action["call_id"] is None
    assert action["data"]["action"] == "clerk_added" and action["data"]["clerk_id"] == clerk.id
    assert token not in str(action["data"])

    # a new token replaces the old one; revoking stops the newest
    resp = await world.client.post(f"/admin/clerks/{clerk.id}/token", data={"csrf_token": csrf})
    fresh = issued_token(await resp.text())
    assert await world.app[IDENTITIES].clerk_by_token(token) is None
    assert await world.app[IDENTITIES].clerk_by_token(fresh) is not None
    resp = await world.client.post(f"/admin/clerks/{clerk.id}/revoke", data={"csrf_token": csrf},
                                   allow_redirects=False)
    assert resp.status == 303
    assert await world.app[IDENTITIES].clerk_by_token(fresh) is None
    assert [a["data"]["action"] for a in await admin_actions(world)] == [
        "clerk_added", "clerk_token_issued", "clerk_revoked"]


@pytest.mark.databases("sqlite")  # the form is refused before any query
async def test_clerk_form_is_checked_against_the_catalog_regions_and_languages(world: World) -> None:
    csrf = await world.as_admin()
    before = await world.app[IDENTITIES].clerks()
    resp = await world.client.post("/admin/clerks", data=[
        ("csrf_token", csrf), ("name", "X"), ("fields", "astrology"), ("regions", "sh/atlantis"),
        ("languages", "tlh"), ("username", "x"), ("password", "short")])
    assert resp.status == 400
    html = await resp.text()
    for problem in ("Unknown service field: astrology", "Unknown region: sh/atlantis", "Unknown language: tlh",
                    "at least 10 characters"):
        assert problem in html
    resp = await world.client.post("/admin/clerks", data=[("csrf_token", csrf), ("name", "")])
    assert resp.status == 400 and "A name is required" in await resp.text()
    resp = await world.client.post("/admin/clerks", data=[
        ("csrf_token", csrf), ("name", "Dup"), ("fields", "tax"), ("regions", JIADING), ("languages", "zh"),
        ("username", "alice"), ("password", PASSWORD)])
    assert resp.status == 400 and "username is taken" in await resp.text()
    assert await world.app[IDENTITIES].clerks() == before


async def test_admin_edits_a_clerk(world: World) -> None:
    csrf = await world.as_admin()
    page = await world.client.get(f"/admin/clerks/{world.clerk_a.id}")
    assert page.status == 200 and "Alice Clerk" in await page.text()
    resp = await world.client.post(f"/admin/clerks/{world.clerk_a.id}", allow_redirects=False, data=[
        ("csrf_token", csrf), ("name", "Alice Wang"), ("center", "Putuo"), ("fields", "social"),
        ("regions", PUTUO), ("languages", "en")])
    assert resp.status == 303
    changed = await world.app[IDENTITIES].user(world.clerk_a.id)
    assert changed is not None and changed.name == "Alice Wang" and changed.fields == ("social",)
    assert changed.regions == (PUTUO,) and changed.languages == ("en",)
    assert (await admin_actions(world))[-1]["data"]["action"] == "clerk_changed"
    resp = await world.client.post(f"/admin/clerks/{world.admin.id}", data=[("csrf_token", csrf), ("name", "x")])
    assert resp.status == 404  # administrators are not edited as clerks


async def test_admin_adds_and_revokes_a_kiosk(world: World) -> None:
    csrf = await world.as_admin()
    resp = await world.client.post("/admin/kiosks", data={"csrf_token": csrf, "name": "", "region": "nowhere"})
    assert resp.status == 400
    assert await world.app[IDENTITIES].kiosks() == []
    resp = await world.client.post("/admin/kiosks", data={"csrf_token": csrf, "name": "Science Park window",
                                                          "region": JIADING_PARK})
    assert resp.status == 200
    html = await resp.text()
    token = issued_token(html)
    assert f"/kiosk#token={token}" in html
    kiosk = await world.app[IDENTITIES].kiosk_by_token(token)
    assert kiosk is not None and kiosk.region == JIADING_PARK and kiosk.name == "Science Park window"
    resp = await world.client.post(f"/admin/kiosks/{kiosk.id}/revoke", data={}, allow_redirects=False)
    assert resp.status == 403  # CSRF
    resp = await world.client.post(f"/admin/kiosks/{kiosk.id}/revoke", data={"csrf_token": csrf},
                                   allow_redirects=False)
    assert resp.status == 303
    assert await world.app[IDENTITIES].kiosk_by_token(token) is None
    # the kiosk route never revokes a clerk, even given a clerk's id
    resp = await world.client.post(f"/admin/kiosks/{world.clerk_b.id}/revoke", data={"csrf_token": csrf},
                                   allow_redirects=False)
    assert resp.status == 404
    assert not (await world.app[IDENTITIES].user(world.clerk_b.id)).revoked  # type: ignore[union-attr]
    assert [a["data"]["action"] for a in await admin_actions(world)] == ["kiosk_added", "kiosk_revoked"]


# ---------------------------------------------------------------- live board


@pytest.mark.databases("sqlite")  # the live board reads live state, not the records
async def test_live_board_and_its_api(world: World) -> None:
    await world.as_admin()
    resp = await world.client.get("/admin/api/live")
    assert resp.status == 200
    data = await resp.json()
    assert set(data) >= {"queues", "clerks", "calls", "kiosks_online", "today", "updated"}
    assert data["today"]["calls"] == 0
    html = await (await world.client.get("/admin")).text()
    assert 'data-url="/admin/api/live"' in html and 'data-poll-ms="2000"' in html
    for link in ("/sessions", "/followups", "/stats", "/admin/clerks", "/admin/kiosks"):
        assert f'href="{link}"' in html


@pytest.mark.databases("sqlite")  # the live board reads live state, not the records
async def test_live_api_names_fields_and_districts(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot = {
        "queues": [{"field": "tax", "district": JIADING, "district_name": "Jiading District", "waiting": 2,
                    "ringing": 1, "longest_wait_s": 1000.0, "unserved": 1}],
        "clerks": [{"id": world.clerk_a.id, "name": "Alice Clerk", "center": "", "fields": ["tax"],
                    "regions": [JIADING], "status": "busy", "call_id": "c1"}],
        "calls": [{"call_id": "c1", "case_id": "c1", "field": "market", "region": JIADING_PARK, "kiosk": "K",
                   "clerk": "Alice Clerk", "state": "active", "since_s": 75.0}],
        "kiosks_online": 3,
    }
    monkeypatch.setattr(liveboard, "snapshot", lambda switchboard: copy.deepcopy(snapshot))
    await world.as_admin()
    data = await (await world.client.get("/admin/api/live")).json()
    [queue] = data["queues"]
    assert queue["field_name"] == "Tax" and queue["district_name"] == "Jiading District"
    assert queue["over_target"] is True  # 1000 s > 15 min
    assert data["calls"][0]["field_name"] == "Market regulation"
    assert data["calls"][0]["region_name"].startswith("Jiading District")
    assert data["clerks"][0]["field_names"] == ["Tax"] and data["kiosks_online"] == 3
    html = await (await world.client.get("/admin")).text()  # the first paint, before any poll
    assert "16:40" in html and "/sessions/c1" in html and ">busy<" in html
    # the waiting call that no clerk who is there can take is flagged
    assert 'data-testid="queue-unserved">1 call: no clerk who can take it is available<' in html
    # the names follow the page's language
    chinese = {"Accept-Language": "zh-CN,zh;q=0.9"}
    data = await (await world.client.get("/admin/api/live", headers=chinese)).json()
    assert data["queues"][0]["field_name"] == "税务" and data["queues"][0]["district_name"] == "嘉定区"
    assert data["calls"][0]["region_name"].startswith("嘉定区")
    html = await (await world.client.get("/admin", headers=chinese)).text()
    assert ">通话<" in html and '<html lang="zh"' in html


async def test_pages_escape_what_people_typed(world: World) -> None:
    csrf = await world.as_admin()
    await world.client.post("/admin/kiosks", data={"csrf_token": csrf, "name": "<script>alert(1)</script>",
                                                   "region": JIADING_PARK})
    html = await (await world.client.get("/admin/kiosks")).text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_out_of_range_numbers_and_nul_bytes_in_requests_are_not_server_errors(world: World) -> None:
    """What SQLite takes silently PostgreSQL refuses (a page past any 64-bit offset, an id past a 32-bit
    column, a NUL character in text): the pages answer as for any other unknown value or refuse the request
    with 400, the same on both databases, never with a 500."""
    await world.as_admin()
    huge = "9" * 30
    for path in (f"/sessions?page={huge}", f"/followups?page={huge}", f"/sessions?page={2**62}"):
        resp = await world.client.get(path)
        assert resp.status == 200, (path, resp.status, await resp.text())
    for path in ("/recordings/999999999999999999", "/recordings/2147483648", "/admin/clerks/" + "x" * 100):
        resp = await world.client.get(path)
        assert resp.status == 404, (path, resp.status, await resp.text())
    for path in ("/sessions?clerk=%00", "/sessions?district=sh%00", "/followups?x%00=1", "/sessions/x%00y",
                 "/admin/clerks/x%00y"):
        resp = await world.client.get(path)
        assert resp.status == 400 and "NUL" in await resp.text(), (path, resp.status)
    resp = await world.client.post("/login", data={"username": "admin\x00", "password": "x", "csrf_token": "x"})
    assert resp.status == 400
    token = re.search(r'name="csrf_token" value="([^"]+)"', await (await world.client.get("/followups")).text())
    assert token is not None
    for fid in ("2147483648", "99999999999999999999"):
        resp = await world.client.post(f"/followups/{fid}/resolve", data={"note": "done", "csrf_token": token[1]})
        assert resp.status == 404, (fid, resp.status, await resp.text())
