"""What clerks and visitors file about a call: matters, follow-ups, ratings, callback requests.

Each filing is one transaction: the rows and their events in the hash-chained
log are committed together, before the sender is acknowledged.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.records.chain import Records
from server.records.db import calls, followups, matters, ratings
from server.records.identities import Clerk, Kiosk
from server.settings import Settings
from signaling import errors
from signaling.creditcode import CreditCodeError, validate_credit_code
from signaling.errors import SignalingError
from signaling.messages import CallbackRequest, MatterIn, Rate, WrapUp
from signaling.workdays import YearNotCoveredError


class CaseWork:
    def __init__(self, settings: Settings, engine: AsyncEngine, records: Records) -> None:
        self.settings = settings
        self.engine = engine
        self.records = records

    def due_date(self, kind: str, opened: dt.datetime) -> dt.date:
        """The deadline in working days; a matter opened after closing time counts from the next working day."""
        local = opened.astimezone(self.settings.tz)
        hours = self.settings.open_hours()
        try:
            if hours is not None and local.time() >= hours[1]:
                start = self.settings.calendar.add_workdays(local.date(), 1)
                return self.settings.calendar.deadline_for(kind, start)
            return self.settings.calendar.deadline_for(kind, local)
        except YearNotCoveredError as exc:
            raise SignalingError(errors.INTERNAL, f"{exc}; an administrator must update config/calendar.toml") from None

    async def _call_row(self, conn: AsyncConnection, call_id: str) -> sa.RowMapping:
        row = (await conn.execute(calls.select().where(calls.c.id == call_id))).first()
        if row is None:
            raise SignalingError(errors.NO_SUCH_CALL, f"no call {call_id} on record")
        return row._mapping

    def _check_matters(self, field_id: str, items: list[MatterIn]) -> list[str | None]:
        """Validate every matter before anything is written; return the normalized credit codes."""
        field = self.settings.catalog.get(field_id)
        known = {m.id for m in field.matters}
        codes: list[str | None] = []
        for i, m in enumerate(items):
            if m.matter_type not in known:
                raise SignalingError(errors.UNKNOWN_MATTER_TYPE, f"matters[{i}].matter_type: {m.matter_type!r} is "
                                     f"not a matter of {field_id!r}; known: {', '.join(sorted(known))}")
            code = None
            if m.credit_code:
                try:
                    code = validate_credit_code(m.credit_code)
                except CreditCodeError as exc:
                    raise SignalingError(errors.INVALID_CREDIT_CODE, f"matters[{i}].credit_code: {exc}") from None
            codes.append(code)
        return codes

    async def pending_wrapups(self, clerk_id: str, within_s: float = 86_400) -> list[dict[str, Any]]:
        """The clerk's answered, ended calls of the last day that still wait for their wrap-up."""
        q = (sa.select(calls.c.id, calls.c.field, calls.c.ended_at)
             .where(calls.c.clerk_id == clerk_id, calls.c.answered_at.is_not(None), calls.c.ended_at.is_not(None),
                    calls.c.wrapped_up_at.is_(None), calls.c.ended_at > time.time() - within_s)
             .order_by(calls.c.ended_at))
        async with self.engine.connect() as conn:
            return [{"call_id": r.id, "field": r.field, "ended_at": r.ended_at} for r in await conn.execute(q)]

    async def wrap_up(self, clerk: Clerk, msg: WrapUp) -> dict[str, Any]:
        now = time.time()
        opened = dt.datetime.now(dt.UTC)
        out_matters: list[int] = []
        out_followups: list[dict[str, Any]] = []
        async with self.engine.begin() as conn:
            call = await self._call_row(conn, msg.call_id)
            if call["clerk_id"] != clerk.id:
                raise SignalingError(errors.NOT_PARTICIPANT, "this call was not yours")
            if call["ended_at"] is None:
                raise SignalingError(errors.WRONG_STATE, "the call is still in progress; hang up first")
            if call["wrapped_up_at"] is not None:
                raise SignalingError(errors.ALREADY_DONE, "this call has been wrapped up already")
            codes = self._check_matters(call["field"], msg.matters)
            ctx = {"call_id": call["id"], "case_id": call["case_id"], "field": call["field"],
                   "region": call["region"]}
            actor = f"clerk:{clerk.id}"
            for m, code in zip(msg.matters, codes, strict=True):
                res = await conn.execute(matters.insert().values(
                    call_id=call["id"], case_id=call["case_id"], clerk_id=clerk.id, field=call["field"],
                    matter_type=m.matter_type, credit_code=code, entity_name=m.entity_name, outcome=m.outcome,
                    notes=m.notes, created_at=now))
                matter_id = int(res.inserted_primary_key[0])  # type: ignore[index]
                out_matters.append(matter_id)
                await self.records.append(conn, "matter_logged", actor=actor, **ctx, data={
                    "matter_id": matter_id, "matter_type": m.matter_type, "credit_code": code,
                    "entity_name": m.entity_name, "outcome": m.outcome})
                if m.followup is not None:
                    due = self.due_date(m.followup, opened)
                    res = await conn.execute(followups.insert().values(
                        source="matter", call_id=call["id"], case_id=call["case_id"], matter_id=matter_id,
                        field=call["field"], region=call["region"], district=call["district"], kind=m.followup,
                        opened_at=now, due_date=due.isoformat(), assignee=clerk.id, status="open",
                        description=m.notes))
                    fid = int(res.inserted_primary_key[0])  # type: ignore[index]
                    out_followups.append({"id": fid, "kind": m.followup, "due_date": due.isoformat()})
                    await self.records.append(conn, "followup_opened", actor=actor, **ctx, data={
                        "followup_id": fid, "matter_id": matter_id, "kind": m.followup, "due_date": due.isoformat()})
            await conn.execute(calls.update().where(calls.c.id == call["id"]).values(wrapped_up_at=now))
            await self.records.append(conn, "wrapped_up", actor=actor, **ctx, data={"matters": len(out_matters)})
        return {"matters": out_matters, "followups": out_followups}

    async def rate(self, kiosk: Kiosk, msg: Rate) -> dict[str, Any]:
        async with self.engine.begin() as conn:
            call = await self._call_row(conn, msg.call_id)
            if call["kiosk_id"] != kiosk.id:
                raise SignalingError(errors.NOT_PARTICIPANT, "this call belongs to another kiosk")
            if call["ended_at"] is None or call["answered_at"] is None:
                raise SignalingError(errors.WRONG_STATE, "only a call that was answered and has ended can be rated")
            exists = (await conn.execute(sa.select(ratings.c.call_id).where(ratings.c.call_id == msg.call_id))).first()
            if exists is not None:
                raise SignalingError(errors.ALREADY_DONE, "this call has been rated already")
            await conn.execute(ratings.insert().values(call_id=msg.call_id, score=msg.score, reason=msg.reason,
                                                       at=time.time()))
            await self.records.append(conn, "rated", actor=f"kiosk:{kiosk.id}", call_id=call["id"],
                                      case_id=call["case_id"], field=call["field"], region=call["region"],
                                      data={"score": msg.score, "reason": msg.reason})
        return {}

    async def request_callback(self, kiosk: Kiosk, msg: CallbackRequest, district: str) -> dict[str, Any]:
        if msg.field not in self.settings.catalog:
            raise SignalingError(errors.UNKNOWN_FIELD, f"unknown service field {msg.field!r}")
        if msg.language not in self.settings.languages:
            raise SignalingError(errors.UNSUPPORTED_LANGUAGE, f"language {msg.language!r} is not offered")
        case_id = secrets.token_urlsafe(16)
        due = self.due_date("general", dt.datetime.now(dt.UTC))
        async with self.engine.begin() as conn:
            res = await conn.execute(followups.insert().values(
                source="callback", case_id=case_id, field=msg.field, region=kiosk.region, district=district,
                kind="general", opened_at=time.time(), due_date=due.isoformat(), status="open", phone=msg.phone,
                description=msg.description))
            fid = int(res.inserted_primary_key[0])  # type: ignore[index]
            # the phone number stays in the follow-up row only, not in the permanent log
            await self.records.append(conn, "callback_requested", actor=f"kiosk:{kiosk.id}", case_id=case_id,
                                      field=msg.field, region=kiosk.region,
                                      data={"followup_id": fid, "language": msg.language, "due_date": due.isoformat()})
        return {"followup_id": fid, "due_date": due.isoformat()}
