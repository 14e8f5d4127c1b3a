"""Kiosk devices, clerks and administrators, in the records database.

Device and clerk tokens are random (256 bits) and stored only as SHA-256
hashes: a token is shown once, when issued. Passwords are argon2 hashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncEngine

from server.records.batching import BatchedLookup
from server.records.db import calls, followups, kiosks, matters, users, web_sessions
from signaling.commands import ClerkCard, KioskCard

_hasher = PasswordHasher()
# verified against when a username is unknown, so both cases take as long
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

ROLES = ("clerk", "admin")
T = TypeVar("T")


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

    def card(self) -> KioskCard:
        """What the live core knows of this kiosk."""
        return KioskCard(self.id, self.name, self.region)


@dataclass(frozen=True)
class Clerk:
    """A person who logs in: a clerk (with fields, regions, languages) or an administrator."""

    id: str
    name: str
    center: str
    fields: tuple[str, ...]
    regions: tuple[str, ...]
    languages: tuple[str, ...]
    revoked: bool = False
    role: str = "clerk"
    username: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def card(self) -> ClerkCard:
        """What the live core knows of this clerk."""
        return ClerkCard(self.id, self.name, self.center, tuple(self.fields), tuple(self.regions),
                         tuple(self.languages))


User = Clerk


def _user(row: sa.Row[tuple[object, ...]]) -> Clerk:
    m = row._mapping
    return Clerk(
        id=m["id"], name=m["name"], center=m["center"], fields=tuple(m["fields"]), regions=tuple(m["regions"]),
        languages=tuple(m["languages"]), revoked=m["revoked_at"] is not None, role=m["role"],
        username=m["username"],
    )


def _kiosk(row: sa.Row[tuple[object, ...]]) -> Kiosk:
    m = row._mapping
    return Kiosk(m["id"], m["name"], m["region"], m["revoked_at"] is not None)


RosterListener = Callable[[], Awaitable[None]]


class PasswordCheckBusyError(Exception):
    """More password checks wait than the pool takes: answer "busy" at once rather than queue without bound."""


class PasswordPool:
    """argon2 hashing and verifying (64 MiB and ~0.1-0.3 s of CPU each) in a few threads, never on the event
    loop that relays signaling. argon2-cffi releases the GIL while it hashes, and the threads run at the lowest
    CPU priority, so a flood of logins takes only the CPU the event loop leaves. At most
    ``workers * WAITING_PER_WORKER`` checks wait; one more raises :class:`PasswordCheckBusyError`."""

    WAITING_PER_WORKER = 4

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pending = 0

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="argon2",
                                            initializer=_lowest_priority)
        return self._pool

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._pending >= self.workers * self.WAITING_PER_WORKER:
            raise PasswordCheckBusyError(f"{self._pending} password checks are waiting")
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor(), fn, *args)
        finally:
            self._pending -= 1

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


HASHING_NICE = 19


def _lowest_priority() -> None:
    """The hashing thread (and the threads argon2 starts for its lanes, which inherit it) yields the CPU to the
    event loop: on Linux a thread has a nice value of its own. Elsewhere, or if refused, nothing changes."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICE)


def _verify(stored: str, password: str) -> bool:
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    return True


def _hash_password(password: str) -> str:
    return _hasher.hash(password)


