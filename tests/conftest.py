"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from client import peerlink
from rtc.loopback import LoopbackPatch, allow_loopback_candidates
from server.records.db import sqlite_url
from tests.pg import PostgresServer, PostgresUnavailableError
from tests.sabotage import BrokenPeerLink

# The records' databases. A test marked ``@pytest.mark.databases`` (or a module with that ``pytestmark``) that
# uses ``db_kind`` (directly or through ``new_database``, ``db_url`` or the server harness) runs once on each;
# ``@pytest.mark.databases("sqlite")`` on a test of such a module keeps it to one (a test that queries nothing
# PostgreSQL could answer differently, kept off the second run to save its time). Unmarked tests run on SQLite.
DATABASES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("databases")
    if "db_kind" in metafunc.fixturenames and marker is not None:
        metafunc.parametrize("db_kind", marker.args or DATABASES, indirect=True)


@pytest.fixture
def db_kind(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgresql``: which database this test's records live in."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the whole run, started the first time a test asks for it."""
    server: PostgresServer | None = None
    try:
        server = PostgresServer()
        server.start()
    except PostgresUnavailableError as exc:
        if server is not None:
            server.stop()
        pytest.fail(f"PostgreSQL is needed for the tests on PostgreSQL and cannot be started: {exc}", pytrace=False)
    yield server
    server.stop()


NewDatabase = Callable[[], str]


@pytest.fixture
def new_database(db_kind: str, request: pytest.FixtureRequest) -> Iterator[NewDatabase]:
    """``new_database()``: the ``database_url`` setting of a new, empty records database of this test's kind.

    On SQLite that is ``""`` (the settings' default: ``records.sqlite3`` in the data directory), on PostgreSQL
    a fresh database on the session's server, dropped after the test.
    """
    if db_kind == "sqlite":
        yield lambda: ""
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    made: list[str] = []

    def make() -> str:
        made.append(server.create_database())
        return server.url(made[-1])

    yield make
    for name in made:
        server.drop_database(name)


@pytest.fixture
def db_url(new_database: NewDatabase, tmp_path: Path) -> str:
    """One records database URL of this test's kind (SQLite: ``records.sqlite3`` in ``tmp_path``)."""
    return new_database() or sqlite_url(tmp_path / "records.sqlite3")


@pytest.fixture
def loopback_ice() -> Iterator[LoopbackPatch]:
    """aioice also gathers 127.0.0.1 during the test (so peers connect on a loopback-only host); undone after."""
    with allow_loopback_candidates() as patch:
        yield patch


BreakAttempts = Callable[..., None]


@pytest.fixture
def break_attempts(monkeypatch: pytest.MonkeyPatch) -> BreakAttempts:
    """``break_attempts({0})``: from now on, the bots' peer connections of attempt 0 of every call fail ICE
    (``break_attempts({0, 1})``: the restart too; ``black_hole=port``: see :class:`tests.sabotage.BrokenPeerLink`)."""
    monkeypatch.setattr(peerlink, "PeerLink", BrokenPeerLink)
    monkeypatch.setattr(BrokenPeerLink, "broken", set())
    monkeypatch.setattr(BrokenPeerLink, "black_hole", None)

    def set_broken(attempts: set[int], black_hole: int | None = None) -> None:
        BrokenPeerLink.broken = set(attempts)
        BrokenPeerLink.black_hole = black_hole

    return set_broken
