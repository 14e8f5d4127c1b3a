"""Statistics against figures worked out by hand, the charts, the CSV exports and the sample history."""

from __future__ import annotations

import csv
import datetime as dt
import io
import xml.etree.ElementTree as ET
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from aiohttp import web

from server.app import create_app
from server.cli.seed import seed_history
from server.keys import DB, IDENTITIES, RECORDS, SETTINGS
from server.records.audit import audit
from server.records.db import calls, events, followups, matters, ratings
from server.settings import load_settings
from server.web import stats
from server.web.exports import MATTER_COLUMNS, SESSION_COLUMNS, safe_text, to_csv
from server.web.stats import CallFacts, GroupStats, Period, compute_stats, percentile
from signaling.creditcode import is_valid_credit_code
from tests.conftest import NewDatabase
from tests.server.conftest import ENGLISH
from tests.server.test_auth import Client, ClientFactory, login

pytestmark = pytest.mark.databases

TZ = ZoneInfo("Asia/Shanghai")
PERIOD = Period(dt.date(2026, 3, 2), dt.date(2026, 3, 8))
J, P = "sh/jiading", "sh/putuo"
PASSWORD = "a long enough password"


def local(y: int, m: int, d: int, hh: int = 10, mm: int = 0, ss: int = 0) -> float:
    return dt.datetime(y, m, d, hh, mm, ss, tzinfo=TZ).timestamp()


# (id, district, field, requested, wait or None, handling or abandoned-after, rating)
CALLS = [
    ("c1", J, "tax", local(2026, 3, 2, 9), 60, 300, "satisfied"),
    ("c2", J, "tax", local(2026, 3, 3, 11), 300, 600, "neutral"),
    ("c3", J, "tax", local(2026, 3, 4, 14), 1200, 900, "dissatisfied"),
    ("c4", J, "tax", local(2026, 3, 5, 15), None, 400, None),  # abandoned after 400 s
    ("c5", P, "social", local(2026, 3, 6, 10), 600, 120, "satisfied"),
    ("c6", P, "social", local(2026, 3, 8, 23, 59), 960, 480, None),
    # outside the period in local time (inside it if the days were taken in UTC)
    ("c7", J, "tax", local(2026, 3, 9, 0, 0, 30), 30, 30, "dissatisfied"),
    ("c8", P, "social", local(2026, 3, 1, 23, 59), 5000, 30, "dissatisfied"),
]
# (id, district, field, due date, resolved at or None)
FOLLOWUPS = [
    (1, J, "tax", "2026-03-04", local(2026, 3, 4, 23, 30)),  # on the due day (local): in time
    (2, J, "tax", "2026-03-04", local(2026, 3, 5, 7, 0)),  # next local day (still the 4th in UTC): late
    (3, J, "tax", "2026-03-06", None),  # open
    (4, P, "social", "2026-03-08", local(2026, 3, 2, 12)),  # early
    (5, P, "social", "2026-03-10", local(2026, 3, 3, 12)),  # due after the period
    (6, J, "tax", "2026-03-01", local(2026, 3, 1, 12)),  # due before the period
]


async def seed_by_hand(engine: sa.ext.asyncio.AsyncEngine) -> None:
    async with engine.begin() as conn:
        for cid, district, field_id, t0, wait, handling, score in CALLS:
            region = f"{district}/x"
            if wait is None:
                values = {"ended_at": t0 + handling, "end_reason": "cancelled", "ended_by": "visitor"}
            else:
                values = {"answered_at": t0 + wait, "ended_at": t0 + wait + handling, "end_reason": "hangup",
                          "ended_by": "clerk", "clerk_id": "c-1"}
            await conn.execute(calls.insert().values(
                id=cid, case_id=cid, kiosk_id="k-1", field=field_id, language="zh", region=region, district=district,
                requested_at=t0, **values))
            if score is not None:
                await conn.execute(ratings.insert().values(call_id=cid, score=score, at=t0 + 3600))
            if wait is not None:
                await conn.execute(matters.insert().values(
                    call_id=cid, case_id=cid, clerk_id="c-1", field=field_id, matter_type="m",
                    outcome="completed", created_at=t0 + 4000, entity_name="=HYPERLINK(\"x\")"))
        for fid, district, field_id, due, resolved in FOLLOWUPS:
            await conn.execute(followups.insert().values(
                id=fid, source="matter", field=field_id, region=district, district=district, kind="general",
                opened_at=local(2026, 3, 1), due_date=due, status="open" if resolved is None else "resolved",
                resolved_at=resolved))


@pytest.fixture
async def app(tmp_path: Path, new_database: NewDatabase) -> web.Application:
    return create_app(load_settings(data_dir=tmp_path, database_url=new_database()))


