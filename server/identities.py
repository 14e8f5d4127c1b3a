"""Kiosk devices and clerks, with their tokens, in SQLite under the data directory.

Tokens are random (256 bits) and stored only as SHA-256 hashes: a token is
shown once, when issued, and cannot be read back from the database.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS kiosks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    region TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    demo INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS clerks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    center TEXT NOT NULL DEFAULT '',
    fields TEXT NOT NULL,
    regions TEXT NOT NULL,
    languages TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    demo INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    revoked_at REAL
);
"""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Kiosk:
    id: str
    name: str
    region: str
    revoked: bool = False


@dataclass(frozen=True)
class Clerk:
    id: str
    name: str
    center: str
    fields: tuple[str, ...]
    regions: tuple[str, ...]
    languages: tuple[str, ...]
    revoked: bool = False


class IdentityStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._db() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                yield db
        finally:
            db.close()

    # kiosks

    def add_kiosk(self, name: str, region: str, demo: bool = False) -> tuple[Kiosk, str]:
        token = new_token()
        kiosk = Kiosk(id="k-" + secrets.token_hex(4), name=name, region=region)
        with self._db() as db:
            db.execute(
                "INSERT INTO kiosks (id, name, region, token_hash, demo, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (kiosk.id, name, region, hash_token(token), int(demo), time.time()),
            )
        return kiosk, token

    def kiosk_by_token(self, token: str) -> Kiosk | None:
        with self._db() as db:
            row = db.execute(
                "SELECT id, name, region FROM kiosks WHERE token_hash = ? AND revoked_at IS NULL",
                (hash_token(token),),
            ).fetchone()
        return Kiosk(*row) if row else None

    def kiosks(self) -> list[Kiosk]:
        with self._db() as db:
            rows = db.execute("SELECT id, name, region, revoked_at IS NOT NULL FROM kiosks ORDER BY created_at")
            return [Kiosk(r[0], r[1], r[2], bool(r[3])) for r in rows]

    # clerks

    def add_clerk(
        self, name: str, fields: list[str], regions: list[str], languages: list[str],
        center: str = "", demo: bool = False,
    ) -> tuple[Clerk, str]:
        token = new_token()
        clerk = Clerk("c-" + secrets.token_hex(4), name, center, tuple(fields), tuple(regions), tuple(languages))
        with self._db() as db:
            db.execute(
                "INSERT INTO clerks (id, name, center, fields, regions, languages, token_hash, demo, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (clerk.id, name, center, json.dumps(fields), json.dumps(regions), json.dumps(languages),
                 hash_token(token), int(demo), time.time()),
            )
        return clerk, token

    def clerk_by_token(self, token: str) -> Clerk | None:
        with self._db() as db:
            row = db.execute(
                "SELECT id, name, center, fields, regions, languages FROM clerks"
                " WHERE token_hash = ? AND revoked_at IS NULL",
                (hash_token(token),),
            ).fetchone()
        return _clerk(row, False) if row else None

    def clerks(self) -> list[Clerk]:
        with self._db() as db:
            rows = db.execute(
                "SELECT id, name, center, fields, regions, languages, revoked_at IS NOT NULL"
                " FROM clerks ORDER BY created_at"
            ).fetchall()
        return [_clerk(r[:6], bool(r[6])) for r in rows]

    # both

    def revoke(self, identity_id: str) -> bool:
        table = "kiosks" if identity_id.startswith("k-") else "clerks"
        with self._db() as db:
            cur = db.execute(
                f"UPDATE {table} SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (time.time(), identity_id),
            )
            return cur.rowcount == 1

    def remove_demo(self) -> None:
        with self._db() as db:
            db.execute("DELETE FROM kiosks WHERE demo = 1")
            db.execute("DELETE FROM clerks WHERE demo = 1")


def _clerk(row: tuple[str, ...], revoked: bool) -> Clerk:
    return Clerk(row[0], row[1], row[2], tuple(json.loads(row[3])), tuple(json.loads(row[4])),
                 tuple(json.loads(row[5])), revoked)
