"""Token look-ups that arrive together share a query; none is answered from before it was asked."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from pathlib import Path

import pytest

from server.records import db
from server.records.batching import MAX_BATCH, BatchedLookup
from server.records.db import make_engine
from server.records.identities import IdentityStore


class Source:
    def __init__(self) -> None:
        self.values = {f"k{i}": i for i in range(2000)}
        self.queries: list[list[str]] = []
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def fetch(self, keys: Collection[str]) -> dict[str, int]:
        self.queries.append(list(keys))
        found = {k: self.values[k] for k in keys if k in self.values}  # read when the query starts
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError("database down")
        return found


async def test_lookups_of_one_turn_share_a_query() -> None:
    source = Source()
    lookup = BatchedLookup[str, int](source.fetch)
    got = await asyncio.gather(*(lookup.get(f"k{i}") for i in range(50)), lookup.get("nope"), lookup.get("k3"))
    assert got == [*range(50), None, 3]
    assert len(source.queries) == 1 and sorted(source.queries[0]) == sorted({f"k{i}" for i in range(50)} | {"nope"})


async def test_lookups_during_a_query_wait_for_the_next_one() -> None:
    source = Source()
    source.gate = asyncio.Event()
    lookup = BatchedLookup[str, int](source.fetch)
    first = asyncio.ensure_future(lookup.get("k1"))
    await asyncio.sleep(0.01)
    assert source.queries == [["k1"]]
    source.values["k1"] = 100  # changed while the first query runs: a look-up asked now must see it
    later = asyncio.ensure_future(asyncio.gather(lookup.get("k1"), lookup.get("k2")))
    await asyncio.sleep(0.01)
    source.gate.set()
    assert await first == 1
    assert await later == [100, 2]
    assert source.queries == [["k1"], ["k1", "k2"]]


async def test_large_batches_are_split() -> None:
    source = Source()
    lookup = BatchedLookup[str, int](source.fetch)
    got = await asyncio.gather(*(lookup.get(f"k{i}") for i in range(MAX_BATCH + 10)))
    assert got == list(range(MAX_BATCH + 10))
    assert [len(q) for q in source.queries] == [MAX_BATCH, 10]


async def test_a_failed_query_fails_its_lookups_only() -> None:
    source = Source()
    lookup = BatchedLookup[str, int](source.fetch)
    source.fail = True
    with pytest.raises(RuntimeError):
        await lookup.get("k1")
    source.fail = False
    assert await lookup.get("k1") == 1


async def test_a_cancelled_lookup_does_not_disturb_the_others() -> None:
    source = Source()
    source.gate = asyncio.Event()
    lookup = BatchedLookup[str, int](source.fetch)
    gone, kept = asyncio.ensure_future(lookup.get("k5")), asyncio.ensure_future(lookup.get("k5"))
    await asyncio.sleep(0.01)
    gone.cancel()
    source.gate.set()
    assert await kept == 5
    assert gone.cancelled()


async def test_revoked_tokens_are_refused_at_once(tmp_path: Path) -> None:
    url = db.sqlite_url(tmp_path / "records.sqlite3")
    await asyncio.to_thread(db.upgrade, url)
    engine = make_engine(url)
    store = IdentityStore(engine)
    try:
        kiosks = [await store.add_kiosk(f"Kiosk {i}", "sh/jiading/xincheng/park-3") for i in range(20)]
        clerk, clerk_token = await store.add_clerk("Clerk", ["tax"], ["sh/jiading"], ["en"])
        found = await asyncio.gather(*(store.kiosk_by_token(token) for _, token in kiosks))
        assert found == [kiosk for kiosk, _ in kiosks]
        assert await store.clerk_by_token(clerk_token) == clerk
        assert await store.kiosk_by_token(clerk_token) is None and await store.clerk_by_token(kiosks[0][1]) is None
        assert await store.revoke(kiosks[3][0].id) and await store.revoke(clerk.id)
        found = await asyncio.gather(*(store.kiosk_by_token(token) for _, token in kiosks))
        assert found[3] is None and sum(f is not None for f in found) == 19
        assert await store.clerk_by_token(clerk_token) is None
    finally:
        await engine.dispose()
