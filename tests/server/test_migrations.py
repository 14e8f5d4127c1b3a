"""Alembic migrations: upgrade an empty database and one holding data, and downgrade."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from server.records import db
from server.records.identities import IdentityStore


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def revision(path: Path) -> str | None:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


async def test_upgrade_empty_database_to_head(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    await asyncio.to_thread(db.upgrade, db.sqlite_url(path))
    assert set(db.metadata.tables) <= tables(path)
    assert revision(path) == "0004"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count FROM chain_head WHERE id = 1").fetchone()[0] == 0


async def test_upgrade_keeps_data_and_downgrade_reverts(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    url = db.sqlite_url(path)
    await asyncio.to_thread(db.upgrade, url, "0001")
    assert "events" not in tables(path) and "kiosks" in tables(path)
    engine = db.make_engine(url)
    store = IdentityStore(engine)
    kiosk, token = await store.add_kiosk("Old kiosk", "sh/putuo/taopu/park-1")
    _, clerk_token = await store.add_clerk("Old clerk", ["tax"], ["sh/putuo"], ["zh"], username="old",
                                               password="long enough pw")
    await engine.dispose()

    await asyncio.to_thread(db.upgrade, url)
    assert revision(path) == "0004" and "events" in tables(path) and "cluster_fence" in tables(path)
    engine = db.make_engine(url)
    store = IdentityStore(engine)
    assert await store.kiosk_by_token(token) == kiosk
    assert (await store.clerk_by_token(clerk_token)) is not None
    assert (await store.authenticate("old", "long enough pw")) is not None
    await engine.dispose()

    await asyncio.to_thread(db.downgrade, url, "0001")
    assert "events" not in tables(path) and revision(path) == "0001"
    engine = db.make_engine(url)
    assert await IdentityStore(engine).kiosk_by_token(token) == kiosk  # identities survive the downgrade
    await engine.dispose()
    await asyncio.to_thread(db.downgrade, url, "base")
    assert "kiosks" not in tables(path)