@pytest.fixture
async def client(aiohttp_client: ClientFactory, app: web.Application) -> Client:
    client = await aiohttp_client(app, headers=ENGLISH)  # starting it runs the migrations; English pages
    await app[IDENTITIES].add_user("Ada Admin", "admin", username="admin", password=PASSWORD)
    return client


# ---------------------------------------------------------------- pure figures


def test_percentile_is_nearest_rank() -> None:
    assert percentile([]) is None
    assert percentile([7.0]) == 7.0
    assert percentile(list(range(1, 11))) == 9  # ceil(0.9 * 10) = 9th
    assert percentile(list(range(1, 12))) == 10  # ceil(0.9 * 11) = 10th
    assert percentile([5, 1, 3]) == 5  # ceil(2.7) = 3rd of 1, 3, 5
    assert percentile([1, 2], 50) == 1


def test_period_bounds_are_local_midnights() -> None:
    lo, hi = PERIOD.bounds(TZ)
    assert lo == local(2026, 3, 2, 0) and hi == local(2026, 3, 9, 0)
    assert PERIOD.days == 7
    period, problems = stats.parse_period("", "", dt.date(2026, 3, 28))
    assert period == Period(dt.date(2026, 3, 1), dt.date(2026, 3, 28)) and problems == []
    period, problems = stats.parse_period("2026-03-10", "2026-03-01", dt.date(2026, 3, 28))
    assert period == Period(dt.date(2026, 3, 1), dt.date(2026, 3, 10)) and problems
    _, problems = stats.parse_period("soon", "", dt.date(2026, 3, 28))
    assert problems and "from" in problems[0]


def test_abandoned_and_waiting_calls() -> None:
    waiting = CallFacts("w", J, "tax", 100.0)
    gone = CallFacts("g", J, "tax", 100.0, ended_at=400.0)
    report = compute_stats(PERIOD, [waiting, gone], [], TZ)
    t = report.total
    assert (t.calls, t.answered, t.abandoned) == (2, 0, 1)
    assert t.avg_wait_s is None and t.p90_wait_s is None and t.within_target_share is None
    assert t.satisfaction_share is None and t.resolution_rate is None


def test_target_is_inclusive_and_configurable() -> None:
    exactly = CallFacts("e", J, "tax", 0.0, answered_at=900.0, ended_at=1000.0)
    assert compute_stats(PERIOD, [exactly], [], TZ).total.within_target == 1
    assert compute_stats(PERIOD, [exactly], [], TZ, target_s=600).total.within_target == 0


# ---------------------------------------------------------------- against the database


def check(g: GroupStats, *, calls_: int, answered: int, abandoned: int, avg: float, p90: float, within: int,
          handling: float, due: int, in_time: int, rated: int, sat: int, neu: int, dis: int) -> None:
    assert (g.calls, g.answered, g.abandoned) == (calls_, answered, abandoned)
    assert g.avg_wait_s == pytest.approx(avg)
    assert g.p90_wait_s == pytest.approx(p90)
    assert g.within_target == within
    assert g.within_target_share == pytest.approx(within / answered)
    assert g.avg_handling_s == pytest.approx(handling)
    assert (g.followups_due, g.followups_resolved_in_time) == (due, in_time)
    assert g.resolution_rate == (pytest.approx(in_time / due) if due else None)
    assert (g.rated, g.satisfied, g.neutral, g.dissatisfied) == (rated, sat, neu, dis)
    assert g.satisfaction_share == (pytest.approx(sat / rated) if rated else None)


async def test_figures_match_the_hand_computation(client: Client, app: web.Application) -> None:
    await seed_by_hand(app[DB])
    report = await stats.load_stats(app[DB], PERIOD, TZ)
    rows = {(g.district, g.field): g for g in report.rows}
    assert set(rows) == {(J, "tax"), (P, "social")}
    # Jiading / tax: waits 60, 300, 1200 s (one abandoned call has none); handling 300, 600, 900 s
    check(rows[(J, "tax")], calls_=4, answered=3, abandoned=1, avg=(60 + 300 + 1200) / 3, p90=1200, within=2,
          handling=600, due=3, in_time=1, rated=3, sat=1, neu=1, dis=1)
    # Putuo / social: waits 600, 960 s; handling 120, 480 s; one follow-up due, resolved early
    check(rows[(P, "social")], calls_=2, answered=2, abandoned=0, avg=780, p90=960, within=1, handling=300,
          due=1, in_time=1, rated=1, sat=1, neu=0, dis=0)
    # all: waits 60, 300, 600, 960, 1200 -> mean 624, nearest-rank p90 = ceil(4.5) = 5th = 1200
    check(report.total, calls_=6, answered=5, abandoned=1, avg=624, p90=1200, within=3, handling=480,
          due=4, in_time=2, rated=4, sat=2, neu=1, dis=1)
    assert report.total.resolution_rate == 0.5 and report.total.satisfaction_share == 0.5
    assert report.total.within_target_share == 0.6
    assert [g.district for g in report.by_district] == [J, P]
    assert [g.field for g in report.by_field] == ["social", "tax"]
    assert report.by_district[0].calls == 4 and report.by_field[0].avg_wait_s == 780


