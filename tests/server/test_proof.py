"""Records that prove themselves: rows sealed in the hash chain, signed checkpoints, exported checkpoints.

Every attack here is made as someone with access to the database alone would make it (SQL behind the
application's back, ``run_sql``), and found by the real command line (``vwindow records verify``).
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from server.keys import CHECKPOINTER
from server.records import db
from server.records import seals as sealing
from server.records.casework import CaseFiles
from server.records.chain import GENESIS, Records, _content, event_hash
from server.records.checkpoints import Checkpointer, load_or_create_key
from server.records.db import followups
from server.settings import load_settings
from signaling.effects import CallEvent, CaseRef, FileCallback, FiledMatter, FileRating, FileWrapUp, OpenCall
from tests.conftest import NewDatabase
from tests.server.conftest import Harness, run_sql

pytestmark = pytest.mark.databases

REPO = Path(__file__).resolve().parents[2]
CASE = CaseRef("call-1", "call-1", "market", "sh/jiading/xincheng/park-3", "sh/jiading")


@dataclass
class World:
    data_dir: Path
    database_url: str  # the setting ("" for SQLite in the data directory)
    url: str  # the records database
    engine: AsyncEngine
    signer: Checkpointer

    def verify(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.cli("records", "verify", *args, env=env)

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "server.cli.main", "--data-dir", str(self.data_dir), *args],
                              cwd=REPO, capture_output=True, text=True, timeout=60,
                              env={**os.environ, "VWINDOW_DATABASE_URL": self.database_url, **(env or {})})


@pytest.fixture
async def world(tmp_path: Path, new_database: NewDatabase) -> AsyncIterator[World]:
    """A call with two matters (one a follow-up, later resolved), a rating and a callback request, written through
    the writer's commit path, and a signed checkpoint of the chain's head."""
    database_url = new_database()
    settings = load_settings(data_dir=tmp_path, database_url=database_url)
    await asyncio.to_thread(db.upgrade, settings.db_url)
    engine = db.make_engine(settings.db_url)
    files = CaseFiles(engine)
    t = time.time() - 3600
    await files.commit([OpenCall(CASE, "k-1", "en", t, "kiosk:k-1", {"language": "en"})])
    await files.commit([CallEvent(CASE, "accepted", "clerk:c-1", t + 5, {"clerk_id": "c-1"},
                                  {"answered_at": t + 5, "clerk_id": "c-1"})])
    await files.commit([CallEvent(CASE, "ended", "clerk", t + 60, {"reason": "hangup", "clerk_id": "c-1"},
                                  {"ended_at": t + 60, "end_reason": "hangup", "ended_by": "clerk"})])
    await files.commit([FileWrapUp(CASE, "c-1", t + 70, (
        FiledMatter("joint-cancellation", "completed", "92141127MA0KD1Y64A", "Wang's noodles", "", None, None),
        FiledMatter("joint-cancellation", "yet_to_do", None, "", "waits for a signature", "general", "2026-12-09")))])
    await files.commit([FileRating(CASE, "k-1", t + 65, "dissatisfied", "too slow")])
    await files.commit([FileCallback("case-2", "k-1", "tax", "zh", CASE.region, CASE.district, "13800001234",
                                     "call me back", "2026-12-09", t + 100)])
    records = Records(engine)
    async with engine.begin() as conn:  # as the follow-ups page resolves one
        row = await sealing.update(conn, followups, 1, {"status": "resolved", "resolved_at": t + 200,
                                                        "resolved_by": "c-1", "resolution_note": "signed"})
        assert row is not None
        await records.append(conn, "followup_resolved", actor="user:c-1", call_id=CASE.call_id, at=t + 200,
                             data={"followup_id": 1}, seals=sealing.seal(followups, row))
    signer = Checkpointer(engine, load_or_create_key(settings.checkpoint_key_path))
    assert await signer.sign_head() is not None
    try:
        yield World(tmp_path, database_url, settings.db_url, engine, signer)
    finally:
        await engine.dispose()


async def test_untouched_records_verify_intact(world: World) -> None:
    result = world.verify()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rows intact: 6 rows" in result.stdout  # 1 call, 2 matters, 2 follow-ups, 1 rating
    assert "checkpoints intact: 1 signed checkpoint(s)" in result.stdout


@pytest.mark.parametrize(("table", "key", "sql", "problem"), [
    ("ratings", "call-1", "UPDATE ratings SET score = 'satisfied', reason = ''", "altered"),
    ("matters", "2", "UPDATE matters SET outcome = 'completed' WHERE id = 2", "altered"),
    ("calls", "call-1", "UPDATE calls SET answered_at = requested_at + 1", "altered"),
    ("followups", "1", "UPDATE followups SET resolved_at = opened_at WHERE id = 1", "altered"),
    ("followups", "2", "UPDATE followups SET phone = '13900009999' WHERE id = 2", "altered"),  # not in the log
    ("matters", "1", "DELETE FROM matters WHERE id = 1", "missing"),
    ("ratings", "call-x", "INSERT INTO ratings (call_id, score, reason, at) VALUES ('call-x', 'satisfied', '', 1)",
     "not in the log"),
])
async def test_an_edited_row_is_named_by_table_and_id(world: World, table: str, key: str, sql: str,
                                                      problem: str) -> None:
    await run_sql(world.url, sql)
    result = world.verify()
    assert result.returncode == 1, result.stdout
    assert f"  {table} {key}: {problem}" in result.stdout, result.stdout
    assert "hash chain intact" in result.stdout  # the events are untouched: only the row tells


async def test_a_row_put_back_to_an_earlier_sealed_state_is_caught(world: World) -> None:
    """Reopening a resolved follow-up as it was when opened matches its first seal, but not its last."""
    await run_sql(world.url, "UPDATE followups SET status = 'open', resolved_at = NULL, resolved_by = NULL, "
                  "resolution_note = NULL WHERE id = 1")
    result = world.verify()
    assert result.returncode == 1 and "  followups 1: altered" in result.stdout, result.stdout


async def recompute_chain(url: str) -> None:
    """Recompute every event's hash and the chain head, as a forger who altered events would."""
    from sqlalchemy import select

    engine = db.make_engine(url)
    try:
        async with engine.begin() as conn:
            prev = GENESIS
            for r in (await conn.execute(select(db.events).order_by(db.events.c.id))).all():
                m = dict(r._mapping)
                digest = event_hash(prev, _content(m))
                await conn.execute(db.events.update().where(db.events.c.id == m["id"])
                                   .values(prev_hash=prev, hash=digest))
                prev = digest
            await conn.execute(db.chain_head.update().values(last_hash=prev))
    finally:
        await engine.dispose()


