"""Reviewing recordings: playback rights and range requests, playback logging, retention, file verification.

Every recording here is a real WebM file (VP8 and Opus, made with PyAV by
:mod:`tests.server.recording_media`), stored through ``RecordingStore.add``
for calls made through the real records, so its ``recorded`` event is in the
hash chain.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from recordings.info import RecordingInfo
from server.app import create_app
from server.keys import EVIDENCE, IDENTITIES, RECORDS, SETTINGS
from server.records import db
from server.records.chain import Records
from server.records.evidence import Purged, RecordingStore, purge_periodically
from server.records.identities import Clerk
from server.settings import load_settings
from tests.conftest import NewDatabase
from tests.server.conftest import ENGLISH, run_sql
from tests.server.recording_media import make_recording
from tests.server.test_admin import JIADING, JIADING_PARK, PASSWORD, PUTUO, PUTUO_PARK, add_call
from tests.server.test_auth import Client, ClientFactory, login

pytestmark = pytest.mark.databases

REPO = Path(__file__).resolve().parents[2]
DAY = 86400.0


def ago(days: float = 0.0, seconds: float = 0.0) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(days=days, seconds=seconds)


@dataclass
class Review:
    client: Client
    app: web.Application
    admin: Clerk
    clerk_a: Clerk
    clerk_b: Clerk
    calls: dict[str, str] = field(default_factory=dict)
    recs: dict[str, int] = field(default_factory=dict)  # "call/participant" -> recording id

    @property
    def store(self) -> RecordingStore:
        return self.app[EVIDENCE]

    @property
    def root(self) -> Path:
        return self.app[SETTINGS].recordings_root

    async def record(self, label: str, participant: str, started: dt.datetime, seconds: float = 2.0,
                     **kw: Any) -> RecordingInfo:
        info = make_recording(self.root, call_id=self.calls[label], participant=participant, started_at=started,
                              seconds=seconds, **kw)
        rec_id = await self.store.add(info)
        assert rec_id is not None
        self.recs[f"{label}/{participant}"] = rec_id
        return info

    async def events(self, label: str, kind: str) -> list[dict[str, Any]]:
        return [e for e in await self.app[RECORDS].timeline(self.calls[label]) if e["kind"] == kind]


ReviewFactory = Callable[..., Awaitable[Review]]


@pytest.fixture
async def make_review(aiohttp_client: ClientFactory, tmp_path: Path, new_database: NewDatabase) -> ReviewFactory:
    made = 0

    async def make(**overrides: Any) -> Review:
        nonlocal made
        made += 1
        # no periodic purge unless a test asks for it: the tests here call purge themselves
        overrides.setdefault("recording_retention_days", 0)
        overrides.setdefault("database_url", new_database())
        app = create_app(load_settings(data_dir=tmp_path / f"data{made}", **overrides))
        client = await aiohttp_client(app, headers=ENGLISH)  # the checks below read the pages' English texts
        ids = app[IDENTITIES]
        admin, _ = await ids.add_user("Ada Admin", "admin", username="admin", password=PASSWORD)
        clerk_a, _ = await ids.add_user("Alice Clerk", "clerk", fields=["tax", "market"], regions=[JIADING],
                                        languages=["zh"], username="alice", password=PASSWORD)
        clerk_b, _ = await ids.add_user("Bob Clerk", "clerk", fields=["tax"], regions=[PUTUO],
                                        languages=["zh"], username="bob", password=PASSWORD)
        review = Review(client, app, admin, clerk_a, clerk_b)
        review.calls["a"] = await add_call(app, region=JIADING_PARK, field_id="market", clerk=clerk_a,
                                           requested_at=ago(seconds=3600).timestamp(), wait_s=60)
        review.calls["b"] = await add_call(app, region=PUTUO_PARK, field_id="tax", clerk=clerk_b,
                                           requested_at=ago(seconds=1800).timestamp(), wait_s=60)
        return review

    return make


@pytest.fixture
async def review(make_review: ReviewFactory) -> Review:
    r = await make_review()
    base = ago(seconds=3000)
    await r.record("a", "visitor", base, seconds=3.0)
    await r.record("a", "clerk", base + dt.timedelta(seconds=1.5), seconds=2.0, shade=90)
    return r


# ---------------------------------------------------------------- playback


async def test_an_administrator_plays_with_range_requests_and_is_logged(review: Review) -> None:
    rec_id = review.recs["a/visitor"]
    data = (review.root / review.calls["a"] / "visitor.webm").read_bytes()
    await login(review.client, "admin", PASSWORD)

    resp = await review.client.get(f"/recordings/{rec_id}", headers={"Range": "bytes=0-99"})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes 0-99/{len(data)}"
    assert resp.headers["Accept-Ranges"] == "bytes"
    assert resp.headers["Content-Type"] == "video/webm"
    assert resp.headers["Cache-Control"] == "no-store"
    assert await resp.read() == data[:100]

    resp = await review.client.get(f"/recordings/{rec_id}", headers={"Range": "bytes=1000-2999"})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes 1000-2999/{len(data)}"
    assert await resp.read() == data[1000:3000]
    resp = await review.client.get(f"/recordings/{rec_id}", headers={"Range": f"bytes={len(data) - 10}-"})
    assert resp.status == 206 and await resp.read() == data[-10:]

    resp = await review.client.get(f"/recordings/{rec_id}")  # no Range: the whole file
    assert resp.status == 200 and await resp.read() == data

    # without a playback id every request that returned bytes is a playback of its own
    played = await review.events("a", "recording_played")
    assert [(e["actor"], e["data"]["recording_id"], e["data"]["range"], e["data"]["bytes"]) for e in played] == [
        (f"user:{review.admin.id}", rec_id, "bytes=0-99", 100), (f"user:{review.admin.id}", rec_id, "bytes=1000-2999",
                                                                2000),
        (f"user:{review.admin.id}", rec_id, f"bytes={len(data) - 10}-", 10),
        (f"user:{review.admin.id}", rec_id, "all", len(data))]
    assert played[0]["data"]["name"] == "Ada Admin" and played[0]["data"]["participant"] == "visitor"
    assert played[0]["at"] <= played[-1]["at"] <= time.time()
    assert (await review.app[RECORDS].verify()).ok
    assert (await review.app[RECORDS].verify_call(review.calls["a"])).ok


@pytest.mark.parametrize("range_header", ["bytes=1-", "bytes=-260447", "bytes=-0", "bytes=-1", "bytes=5-5"])
@pytest.mark.databases("sqlite")  # which answers are playbacks; the records part runs on both above
async def test_every_answer_with_bytes_of_a_recording_is_logged(review: Review, range_header: str) -> None:
    """The probe's downloads (issue 11): ranges not from byte 0 returned (nearly) the whole file unlogged."""
    rec_id = review.recs["a/visitor"]
    await login(review.client, "admin", PASSWORD)
    resp = await review.client.get(f"/recordings/{rec_id}", headers={"Range": range_header})
    assert resp.status in (200, 206)
    body = await resp.read()
    assert body
    played = await review.events("a", "recording_played")
    assert [(e["data"]["range"], e["data"]["bytes"]) for e in played] == [(range_header, len(body))]


