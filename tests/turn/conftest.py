"""Fixtures of the TURN suite: a real coturn ``turnserver`` per test (tests/coturn.py) and the signaling server
on loopback, set up to hand out that TURN server with credentials minted per call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NewDatabase
from tests.coturn import TurnServer, TurnUnavailableError
from tests.server.conftest import Harness, start_harness


def start_turn_server() -> TurnServer:
    """A started ``turnserver``, or a failed test saying why there is none (never a skip)."""
    try:
        return TurnServer().start()
    except TurnUnavailableError as exc:
        pytest.fail(f"coturn is needed for the TURN tests: {exc}", pytrace=False)


@pytest.fixture
def turn_server() -> Iterator[TurnServer]:
    server = start_turn_server()
    try:
        yield server
    finally:
        server.close()


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
