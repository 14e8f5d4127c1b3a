"""Fixtures for socket-level tests: a real aiohttp server on loopback and python-socketio clients."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import socketio
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.keys import DESK, IDENTITIES, ROUTER
from server.live.recording_desk import RecordingDesk
from server.live.router import LocalRouter
from server.live.writer import SystemClock
from server.records.identities import IdentityStore
from server.settings import Settings, load_settings
from signaling.switch import Switch
from tests.conftest import NewDatabase

EVENT_TIMEOUT = 5.0
# Pages are rendered in the language the browser asks for; tests that read English texts ask for English.
ENGLISH = {"Accept-Language": "en"}


class FakeClock:
    """Wall-clock time that moves only when a test says so (it starts at the real time: dates matter)."""

    def __init__(self) -> None:
        self.t = time.time()

    def now(self) -> float:
        return self.t


class Peer:
    """A socket.io client that records every event it receives."""

    def __init__(self, url: str, namespace: str, token: str) -> None:
        self.url = url
        self.namespace = namespace
        self.token = token
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)
        self.sio.on("*", self._record, namespace=namespace)

    async def _record(self, event: str, data: Any) -> None:
        self.events[event].put_nowait(data)

    async def connect(self) -> None:
        await self.sio.connect(self.url, namespaces=[self.namespace], auth={"token": self.token},
                               transports=["websocket"], wait_timeout=EVENT_TIMEOUT)

    async def call(self, event: str, data: Any = None) -> dict[str, Any]:
        result = await self.sio.call(event, data, namespace=self.namespace, timeout=EVENT_TIMEOUT)
        assert isinstance(result, dict)
        return result

    async def ok(self, event: str, data: Any = None) -> dict[str, Any]:
        result = await self.call(event, data)
        assert result["ok"] is True, result
        return result

    async def next(self, event: str, timeout: float = EVENT_TIMEOUT) -> Any:
        return await asyncio.wait_for(self.events[event].get(), timeout)

    async def next_where(self, event: str, pred: Callable[[Any], bool], timeout: float = EVENT_TIMEOUT) -> Any:
        async def find() -> Any:
            while True:
                data = await self.events[event].get()
                if pred(data):
                    return data
        return await asyncio.wait_for(find(), timeout)

    def pending(self, event: str) -> list[Any]:
        q = self.events[event]
        out = []
        while not q.empty():
            out.append(q.get_nowait())
        return out

    async def close(self) -> None:
        await self.sio.disconnect()


@dataclass
class Harness:
    server: TestServer
    settings: Settings
    clock: FakeClock | SystemClock
    peers: list[Peer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))

    @property
    def router(self) -> LocalRouter:
        router = self.server.app[ROUTER]
        assert isinstance(router, LocalRouter), "this harness runs one node"
        return router

    @property
    def switch(self) -> Switch:
        """The core's live state (read it; only the router's writer changes it)."""
        return self.router.switch

    @property
    def desk(self) -> RecordingDesk:
        return self.server.app[DESK]

    @property
    def identities(self) -> IdentityStore:
        return self.server.app[IDENTITIES]

    async def kiosk(self, region: str = "sh/jiading/xincheng/park-3", name: str = "Kiosk") -> Peer:
        _, token = await self.identities.add_kiosk(name, region)
        peer = Peer(self.url, "/kiosk", token)
        await peer.connect()
        await peer.next("welcome")
        self.peers.append(peer)
        return peer

    async def clerk(
        self, fields: str = "tax", regions: str = "sh/jiading", languages: str = "zh,en",
        name: str = "Clerk", available: bool = True,
    ) -> Peer:
        _, token = await self.identities.add_clerk(name, fields.split(","), regions.split(","), languages.split(","),
                                             center="Jiading center")
        peer = Peer(self.url, "/clerk", token)
        await peer.connect()
        await peer.next("welcome")
        if available:
            await peer.ok("set_status", {"status": "available"})
        self.peers.append(peer)
        return peer

    async def advance(self, seconds: float) -> None:
        """Move the fake clock and let the server run what became due."""
        assert isinstance(self.clock, FakeClock), "this harness runs on real time"
        self.clock.t += seconds
        await self.router.tick()


HarnessFactory = Callable[..., Awaitable[Harness]]



async def start_harness(data_dir: Path, real_time: bool = False, **overrides: Any) -> Harness:
    """The real app on 127.0.0.1 with a FakeClock (or, with ``real_time``, the real one) and fast queue updates.

    No recorder workers unless a test asks for them (``recording_workers=1``): most tests place recorded
    calls without media, and a worker process per test would only cost time.
    """
    overrides.setdefault("queue_update_interval_s", 0.05)
    overrides.setdefault("recording_workers", 0)
    settings = load_settings(data_dir=data_dir, **overrides)
    clock = SystemClock() if real_time else FakeClock()
    server = TestServer(create_app(settings, clock=clock), host="127.0.0.1")
    await server.start_server()
    return Harness(server, settings, clock)


@pytest.fixture
async def harness_factory(tmp_path: Path, new_database: NewDatabase) -> AsyncIterator[HarnessFactory]:
    """``await harness_factory(**settings)``: a new app with its own data directory and records database (on
    PostgreSQL too in a module marked ``databases``)."""
    made: list[Harness] = []

    async def make(real_time: bool = False, **overrides: Any) -> Harness:
        overrides.setdefault("database_url", new_database())
        h = await start_harness(tmp_path / f"data{len(made)}", real_time, **overrides)
        made.append(h)
        return h

    yield make
    for h in made:
        for p in h.peers:
            if p.sio.connected:
                await p.close()
        await h.server.close()


@pytest.fixture
async def harness(harness_factory: HarnessFactory) -> Harness:
    return await harness_factory()


async def run_sql(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run ``sql`` (``:name`` parameters) on the records database at ``url`` behind the application's back, as
    someone with database access would; the rows it returns, if any."""
    from sqlalchemy import text

    from server.records.db import make_engine

    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql), params)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        await engine.dispose()


async def login_cookie(base_url: str, username: str, password: str) -> str:
    """Log in through the real form (with its CSRF token); return the session cookie value."""
    import re

    import aiohttp

    async with aiohttp.ClientSession(base_url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # an IP host
        async with http.get("/login") as resp:
            token = re.search(r'name="csrf_token" value="([^"]+)"', await resp.text())
        assert token is not None
        async with http.post("/login", data={"username": username, "password": password,
                                             "csrf_token": token.group(1)}, allow_redirects=False) as resp:
            assert resp.status == 303, await resp.text()
            cookie = resp.cookies.get("vw_session")
        assert cookie is not None
        return cookie.value