@pytest.mark.databases("sqlite")  # which answers are playbacks; the records part runs on both above
async def test_answers_without_bytes_are_not_playbacks(review: Review) -> None:
    rec_id = review.recs["a/visitor"]
    size = (review.root / review.calls["a"] / "visitor.webm").stat().st_size
    await login(review.client, "admin", PASSWORD)
    for header in (f"bytes={size}-", f"bytes={size + 100}-{size + 200}", "bytes=x-y", "items=0-", "bytes=0-0,500-"):
        resp = await review.client.get(f"/recordings/{rec_id}", headers={"Range": header})
        assert resp.status == 416, (header, resp.status)
    resp = await review.client.head(f"/recordings/{rec_id}")
    assert resp.status == 200
    assert await review.events("a", "recording_played") == []


PLAYBACK_RE = re.compile(r'data-playback="([A-Za-z0-9_-]+)"')


@pytest.mark.databases("sqlite")  # which answers are playbacks; the records part runs on both above
async def test_one_playback_of_a_page_view_is_logged_once_per_recording(review: Review) -> None:
    visitor, clerk = review.recs["a/visitor"], review.recs["a/clerk"]
    await login(review.client, "admin", PASSWORD)
    page = await (await review.client.get(f"/sessions/{review.calls['a']}")).text()
    found = PLAYBACK_RE.search(page)
    assert found is not None
    playback = found.group(1)
    assert f'src="/recordings/{visitor}?playback={playback}"' in page
    for header in ("bytes=0-", "bytes=1000-", "bytes=-500", "bytes=1-"):  # buffering and seeking
        for rec in (visitor, clerk):
            resp = await review.client.get(f"/recordings/{rec}?playback={playback}", headers={"Range": header})
            assert resp.status == 206
    played = await review.events("a", "recording_played")
    assert sorted((e["data"]["recording_id"], e["data"]["playback"]) for e in played) == sorted(
        [(visitor, playback), (clerk, playback)])
    # a page view of its own is a playback of its own; an id this server never issued coalesces nothing
    again = PLAYBACK_RE.search(await (await review.client.get(f"/sessions/{review.calls['a']}")).text())
    assert again is not None and again.group(1) != playback
    await review.client.get(f"/recordings/{visitor}?playback={again.group(1)}", headers={"Range": "bytes=9-"})
    for _ in range(2):
        await review.client.get(f"/recordings/{visitor}?playback=made-up", headers={"Range": "bytes=9-"})
    assert len(await review.events("a", "recording_played")) == 2 + 1 + 2


