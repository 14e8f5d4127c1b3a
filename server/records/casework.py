"""The records of calls: what the core decided, written to SQL, and what the core needs back at start.

:meth:`CaseFiles.commit` writes every record effect of one command (a call
opened, its events, a wrap-up with matters and follow-ups, a rating, a
callback request) in **one** transaction, with the chain head locked once; it
returns what the records give the sender's acknowledgement (matter and
follow-up ids). :meth:`CaseFiles.recover` closes the calls a killed server left
open and tells the core which wrap-ups are still owed and which calls ended of
late.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.records import seals as sealing
from server.records.chain import ChainHead
from server.records.db import calls, events, followups, matters, ratings
from server.records.fence import Fence, check
from server.records.seals import Seals
from signaling.casefile import EndedCall, PendingWrapUp
from signaling.effects import CallEvent, CaseRef, FileCallback, FileRating, FileWrapUp, OpenCall, Record

logger = logging.getLogger(__name__)

RECENT_S = 86_400.0  # calls ended this recently can still be rated (and answer "already done")
SERVER_RESTARTED = "server_restarted"


class CaseFiles:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def commit(self, records: Sequence[Record], fence: Fence | None = None) -> dict[str, Any]:
        """Write ``records`` in one transaction; return the fields they add to the acknowledgement.

        With a ``fence`` (several nodes), the transaction first checks that its leader still leads.
        """
        reply: dict[str, Any] = {}
        async with self.engine.begin() as conn:
            if fence is not None:
                await check(conn, fence)
            head = await ChainHead.lock(conn)
            rows: list[dict[str, Any]] = []
            for r in records:
                match r:
                    case OpenCall():
                        await self._open_call(conn, head, rows, r)
                    case CallEvent():
                        written = await sealing.update(conn, calls, r.case.call_id, r.update) if r.update else None
                        rows.append(_event(head, r.case, r.kind, r.actor, r.at, r.data,
                                           sealing.seal(calls, written) if written else None))
                    case FileWrapUp():
                        reply.update(await self._wrap_up(conn, head, rows, r))
                    case FileRating():
                        rating = await sealing.insert(conn, ratings, {"call_id": r.case.call_id, "score": r.score,
                                                                      "reason": r.reason, "at": r.at})
                        rows.append(_event(head, r.case, "rated", f"kiosk:{r.kiosk_id}", r.at,
                                           {"score": r.score, "reason": r.reason}, sealing.seal(ratings, rating)))
                    case FileCallback():
                        reply.update(await self._callback(conn, head, rows, r))
            if rows:
                await conn.execute(events.insert(), rows)
                await head.store(conn)
        return reply

    @staticmethod
    async def _open_call(conn: AsyncConnection, head: ChainHead, rows: list[dict[str, Any]], r: OpenCall) -> None:
        c = r.case
        row = await sealing.insert(conn, calls, dict(
            id=c.call_id, case_id=c.case_id, kiosk_id=r.kiosk_id, field=c.field, language=r.language, region=c.region,
            district=c.district, requested_at=r.at, transferred_from=r.transferred_from))
        rows.append(_event(head, c, "requested", r.actor, r.at, r.data, sealing.seal(calls, row)))

    @staticmethod
    async def _wrap_up(conn: AsyncConnection, head: ChainHead, rows: list[dict[str, Any]],
                       r: FileWrapUp) -> dict[str, Any]:
        c = r.case
        actor = f"clerk:{r.clerk_id}"
        matter_ids: list[int] = []
        opened: list[dict[str, Any]] = []
        for m in r.matters:
            matter = await sealing.insert(conn, matters, dict(
                call_id=c.call_id, case_id=c.case_id, clerk_id=r.clerk_id, field=c.field, matter_type=m.matter_type,
                credit_code=m.credit_code, entity_name=m.entity_name, outcome=m.outcome, notes=m.notes,
                created_at=r.at))
            matter_id = int(matter["id"])
            matter_ids.append(matter_id)
            rows.append(_event(head, c, "matter_logged", actor, r.at, {
                "matter_id": matter_id, "matter_type": m.matter_type, "credit_code": m.credit_code,
                "entity_name": m.entity_name, "outcome": m.outcome}, sealing.seal(matters, matter)))
            if m.followup is not None and m.due_date is not None:
                followup = await sealing.insert(conn, followups, dict(
                    source="matter", call_id=c.call_id, case_id=c.case_id, matter_id=matter_id, field=c.field,
                    region=c.region, district=c.district, kind=m.followup, opened_at=r.at, due_date=m.due_date,
                    assignee=r.clerk_id, status="open", description=m.notes))
                fid = int(followup["id"])
                opened.append({"id": fid, "kind": m.followup, "due_date": m.due_date})
                rows.append(_event(head, c, "followup_opened", actor, r.at, {
                    "followup_id": fid, "matter_id": matter_id, "kind": m.followup, "due_date": m.due_date},
                    sealing.seal(followups, followup)))
        call = await sealing.update(conn, calls, c.call_id, {"wrapped_up_at": r.at})
        rows.append(_event(head, c, "wrapped_up", actor, r.at, {"matters": len(matter_ids)},
                           sealing.seal(calls, call) if call else None))
        return {"matters": matter_ids, "followups": opened}

    @staticmethod
    async def _callback(conn: AsyncConnection, head: ChainHead, rows: list[dict[str, Any]],
                        r: FileCallback) -> dict[str, Any]:
        if r.merge:  # the same kiosk asked for this callback already: its open follow-up is updated, not doubled
            found = (await conn.execute(
                sa.select(followups.c.id, followups.c.due_date, followups.c.phone, followups.c.description)
                .where(followups.c.case_id == r.case_id, followups.c.source == "callback",
                       followups.c.status == "open")
                .order_by(followups.c.id.desc()).limit(1))).first()
            if found is not None:
                changes = {k: v for k, v in (("phone", r.phone), ("description", r.description))
                           if v != getattr(found, k)}
                if changes:  # nothing new, nothing written
                    updated = await sealing.update(conn, followups, found.id, changes)
                    rows.append(head.event("callback_updated", actor=f"kiosk:{r.kiosk_id}", case_id=r.case_id,
                                           field=r.field, region=r.region, at=r.at,
                                           seals=sealing.seal(followups, updated) if updated else None,
                                           data={"followup_id": found.id, "language": r.language,
                                                 "changed": sorted(changes)}))
                return {"followup_id": found.id, "due_date": found.due_date, "merged": True}
        followup = await sealing.insert(conn, followups, dict(
            source="callback", case_id=r.case_id, field=r.field, region=r.region, district=r.district,
            kind="general", opened_at=r.at, due_date=r.due_date, status="open", phone=r.phone,
            description=r.description))
        fid = int(followup["id"])
        # the phone number stays in the follow-up row only, not in the permanent log (its salted seal is)
        rows.append(head.event("callback_requested", actor=f"kiosk:{r.kiosk_id}", case_id=r.case_id, field=r.field,
                               region=r.region, at=r.at, seals=sealing.seal(followups, followup),
                               data={"followup_id": fid, "language": r.language, "due_date": r.due_date}))
        reply: dict[str, Any] = {"followup_id": fid, "due_date": r.due_date}
        if r.merge:  # the earlier request was closed meanwhile: this one is new after all
            reply["merged"] = False
        return reply

    async def recover(self, now: float | None = None) -> tuple[list[PendingWrapUp], list[EndedCall]]:
        """Close calls a killed server left open; return the wrap-ups owed and the calls ended of late."""
        now = time.time() if now is None else now
        async with self.engine.begin() as conn:
            open_calls = (await conn.execute(calls.select().where(calls.c.ended_at.is_(None)))).all()
            if open_calls:
                head = await ChainHead.lock(conn)
                rows = []
                for c in open_calls:
                    case = _case(c._mapping)
                    closed = await sealing.update(conn, calls, c.id, {
                        "ended_at": now, "end_reason": SERVER_RESTARTED, "ended_by": "system"})
                    rows.append(_event(head, case, "ended", "system", now,
                                       {"reason": SERVER_RESTARTED, "clerk_id": c.clerk_id if c.answered_at else None},
                                       sealing.seal(calls, closed) if closed else None))
                await conn.execute(events.insert(), rows)
                await head.store(conn)
                logger.warning("closed %d call(s) left open by the previous run (reason %s)", len(open_calls),
                               SERVER_RESTARTED)
            owed = (await conn.execute(calls.select().where(
                calls.c.answered_at.is_not(None), calls.c.ended_at.is_not(None), calls.c.wrapped_up_at.is_(None),
                calls.c.clerk_id.is_not(None)))).all()
            recent = (await conn.execute(
                sa.select(calls, ratings.c.call_id.label("rated"))
                .select_from(calls.outerjoin(ratings, ratings.c.call_id == calls.c.id))
                .where(calls.c.ended_at > now - RECENT_S).order_by(calls.c.ended_at))).all()
        pending = [PendingWrapUp(_case(r._mapping), r.clerk_id, r.ended_at) for r in owed]
        ended = [EndedCall(_case(r._mapping), r.kiosk_id, r.clerk_id if r.answered_at else None, r.ended_at,
                           rated=r.rated is not None, wrapped_up=r.wrapped_up_at is not None) for r in recent]
        return pending, ended


def _case(row: Any) -> CaseRef:
    return CaseRef(row["id"], row["case_id"], row["field"], row["region"], row["district"])


def _event(head: ChainHead, case: CaseRef, kind: str, actor: str, at: float, data: Any,
           seals: Seals | None = None) -> dict[str, Any]:
    return head.event(kind, actor=actor, call_id=case.call_id, case_id=case.case_id, field=case.field,
                      region=case.region, data=data, at=at, seals=seals)
