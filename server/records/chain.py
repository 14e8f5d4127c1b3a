"""The durable, tamper-evident log of every call, and the call records.

Every event carries ``hash = SHA-256(prev_hash, content)`` where ``prev_hash``
is the hash of the event written just before it (one chain over the whole
log, so a deleted call shows too). The newest hash and the number of events
are kept in ``chain_head`` and updated in the same transaction as the insert,
under a row lock, so concurrent writers (several nodes on PostgreSQL) extend
the chain one at a time. :meth:`Records.verify` walks the chain and names the
first broken link.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.records import seals as sealing
from server.records.db import calls, chain_head, events
from server.records.seals import Seals

GENESIS = "0" * 64


def event_hash(prev_hash: str, content: Mapping[str, Any]) -> str:
    body = json.dumps({"prev": prev_hash, **content}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def _content(row: Mapping[str, Any]) -> dict[str, Any]:
    content = {
        "call_id": row["call_id"], "case_id": row["case_id"], "at": repr(float(row["at"])), "kind": row["kind"],
        "actor": row["actor"], "field": row["field"], "region": row["region"], "data": row["data"],
    }
    if row.get("seals") is not None:  # events from before the seals hash as they always did
        content["seals"] = row["seals"]
    return content


@dataclass(frozen=True)
class ChainStatus:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    problem: str = ""

    def describe(self) -> str:
        if self.ok:
            return f"hash chain intact: {self.checked} events verified"
        return (f"hash chain BROKEN at event {self.first_bad_id}: {self.problem} "
                f"({self.checked} events before it are intact)")


class ChainHead:
    """The chain's head, locked for one transaction: events are chained onto it, then it is stored once.

    Take the lock before reading the head: SQLite ignores FOR UPDATE, and its driver runs a SELECT before
    the transaction's first write outside any transaction, so two writers could otherwise both read the
    same head and fork the chain. (On PostgreSQL the update locks the row too.)
    """

    def __init__(self, last_hash: str, count: int) -> None:
        self.last_hash = last_hash
        self.count = count

    @classmethod
    async def lock(cls, conn: AsyncConnection) -> ChainHead:
        await conn.execute(chain_head.update().where(chain_head.c.id == 1).values(count=chain_head.c.count))
        last_hash, count = (await conn.execute(
            sa.select(chain_head.c.last_hash, chain_head.c.count).where(chain_head.c.id == 1).with_for_update()
        )).one()
        return cls(last_hash, count)

    def event(
        self, kind: str, *, actor: str, call_id: str | None = None, case_id: str | None = None,
        field: str | None = None, region: str | None = None, data: Mapping[str, Any] | None = None,
        at: float | None = None, seals: Seals | None = None,
    ) -> dict[str, Any]:
        """The next event's row, chained onto the head (insert it in the same transaction).

        ``seals``: the seals of the rows written with it (:mod:`server.records.seals`).
        """
        row = {"call_id": call_id, "case_id": case_id, "at": time.time() if at is None else at, "kind": kind,
               "actor": actor, "field": field, "region": region, "data": dict(data or {}), "seals": seals or None}
        digest = event_hash(self.last_hash, _content(row))
        row["prev_hash"] = self.last_hash
        row["hash"] = digest
        self.last_hash = digest
        self.count += 1
        return row

    async def store(self, conn: AsyncConnection) -> None:
        await conn.execute(chain_head.update().where(chain_head.c.id == 1)
                           .values(last_hash=self.last_hash, count=self.count))


class Records:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def append(
        self, conn: AsyncConnection, kind: str, *, actor: str, call_id: str | None = None,
        case_id: str | None = None, field: str | None = None, region: str | None = None,
        data: Mapping[str, Any] | None = None, at: float | None = None, seals: Seals | None = None,
    ) -> int:
        """Append one event inside the caller's transaction ``conn``; return its id."""
        head = await ChainHead.lock(conn)
        row = head.event(kind, actor=actor, call_id=call_id, case_id=case_id, field=field, region=region, data=data,
                         at=at, seals=seals)
        result = await conn.execute(events.insert().values(**row))
        await head.store(conn)
        pk = result.inserted_primary_key
        assert pk is not None
        return int(pk[0])

    async def log(self, kind: str, **kw: Any) -> int:
        """Append one event in a transaction of its own, committed when this returns."""
        async with self.engine.begin() as conn:
            return await self.append(conn, kind, **kw)

    async def open_call(self, values: Mapping[str, Any], actor: str, data: Mapping[str, Any]) -> None:
        """A call's row and its ``requested`` event, in a transaction of their own."""
        async with self.engine.begin() as conn:
            row = await sealing.insert(conn, calls, values)
            await self.append(conn, "requested", actor=actor, call_id=values["id"], case_id=values["case_id"],
                              field=values["field"], region=values["region"], data=data,
                              at=values["requested_at"], seals=sealing.seal(calls, row))

    async def call_event(self, call_id: str, kind: str, actor: str, data: Mapping[str, Any] | None = None,
                         update: Mapping[str, Any] | None = None) -> None:
        """Log an event of a call (taking its case, field and region) and optionally update its row."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(sa.select(calls.c.case_id, calls.c.field, calls.c.region)
                                      .where(calls.c.id == call_id))).first()
            if row is None:
                raise KeyError(f"no call record {call_id}")
            written = await sealing.update(conn, calls, call_id, update) if update else None
            await self.append(conn, kind, actor=actor, call_id=call_id, case_id=row.case_id, field=row.field,
                              region=row.region, data=data, seals=sealing.seal(calls, written) if written else None)

    async def call(self, call_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(calls.select().where(calls.c.id == call_id))).first()
        return dict(row._mapping) if row else None

    async def timeline(self, call_id: str) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(events.select().where(events.c.call_id == call_id).order_by(events.c.id))
            return [dict(r._mapping) for r in rows]

    async def verify_call(self, call_id: str) -> ChainStatus:
        """Check one call's events: each matches its hash and follows the event before it in the chain."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(events.select().where(events.c.call_id == call_id)
                                       .order_by(events.c.id))).all()
            for n, r in enumerate(rows):
                m = dict(r._mapping)
                if event_hash(m["prev_hash"], _content(m)) != m["hash"]:
                    return ChainStatus(False, n, m["id"], "its content does not match its hash (the event was altered)")
                before = (await conn.execute(sa.select(events.c.hash).where(events.c.id < m["id"])
                                             .order_by(events.c.id.desc()).limit(1))).scalar()
                if (before or GENESIS) != m["prev_hash"]:
                    return ChainStatus(False, n, m["id"], "it does not follow the event before it in the log")
        return ChainStatus(True, len(rows))

    async def verify(self, batch: int = 5000, visit: Visitor | None = None) -> ChainStatus:
        """Walk the whole chain; ``visit(position, event)`` sees every event found intact, in order."""
        walk = ChainWalk(visit)
        return await walk.run(self.engine, batch)


