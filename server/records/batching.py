"""Look-ups by key that arrive together, answered by one query.

When many sockets connect at once (every kiosk after a restart of the server, or after a network outage),
each handshake looks its token up. One query per token costs a database round trip each (with aiosqlite, a
handful of hops to its thread and back); ``BatchedLookup`` runs one query at a time and hands each the keys
that arrived while the previous one ran, so a storm of handshakes costs a few queries. A look-up is never
answered from before it was asked: its query starts after it arrived, so a token revoked before the
handshake is refused, as with a query of its own.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

MAX_BATCH = 500  # keys per query (SQLite allows 32,766 bound parameters; older builds 999)


class BatchedLookup(Generic[K, V]):
    """``await lookup.get(key)``: the value ``fetch`` gives for ``key``, or None.

    ``fetch(keys)`` returns the values found for some of ``keys``, by key. One fetch runs at a time; keys asked
    for meanwhile wait for the next one (at most ``MAX_BATCH`` a query).
    """

    def __init__(self, fetch: Callable[[Collection[K]], Awaitable[Mapping[K, V]]]) -> None:
        self.fetch = fetch
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._running: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V | None:
        fut: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(fut)
        if self._running is None:
            self._running = asyncio.get_running_loop().create_task(self._run())
        return await fut

    async def _run(self) -> None:
        await asyncio.sleep(0)  # let the look-ups of this turn of the event loop join the first query
        try:
            while self._waiting:
                keys = list(itertools.islice(self._waiting, MAX_BATCH))
                batch = {key: self._waiting.pop(key) for key in keys}
                try:
                    found = await self.fetch(keys)
                except Exception as exc:
                    for futures in batch.values():
                        for fut in futures:
                            if not fut.done():
                                fut.set_exception(exc)
                    continue
                for key, futures in batch.items():
                    value = found.get(key)
                    for fut in futures:
                        if not fut.done():
                            fut.set_result(value)
        finally:
            self._running = None
            for futures in self._waiting.values():  # cancelled while waiting: nobody is left to answer them
                for fut in futures:
                    fut.cancel()
            self._waiting.clear()