async def test_stats_page_shows_the_figures_and_charts(client: Client, app: web.Application) -> None:
    await seed_by_hand(app[DB])
    await login(client, "admin", PASSWORD)
    resp = await client.get("/stats?from=2026-03-02&to=2026-03-08")
    assert resp.status == 200
    html = await resp.text()
    assert "8:40" in html  # Jiading / tax average wait, 520 s
    assert "10:24" in html  # overall average wait, 624 s
    assert "20:00" in html  # p90
    assert "60.0 %" in html and "50.0 %" in html and "33.3 %" in html
    assert html.count("<svg") == 2 and "target 15:00" in html and "(m:ss)" in html  # the chart in m:ss like the tables
    assert "/stats/export/sessions.csv?from=2026-03-02&amp;to=2026-03-08" in html
    resp = await client.get("/stats")  # default: the last 28 days
    assert resp.status == 200


def test_charts_are_well_formed_and_escape_text() -> None:
    g = compute_stats(PERIOD, [CallFacts("a", "<b>&", "f", 0.0, answered_at=1200.0, ended_at=1300.0)], [], TZ)
    for svg in (stats.wait_chart_svg(g.by_district, lambda x: x.district),
                stats.calls_chart_svg(g.by_field, lambda x: "<script>alert(1)</script>"),
                stats.wait_chart_svg([], lambda x: x.district), stats.calls_chart_svg([], lambda x: x.field)):
        root = ET.fromstring(svg)  # parses: the markup is well-formed, the text escaped
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert "<script>" not in svg and "<b>" not in svg
        assert "style=" not in svg  # inline styles are blocked by the CSP; classes only


async def test_csv_exports(client: Client, app: web.Application) -> None:
    await seed_by_hand(app[DB])
    await login(client, "admin", PASSWORD)
    resp = await client.get("/stats/export/sessions.csv?from=2026-03-02&to=2026-03-08")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert resp.headers["Content-Disposition"] == 'attachment; filename="sessions-2026-03-02_2026-03-08.csv"'
    body = await resp.read()
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert tuple(rows[0]) == SESSION_COLUMNS
    data = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert [d["call_id"] for d in data] == ["c1", "c2", "c3", "c4", "c5", "c6"]
    assert data[0]["requested_at"] == "2026-03-02T09:00:00+08:00"
    assert data[0]["wait_s"] == "60" and data[0]["handling_s"] == "300" and data[0]["rating"] == "satisfied"
    assert data[3]["abandoned"] == "yes" and data[3]["wait_s"] == ""
    assert data[0]["matters"] == "1" and data[3]["matters"] == "0"
    # names beside the ids, in the page's language (English here)
    assert data[0]["district"] == "sh/jiading" and data[0]["district_name"] == "Jiading District"
    assert data[0]["field"] == "tax" and data[0]["field_name"] == "Tax"

    resp = await client.get("/stats/export/matters.csv?from=2026-03-02&to=2026-03-08")
    assert resp.status == 200
    rows = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert tuple(rows[0]) == MATTER_COLUMNS
    assert len(rows) == 1 + 5  # one matter on each answered call of the period
    found = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert all(d["entity_name"] == "'=HYPERLINK(\"x\")" for d in found)  # defused formula
    assert all(d["field_name"] and d["district_name"] for d in found)
    assert (await client.get("/stats/export/matters.csv?from=nonsense")).status == 400
    async with app[DB].connect() as conn:
        exported = (await conn.execute(sa.select(events.c.data).where(events.c.kind == "admin_action"))).scalars()
        assert [d["what"] for d in exported] == ["sessions", "matters"]


def test_every_text_cell_is_defused_even_behind_spaces_and_in_full_width() -> None:
    for risky in ("-xY3", "=1+1", "+1", "@SUM(A1)", "\tx", "\rx", "  =1", "\n=1", "\u3000=1", "\uff1d1+1",
                  "\uff0b1", "\uff0d1", "\uff20x", " \n -2"):
        assert safe_text(risky) == "'" + risky, repr(risky)
    for plain in ("abc", "c1", "91310000MA1FL8XQ30", "王丽", " a=1", ""):
        assert safe_text(plain) == plain
    # every text cell is checked, ids included (URL-safe ids may start with "-"); numbers are left as they are
    body = to_csv(("call_id", "n"), [["-Ab3", 3], ["ok", -1]]).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(body))) == [["call_id", "n"], ["'-Ab3", "3"], ["ok", "-1"]]


