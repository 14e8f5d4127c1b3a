"""Sample history for demos: a few weeks of calls, matters, follow-ups and ratings.

:func:`seed_history` writes the calls of the last ``days`` days (working days,
office hours) across the districts and service fields of the settings, so the
administrator's pages have something to show. Everything goes through
:meth:`server.records.chain.Records.append`, in the same order and with the same kinds
of events the live system writes (``requested``, ``queued``, ``rung``,
``accepted``, ``media_connected``, ``ended``, ``matter_logged``,
``followup_opened``, ``wrapped_up``, ``rated``, ...), so the hash chain verifies.

It is deterministic for a given ``seed`` and ``now`` and does nothing when the
records already hold a call. The sample clerks and kiosks it adds are ordinary
(not demo) identities, because the history refers to them; their tokens are
thrown away.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.keys import DB
from server.records import seals as sealing
from server.records.chain import Records
from server.records.db import calls, followups, matters, ratings
from server.records.identities import Clerk, IdentityStore, Kiosk
from server.settings import Settings
from signaling.creditcode import ALPHABET, check_character
from signaling.workdays import YearNotCoveredError

CLERK_NAMES = ["王敏", "李娜", "张伟", "刘洋", "陈静", "杨帆", "赵磊", "黄蕾", "周杰", "吴芳", "徐强", "孙丽"]
ENTITY_NAMES = ["老街面馆", "新城五金店", "远香湖便利店", "安亭汽配商行", "苏河文创工作室", "外滩咖啡馆",
                "桃浦科技有限公司", "长寿路服装店", "南京路眼镜店", "老西门小吃店", "嘉定绿植花店", "智创软件有限公司"]
DIVISION_CODES = ["310101", "310107", "310114", "310115", "310000"]
FIELD_DAYS = {"simple": 0, "general": 3, "complex": 7}


def sample_credit_code(rng: random.Random) -> str:
    """A well-formed unified social credit code of an individual business or an enterprise (made up)."""
    body = rng.choice(["92", "91"]) + rng.choice(DIVISION_CODES)
    body += "".join(rng.choice("0123456789") for _ in range(2)) + "".join(rng.choice(ALPHABET) for _ in range(7))
    return body + check_character(body)


def _is_workday(settings: Settings, day: dt.date) -> bool:
    try:
        return settings.calendar.is_workday(day)
    except YearNotCoveredError:
        return day.weekday() < 5


def _due(settings: Settings, kind: str, opened: dt.datetime) -> dt.date:
    try:
        return settings.calendar.deadline_for(kind, opened)
    except YearNotCoveredError:
        return opened.date() + dt.timedelta(days=FIELD_DAYS[kind])


@dataclass
class _World:
    settings: Settings
    records: Records
    rng: random.Random
    now: float
    clerks: dict[str, list[Clerk]]  # district -> its clerks
    kiosks: dict[str, list[Kiosk]]  # district -> its kiosks


def _engine(target: web.Application | AsyncEngine) -> AsyncEngine:
    return target[DB] if isinstance(target, web.Application) else target


async def seed_history(target: web.Application | AsyncEngine, settings: Settings, identities: IdentityStore,
                       days: int = 21, seed: int = 1, now: float | None = None) -> int:
    """Write ``days`` days of sample history before today; return the number of calls written (0 if any existed)."""
    engine = _engine(target)
    async with engine.connect() as conn:
        if (await conn.execute(sa.select(sa.func.count()).select_from(calls))).scalar_one():
            return 0
    rng = random.Random(seed)
    depth = min(2, len(settings.regions.levels))
    districts = [p for p, r in settings.regions.regions.items() if r.level == depth]
    if not districts:
        return 0
    field_ids = settings.catalog.ids()
    world = _World(settings, Records(engine), rng, time.time() if now is None else now, {}, {})
    for i, district in enumerate(districts):
        center = f"{settings.regions.get(district).name('zh')}政务服务中心"
        halves = [field_ids[: (len(field_ids) + 1) // 2], field_ids[(len(field_ids) + 1) // 2:] or field_ids]
        world.clerks[district] = []
        for j, fields in enumerate(halves):
            clerk, _ = await identities.add_clerk(CLERK_NAMES[(2 * i + j) % len(CLERK_NAMES)], list(fields),
                                                  [district], settings.languages[:2], center=center)
            world.clerks[district].append(clerk)
        places = [p for p in settings.regions.leaves() if p.startswith(district + "/")] or [district]
        world.kiosks[district] = []
        for place in places[:3]:
            name = f"样例终端 Sample kiosk · {settings.regions.get(place).name('zh')}"
            kiosk, _ = await identities.add_kiosk(name, place)
            world.kiosks[district].append(kiosk)

    tz = settings.tz
    today = dt.datetime.fromtimestamp(world.now, tz).date()
    written = 0
    for back in range(days, 0, -1):
        day = today - dt.timedelta(days=back)
        if not _is_workday(settings, day):
            continue
        plan: list[tuple[float, str, str]] = []
        for k, district in enumerate(districts):
            for field_id in field_ids:
                for _ in range(rng.randint(0, 2 + (k == 0))):
                    t = dt.datetime.combine(day, dt.time(9), tz).timestamp() + rng.uniform(0, 8 * 3600)
                    plan.append((t, district, field_id))
        plan.sort()
        async with engine.begin() as conn:
            for position, (t, district, field_id) in enumerate(plan):
                written += await _one_case(conn, world, t, district, field_id, position % 4 + 1)
            if rng.random() < 0.4:
                await _callback(conn, world, day, rng.choice(districts), rng.choice(field_ids))
    return written


def _wait(rng: random.Random) -> float:
    """Seconds before a clerk answers: mostly a few minutes, sometimes beyond the 15-minute promise."""
    roll = rng.random()
    if roll < 0.75:
        return rng.uniform(20, 8 * 60)
    if roll < 0.92:
        return rng.uniform(8 * 60, 15 * 60)
    return rng.uniform(15 * 60, 32 * 60)


async def _one_case(conn: AsyncConnection, w: _World, t0: float, district: str, field_id: str, position: int) -> int:
    """One visitor's case: a call, sometimes handed on to a second field as a new call. Returns the calls written."""
    rng = w.rng
    kiosk = rng.choice(w.kiosks[district])
    call_id = secrets.token_urlsafe(16)
    language = "zh" if rng.random() < 0.9 or len(w.settings.languages) < 2 else w.settings.languages[1]
    handed_on = await _call(conn, w, call_id, call_id, kiosk, district, field_id, language, t0, position, None)
    if handed_on is None:
        return 1
    at, new_field, new_id = handed_on
    await _call(conn, w, new_id, call_id, kiosk, district, new_field, language, at, 1, call_id)
    return 2