Visitor = Callable[[int, Mapping[str, Any]], None]


class ChainWalk:
    """A walk along the chain that can be taken up again (:meth:`resume`) past where it ended."""

    def __init__(self, visit: Visitor | None = None) -> None:
        self.visit = visit
        self.prev = GENESIS
        self.checked = 0
        self.last_id = 0

    async def _step(self, conn: AsyncConnection, batch: int, mark: int = -1) -> tuple[ChainStatus | None, str]:
        """Walk to the end; return the break found (or None) and the hash at position ``mark``."""
        hash_at_mark = GENESIS
        while True:
            rows = (await conn.execute(events.select().where(events.c.id > self.last_id)
                                       .order_by(events.c.id).limit(batch))).all()
            if not rows:
                return None, hash_at_mark
            for r in rows:
                m = r._mapping
                if m["prev_hash"] != self.prev:
                    return ChainStatus(False, self.checked, m["id"], "it does not follow the event before it "
                                       "(an event was removed, inserted or reordered)"), hash_at_mark
                if event_hash(self.prev, _content(dict(m))) != m["hash"]:
                    return ChainStatus(False, self.checked, m["id"], "its content does not match its hash "
                                       "(the event was altered)"), hash_at_mark
                self.prev = m["hash"]
                self.checked += 1
                self.last_id = m["id"]
                if self.visit is not None:
                    self.visit(self.checked, dict(m))
                if self.checked == mark:
                    hash_at_mark = self.prev

    async def run(self, engine: AsyncEngine, batch: int = 5000) -> ChainStatus:
        # Other writers (other nodes) may append while the log is walked, so the head is read before and after
        # the walk: the walk must reach the head of before (and pass through its hash) and end within the head
        # of after. With no writer, both are the same and this is "the log ends exactly at the head".
        head_select = sa.select(chain_head).where(chain_head.c.id == 1)
        async with engine.connect() as conn:
            before = (await conn.execute(head_select)).one()._mapping
            broken, hash_at_before = await self._step(conn, batch, before["count"])
            if broken is not None:
                return broken
            if before["count"] == 0:
                hash_at_before = GENESIS
            after = (await conn.execute(head_select)).one()._mapping
        checked, prev = self.checked, self.prev
        if checked < before["count"] or hash_at_before != before["last_hash"]:
            return ChainStatus(False, checked, None, f"the log ends at {checked} events but {before['count']} were "
                               "written (events were removed from the end)")
        if checked > after["count"] or (checked == after["count"] and prev != after["last_hash"]):
            return ChainStatus(False, checked, None, f"the log holds {checked} events but {after['count']} were "
                               "written (events were added at the end behind the chain head's back)")
        return ChainStatus(True, checked)

    async def resume(self, engine: AsyncEngine, batch: int = 5000) -> ChainStatus | None:
        """Walk on over what was appended since; the break found there, if any."""
        async with engine.connect() as conn:
            broken, _ = await self._step(conn, batch)
        return broken