# ---------------------------------------------------------------- sample history


async def test_seed_history_is_valid_chained_and_idempotent(client: Client, app: web.Application) -> None:
    settings = app[SETTINGS]
    now = local(2026, 11, 20, 12)
    written = await seed_history(app, settings, app[IDENTITIES], days=21, seed=3, now=now)
    assert written > 40
    assert await seed_history(app[DB], settings, app[IDENTITIES], days=21, seed=3, now=now) == 0
    assert (await app[RECORDS].verify()).ok
    audited = await audit(app[DB], {})  # every sample row sealed in the chain, as the server's own are
    assert audited.rows is not None and audited.rows.ok and audited.rows.checked >= written, audited.describe()
    engine = app[DB]
    async with engine.connect() as conn:
        all_calls = [dict(r._mapping) for r in await conn.execute(calls.select())]
        codes = (await conn.execute(sa.select(matters.c.credit_code))).scalars().all()
        fus = [dict(r._mapping) for r in await conn.execute(followups.select())]
    assert len(all_calls) == written
    assert all(c["requested_at"] < now for c in all_calls)
    assert any(c["answered_at"] is None for c in all_calls)  # some abandoned
    waits = [c["answered_at"] - c["requested_at"] for c in all_calls if c["answered_at"] is not None]
    assert any(w > stats.TARGET_WAIT_S for w in waits) and sum(w <= stats.TARGET_WAIT_S for w in waits) > len(waits) / 2
    assert all(is_valid_credit_code(c) for c in codes if c is not None) and any(codes)
    assert {f["status"] for f in fus} == {"open", "resolved"}
    assert {c["district"] for c in all_calls} == {"sh/huangpu", "sh/putuo", "sh/jiading"}
    answered = next(c for c in all_calls if c["answered_at"] is not None and c["end_reason"] == "hangup")
    timeline = await app[RECORDS].timeline(answered["id"])
    kinds = [e["kind"] for e in timeline]
    assert kinds[:7] == ["requested", "queued", "rung", "accepted", "media_connected", "media_connected", "ended"]
    assert "wrapped_up" in kinds
    assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)
    # the pages work on it
    await login(client, "admin", PASSWORD)
    for path in ("/admin", "/sessions", f"/sessions/{answered['id']}", "/followups?tab=all", "/admin/clerks",
                 "/admin/kiosks", "/stats?from=2026-10-20&to=2026-11-20"):
        resp = await client.get(path)
        assert resp.status == 200, path
    assert "hash chain: intact" in await (await client.get(f"/sessions/{answered['id']}")).text()


async def test_demo_restart_keeps_the_names_of_past_participants(client: Client, app: web.Application) -> None:
    """A call taken by a demo bot clerk keeps the clerk's name after the demo starts again (which re-issues its
    identities) and after the clerk is revoked: in the sessions list and in the CSV export."""
    from server.cli.demo import DEMO_CLERK, setup_demo

    settings, identities = app[SETTINGS], app[IDENTITIES]
    async with app[DB].begin() as conn:  # the demo brings its own "admin"
        await conn.execute(sa.text("UPDATE users SET username = 'ada' WHERE username = 'admin'"))
    demo = await setup_demo(settings, identities, bots=1)
    assert "(you)" not in DEMO_CLERK  # what the visitor is told carries no hint for the console's user
    bot = next(c for c in await identities.clerks() if c.name == "Bot clerk 1")
    kiosk = next(k for k in await identities.kiosks() if k.name == demo.kiosks[0][0])
    t0 = local(2026, 3, 3, 10)
    async with app[DB].begin() as conn:
        await conn.execute(calls.insert().values(
            id="-past", case_id="-past", kiosk_id=kiosk.id, field="tax", language="zh", region=kiosk.region,
            district="sh/jiading", requested_at=t0, answered_at=t0 + 30, ended_at=t0 + 300, end_reason="hangup",
            ended_by="clerk", clerk_id=bot.id))
    await setup_demo(settings, identities, bots=1)  # the next start
    old = await identities.user(bot.id)
    assert old is not None and old.revoked and old.name == "Bot clerk 1"
    assert {c.name for c in await identities.clerks() if not c.revoked} == {DEMO_CLERK, "Bot clerk 1"}
    await login(client, "ada", PASSWORD)
    html = await (await client.get("/sessions?from=2026-03-01&to=2026-03-08")).text()
    assert "Bot clerk 1" in html
    body = await (await client.get("/stats/export/sessions.csv?from=2026-03-02&to=2026-03-08")).read()
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [(r["call_id"], r["clerk_name"]) for r in rows] == [("'-past", "Bot clerk 1")]
