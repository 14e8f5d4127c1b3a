"""Fencing the routing leader in the records: a deposed leader's late writes are refused.

With several nodes, one at a time runs the core (:mod:`server.live.leader`).
Taking the lead increments a fencing token in the ``cluster_fence`` row;
every transaction of a leader's command checks that the token is still its own
and, in the same transaction, records which journal entry it commits. A leader
that lost its lease without noticing (a long pause) finds the token moved on:
its transaction fails with :class:`DeposedError` and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.records.db import cluster_fence


class DeposedError(RuntimeError):
    """Another node took the lead: this one must not write."""


@dataclass(frozen=True)
class Fence:
    epoch: int  # the leader's fencing token
    entry: str  # the journal entry (a Redis stream id) whose records the transaction commits


def entry_key(entry: str) -> tuple[int, int]:
    """A Redis stream id ("1733150000000-3") as a comparable pair; "" is before every entry."""
    if not entry:
        return (-1, -1)
    ms, _, seq = entry.partition("-")
    return int(ms), int(seq or 0)


async def take_lead(engine: AsyncEngine, node: str) -> tuple[int, str]:
    """Take the next fencing token for ``node``; return it and the last journal entry committed so far."""
    async with engine.begin() as conn:
        row = (await conn.execute(sa.select(cluster_fence.c.epoch, cluster_fence.c.last_id)
                                  .where(cluster_fence.c.id == 1).with_for_update())).one()
        epoch = int(row.epoch) + 1
        await conn.execute(cluster_fence.update().where(cluster_fence.c.id == 1)
                           .values(epoch=epoch, leader=node))
    return epoch, str(row.last_id)


async def check(conn: AsyncConnection, fence: Fence) -> None:
    """Inside a transaction: still the leader? Then mark ``fence.entry`` as committed with it."""
    result = await conn.execute(cluster_fence.update()
                                .where(cluster_fence.c.id == 1, cluster_fence.c.epoch == fence.epoch)
                                .values(last_id=fence.entry))
    if result.rowcount != 1:
        raise DeposedError(f"the fencing token {fence.epoch} is no longer the leader's")