@pytest.mark.databases("sqlite")  # which answers are playbacks; the records part runs on both above
async def test_a_playback_id_of_another_user_coalesces_nothing(make_review: ReviewFactory) -> None:
    review = await make_review(recording_playback_clerk=True)
    await review.record("a", "visitor", ago(seconds=3000))
    rec_id = review.recs["a/visitor"]
    await login(review.client, "admin", PASSWORD)
    found = PLAYBACK_RE.search(await (await review.client.get(f"/sessions/{review.calls['a']}")).text())
    assert found is not None
    await login(review.client, "alice", PASSWORD)  # the clerk of the call, with the administrator's id
    for _ in range(2):
        resp = await review.client.get(f"/recordings/{rec_id}?playback={found.group(1)}", headers={"Range": "bytes=1-"})
        assert resp.status == 206
    played = await review.events("a", "recording_played")
    assert [e["actor"] for e in played] == [f"user:{review.clerk_a.id}"] * 2


@pytest.mark.databases("sqlite")  # rights and the player; the records part runs on both above
async def test_who_may_play(review: Review) -> None:
    rec_id = review.recs["a/clerk"]
    # anonymous: refused (nothing is served or logged)
    resp = await review.client.get(f"/recordings/{rec_id}", headers={"Range": "bytes=0-"}, allow_redirects=False)
    assert resp.status == 403 and "log in" in await resp.text()
    # the clerk of another call
    await login(review.client, "bob", PASSWORD)
    resp = await review.client.get(f"/recordings/{rec_id}", headers={"Range": "bytes=0-"})
    assert resp.status == 403
    # the clerk of this call, when recording_playback_clerk is not set (the default)
    await login(review.client, "alice", PASSWORD)
    resp = await review.client.get(f"/recordings/{rec_id}", headers={"Range": "bytes=0-"})
    assert resp.status == 403 and "only administrators" in await resp.text()
    assert await review.events("a", "recording_played") == []
    # the administrator; an unknown recording
    await login(review.client, "admin", PASSWORD)
    assert (await review.client.get(f"/recordings/{rec_id}", headers={"Range": "bytes=0-"})).status == 206
    assert (await review.client.get("/recordings/999999", headers={"Range": "bytes=0-"})).status == 404
    assert [e["actor"] for e in await review.events("a", "recording_played")] == [f"user:{review.admin.id}"]