async def _call(conn: AsyncConnection, w: _World, call_id: str, case_id: str, kiosk: Kiosk, district: str,
                field_id: str, language: str, t0: float, position: int,
                transferred_from: str | None) -> tuple[float, str, str] | None:
    """Write one call with its events; if it was handed on to another field: when, to which, the new call's id."""
    rng, rec = w.rng, w.records
    ctx: dict[str, Any] = {"call_id": call_id, "case_id": case_id, "field": field_id, "region": kiosk.region}
    candidates = [c for c in w.clerks[district] if field_id in c.fields] or w.clerks[district]
    clerk = rng.choice(candidates)
    wait = _wait(rng)
    abandoned = transferred_from is None and rng.random() < (0.05 if wait < 600 else 0.3)
    if abandoned:
        wait = rng.uniform(60, wait) if wait > 60 else wait
    row = await sealing.insert(conn, calls, dict(
        id=call_id, case_id=case_id, kiosk_id=kiosk.id, field=field_id, language=language, region=kiosk.region,
        district=district, requested_at=t0, transferred_from=transferred_from))
    await rec.append(conn, "requested", actor=f"kiosk:{kiosk.id}", at=t0, **ctx, seals=sealing.seal(calls, row),
                     data={"language": language, "kiosk": kiosk.name, "transferred_from": transferred_from})
    await rec.append(conn, "queued", actor="system", at=t0 + 0.05, **ctx, data={
        "position": position, "estimated_wait_s": round(position * 240.0, 1), "reason": ""})
    if abandoned:
        end = t0 + wait
        row = await _update_call(conn, call_id, ended_at=end, end_reason="cancelled", ended_by="visitor")
        await rec.append(conn, "ended", actor="visitor", at=end, **ctx, data={"reason": "cancelled", "clerk_id": None},
                         seals=sealing.seal(calls, row))
        return None
    answered = t0 + wait
    await rec.append(conn, "rung", actor="system", at=answered - rng.uniform(3, 12), **ctx,
                     data={"clerk_id": clerk.id, "ring": 1})
    await rec.append(conn, "accepted", actor=f"clerk:{clerk.id}", at=answered, **ctx, data={"clerk_id": clerk.id})
    await rec.append(conn, "media_connected", actor=f"kiosk:{kiosk.id}", at=answered + 1.2, **ctx,
                     data={"side": "visitor"})
    await rec.append(conn, "media_connected", actor=f"clerk:{clerk.id}", at=answered + 1.4, **ctx,
                     data={"side": "clerk"})
    end = answered + rng.uniform(3 * 60, 18 * 60)
    others = [f for f in w.settings.catalog.ids() if f != field_id]
    transfer_to = rng.choice(others) if others and transferred_from is None and rng.random() < 0.06 else None
    new_id = secrets.token_urlsafe(16)
    if transfer_to is not None:
        await rec.append(conn, "transferred", actor=f"clerk:{clerk.id}", at=end - 0.5, **ctx,
                         data={"to_field": transfer_to, "new_call_id": new_id})
        reason, by = "transferred", "clerk"
    else:
        reason, by = "hangup", rng.choice(["visitor", "clerk"])
    row = await _update_call(conn, call_id, answered_at=answered, clerk_id=clerk.id, ended_at=end, end_reason=reason,
                             ended_by=by)
    await rec.append(conn, "ended", actor=by, at=end, **ctx, data={"reason": reason, "clerk_id": clerk.id},
                     seals=sealing.seal(calls, row))
    if transfer_to is None and rng.random() < 0.75:  # the visitor rates on the kiosk right after hanging up
        roll = rng.random()
        score = "satisfied" if roll < 0.85 else "neutral" if roll < 0.95 else "dissatisfied"
        why = rng.choice(["等待时间太长 waited too long", ""]) if score == "dissatisfied" else ""
        rated = end + rng.uniform(5, 25)
        rating = await sealing.insert(conn, ratings, dict(call_id=call_id, score=score, reason=why, at=rated))
        await rec.append(conn, "rated", actor=f"kiosk:{kiosk.id}", at=rated, **ctx,
                         data={"score": score, "reason": why}, seals=sealing.seal(ratings, rating))
    wrapped = end + rng.uniform(40, 150)
    await _wrap_up(conn, w, ctx, clerk, district, end + 30, wrapped, referred=transfer_to is not None)
    return None if transfer_to is None else (end, transfer_to, new_id)


