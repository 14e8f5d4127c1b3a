"""Signed checkpoints of the hash chain: what someone with access to the database alone cannot forge.

A hash chain alone proves nothing against someone who can write the
database: they can alter an event and recompute every hash after it, or cut
the end of the log and set the chain head back. So the server signs the
chain's head now and then: a **checkpoint** is the number of events ``seq``,
the hash of the ``seq``-th event, the time, and the digest of the checkpoint
before, signed with an Ed25519 key that lives in a file outside the database
(``checkpoint_key``). Checkpoints are only ever appended (``checkpoints``).

:class:`Checkpointer` runs in every server process as a periodic task: it
polls the head (one read a second, no lock) and signs it, under the chain
head's lock, once it has grown by ``checkpoint_every_events`` or
``checkpoint_interval_s`` has passed since the last checkpoint. Before it
signs, it checks that the chain still passes through the last head it signed
itself and that no checkpoint after that one went: a chain rewritten (or cut)
behind its back is refused, logged, and never signed over.

:func:`check_checkpoints` (``vwindow records verify``) checks each stored
checkpoint's signature against the trusted keys, that they follow each other,
and that the chain has, at each ``seq``, that hash; an exported checkpoint
(``vwindow records checkpoint --export``, kept elsewhere) is checked the same
way and catches a cut end whose checkpoints were deleted too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
import stat
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncEngine

from server.records.chain import GENESIS, ChainHead
from server.records.db import chain_head, checkpoints, events

logger = logging.getLogger(__name__)

EXPORT_FORMAT = "vwindow-checkpoint"
POLL_S = 1.0


class CheckpointKeyError(RuntimeError):
    """The checkpoint key file cannot be used."""


def key_id_of(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The signing key at ``path``; created there (mode 0600, in a directory made 0700) if there is none."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        # written whole under another name, then linked into place: a node starting at the same moment (nodes may
        # share the key path) never reads a half-written key, and only one key wins
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:  # another process created it meanwhile: use theirs
                return load_key(path)
        finally:
            tmp.unlink(missing_ok=True)
        logger.warning("created the checkpoint signing key %s (public key %s); keep a copy of its public key "
                       "with the exported checkpoints", path, public_bytes(key.public_key()).hex())
        return key
    return load_key(path)


def load_key(path: Path) -> Ed25519PrivateKey:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointKeyError(f"checkpoint key {path}: {exc.strerror}") from None
    if mode & 0o077:
        logger.warning("checkpoint key %s is readable by others (mode %o): chmod 600 it", path, mode)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError as exc:
        raise CheckpointKeyError(f"checkpoint key {path} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointKeyError(f"checkpoint key {path} is not an Ed25519 key")
    return key


def payload(seq: int, hash_: str, at: float, prev: str, key_id: str) -> bytes:
    """What a checkpoint signs: canonical JSON."""
    return json.dumps({"v": 1, "seq": seq, "hash": hash_, "at": repr(float(at)), "prev": prev, "key": key_id},
                      sort_keys=True, separators=(",", ":")).encode()


def digest_of(row: Mapping[str, Any]) -> str:
    """A checkpoint's digest, which the next one names as its ``prev``."""
    body = payload(row["seq"], row["hash"], row["at"], row["prev"], row["key_id"]) + row["signature"].encode()
    return hashlib.sha256(body).hexdigest()


