"""Three nodes on a real redis-server: in this process (one shared fake clock), or as processes of their own.

The in-process harness has the single-node harness's face (:class:`tests.server.conftest.Harness`), so the
single-node routing scenarios run unchanged on three nodes, with kiosks and clerks spread over them.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.keys import ROUTER
from server.settings import load_settings
from signaling.switch import Switch
from tests.pg import PostgresServer
from tests.redis_server import RedisServer
from tests.server.conftest import FakeClock, Harness, HarnessFactory, Peer

NODES = 3


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.close()


class ClusterHarness(Harness):
    """Three apps on one Redis and one records database; peers are spread over them in turn."""

    def __init__(self, servers: list[TestServer], settings: Any, clock: FakeClock) -> None:
        super().__init__(servers[0], settings, clock)
        self.servers = servers
        self._turn = itertools.count()

    @property
    def urls(self) -> list[str]:
        return [str(s.make_url("/")) for s in self.servers]

    def _next_url(self) -> str:
        return self.urls[next(self._turn) % len(self.servers)]

    @property
    def router(self) -> Any:
        return self.server.app[ROUTER]

    @property
    def leader(self) -> Any:
        for server in self.servers:
            leader = server.app[ROUTER].leader  # type: ignore[attr-defined]
            if leader is not None and leader.writer is not None:
                return leader
        raise AssertionError("no node leads")

    @property
    def switch(self) -> Switch:
        switch: Switch = self.leader.switch
        return switch

    async def kiosk(self, region: str = "sh/jiading/xincheng/park-3", name: str = "Kiosk") -> Peer:
        _, token = await self.identities.add_kiosk(name, region)
        peer = Peer(self._next_url(), "/kiosk", token)
        await peer.connect()
        await peer.next("welcome")
        self.peers.append(peer)
        return peer

    async def clerk(self, fields: str = "tax", regions: str = "sh/jiading", languages: str = "zh,en",
                    name: str = "Clerk", available: bool = True) -> Peer:
        _, token = await self.identities.add_clerk(name, fields.split(","), regions.split(","), languages.split(","),
                                                   center="Jiading center")
        peer = Peer(self._next_url(), "/clerk", token)
        await peer.connect()
        await peer.next("welcome")
        if available:
            await peer.ok("set_status", {"status": "available"})
        self.peers.append(peer)
        return peer


@pytest.fixture
async def harness_factory(tmp_path: Path, redis_server: RedisServer,
                          postgres: PostgresServer) -> AsyncIterator[HarnessFactory]:
    """Three nodes on the session's redis-server and a new PostgreSQL database (the cluster's records)."""
    made: list[ClusterHarness] = []
    databases: list[str] = []

    async def make(**overrides: Any) -> ClusterHarness:
        client = aioredis.from_url(redis_server.url)
        await client.flushall()
        await client.aclose()
        overrides.setdefault("queue_update_interval_s", 0.05)
        overrides.setdefault("recording_workers", 0)
        databases.append(postgres.create_database())
        overrides.setdefault("database_url", postgres.url(databases[-1]))
        settings = load_settings(data_dir=tmp_path / f"data{len(made)}", redis_url=redis_server.url, **overrides)
        clock = FakeClock()
        servers = []
        for _ in range(NODES):  # one after another: each runs the migrations at start
            server = TestServer(create_app(settings, clock=clock), host="127.0.0.1")
            await server.start_server()
            servers.append(server)
        h = ClusterHarness(servers, settings, clock)
        made.append(h)
        return h

    yield make
    for h in made:
        for p in h.peers:
            if p.sio.connected:
                await p.close()
        for server in h.servers:
            await server.close()
    for name in databases:
        postgres.drop_database(name)


@pytest.fixture
async def harness(harness_factory: HarnessFactory) -> Harness:
    return await harness_factory()
