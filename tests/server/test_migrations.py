"""Alembic migrations on SQLite and PostgreSQL: upgrade an empty database and one holding data, and downgrade."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from server.records import db
from server.records.identities import IdentityStore

pytestmark = pytest.mark.databases


async def tables(url: str) -> set[str]:
    engine = db.make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def scalar(url: str, sql: str) -> object:
    engine = db.make_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(sa.text(sql))).scalar()
    finally:
        await engine.dispose()


async def revision(url: str) -> object:
    return await scalar(url, "SELECT version_num FROM alembic_version")


async def test_upgrade_empty_database_to_head(db_url: str, db_kind: str) -> None:
    await asyncio.to_thread(db.upgrade, db_url)
    assert set(db.metadata.tables) <= await tables(db_url)
    assert await revision(db_url) == "0005"
    if db_kind == "sqlite":
        assert await scalar(db_url, "PRAGMA journal_mode") == "wal"
    assert await scalar(db_url, "SELECT count FROM chain_head WHERE id = 1") == 0


async def test_schema_at_head_matches_the_metadata(db_url: str) -> None:
    """The migrations build what ``db.metadata`` describes: nothing for autogenerate to add or change."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    await asyncio.to_thread(db.upgrade, db_url)
    engine = db.make_engine(db_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), db.metadata))
    finally:
        await engine.dispose()
    assert diff == []


async def test_upgrade_keeps_data_and_downgrade_reverts(db_url: str) -> None:
    url = db_url
    await asyncio.to_thread(db.upgrade, url, "0001")
    assert "events" not in await tables(url) and "kiosks" in await tables(url)
    engine = db.make_engine(url)
    store = IdentityStore(engine)
    kiosk, token = await store.add_kiosk("Old kiosk", "sh/putuo/taopu/park-1")
    _, clerk_token = await store.add_clerk("Old clerk", ["tax"], ["sh/putuo"], ["zh"], username="old",
                                           password="long enough pw")
    await engine.dispose()

    await asyncio.to_thread(db.upgrade, url)
    assert await revision(url) == "0005"
    assert {"events", "recordings"} <= await tables(url)
    engine = db.make_engine(url)
    store = IdentityStore(engine)
    assert await store.kiosk_by_token(token) == kiosk
    assert (await store.clerk_by_token(clerk_token)) is not None
    assert (await store.authenticate("old", "long enough pw")) is not None
    await engine.dispose()

    await asyncio.to_thread(db.downgrade, url, "0001")
    assert "events" not in await tables(url) and await revision(url) == "0001"
    engine = db.make_engine(url)
    assert await IdentityStore(engine).kiosk_by_token(token) == kiosk  # identities survive the downgrade
    await engine.dispose()
    await asyncio.to_thread(db.downgrade, url, "base")
    assert "kiosks" not in await tables(url)


def test_postgresql_urls_get_the_asyncpg_driver() -> None:
    assert db.async_url("postgresql://vw:pw@db.example:5432/records") == \
        "postgresql+asyncpg://vw:pw@db.example:5432/records"
    assert db.async_url("postgres://vw@db/records") == "postgresql+asyncpg://vw@db/records"
    assert db.async_url("postgresql+asyncpg://vw@db/records") == "postgresql+asyncpg://vw@db/records"
    assert db.async_url("sqlite:////srv/r.sqlite3") == "sqlite+aiosqlite:////srv/r.sqlite3"
    with pytest.raises(db.DatabaseURLError, match="psycopg2"):
        db.async_url("postgresql+psycopg2://vw@db/records")
    with pytest.raises(db.DatabaseURLError, match="not supported"):
        db.async_url("mysql://vw@db/records")


def test_a_missing_postgresql_driver_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = db.importlib.util.find_spec
    monkeypatch.setattr(db.importlib.util, "find_spec", lambda name, *a: None if name == "asyncpg" else real(name, *a))
    with pytest.raises(db.DatabaseURLError, match=r"pip install -e '\.\[postgres\]'"):
        db.make_engine("postgresql://vw@db/records")