@pytest.mark.databases("sqlite")  # rights and the player; the records part runs on both above
async def test_the_clerk_of_the_call_plays_when_configured(make_review: ReviewFactory) -> None:
    review = await make_review(recording_playback_clerk=True)
    info = await review.record("a", "visitor", ago(seconds=3000))
    rec_id = review.recs["a/visitor"]
    await login(review.client, "bob", PASSWORD)  # still not the clerk of another call
    assert (await review.client.get(f"/recordings/{rec_id}", headers={"Range": "bytes=0-"})).status == 403
    await login(review.client, "alice", PASSWORD)
    resp = await review.client.get(f"/recordings/{rec_id}", headers={"Range": "bytes=0-"})
    assert resp.status == 206 and await resp.read() == info.path.read_bytes()
    page = await (await review.client.get(f"/sessions/{review.calls['a']}")).text()
    assert 'data-testid="video-visitor"' in page
    played = await review.events("a", "recording_played")
    assert [(e["actor"], e["data"]["range"]) for e in played] == [(f"user:{review.clerk_a.id}", "bytes=0-")]
    assert (await review.app[RECORDS].verify()).ok


SCRIPT_RE = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S)


@pytest.mark.databases("sqlite")  # rights and the player; the records part runs on both above
async def test_the_session_page_lists_recordings_and_plays_them_side_by_side(make_review: ReviewFactory) -> None:
    review = await make_review()
    base = ago(seconds=3000)
    visitor = await review.record("a", "visitor", base, seconds=3.0)
    clerk = await review.record("a", "clerk", base + dt.timedelta(seconds=2), seconds=2.0, shade=90)
    again = make_recording(review.root, call_id=review.calls["a"], participant="visitor", stem="visitor-2",
                           started_at=base + dt.timedelta(seconds=10))
    again = dataclasses.replace(again, recovered=True)  # finalized after its recorder died
    await review.store.add(again)
    await login(review.client, "admin", PASSWORD)
    resp = await review.client.get(f"/sessions/{review.calls['a']}")
    assert resp.status == 200
    html = await resp.text()
    for info in (visitor, clerk, again):
        assert info.sha256 in html and info.sha256[:12] + "…" in html  # shortened, the full value to copy
    assert html.count(">recovered</span>") == 1
    assert f'src="/recordings/{review.recs["a/visitor"]}?playback=' in html  # the first recording of each side
    assert f'src="/recordings/{review.recs["a/clerk"]}?playback=' in html
    assert 'preload="none"' in html  # nothing is fetched (or logged as played) before Play
    assert "(+2.0 s)" in html  # the clerk's recorder started two seconds after the visitor's
    scripts = SCRIPT_RE.findall(html)
    assert any('src="/static/playback.js"' in attrs for attrs, _ in scripts)
    # the CSP allows no inline script; JSON data blocks (the texts for the scripts) are not run
    assert all(("src=" in attrs and not body.strip()) or 'type="application/json"' in attrs for attrs, body in scripts)
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert await review.events("a", "recording_played") == []
    # the clerk of the call sees the list, not the player
    await login(review.client, "alice", PASSWORD)
    html = await (await review.client.get(f"/sessions/{review.calls['a']}")).text()
    assert visitor.sha256 in html and "<video" not in html and "playback.js" not in html
    assert "Only administrators may play recordings" in html
    # a call without recordings says so
    await login(review.client, "admin", PASSWORD)
    html = await (await review.client.get(f"/sessions/{review.calls['b']}")).text()
    assert "This call was not recorded" in html and "<video" not in html


# ---------------------------------------------------------------- retention