async def _wrap_up(conn: AsyncConnection, w: _World, ctx: dict[str, Any], clerk: Clerk, district: str,
                   logged: float, wrapped: float, referred: bool) -> None:
    rng, rec, tz = w.rng, w.records, w.settings.tz
    field = w.settings.catalog.get(ctx["field"])
    actor = f"clerk:{clerk.id}"
    count = 1 if referred or rng.random() < 0.7 else 2
    opened: list[tuple[int, dt.date]] = []
    for _ in range(count):
        matter_type = rng.choice(field.matters).id if field.matters else "consultation"
        roll = rng.random()
        outcome = "referred" if referred else "completed" if roll < 0.72 else "referred" if roll < 0.8 else "yet_to_do"
        code = sample_credit_code(rng) if rng.random() < 0.85 else None
        entity = rng.choice(ENTITY_NAMES) if code else ""
        matter = await sealing.insert(conn, matters, dict(
            call_id=ctx["call_id"], case_id=ctx["case_id"], clerk_id=clerk.id, field=ctx["field"],
            matter_type=matter_type, credit_code=code, entity_name=entity, outcome=outcome, notes="",
            created_at=logged))
        matter_id = int(matter["id"])
        await rec.append(conn, "matter_logged", actor=actor, at=logged, **ctx, seals=sealing.seal(matters, matter),
                         data={"matter_id": matter_id, "matter_type": matter_type, "credit_code": code,
                               "entity_name": entity, "outcome": outcome})
        if outcome != "yet_to_do":
            continue
        kind = rng.choices(["simple", "general", "complex"], [2, 6, 2])[0]
        due = _due(w.settings, kind, dt.datetime.fromtimestamp(logged, tz))
        followup = await sealing.insert(conn, followups, dict(
            source="matter", call_id=ctx["call_id"], case_id=ctx["case_id"], matter_id=matter_id, field=ctx["field"],
            region=ctx["region"], district=district, kind=kind, opened_at=logged, due_date=due.isoformat(),
            assignee=clerk.id, status="open", description="补充材料后办理 to finish once documents arrive"))
        fid = int(followup["id"])
        await rec.append(conn, "followup_opened", actor=actor, at=logged + 0.1, **ctx,
                         seals=sealing.seal(followups, followup), data={
            "followup_id": fid, "matter_id": matter_id, "kind": kind, "due_date": due.isoformat()})
        opened.append((fid, due))
    row = await _update_call(conn, ctx["call_id"], wrapped_up_at=wrapped)
    await rec.append(conn, "wrapped_up", actor=actor, at=wrapped, **ctx, data={"matters": count},
                     seals=sealing.seal(calls, row))
    planned = [(at, fid, due) for fid, due in opened if (at := _resolution_time(w, due, wrapped)) is not None]
    for at, fid, due in sorted(planned):  # in the order they happened
        await _resolve(conn, w, fid, due, at, clerk, ctx)