async def test_a_rewritten_chain_with_recomputed_hashes_is_caught_by_the_signed_checkpoint(world: World) -> None:
    """The forger turns the rating round in the event, the row and its seal, and recomputes the chain: every hash
    holds, every row matches its seal; only the signature over the old head tells."""
    rows = await run_sql(world.url, "SELECT id, data, seals FROM events WHERE kind = 'rated'")
    (event_id, _, seals_text), = rows
    await run_sql(world.url, "UPDATE ratings SET score = 'satisfied', reason = ''")
    (rating,) = [dict(zip(("call_id", "score", "reason", "at"), r, strict=True)) for r in
                 await run_sql(world.url, "SELECT call_id, score, reason, at FROM ratings")]
    seals = json.loads(seals_text) if isinstance(seals_text, str) else seals_text
    seals["ratings"]["call-1"] = sealing.digest(db.ratings, rating)
    await run_sql(world.url, "UPDATE events SET data = :d, seals = :s WHERE id = :id",
                  d=json.dumps({"score": "satisfied", "reason": ""}), s=json.dumps(seals), id=event_id)
    await recompute_chain(world.url)
    result = world.verify()
    assert result.returncode == 1, result.stdout
    assert "hash chain intact" in result.stdout and "rows intact" in result.stdout
    assert "checkpoint 1 (signed" in result.stdout and "the chain was rewritten" in result.stdout, result.stdout