async def test_purge_deletes_old_recordings_only_and_logs_it(make_review: ReviewFactory) -> None:
    review = await make_review()
    old = await add_call(review.app, region=JIADING_PARK, field_id="market", clerk=review.clerk_a,
                         requested_at=ago(days=200, seconds=60).timestamp(), wait_s=30, outcomes=("completed",))
    review.calls["old"] = old
    old_visitor = await review.record("old", "visitor", ago(days=200))
    old_clerk = await review.record("old", "clerk", ago(days=200, seconds=-1))
    recent = await review.record("a", "visitor", ago(days=179))
    kinds_before = [e["kind"] for e in await review.app[RECORDS].timeline(old)]

    purged = await review.store.purge(time.time(), 180, "retention")
    assert sorted(p.recording_id for p in purged) == sorted([review.recs["old/visitor"], review.recs["old/clerk"]])
    assert not any(p.file_missing for p in purged)
    assert not old_visitor.path.exists() and not old_clerk.path.exists()
    assert not (review.root / old).exists()  # the call's folder, left empty, goes too
    assert recent.path.exists() and recent.sha256 == (await review.store.get(review.recs["a/visitor"]) or {})["sha256"]
    rows = {r["id"]: r for r in await review.store.for_call(old)}
    for row in rows.values():
        assert row["deleted_at"] is not None and row["deleted_by"] == "retention"
        assert row["delete_reason"] == "retention: older than 180 days"
    assert (await review.store.get(review.recs["a/visitor"]) or {})["deleted_at"] is None

    deleted = await review.events("old", "recording_deleted")
    assert sorted((e["data"]["recording_id"], e["data"]["sha256"]) for e in deleted) == sorted(
        [(review.recs["old/visitor"], old_visitor.sha256), (review.recs["old/clerk"], old_clerk.sha256)])
    assert all(e["actor"] == "retention" and e["data"]["reason"].startswith("retention") for e in deleted)
    # the rest of the session record stays: the call, its matters, every earlier event
    assert await review.app[RECORDS].call(old) is not None
    assert [e["kind"] for e in await review.app[RECORDS].timeline(old)] == [*kinds_before, "recording_deleted",
                                                                            "recording_deleted"]
    assert (await review.app[RECORDS].verify()).ok
    assert (await review.store.verify_files()).ok  # deleted recordings are not "missing"
    assert await review.store.purge(time.time(), 180, "retention") == []  # nothing twice

    # the page and the file say when and by whom
    await login(review.client, "admin", PASSWORD)
    resp = await review.client.get(f"/recordings/{review.recs['old/visitor']}", headers={"Range": "bytes=0-"})
    assert resp.status == 410 and "deleted on" in await resp.text() and "by retention" in await resp.text()
    html = await (await review.client.get(f"/sessions/{old}")).text()
    assert html.count("deleted on ") == 2 and "by retention" in html and "<video" not in html


async def test_purge_marks_a_missing_file_deleted(make_review: ReviewFactory) -> None:
    review = await make_review()
    gone = await review.record("a", "visitor", ago(days=30))
    kept = await review.record("a", "clerk", ago(days=30))
    gone.path.unlink()
    assert [p.recording_id for p in await review.store.purge(time.time(), 10, "retention", dry_run=True)] == [
        review.recs["a/visitor"], review.recs["a/clerk"]]
    assert kept.path.exists() and await review.events("a", "recording_deleted") == []  # a dry run changes nothing
    purged = {p.recording_id: p for p in await review.store.purge(time.time(), 10, "retention")}
    assert purged[review.recs["a/visitor"]].file_missing and not purged[review.recs["a/clerk"]].file_missing
    row = await review.store.get(review.recs["a/visitor"])
    assert row is not None and row["deleted_at"] is not None and "already missing" in row["delete_reason"]
    assert not kept.path.exists()
    assert {e["data"]["recording_id"]: "already missing" in e["data"]["reason"]
            for e in await review.events("a", "recording_deleted")} == {
        review.recs["a/visitor"]: True, review.recs["a/clerk"]: False}
    assert (await review.app[RECORDS].verify()).ok


