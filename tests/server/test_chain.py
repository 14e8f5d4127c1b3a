"""The hash chain with several writers at once, as several server nodes write to one PostgreSQL database."""

from __future__ import annotations

import asyncio

import pytest

from server.records import db
from server.records.chain import GENESIS, Records, event_hash
from tests.server.conftest import run_sql

pytestmark = pytest.mark.databases

NODES = 4
EVENTS_PER_NODE = 40


async def test_concurrent_writers_on_several_nodes_extend_one_chain(db_url: str) -> None:
    await asyncio.to_thread(db.upgrade, db_url)
    engines = [db.make_engine(db_url) for _ in range(NODES)]  # one engine (connection pool) per node
    try:
        async def node(n: int) -> None:
            records = Records(engines[n])
            for i in range(EVENTS_PER_NODE):
                await records.log("test_event", actor=f"node:{n}", data={"node": n, "i": i})

        await asyncio.gather(*(node(n) for n in range(NODES)))
        status = await Records(engines[0]).verify()
        assert status.ok and status.checked == NODES * EVENTS_PER_NODE, status.describe()
    finally:
        for engine in engines:
            await engine.dispose()
    rows = await run_sql(db_url, "SELECT prev_hash, hash FROM events ORDER BY id")
    assert [r[0] for r in rows] == [GENESIS] + [r[1] for r in rows[:-1]]  # one line: no two events share a parent
    assert await run_sql(db_url, "SELECT last_hash, count FROM chain_head") == [(rows[-1][1], len(rows))]


async def test_verify_while_other_nodes_write(db_url: str) -> None:
    """A check of the whole log on a live system sees the chain as of one moment, not a half-written end."""
    await asyncio.to_thread(db.upgrade, db_url)
    writer, reader = db.make_engine(db_url), db.make_engine(db_url)
    try:
        records = Records(writer)
        for i in range(200):
            await records.log("test_event", actor="node:0", data={"i": i})
        stop = asyncio.Event()

        async def keep_writing() -> None:
            i = 0
            while not stop.is_set():
                await records.log("test_event", actor="node:1", data={"i": i})
                i += 1

        task = asyncio.create_task(keep_writing())
        try:
            for _ in range(5):
                status = await Records(reader).verify(batch=50)
                assert status.ok, status.describe()
        finally:
            stop.set()
            await task
    finally:
        await writer.dispose()
        await reader.dispose()


def test_event_hash_is_over_canonical_json() -> None:
    """Key order does not matter (PostgreSQL's json keeps the text, jsonb would reorder; both hash the same)."""
    a = event_hash(GENESIS, {"kind": "x", "data": {"a": 1, "b": 2}})
    assert a == event_hash(GENESIS, {"data": {"b": 2, "a": 1}, "kind": "x"})


async def test_verify_names_events_removed_from_or_added_at_the_end(db_url: str) -> None:
    await asyncio.to_thread(db.upgrade, db_url)
    engine = db.make_engine(db_url)
    try:
        records = Records(engine)
        for i in range(3):
            last = await records.log("test_event", actor="node:0", data={"i": i})
        await run_sql(db_url, "DELETE FROM events WHERE id = :id", id=last)
        status = await records.verify()
        assert not status.ok and "removed from the end" in status.problem and status.checked == 2
        # a head put back by hand to the first event: now the log is longer than the head says
        await run_sql(db_url, "UPDATE chain_head SET count = 1, last_hash = (SELECT hash FROM events "
                      "ORDER BY id LIMIT 1)")
        status = await records.verify()
        assert not status.ok and "added at the end" in status.problem
    finally:
        await engine.dispose()
