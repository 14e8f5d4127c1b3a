"""Fixtures of the TURN suite: a real coturn ``turnserver`` per test (tests/coturn.py) and the signaling server
on loopback, set up to hand out that TURN server with credentials minted per call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from client import peerlink
from tests.conftest import NewDatabase
from tests.coturn import TurnServer, turn_server
from tests.server.conftest import Harness, start_harness
from tests.turn.relay import WatchedPeerLink

__all__ = ["turn_server"]  # the fixture, for this suite

HarnessFactory = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def harness_factory(tmp_path: Path, new_database: NewDatabase) -> AsyncIterator[HarnessFactory]:
    """``await harness_factory(turn, **settings)``: the real app (FakeClock) handing out ``turn`` with credentials
    under ``turn.secret`` (or ``turn_secret=...``), relaying every call (or ``turn_relay_only=False``)."""
    made: list[Harness] = []

    async def make(turn: TurnServer, **overrides: Any) -> Harness:
        overrides.setdefault("database_url", new_database())
        overrides.setdefault("ice_servers", turn.ice_servers())
        overrides.setdefault("turn_secret", turn.secret)
        overrides.setdefault("turn_relay_only", True)
        harness = await start_harness(tmp_path / f"data{len(made)}", **overrides)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.server.close()


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[WatchedPeerLink]]:
    """The bots' peer connections made during the test, in the order they were made."""
    made: list[WatchedPeerLink] = []
    monkeypatch.setattr(WatchedPeerLink, "made", made)
    monkeypatch.setattr(peerlink, "PeerLink", WatchedPeerLink)
    yield made