async def test_the_server_purges_at_start_and_periodically(aiohttp_client: ClientFactory, tmp_path: Path,
                                                          new_database: NewDatabase) -> None:
    settings = load_settings(data_dir=tmp_path, recording_retention_days=180, recording_purge_interval_s=3600,
                             database_url=new_database())
    # records and an old recording written before the server starts
    await asyncio.to_thread(db.upgrade, settings.db_url)
    engine = db.make_engine(settings.db_url)
    records = Records(engine)
    call_id = "old-call-1"
    await records.open_call({"id": call_id, "case_id": call_id, "kiosk_id": "k-test", "field": "market",
                             "language": "zh", "region": JIADING_PARK, "district": JIADING,
                             "requested_at": ago(days=200).timestamp()}, actor="kiosk:k-test", data={})
    info = make_recording(settings.recordings_root, call_id=call_id, participant="visitor", started_at=ago(days=200))
    rec_id = await RecordingStore(records, settings.recordings_root).add(info)
    await engine.dispose()

    app = create_app(settings)
    await aiohttp_client(app)

    async def deleted() -> list[dict[str, Any]]:
        while True:
            found = [e for e in await app[RECORDS].timeline(call_id) if e["kind"] == "recording_deleted"]
            if found:
                return found
            await asyncio.sleep(0.02)  # polling for the condition, with a deadline below

    [event] = await asyncio.wait_for(deleted(), 10)
    assert event["data"]["recording_id"] == rec_id and event["actor"] == "retention"
    assert not info.path.exists()
    assert (await app[RECORDS].verify()).ok