@dataclass
class Checkpointer:
    """Signs the chain head every ``every_events`` events or ``interval_s`` seconds (see the module's text)."""

    engine: AsyncEngine
    key: Ed25519PrivateKey
    every_events: int = 1000
    interval_s: float = 60.0
    last_seq: int = 0
    last_at: float = 0.0
    signed: tuple[int, str, int] | None = None  # (seq, hash, event id) of the last head this process signed
    refused: str = ""
    sign_s: list[float] = field(default_factory=list)  # time of each checkpoint written (measured)

    def __post_init__(self) -> None:
        self.public = public_bytes(self.key.public_key())
        self.key_id = key_id_of(self.public)

    async def start(self) -> None:
        async with self.engine.connect() as conn:
            last = (await conn.execute(checkpoints.select().order_by(checkpoints.c.id.desc()).limit(1))).first()
        if last is not None:
            self.last_seq, self.last_at = int(last.seq), float(last.at)

    def due(self, count: int, now: float) -> bool:
        return count > self.last_seq and (count - self.last_seq >= self.every_events
                                          or now - self.last_at >= self.interval_s)

    async def maybe(self, force: bool = False) -> dict[str, Any] | None:
        """Sign the head if it is due (or, with ``force``, if it grew at all); the checkpoint written, if any."""
        now = time.time()
        async with self.engine.connect() as conn:
            count = (await conn.execute(sa.select(chain_head.c.count).where(chain_head.c.id == 1))).scalar_one()
        if not (self.due(count, now) or (force and count > self.last_seq)):
            return None
        return await self.sign_head(now, force=force)

    async def sign_head(self, now: float | None = None, force: bool = True) -> dict[str, Any] | None:
        """Sign the head now if it grew since the last checkpoint (any node's); unless ``force``, only if that
        checkpoint is also due by count or time (another node may have signed since this one looked)."""
        t0 = time.perf_counter()
        now = time.time() if now is None else now
        async with self.engine.begin() as conn:
            head = await ChainHead.lock(conn)
            last = (await conn.execute(checkpoints.select().order_by(checkpoints.c.id.desc()).limit(1))).first()
            problem = await self._contradiction(conn, last)
            if problem:
                if problem != self.refused:
                    logger.error("checkpoint NOT signed: %s; run vwindow records verify", problem)
                self.refused = problem
                return None
            if last is not None:
                self.last_seq, self.last_at = max(self.last_seq, int(last.seq)), float(last.at)
            if head.count == 0 or head.count <= self.last_seq or not (force or self.due(head.count, now)):
                return None
            head_id = (await conn.execute(sa.select(sa.func.max(events.c.id)))).scalar_one()
            prev = digest_of(dict(last._mapping)) if last is not None else GENESIS
            signature = self.key.sign(payload(head.count, head.last_hash, now, prev, self.key_id)).hex()
            row = {"seq": head.count, "hash": head.last_hash, "at": now, "prev": prev, "key_id": self.key_id,
                   "public_key": self.public.hex(), "signature": signature}
            await conn.execute(checkpoints.insert().values(**row))
        self.last_seq, self.last_at = head.count, now
        self.signed = (head.count, head.last_hash, int(head_id))
        self.sign_s.append(time.perf_counter() - t0)
        return row

    async def _contradiction(self, conn: Any, last: Any) -> str:
        """Why the chain as it stands contradicts what this process signed before ("" if it does not)."""
        if self.signed is None:
            return ""
        seq, hash_, event_id = self.signed
        if last is None or last.seq < seq:
            return f"the checkpoint this process signed at {seq} events is gone from the database"
        found = (await conn.execute(sa.select(events.c.hash).where(events.c.id == event_id))).scalar()
        if found != hash_:
            return (f"event {event_id}, whose hash this process signed at {seq} events, is "
                    f"{'gone' if found is None else 'changed'} (the chain was cut or rewritten)")
        return ""

    async def run(self) -> None:
        """Sign at start what the last run left unsigned, then poll until cancelled."""
        await self.start()
        first = True
        while True:
            try:
                await self.maybe(force=first)
                first = False
            except Exception:  # a database hiccup must not end the task
                logger.exception("checkpoint failed; trying again")
            await asyncio.sleep(min(POLL_S, self.interval_s))


async def run_checkpointer(checkpointer: Checkpointer) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await checkpointer.run()


# ------------------------------------------------------------------ export and verification


