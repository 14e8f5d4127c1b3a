"""What a hostile probe of the HTTP side found (issue 11): headers on every answer, no caching of personal data,
a records database only its owner can read, and bad query input answered without a 500."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from aiohttp import web

from server.app import create_app
from server.keys import IDENTITIES
from server.settings import load_settings
from tests.conftest import NewDatabase
from tests.server.conftest import ENGLISH
from tests.server.test_auth import ADMIN, CLERK, Client, ClientFactory, login

SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy")


@pytest.fixture
async def client(aiohttp_client: ClientFactory, tmp_path: Path, new_database: NewDatabase) -> Client:
    app = create_app(load_settings(data_dir=tmp_path, database_url=new_database()))
    client = await aiohttp_client(app, headers=ENGLISH)
    ids = app[IDENTITIES]
    await ids.add_user("Ada Admin", "admin", username=ADMIN[0], password=ADMIN[1])
    await ids.add_user("Carl Clerk", "clerk", fields=["tax"], regions=["sh/jiading"], languages=["zh"],
                       username=CLERK[0], password=CLERK[1])
    return client


def assert_secured(resp: web.StreamResponse | object, what: str) -> None:
    headers = resp.headers  # type: ignore[attr-defined]
    for name in SECURITY_HEADERS:
        assert name in headers, (what, name, dict(headers))
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in headers["Content-Security-Policy"]


async def test_redirects_and_errors_carry_the_security_headers(client: Client) -> None:
    cases = [("/admin", 303), ("/admin/api/live", 401), ("/no-such-page", 404), ("/recordings/1", 403),
             ("/sessions?clerk=%00", 400)]
    for path, status in cases:
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == status, (path, resp.status)
        assert_secured(resp, path)
        assert resp.headers.get("Cache-Control") == "no-store", path
    resp = await client.post("/admin/kiosks", data={"name": "K"}, allow_redirects=False)  # no CSRF token: 403
    assert resp.status == 403
    assert_secured(resp, "POST without CSRF")
    await login(client, *CLERK)
    resp = await client.get("/admin", allow_redirects=False)  # a clerk on an administrator's page
    assert resp.status == 403
    assert_secured(resp, "403 for a clerk")


STAFF_PAGES = ["/admin", "/admin/api/live", "/admin/clerks", "/admin/kiosks", "/sessions", "/followups", "/stats",
               "/stats/export/sessions.csv", "/login", "/clerk"]


async def test_no_page_with_personal_data_may_be_cached(client: Client) -> None:
    await login(client, *ADMIN)
    for path in STAFF_PAGES:
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 200, (path, resp.status)
        assert resp.headers.get("Cache-Control") == "no-store", path
        assert_secured(resp, path)
    resp = await client.get("/static/admin.js")
    assert resp.status == 200 and resp.headers.get("Cache-Control") != "no-store"  # files without personal data


async def test_the_records_database_and_its_wal_files_are_readable_by_their_owner_only(
        aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    app = create_app(load_settings(data_dir=tmp_path))  # SQLite in the data directory
    client = await aiohttp_client(app, headers=ENGLISH)
    await app[IDENTITIES].add_user("Ada Admin", "admin", username=ADMIN[0], password=ADMIN[1])
    await login(client, *ADMIN)  # a write: the WAL and its index exist now
    files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in list(tmp_path.glob("records.sqlite3*"))}  # noqa: ASYNC240
    assert {"records.sqlite3", "records.sqlite3-wal", "records.sqlite3-shm"} <= set(files), files
    assert all(mode == 0o600 for mode in files.values()), {k: oct(v) for k, v in files.items()}


async def test_an_existing_database_is_made_private_again(tmp_path: Path) -> None:
    from server.records.db import make_engine

    db = tmp_path / "records.sqlite3"
    for name in ("records.sqlite3", "records.sqlite3-wal"):
        (tmp_path / name).touch(mode=0o644)
        (tmp_path / name).chmod(0o644)
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    await engine.dispose()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "records.sqlite3-wal").stat().st_mode) == 0o600


