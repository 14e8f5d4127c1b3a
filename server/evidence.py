"""Recordings as records: one row per participant's recording, each joined to the hash chain.

A finished recording (a :class:`~recordings.info.RecordingInfo` from the
recorder) becomes a row of ``recordings`` and a ``recorded`` event of its call
in the same transaction. The event carries the file's SHA-256 and size, so the
checksum is protected by the chain: ``verify`` compares each file with the
checksum in its event, not with the (editable) row.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from recordings.info import RecordingInfo
from server.db import calls, recordings
from server.records import Records

logger = logging.getLogger(__name__)

PARTICIPANTS = ("visitor", "clerk")


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
        async with self.records.engine.connect() as conn:
            row = (await conn.execute(recordings.select().where(recordings.c.id == rec_id))).first()
        return dict(row._mapping) if row else None
