"""Durable records in SQL (SQLAlchemy 2 Core, async).

SQLite under the data directory by default (WAL, synchronous=FULL, so a
commit survives a killed process); PostgreSQL (asyncpg, the ``postgres``
extra) when ``database_url`` says so: ``postgresql://user:pw@host/db``.
The schema is created and upgraded only by the Alembic migrations in
``server/records/migrations``; :data:`metadata` mirrors the newest revision.

Times are stored as UTC epoch seconds (float); dates as ISO strings.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

metadata = sa.MetaData()

MAX_ID = 2**31 - 1
"""The largest value of an ``Integer`` id (PostgreSQL's 32-bit ``integer``; it refuses a larger parameter where
SQLite finds no row): look-ups of an id from outside check against it first."""

kiosks = sa.Table(
    "kiosks", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("region", sa.String(200), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("demo", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
)

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),  # clerk | admin
    sa.Column("username", sa.String(100), unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("center", sa.String(200), nullable=False, server_default=""),
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("regions", sa.JSON, nullable=False),
    sa.Column("languages", sa.JSON, nullable=False),
    sa.Column("password_hash", sa.String(200)),
    sa.Column("token_hash", sa.String(64), unique=True),
    sa.Column("demo", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
)

calls = sa.Table(
    "calls", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("case_id", sa.String(64), nullable=False, index=True),
    sa.Column("kiosk_id", sa.String(32), nullable=False),
    sa.Column("field", sa.String(32), nullable=False),
    sa.Column("language", sa.String(16), nullable=False),
    sa.Column("region", sa.String(200), nullable=False),
    sa.Column("district", sa.String(200), nullable=False, index=True),
    sa.Column("requested_at", sa.Float, nullable=False, index=True),
    sa.Column("answered_at", sa.Float),
    sa.Column("ended_at", sa.Float),
    sa.Column("clerk_id", sa.String(32), index=True),
    sa.Column("end_reason", sa.String(32)),
    sa.Column("ended_by", sa.String(16)),
    sa.Column("transferred_from", sa.String(64)),
    sa.Column("wrapped_up_at", sa.Float),
)

events = sa.Table(
    "events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("call_id", sa.String(64), index=True),
    sa.Column("case_id", sa.String(64)),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("field", sa.String(32)),
    sa.Column("region", sa.String(200)),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    # the seals of the rows this event wrote, {table: {key: SHA-256}} (server/records/seals.py); hashed with it
    sa.Column("seals", sa.JSON(none_as_null=True)),
)

chain_head = sa.Table(
    "chain_head", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("last_hash", sa.String(64), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
)

matters = sa.Table(
    "matters", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("call_id", sa.String(64), nullable=False, index=True),
    sa.Column("case_id", sa.String(64), nullable=False, index=True),
    sa.Column("clerk_id", sa.String(32), nullable=False),
    sa.Column("field", sa.String(32), nullable=False),
    sa.Column("matter_type", sa.String(64), nullable=False),
    sa.Column("credit_code", sa.String(18)),
    sa.Column("entity_name", sa.String(200), nullable=False, server_default=""),
    sa.Column("outcome", sa.String(16), nullable=False),  # completed | referred | yet_to_do
    sa.Column("notes", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("salt", sa.String(32)),  # enters the row's seal, so the seal in the log gives nothing away
)

followups = sa.Table(
    "followups", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(16), nullable=False),  # matter | callback
    sa.Column("call_id", sa.String(64)),
    sa.Column("case_id", sa.String(64)),
    sa.Column("matter_id", sa.Integer),
    sa.Column("field", sa.String(32), nullable=False),
    sa.Column("region", sa.String(200), nullable=False),
    sa.Column("district", sa.String(200), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),  # simple | general | complex
    sa.Column("opened_at", sa.Float, nullable=False),
    sa.Column("due_date", sa.String(10), nullable=False, index=True),
    sa.Column("assignee", sa.String(32)),
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("resolved_at", sa.Float),
    sa.Column("resolved_by", sa.String(32)),
    sa.Column("resolution_note", sa.Text),
    sa.Column("phone", sa.String(32)),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("salt", sa.String(32)),  # enters the row's seal, so the seal in the log gives nothing away
)

ratings = sa.Table(
    "ratings", metadata,
    sa.Column("call_id", sa.String(64), primary_key=True),
    sa.Column("score", sa.String(16), nullable=False),  # satisfied | neutral | dissatisfied
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("at", sa.Float, nullable=False),
)

recordings = sa.Table(
    "recordings", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("call_id", sa.String(64), nullable=False, index=True),
    sa.Column("case_id", sa.String(64), nullable=False),
    sa.Column("participant", sa.String(16), nullable=False),  # visitor | clerk
    sa.Column("actor", sa.String(64), nullable=False),  # kiosk:ID | clerk:ID
    sa.Column("path", sa.String(500), nullable=False),  # relative to the recordings directory
    sa.Column("started_at", sa.Float, nullable=False, index=True),
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("streams", sa.JSON, nullable=False),
    sa.Column("recovered", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("deleted_at", sa.Float),
    sa.Column("deleted_by", sa.String(64)),
    sa.Column("delete_reason", sa.String(200)),
)

cluster_fence = sa.Table(
    "cluster_fence", metadata,  # one row: the routing leader's fencing token (several nodes on Redis)
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("epoch", sa.BigInteger, nullable=False),
    sa.Column("leader", sa.String(64), nullable=False, server_default=""),
    sa.Column("last_id", sa.String(32), nullable=False, server_default=""),  # last journal entry committed
)

checkpoints = sa.Table(
    "checkpoints", metadata,  # signed chain heads, appended only (server/records/checkpoints.py)
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("seq", sa.Integer, nullable=False),  # events in the chain up to and including the signed one
    sa.Column("hash", sa.String(64), nullable=False),  # the hash of the seq-th event
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("prev", sa.String(64), nullable=False),  # the digest of the checkpoint before (GENESIS for the first)
    sa.Column("key_id", sa.String(16), nullable=False),
    sa.Column("public_key", sa.String(64), nullable=False),  # raw Ed25519, hex; not trusted by itself
    sa.Column("signature", sa.String(128), nullable=False),  # Ed25519 over the canonical payload, hex
)

web_sessions = sa.Table(
    "web_sessions", metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(32), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


class DatabaseURLError(ValueError):
    """A ``database_url`` this server cannot use (or whose driver is not installed)."""


POSTGRES_DRIVER_HINT = "pip install -e '.[postgres]'"


def async_url(url: str) -> str:
    """``url`` with the async driver the records use: ``postgresql://`` (and ``postgres://``) become
    ``postgresql+asyncpg://``, ``sqlite://`` becomes ``sqlite+aiosqlite://``; other drivers are refused."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise DatabaseURLError(f"database_url {url!r} is not a database URL (e.g. postgresql://user@host/db)") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres":
        backend = "postgresql"
    wanted = {"postgresql": "asyncpg", "sqlite": "aiosqlite"}.get(backend)
    if wanted is None:
        raise DatabaseURLError(f"database_url: {backend!r} is not supported; use SQLite or PostgreSQL")
    if driver not in ("", wanted):
        raise DatabaseURLError(f"database_url: the {driver!r} driver is not supported; use {backend}+{wanted}://")
    if wanted == "asyncpg" and importlib.util.find_spec("asyncpg") is None:
        raise DatabaseURLError(f"database_url is a PostgreSQL URL but its driver asyncpg is not installed: "
                               f"{POSTGRES_DRIVER_HINT}")
    return parsed.set(drivername=f"{backend}+{wanted}").render_as_string(hide_password=False)


SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
PRIVATE_MODE = 0o600


def private_sqlite_file(url: str) -> None:
    """A SQLite database readable by this user alone, as the recordings are: created 0600 before SQLite first
    opens it (SQLite gives its -wal, -shm and -journal files the database file's mode), and an existing one
    (with its side files) put back to 0600. Nothing for another database or an in-memory one."""
    parsed = sa.engine.make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_MODE))
    for file in (path, *(path.with_name(path.name + side) for side in SQLITE_SIDE_FILES)):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(file, PRIVATE_MODE)


def make_engine(url: str) -> AsyncEngine:
    private_sqlite_file(url)
    engine = create_async_engine(async_url(url))
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()
    return engine


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (blocking; run it before serving or in a thread)."""
    private_sqlite_file(url)
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)