async def test_a_cut_end_with_its_checkpoints_deleted_is_caught_by_an_exported_checkpoint(world: World,
                                                                                          tmp_path: Path) -> None:
    records = Records(world.engine)
    (kept,) = await run_sql(world.url, "SELECT count FROM chain_head")
    for i in range(5):
        await records.log("viewed", actor="user:admin", call_id=CASE.call_id, data={"i": i})
    assert await world.signer.sign_head() is not None
    exported = tmp_path / "checkpoint.json"
    out = world.cli("records", "checkpoint", "--export", str(exported))
    assert out.returncode == 0, out.stderr
    assert json.loads(exported.read_text())["seq"] == kept[0] + 5

    # the forger cuts the five events, the checkpoint that covers them, and sets the head back
    await run_sql(world.url, "DELETE FROM events WHERE kind = 'viewed'")
    await run_sql(world.url, "DELETE FROM checkpoints WHERE id > 1")
    await run_sql(world.url, "UPDATE chain_head SET count = :n, last_hash = (SELECT hash FROM events "
                  "ORDER BY id DESC LIMIT 1)", n=kept[0])
    assert world.verify().returncode == 0  # what the database holds agrees with itself
    result = world.verify("--checkpoint", str(exported))
    assert result.returncode == 1, result.stdout
    assert ("the exported checkpoint (signed" in result.stdout
            and f"covers {kept[0] + 5} events but the chain holds {kept[0]}" in result.stdout), result.stdout

    exported.write_text(exported.read_text().replace('"seq": ' + str(kept[0] + 5), '"seq": ' + str(kept[0])))
    altered = world.verify("--checkpoint", str(exported))
    assert altered.returncode == 2 and "signature does not verify" in altered.stderr


async def test_checkpoints_under_a_wrong_key_are_reported(world: World, tmp_path: Path) -> None:
    other = tmp_path / "other" / "checkpoint.key"
    load_or_create_key(other)
    # verified with another key than the one that signed
    result = world.verify(env={"VWINDOW_CHECKPOINT_KEY": str(other)})
    assert result.returncode == 1 and "which is not trusted here" in result.stdout, result.stdout
    # a checkpoint re-signed by a forger's key under the trusted key's id
    forger = Checkpointer(world.engine, load_or_create_key(other))
    await Records(world.engine).log("viewed", actor="user:admin", data={})
    row = await forger.sign_head()
    assert row is not None
    await run_sql(world.url, "UPDATE checkpoints SET key_id = :k, public_key = :p WHERE id = 2",
                  k=world.signer.key_id, p=world.signer.public.hex())
    result = world.verify()
    assert result.returncode == 1
    assert "checkpoint 2: its signature does not verify with key" in result.stdout, result.stdout


async def test_the_signer_refuses_to_sign_over_a_chain_rewritten_behind_its_back(world: World) -> None:
    await run_sql(world.url, "UPDATE events SET actor = 'clerk:c-2' WHERE kind = 'accepted'")
    await recompute_chain(world.url)
    await Records(world.engine).log("viewed", actor="user:admin", data={})
    assert await world.signer.sign_head() is None
    assert "changed (the chain was cut or rewritten)" in world.signer.refused
    assert await run_sql(world.url, "SELECT count(*) FROM checkpoints") == [(1,)]


async def test_the_signer_signs_every_n_events_or_after_the_interval(world: World) -> None:
    world.signer.every_events, world.signer.interval_s = 3, 3600.0
    records = Records(world.engine)
    for _ in range(2):
        await records.log("viewed", actor="user:admin", data={})
        assert await world.signer.maybe() is None
    await records.log("viewed", actor="user:admin", data={})
    assert await world.signer.maybe() is not None
    await records.log("viewed", actor="user:admin", data={})
    world.signer.interval_s = 0.01
    await asyncio.sleep(0.02)
    assert await world.signer.maybe() is not None
    assert world.verify().returncode == 0