class IdentityStore:
    def __init__(self, engine: AsyncEngine, password_workers: int = 2) -> None:
        self.engine = engine
        self.passwords = PasswordPool(password_workers)
        # a connection's token is looked up in its handshake; handshakes that come together share a query
        self._kiosk_tokens = BatchedLookup[str, Kiosk](self._kiosks_by_token_hash)
        self._clerk_tokens = BatchedLookup[str, Clerk](self._clerks_by_token_hash)
        self._listeners: list[RosterListener] = []

    async def _kiosks_by_token_hash(self, hashes: Collection[str]) -> dict[str, Kiosk]:
        q = kiosks.select().where(kiosks.c.token_hash.in_(hashes), kiosks.c.revoked_at.is_(None))
        async with self.engine.connect() as conn:
            return {row._mapping["token_hash"]: _kiosk(row) for row in await conn.execute(q)}

    async def _clerks_by_token_hash(self, hashes: Collection[str]) -> dict[str, Clerk]:
        q = users.select().where(users.c.token_hash.in_(hashes), users.c.revoked_at.is_(None), users.c.role == "clerk")
        async with self.engine.connect() as conn:
            return {row._mapping["token_hash"]: _user(row) for row in await conn.execute(q)}

    def on_roster_change(self, listener: RosterListener) -> None:
        """Call ``listener`` after clerks are added, changed, revoked or removed through this store."""
        self._listeners.append(listener)

    async def _roster_changed(self) -> None:
        for listener in self._listeners:
            await listener()

    # ------------------------------------------------------------ kiosks

    async def add_kiosk(self, name: str, region: str, demo: bool = False) -> tuple[Kiosk, str]:
        token = new_token()
        kiosk = Kiosk(id="k-" + secrets.token_hex(4), name=name, region=region)
        async with self.engine.begin() as conn:
            await conn.execute(kiosks.insert().values(
                id=kiosk.id, name=name, region=region, token_hash=hash_token(token), demo=demo,
                created_at=time.time(),
            ))
        return kiosk, token

    async def kiosk_by_token(self, token: str) -> Kiosk | None:
        """The active kiosk with this token (read after the call, so a revoked token is refused at once)."""
        return await self._kiosk_tokens.get(hash_token(token))

    async def kiosks(self) -> list[Kiosk]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(kiosks.select().order_by(kiosks.c.created_at))
            return [_kiosk(r) for r in rows]

    async def kiosk(self, kiosk_id: str) -> Kiosk | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(kiosks.select().where(kiosks.c.id == kiosk_id))).first()
        return _kiosk(row) if row else None

    # ------------------------------------------------------------ clerks and administrators

    async def add_user(
        self, name: str, role: str = "clerk", *, fields: list[str] | None = None, regions: list[str] | None = None,
        languages: list[str] | None = None, center: str = "", username: str | None = None,
        password: str | None = None, with_token: bool = True, demo: bool = False,
    ) -> tuple[Clerk, str | None]:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        token = new_token() if with_token else None
        prefix = "c-" if role == "clerk" else "a-"
        user = Clerk(prefix + secrets.token_hex(4), name, center, tuple(fields or ()), tuple(regions or ()),
                     tuple(languages or ()), role=role, username=username)
        password_hash = await self.passwords.run(_hash_password, password) if password else None
        async with self.engine.begin() as conn:
            await conn.execute(users.insert().values(
                id=user.id, role=role, username=username, name=name, center=center, fields=list(user.fields),
                regions=list(user.regions), languages=list(user.languages),
                password_hash=password_hash,
                token_hash=hash_token(token) if token else None, demo=demo, created_at=time.time(),
            ))
        if role == "clerk":
            await self._roster_changed()
        return user, token

    async def add_clerk(
        self, name: str, fields: list[str], regions: list[str], languages: list[str], center: str = "",
        demo: bool = False, username: str | None = None, password: str | None = None,
    ) -> tuple[Clerk, str]:
        clerk, token = await self.add_user(name, "clerk", fields=fields, regions=regions, languages=languages,
                                           center=center, username=username, password=password, demo=demo)
        assert token is not None
        return clerk, token

    async def update_clerk(
        self, user_id: str, *, name: str, center: str, fields: list[str], regions: list[str], languages: list[str],
    ) -> bool:
        async with self.engine.begin() as conn:
            res = await conn.execute(users.update().where(users.c.id == user_id, users.c.role == "clerk").values(
                name=name, center=center, fields=fields, regions=regions, languages=languages))
        await self._roster_changed()
        return res.rowcount == 1

    async def new_token_for(self, user_id: str) -> str | None:
        token = new_token()
        async with self.engine.begin() as conn:
            res = await conn.execute(users.update().where(users.c.id == user_id, users.c.revoked_at.is_(None))
                                     .values(token_hash=hash_token(token)))
        return token if res.rowcount == 1 else None

    async def set_password(self, user_id: str, password: str) -> bool:
        """A new password; every login session of the user ends with the old one (in the same transaction)."""
        password_hash = await self.passwords.run(_hash_password, password)
        async with self.engine.begin() as conn:
            res = await conn.execute(users.update().where(users.c.id == user_id)
                                     .values(password_hash=password_hash))
            await conn.execute(web_sessions.delete().where(web_sessions.c.user_id == user_id))
            return res.rowcount == 1

    async def clerk_by_token(self, token: str) -> Clerk | None:
        """The active clerk with this token (read after the call, as ``kiosk_by_token``)."""
        return await self._clerk_tokens.get(hash_token(token))

    async def user(self, user_id: str) -> Clerk | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(users.select().where(users.c.id == user_id))).first()
        return _user(row) if row else None

    async def authenticate(self, username: str, password: str) -> Clerk | None:
        """The active user with this username and password, or None (in constant-ish time)."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(users.select().where(users.c.username == username))).first()
        stored = row._mapping["password_hash"] if row is not None else None
        if not await self.passwords.run(_verify, stored or _DUMMY_HASH, password):
            return None
        if row is None or stored is None or row._mapping["revoked_at"] is not None:
            return None
        return _user(row)

    async def clerks(self, role: str | None = "clerk") -> list[Clerk]:
        q = users.select().order_by(users.c.created_at)
        if role is not None:
            q = q.where(users.c.role == role)
        async with self.engine.connect() as conn:
            return [_user(r) for r in await conn.execute(q)]

    # ------------------------------------------------------------ both

    async def revoke(self, identity_id: str) -> bool:
        table = kiosks if identity_id.startswith("k-") else users
        async with self.engine.begin() as conn:
            res = await conn.execute(table.update().where(table.c.id == identity_id, table.c.revoked_at.is_(None))
                                     .values(revoked_at=time.time()))
        if table is users:
            await self._roster_changed()
        return res.rowcount == 1

    async def remove_demo(self) -> None:
        """Clear the demo identities of an earlier start. Those that took part in a call stay, revoked and without
        credentials, so that past sessions, exports and follow-ups still show their names; the rest go."""
        now = time.time()
        kiosk_ids = sa.select(calls.c.kiosk_id)
        user_ids = sa.union(sa.select(calls.c.clerk_id).where(calls.c.clerk_id.is_not(None)),
                            sa.select(matters.c.clerk_id), sa.select(followups.c.assignee)
                            .where(followups.c.assignee.is_not(None)))
        async with self.engine.begin() as conn:
            await conn.execute(kiosks.delete().where(kiosks.c.demo.is_(True), kiosks.c.id.not_in(kiosk_ids)))
            await conn.execute(users.delete().where(users.c.demo.is_(True), users.c.id.not_in(user_ids)))
            for row in (await conn.execute(sa.select(kiosks.c.id).where(kiosks.c.demo.is_(True)))).all():
                await conn.execute(kiosks.update().where(kiosks.c.id == row.id).values(
                    token_hash=hash_token(new_token()), revoked_at=sa.func.coalesce(kiosks.c.revoked_at, now)))
            await conn.execute(users.update().where(users.c.demo.is_(True)).values(
                token_hash=None, username=None, password_hash=None,
                revoked_at=sa.func.coalesce(users.c.revoked_at, now)))
        await self._roster_changed()