async def test_a_failed_purge_pass_is_logged_and_the_next_one_runs(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    class Flaky(RecordingStore):
        calls = 0

        async def purge(self, now: float, retention_days: float, by: str, *, dry_run: bool = False) -> list[Purged]:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise OSError("disk unplugged")
            return []

    passes: list[list[Purged]] = []
    two = asyncio.Event()

    def after_pass(purged: list[Purged]) -> None:
        passes.append(purged)
        if len(passes) == 2:
            two.set()

    engine = db.make_engine(db.sqlite_url(tmp_path / "unused.sqlite3"))  # never connected: purge is replaced
    store = Flaky(Records(engine), tmp_path)
    with caplog.at_level(logging.ERROR, logger="server.records.evidence"):
        task = asyncio.create_task(purge_periodically(store, 30, 0, after_pass=after_pass))
        await asyncio.wait_for(two.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    await engine.dispose()
    assert Flaky.calls >= 2 and passes[:2] == [[], []]
    assert "purging recordings older than 30 days failed" in caplog.text and "disk unplugged" in caplog.text


# ---------------------------------------------------------------- the command line


@dataclass
class DataDir:
    """A data directory and its records database, as the command line is given them."""

    path: Path
    database_url: str  # "" for SQLite in the data directory

    @property
    def db_url(self) -> str:
        return load_settings(data_dir=self.path, database_url=self.database_url).db_url


@pytest.fixture
def data_dir(tmp_path: Path, new_database: NewDatabase) -> DataDir:
    return DataDir(tmp_path, new_database())


def cli(data_dir: DataDir, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VWINDOW_DATABASE_URL": data_dir.database_url}
    return subprocess.run([sys.executable, "-m", "server.cli.main", "--data-dir", str(data_dir.path), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=60, env=env)


async def recorded_data_dir(data_dir: DataDir, calls: dict[str, float]) -> dict[str, tuple[int, RecordingInfo]]:
    """A data directory with one call per entry of ``calls`` (id -> days ago), each with a visitor recording."""
    settings = load_settings(data_dir=data_dir.path, database_url=data_dir.database_url)
    await asyncio.to_thread(db.upgrade, settings.db_url)
    engine = db.make_engine(settings.db_url)
    records = Records(engine)
    store = RecordingStore(records, settings.recordings_root)
    out = {}
    for call_id, days in calls.items():
        await records.open_call({"id": call_id, "case_id": call_id, "kiosk_id": "k-test", "field": "market",
                                 "language": "zh", "region": JIADING_PARK, "district": JIADING,
                                 "requested_at": ago(days=days).timestamp()}, actor="kiosk:k-test", data={})
        info = make_recording(settings.recordings_root, call_id=call_id, participant="visitor",
                              started_at=ago(days=days))
        rec_id = await store.add(info)
        assert rec_id is not None
        out[call_id] = (rec_id, info)
    await engine.dispose()
    return out


async def test_records_verify_cli_reports_altered_missing_and_row_altered_recordings(data_dir: DataDir) -> None:
    made = await recorded_data_dir(data_dir, {"call-ok": 1, "call-flip": 1, "call-gone": 1, "call-row": 1})
    good = cli(data_dir, "records", "verify")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "hash chain intact" in good.stdout and "recording files intact: 4 recording(s)" in good.stdout

    flip_id, flip = made["call-flip"]
    raw = bytearray(flip.path.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one bit in the middle of the media
    flip.path.write_bytes(bytes(raw))
    gone_id, gone = made["call-gone"]
    gone.path.unlink()
    row_id, _ = made["call-row"]
    # someone "fixes" a row behind the app's back
    await run_sql(data_dir.db_url, "UPDATE recordings SET sha256 = :sha WHERE id = :id", sha="0" * 64, id=row_id)

    bad = cli(data_dir, "records", "verify")
    assert bad.returncode == 1
    out = bad.stdout
    assert "hash chain intact" in out  # the chain check is unchanged: the events are fine
    assert f"recording {flip_id} of call call-flip (call-flip/visitor.webm): altered" in out
    assert f"recording {gone_id} of call call-gone (call-gone/visitor.webm): missing" in out
    assert f"recording {row_id} of call call-row (call-row/visitor.webm): row altered: sha256" in out
    assert "call-ok" not in out
    assert "3 of 4 recordings BAD" in out


async def test_recordings_purge_cli(data_dir: DataDir) -> None:
    made = await recorded_data_dir(data_dir, {"call-old": 400, "call-mid": 100, "call-new": 1})
    dry = cli(data_dir, "recordings", "purge", "--dry-run")  # the configured retention: 180 days
    assert dry.returncode == 0, dry.stderr
    assert f"would delete recording {made['call-old'][0]} of call call-old" in dry.stdout
    assert "call-mid" not in dry.stdout and "(dry run)" in dry.stdout
    assert made["call-old"][1].path.exists()

    run = cli(data_dir, "recordings", "purge")
    assert run.returncode == 0, run.stderr
    assert f"deleted recording {made['call-old'][0]} of call call-old" in run.stdout
    assert "1 recording(s) older than 180 days deleted" in run.stdout
    assert not made["call-old"][1].path.exists() and made["call-mid"][1].path.exists()

    run = cli(data_dir, "recordings", "purge", "--older-than-days", "30")
    assert f"deleted recording {made['call-mid'][0]} of call call-mid" in run.stdout and "call-new" not in run.stdout
    assert not made["call-mid"][1].path.exists() and made["call-new"][1].path.exists()
    assert cli(data_dir, "recordings", "purge", "--older-than-days", "0").returncode != 0

    deleted = await run_sql(data_dir.db_url, "SELECT call_id, deleted_by FROM recordings "
                            "WHERE deleted_at IS NOT NULL ORDER BY id")
    kinds = await run_sql(data_dir.db_url, "SELECT call_id FROM events WHERE kind = 'recording_deleted' ORDER BY id")
    calls_left = await run_sql(data_dir.db_url, "SELECT count(*) FROM calls")
    assert deleted == [("call-old", "retention (vwindow recordings purge)"),
                       ("call-mid", "retention (vwindow recordings purge)")]
    assert kinds == [("call-old",), ("call-mid",)] and calls_left == [(3,)]
    verify = cli(data_dir, "records", "verify")
    assert verify.returncode == 0 and "recording files intact: 1 recording(s)" in verify.stdout


async def test_a_row_marked_deleted_without_its_event_is_reported(data_dir: DataDir) -> None:
    made = await recorded_data_dir(data_dir, {"call-hidden": 1})
    rec_id, _ = made["call-hidden"]
    # hiding a recording from verification
    await run_sql(data_dir.db_url, "UPDATE recordings SET deleted_at = 1 WHERE id = :id", id=rec_id)
    bad = cli(data_dir, "records", "verify")
    assert bad.returncode == 1
    assert (f"recording {rec_id} of call call-hidden (call-hidden/visitor.webm): row altered: marked deleted"
            in bad.stdout)