@pytest.mark.databases("sqlite")
def test_the_key_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "checkpoint.key"
    key = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    again = load_or_create_key(path)
    assert again.public_key().public_bytes_raw() == key.public_key().public_bytes_raw()


async def test_the_server_creates_its_key_0600_outside_the_database_and_signs_at_start(harness: Harness) -> None:
    path = harness.settings.checkpoint_key_path
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    kiosk = await harness.kiosk()
    await kiosk.ok("request_callback", {"field": "tax", "language": "en", "phone": "13800001234"})
    checkpointer = harness.server.app[CHECKPOINTER]
    checkpointer.interval_s = 0.01
    await asyncio.sleep(0.02)
    row = await checkpointer.maybe()
    assert row is not None and row["seq"] >= 1
    pem = path.read_bytes()
    dump = await run_sql(harness.settings.db_url, "SELECT public_key, signature FROM checkpoints")
    assert dump and all(pem.decode() not in str(r) for r in dump)


async def test_rows_written_before_the_upgrade_are_sealed_by_it(db_url: str) -> None:
    await asyncio.to_thread(db.upgrade, db_url, "0004")
    t = time.time()
    await run_sql(db_url, "INSERT INTO calls (id, case_id, kiosk_id, field, language, region, district, "
                  "requested_at) VALUES ('old', 'old', 'k', 'tax', 'zh', 'sh/jiading/x/p', 'sh/jiading', :t)", t=t)
    await run_sql(db_url, "INSERT INTO followups (source, case_id, field, region, district, kind, opened_at, "
                  "due_date, phone) VALUES ('callback', 'c', 'tax', 'r', 'sh/jiading', 'general', :t, '2026-12-09', "
                  "'13800001234')", t=t)
    await asyncio.to_thread(db.upgrade, db_url)
    engine = db.make_engine(db_url)
    try:
        from server.records.audit import audit

        result = await audit(engine, {})
        assert result.chain.ok and result.rows is not None and result.rows.ok and result.rows.checked == 2
        await run_sql(db_url, "UPDATE followups SET phone = '13900000000'")
        result = await audit(engine, {})
        assert result.rows is not None and [p.describe()[:21] for p in result.rows.problems] == \
            ["followups 1: altered "]
    finally:
        await engine.dispose()


async def test_checkpoints_of_several_nodes_form_one_line(world: World) -> None:
    """Two nodes (engines) writing and signing at once: the chain head's lock orders their checkpoints."""
    other_engine = db.make_engine(world.url)
    try:
        nodes = [(world.engine, world.signer), (other_engine, Checkpointer(other_engine, world.signer.key))]
        for _, signer in nodes:
            signer.every_events = 4
            await signer.start()

        async def node(engine: AsyncEngine, signer: Checkpointer, n: int) -> None:
            records = Records(engine)
            for i in range(20):
                await records.log("viewed", actor=f"node:{n}", data={"i": i})
                await signer.maybe()

        await asyncio.gather(*(node(e, s, n) for n, (e, s) in enumerate(nodes)))
        assert sum(len(s.sign_s) for _, s in nodes) >= 5
        result = world.verify()
        assert result.returncode == 0 and "checkpoints intact" in result.stdout, result.stdout
    finally:
        await other_engine.dispose()


@pytest.mark.databases("sqlite")
def test_nodes_starting_together_on_one_key_path_share_one_whole_key(tmp_path: Path) -> None:
    import concurrent.futures

    path = tmp_path / "shared" / "checkpoint.key"
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: load_or_create_key(path).public_key().public_bytes_raw(), range(8)))
    assert len(set(keys)) == 1
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.key"]  # no temporary file left