async def _update_call(conn: AsyncConnection, call_id: str, **values: Any) -> dict[str, Any]:
    row = await sealing.update(conn, calls, call_id, values)
    assert row is not None
    return row


def _resolution_time(w: _World, due: dt.date, opened: float) -> float | None:
    """When a follow-up gets resolved: mostly by its deadline, some late, some not yet (None)."""
    rng, tz = w.rng, w.settings.tz
    roll = rng.random()
    if roll < 0.75:
        day = due - dt.timedelta(days=rng.randint(0, max(0, (due - dt.datetime.fromtimestamp(opened, tz).date()).days)))
    elif roll < 0.88:
        day = due + dt.timedelta(days=rng.randint(1, 3))
    else:
        return None
    at = max(opened + 600, dt.datetime.combine(day, dt.time(10), tz).timestamp() + rng.uniform(0, 6 * 3600))
    return at if at < w.now else None


async def _resolve(conn: AsyncConnection, w: _World, fid: int, due: dt.date, at: float, clerk: Clerk,
                   ctx: dict[str, Any]) -> None:
    on_time = dt.datetime.fromtimestamp(at, w.settings.tz).date() <= due
    row = await sealing.update(conn, followups, fid, dict(
        status="resolved", resolved_at=at, resolved_by=clerk.id, resolution_note="已办结 done"))
    assert row is not None
    await w.records.append(conn, "followup_resolved", actor=f"user:{clerk.id}", at=at, **ctx,
                           seals=sealing.seal(followups, row), data={
        "followup_id": fid, "due_date": due.isoformat(), "on_time": on_time, "by": clerk.name})


async def _callback(conn: AsyncConnection, w: _World, day: dt.date, district: str, field_id: str) -> None:
    """A callback request left at a kiosk outside service hours."""
    rng, tz = w.rng, w.settings.tz
    kiosk = rng.choice(w.kiosks[district])
    at = dt.datetime.combine(day, dt.time(18), tz).timestamp() + rng.uniform(0, 3 * 3600)
    due = _due(w.settings, "general", dt.datetime.fromtimestamp(at, tz))
    case_id = secrets.token_urlsafe(16)
    followup = await sealing.insert(conn, followups, dict(
        source="callback", case_id=case_id, field=field_id, region=kiosk.region, district=district, kind="general",
        opened_at=at, due_date=due.isoformat(), status="open", phone=f"1380000{rng.randint(0, 9999):04d}",
        description="请回电咨询 please call back"))
    fid = int(followup["id"])
    ctx: dict[str, Any] = {"case_id": case_id, "field": field_id, "region": kiosk.region}
    await w.records.append(conn, "callback_requested", actor=f"kiosk:{kiosk.id}", at=at, **ctx,
                           seals=sealing.seal(followups, followup),
                           data={"followup_id": fid, "language": "zh", "due_date": due.isoformat()})
    clerk = rng.choice([c for c in w.clerks[district] if field_id in c.fields] or w.clerks[district])
    assigned = await sealing.update(conn, followups, fid, {"assignee": clerk.id})
    assert assigned is not None
    await w.records.append(conn, "followup_assigned", actor="system", at=at + 1, **ctx,
                           seals=sealing.seal(followups, assigned),
                           data={"followup_id": fid, "assignee": clerk.id, "assignee_name": clerk.name,
                                 "previous": None})
    resolved = _resolution_time(w, due, at)
    if resolved is not None:
        await _resolve(conn, w, fid, due, resolved, clerk, ctx)