def export(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored checkpoint as a file to keep elsewhere: it carries its public key, so anyone can check it."""
    return {"format": EXPORT_FORMAT, "version": 1, "algorithm": "Ed25519", "seq": row["seq"], "hash": row["hash"],
            "at": row["at"], "prev": row["prev"], "key_id": row["key_id"], "public_key": row["public_key"],
            "signature": row["signature"]}


def signature_ok(row: Mapping[str, Any], public: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(
            bytes.fromhex(row["signature"]),
            payload(int(row["seq"]), row["hash"], float(row["at"]), row["prev"], row["key_id"]))
        return True
    except (InvalidSignature, ValueError, TypeError, KeyError):
        return False


def read_export(path: Path) -> dict[str, Any]:
    """An exported checkpoint, its own signature checked against the public key it carries."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable checkpoint file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise ValueError(f"{path}: not an exported checkpoint (format {EXPORT_FORMAT!r})")
    try:
        public = bytes.fromhex(data["public_key"])
    except (KeyError, ValueError, TypeError):
        raise ValueError(f"{path}: its public key is missing or not hex") from None
    if key_id_of(public) != data.get("key_id"):
        raise ValueError(f"{path}: its key id does not belong to its public key")
    if not signature_ok(data, public):
        raise ValueError(f"{path}: its signature does not verify (the file was altered)")
    return data


@dataclass(frozen=True)
class CheckpointsStatus:
    checked: int
    problems: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        if self.ok:
            head = f"checkpoints intact: {self.checked} signed checkpoint(s) match the chain"
        else:
            head = f"checkpoints: {len(self.problems)} problem(s) in {self.checked} checkpoint(s), BAD"
        return "\n".join([head, *(f"  {p}" for p in self.problems), *(f"  note: {n}" for n in self.notes)])


class CheckpointCheck:
    """Checks stored (and exported) checkpoints against one walk of the chain: load them before the walk,
    :meth:`visit` every event, then :meth:`result`."""

    def __init__(self, stored: list[dict[str, Any]], trusted: Mapping[str, bytes],
                 exported: Iterable[dict[str, Any]] = ()) -> None:
        self.stored = stored
        self.exported = list(exported)
        self.trusted = dict(trusted)
        self.wanted = {int(c["seq"]) for c in [*stored, *self.exported]}
        self.hash_at: dict[int, str] = {}

    @classmethod
    async def load(cls, engine: AsyncEngine, trusted: Mapping[str, bytes],
                   exported: Iterable[dict[str, Any]] = ()) -> CheckpointCheck:
        async with engine.connect() as conn:
            rows = [dict(r._mapping) for r in await conn.execute(checkpoints.select().order_by(checkpoints.c.id))]
        return cls(rows, trusted, exported)

    def visit(self, position: int, event: Mapping[str, Any]) -> None:
        if position in self.wanted:
            self.hash_at[position] = event["hash"]

    def _against_chain(self, what: str, c: Mapping[str, Any], length: int) -> str:
        seq = int(c["seq"])
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(c["at"])))
        if seq > length:
            return (f"{what} (signed {when}) covers {seq} events but the chain holds {length} "
                    f"(events were removed from the end)")
        if self.hash_at.get(seq) != c["hash"]:
            return (f"{what} (signed {when}) says event {seq} has hash {c['hash'][:16]}…, the chain has "
                    f"{str(self.hash_at.get(seq))[:16]}… (the chain was rewritten and its hashes recomputed)")
        return ""

    def result(self, length: int) -> CheckpointsStatus:
        """``length``: the number of events the walk found intact."""
        problems: list[str] = []
        notes: list[str] = []
        prev = GENESIS
        last_seq = 0
        for c in self.stored:
            what = f"checkpoint {c['id']}"
            public = self.trusted.get(c["key_id"])
            if public is None:
                problems.append(f"{what}: signed by key {c['key_id']}, which is not trusted here (give its public "
                                f"key with --public-key, or the key file as checkpoint_key)")
            elif not signature_ok(c, public):
                problems.append(f"{what}: its signature does not verify with key {c['key_id']} (the checkpoint "
                                f"was altered or forged)")
            if c["prev"] != prev:
                problems.append(f"{what}: does not follow the checkpoint before it (a checkpoint was removed or "
                                f"altered)")
            if int(c["seq"]) < last_seq:
                problems.append(f"{what}: covers fewer events than the one before it")
            prev, last_seq = digest_of(c), max(last_seq, int(c["seq"]))
            if against := self._against_chain(what, c, length):
                problems.append(against)
        for e in self.exported:
            if against := self._against_chain("the exported checkpoint", e, length):
                problems.append(against)
            elif not any(c["hash"] == e["hash"] and c["seq"] == e["seq"] for c in self.stored):
                notes.append(f"the exported checkpoint at {e['seq']} events is not among the stored ones")
        if not self.trusted and self.stored:
            problems.append("no trusted public key: the checkpoints' signatures cannot be checked")
        if not self.stored:
            notes.append(f"no signed checkpoint yet: the {length} event(s) of the chain are not covered by one")
        elif length > last_seq:
            notes.append(f"{length - last_seq} event(s) after the last checkpoint are not signed yet")
        return CheckpointsStatus(len(self.stored) + len(self.exported), tuple(problems), tuple(notes))


def trusted_keys(key_path: Path | None, extra_public_hex: Iterable[str] = ()) -> dict[str, bytes]:
    """Public keys by key id: that of the key file at ``key_path`` (if it exists) and the ones given."""
    keys: dict[str, bytes] = {}
    if key_path is not None and key_path.exists():
        public = public_bytes(load_key(key_path).public_key())
        keys[key_id_of(public)] = public
    for text in extra_public_hex:
        public = bytes.fromhex(text)
        keys[key_id_of(public)] = public
    return keys


async def latest(engine: AsyncEngine) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(checkpoints.select().order_by(checkpoints.c.id.desc()).limit(1))).first()
    return dict(row._mapping) if row is not None else None
