"""Recordings as records: one row per participant's recording, each joined to the hash chain.

A finished recording (a :class:`~recordings.info.RecordingInfo` from the
recorder) becomes a row of ``recordings`` and a ``recorded`` event of its call
in the same transaction. The event carries the file's SHA-256 and size, so the
checksum is protected by the chain: :meth:`RecordingStore.verify_files`
compares each file with the checksum in its event, not with the (editable) row,
and reports a row that disagrees with its event.

Retention (:meth:`RecordingStore.purge`) deletes the files of recordings older
than the configured number of days; the row stays, marked deleted (when, by
whom, why), and a ``recording_deleted`` event is appended in the same
transaction. :func:`purge_periodically` runs it in the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from recordings.finalize import sha256_of
from recordings.info import RecordingInfo
from server.records.chain import Records
from server.records.db import MAX_ID, calls, events, recordings

logger = logging.getLogger(__name__)

PARTICIPANTS = ("visitor", "clerk")
DAY_S = 86400.0
MIN_PURGE_INTERVAL_S = 60.0  # the server purges no more often than this, whatever recording_purge_interval_s says


@dataclass(frozen=True)
class RecordingProblem:
    """A recording whose file or row does not match what the event log says about it."""

    recording_id: int
    call_id: str
    path: str
    problem: str  # "missing", "altered", "row altered", ...
    detail: str = ""

    def describe(self) -> str:
        text = f"recording {self.recording_id} of call {self.call_id} ({self.path}): {self.problem}"
        return f"{text}: {self.detail}" if self.detail else text


@dataclass(frozen=True)
class FilesStatus:
    checked: int
    problems: tuple[RecordingProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        if self.ok:
            return f"recording files intact: {self.checked} recording(s) match the checksums in their events"
        lines = [f"recording files: {len(self.problems)} of {self.checked} recordings BAD"]
        lines += [f"  {p.describe()}" for p in self.problems]
        return "\n".join(lines)


@dataclass(frozen=True)
class Purged:
    """A recording that retention deleted (or, in a dry run, would delete)."""

    recording_id: int
    call_id: str
    participant: str
    path: str
    started_at: float
    size_bytes: int
    file_missing: bool
    reason: str

    def describe(self) -> str:
        started = dt.datetime.fromtimestamp(self.started_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        missing = ", file was already missing" if self.file_missing else ""
        return (f"recording {self.recording_id} of call {self.call_id} ({self.participant}, {self.path}, "
                f"started {started}, {self.size_bytes} bytes{missing})")


class RecordingStore:
    def __init__(self, records: Records, root: Path) -> None:
        self.records = records
        self.root = root

    def relative(self, path: Path) -> str:
        """``path`` as stored: relative to the recordings directory when it lies inside it."""
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path)

    def file_of(self, row: dict[str, Any]) -> Path:
        path = Path(row["path"])
        return path if path.is_absolute() else self.root / path

    async def add(self, info: RecordingInfo) -> int | None:
        """Store one finished recording and log it in its call's events; return its id.

        A recording already stored (the same file, e.g. recovered twice) is not
        stored again: None.
        """
        rel = self.relative(info.path)
        async with self.records.engine.begin() as conn:
            if (await conn.execute(sa.select(recordings.c.id).where(recordings.c.path == rel))).first():
                return None
            call = (await conn.execute(sa.select(calls).where(calls.c.id == info.call_id))).first()
            if call is None:
                logger.warning("recording %s is of call %s, which has no record; stored without one",
                               rel, info.call_id)
                case_id, field, region, actor = info.call_id, None, None, "system"
            else:
                c = call._mapping
                case_id, field, region = c["case_id"], c["field"], c["region"]
                actor = f"kiosk:{c['kiosk_id']}" if info.participant == "visitor" else f"clerk:{c['clerk_id']}"
            started = info.started_at.timestamp()
            result = await conn.execute(recordings.insert().values(
                call_id=info.call_id, case_id=case_id, participant=info.participant, actor=actor, path=rel,
                started_at=started, duration_s=info.duration_s, size_bytes=info.size_bytes, sha256=info.sha256,
                streams=[s.to_dict() for s in info.streams], recovered=info.recovered, created_at=time.time(),
            ))
            pk = result.inserted_primary_key
            assert pk is not None
            rec_id = int(pk[0])
            await self.records.append(conn, "recorded", actor="system", call_id=info.call_id, case_id=case_id,
                                      field=field, region=region, data={
                                          "recording_id": rec_id, "participant": info.participant,
                                          "of": actor, "path": rel, "sha256": info.sha256,
                                          "size_bytes": info.size_bytes, "duration_s": round(info.duration_s, 3),
                                          "started_at": started, "codecs": list(info.codecs),
                                          "frames": info.frames, "recovered": info.recovered})
        logger.info("recording %s stored (%s, %.1f s, %d bytes)", rel, info.participant, info.duration_s,
                    info.size_bytes)
        return rec_id

    async def add_all(self, infos: list[RecordingInfo]) -> list[int]:
        stored = []
        for info in infos:
            rec_id = await self.add(info)
            if rec_id is not None:
                stored.append(rec_id)
        return stored

    async def known_paths(self) -> set[str]:
        """The stored path of every recording ever stored (deleted ones too)."""
        async with self.records.engine.connect() as conn:
            return set((await conn.execute(sa.select(recordings.c.path))).scalars())

    async def for_call(self, call_id: str) -> list[dict[str, Any]]:
        async with self.records.engine.connect() as conn:
            rows = await conn.execute(recordings.select().where(recordings.c.call_id == call_id)
                                      .order_by(recordings.c.started_at, recordings.c.id))
            return [dict(r._mapping) for r in rows]

    async def get(self, rec_id: int) -> dict[str, Any] | None:
        if not 0 < rec_id <= MAX_ID:
            return None
        async with self.records.engine.connect() as conn:
            row = (await conn.execute(recordings.select().where(recordings.c.id == rec_id))).first()
        return dict(row._mapping) if row else None

    async def log_played(self, row: dict[str, Any], actor: str, data: dict[str, Any]) -> int:
        """Log a ``recording_played`` event of the recording ``row`` (one of :meth:`get`) in its call's events."""
        async with self.records.engine.begin() as conn:
            call = (await conn.execute(sa.select(calls.c.field, calls.c.region)
                                       .where(calls.c.id == row["call_id"]))).first()
            return await self.records.append(
                conn, "recording_played", actor=actor, call_id=row["call_id"], case_id=row["case_id"],
                field=call.field if call else None, region=call.region if call else None,
                data={"recording_id": row["id"], "participant": row["participant"], **data})

    # ------------------------------------------------------------ verification

    async def _recorded_events(self) -> tuple[dict[int, dict[str, Any]], set[int]]:
        """The data of every ``recorded`` event by recording id, and the ids of deleted recordings."""
        recorded: dict[int, dict[str, Any]] = {}
        deleted: set[int] = set()
        async with self.records.engine.connect() as conn:
            rows = await conn.execute(sa.select(events.c.kind, events.c.call_id, events.c.data)
                                      .where(events.c.kind.in_(("recorded", "recording_deleted")))
                                      .order_by(events.c.id))
            for kind, call_id, data in rows:
                rec_id = data.get("recording_id") if isinstance(data, dict) else None
                if not isinstance(rec_id, int):
                    continue
                if kind == "recorded":
                    recorded.setdefault(rec_id, {**data, "call_id": call_id})
                else:
                    deleted.add(rec_id)
        return recorded, deleted

    async def verify_files(self) -> FilesStatus:
        """Check every recording not deleted against its ``recorded`` event.

        The event (protected by the hash chain) is the reference: the file at
        its path must exist and hash to its SHA-256 ("missing", "altered"); the
        row must agree with it on path, checksum and size ("row altered"). A
        row without an event, a row marked deleted with no ``recording_deleted``
        event, and an event whose row is gone are reported too. Files are
        hashed in chunks, in a thread, one at a time.
        """
        recorded, deleted_events = await self._recorded_events()
        async with self.records.engine.connect() as conn:
            rows = [dict(r._mapping) for r in await conn.execute(recordings.select().order_by(recordings.c.id))]
        problems: list[RecordingProblem] = []
        checked = 0
        seen: set[int] = set()
        for row in rows:
            seen.add(row["id"])
            event = recorded.get(row["id"])

            def problem(what: str, detail: str = "", row: dict[str, Any] = row) -> None:
                problems.append(RecordingProblem(row["id"], row["call_id"], row["path"], what, detail))

            if row["deleted_at"] is not None:
                if row["id"] not in deleted_events:
                    problem("row altered", "marked deleted but the event log has no recording_deleted event")
                continue
            checked += 1
            if event is None:
                problem("no event", "the event log has no recorded event for this recording")
                continue
            differs = [key for key in ("path", "sha256", "size_bytes", "call_id", "participant", "started_at")
                       if row[key] != event.get(key)]
            if differs:
                problem("row altered", f"{', '.join(differs)} of the row differ from its recorded event")
            path = self.file_of({"path": event.get("path", row["path"])})
            if not path.is_file():
                problem("missing", f"no file at {path}")
                continue
            digest = await asyncio.to_thread(sha256_of, path)
            if digest != event.get("sha256"):
                problem("altered", f"its SHA-256 is {digest}, the recorded event says {event.get('sha256')}")
        for rec_id, event in sorted(recorded.items()):
            if rec_id not in seen:
                checked += 1
                problems.append(RecordingProblem(rec_id, str(event.get("call_id")), str(event.get("path")),
                                                 "row missing", "the recordings table has no row for it"))
        return FilesStatus(checked, tuple(problems))

    # ------------------------------------------------------------ retention

    async def purge(self, now: float, retention_days: float, by: str, *, dry_run: bool = False) -> list[Purged]:
        """Delete the files of recordings that started more than ``retention_days`` before ``now``.

        For each: the row is marked deleted (``deleted_at``, ``deleted_by`` = ``by``,
        ``delete_reason``) and a ``recording_deleted`` event appended in one
        transaction, and the file is removed inside that transaction, just
        before the commit: a failed commit leaves a missing file (which the
        next purge marks, saying so), never a file kept past its retention
        with the row claiming it is gone. The call's folder goes when it is
        left empty. A file already missing is marked deleted all the same.
        ``dry_run`` only lists what would go.
        """
        if retention_days <= 0:
            raise ValueError("retention_days must be positive (0 means: keep recordings for ever)")
        cutoff = now - retention_days * DAY_S
        async with self.records.engine.connect() as conn:
            rows = [dict(r._mapping) for r in await conn.execute(
                recordings.select().where(recordings.c.deleted_at.is_(None), recordings.c.started_at < cutoff)
                .order_by(recordings.c.started_at, recordings.c.id))]
        done: list[Purged] = []
        for row in rows:
            path = self.file_of(row)
            missing = not path.exists()
            reason = f"retention: older than {retention_days:g} days"
            if missing:
                reason += "; the file was already missing"
            purged = Purged(row["id"], row["call_id"], row["participant"], row["path"], row["started_at"],
                            row["size_bytes"], missing, reason)
            if dry_run:
                done.append(purged)
                continue
            if await self._delete(row, path, now, by, reason):
                logger.info("retention deleted %s", purged.describe())
                done.append(purged)
        return done

    async def _delete(self, row: dict[str, Any], path: Path, now: float, by: str, reason: str) -> bool:
        async with self.records.engine.begin() as conn:
            result = await conn.execute(
                recordings.update().where(recordings.c.id == row["id"], recordings.c.deleted_at.is_(None))
                .values(deleted_at=now, deleted_by=by, delete_reason=reason))
            if result.rowcount != 1:  # someone else (another node, the command line) purged it meanwhile
                return False
            call = (await conn.execute(sa.select(calls.c.field, calls.c.region)
                                       .where(calls.c.id == row["call_id"]))).first()
            await self.records.append(conn, "recording_deleted", actor=by, call_id=row["call_id"],
                                      case_id=row["case_id"], field=call.field if call else None,
                                      region=call.region if call else None, data={
                                          "recording_id": row["id"], "participant": row["participant"],
                                          "path": row["path"], "sha256": row["sha256"], "reason": reason})
            await asyncio.to_thread(_remove_file, path, self.root)
        return True


def _remove_file(path: Path, root: Path) -> None:
    """Remove a recording's file, and its call's folder (directly under ``root``) when that is left empty."""
    path.unlink(missing_ok=True)
    folder = path.parent
    if folder.resolve().parent == root.resolve():
        with contextlib.suppress(OSError):  # not empty (another recording, a lock file): it stays
            folder.rmdir()


async def purge_periodically(store: RecordingStore, retention_days: float, interval_s: float, *,
                             by: str = "retention", clock: Callable[[], float] = time.time,
                             after_pass: Callable[[list[Purged]], None] | None = None) -> None:
    """Purge at once, then every ``interval_s``, until cancelled; a failed pass is logged and the next one runs."""
    while True:
        try:
            purged = await store.purge(clock(), retention_days, by)
        except Exception:
            logger.exception("purging recordings older than %g days failed; trying again in %g s",
                             retention_days, interval_s)
            purged = []
        if purged:
            logger.warning("retention deleted %d recording(s) older than %g days", len(purged), retention_days)
        if after_pass is not None:
            after_pass(purged)
        await asyncio.sleep(interval_s)
