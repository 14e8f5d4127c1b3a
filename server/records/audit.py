"""The whole check of the records (``vwindow records verify``): one walk of the chain, three verdicts.

1. the hash chain: every event matches its hash and follows the one before
   (:class:`~server.records.chain.ChainWalk`);
2. the rows the pages read: each matches the last seal the chain holds for it
   (:class:`~server.records.seals.RowCheck`);
3. the signed checkpoints, stored and exported: each signature verifies with a
   trusted key and the chain has, at each checkpoint's length, its hash
   (:class:`~server.records.checkpoints.CheckpointCheck`).

When the chain itself is broken, the other two are not judged: what the
chain says can no longer be trusted to judge them by.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from server.records.chain import ChainStatus, ChainWalk
from server.records.checkpoints import CheckpointCheck, CheckpointsStatus
from server.records.seals import RowCheck, RowsStatus


@dataclass(frozen=True)
class Audit:
    chain: ChainStatus
    rows: RowsStatus | None
    checkpoints: CheckpointsStatus | None

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.rows is not None and self.rows.ok and self.checkpoints is not None \
            and self.checkpoints.ok

    def describe(self) -> str:
        lines = [self.chain.describe()]
        if self.rows is None or self.checkpoints is None:
            lines.append("rows and checkpoints not checked: the chain they are checked against is broken")
        else:
            lines += [self.rows.describe(), self.checkpoints.describe()]
        return "\n".join(lines)


async def audit(engine: AsyncEngine, trusted: Mapping[str, bytes], exported: Iterable[dict[str, Any]] = (),
                batch: int = 5000) -> Audit:
    cps = await CheckpointCheck.load(engine, trusted, exported)  # before the walk: all within what it will see
    rows = RowCheck()

    def visit(position: int, event: Mapping[str, Any]) -> None:
        rows.visit(event)
        cps.visit(position, event)

    walk = ChainWalk(visit)
    chain = await walk.run(engine, batch)
    if not chain.ok:
        return Audit(chain, None, None)
    async with engine.connect() as conn:
        read = await rows.scan(conn, batch)
    walk.visit = lambda _position, event: rows.visit_late(event)
    late = await walk.resume(engine, batch)  # what other writers appended meanwhile
    if late is not None:
        return Audit(late, None, None)
    return Audit(chain, rows.result(read), cps.result(chain.checked))
