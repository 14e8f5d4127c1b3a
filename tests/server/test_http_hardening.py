"""What a hostile probe of the HTTP side found (issue 11): headers on every answer, no caching of personal data,
a records database only its owner can read, and bad query input answered without a 500."""

from __future__ import annotations

import logging
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




BAD_QUERIES = ["/sessions?page=9223372036854775807", "/sessions?page=-9223372036854775809", "/sessions?to=9999-12-31",
               "/sessions?from=0001-01-01&to=0001-01-01", "/sessions?from=9999-12-31", "/sessions?to=2026-02-30",
               "/sessions?min_wait=1e400", "/sessions?min_wait=nan", "/sessions?min_wait=-inf",
               "/stats?to=9999-12-31", "/stats?from=0001-01-01&to=0001-01-05", "/stats?to=0001-01-05",
               "/stats?from=9999-12-31&to=9999-12-31", "/followups?page=9223372036854775807",
               "/sessions?to=" + "9" * 5000]


@pytest.mark.parametrize("path", BAD_QUERIES)
async def test_bad_query_input_is_explained_never_a_server_error(client: Client, path: str) -> None:
    await login(client, *ADMIN)
    resp = await client.get(path)
    assert resp.status == 200, (path, resp.status, (await resp.text())[:2000])
    html = await resp.text()
    if "page=" not in path:
        assert 'class="vwa-errors"' in html, path  # the reason is on the page


@pytest.mark.parametrize("query", ["to=9999-12-31", "from=0001-01-01&to=0001-01-05", "to=not-a-date"])
async def test_a_csv_export_with_bad_dates_is_a_400_saying_why(client: Client, query: str) -> None:
    await login(client, *ADMIN)
    for what in ("sessions", "matters"):
        resp = await client.get(f"/stats/export/{what}.csv?{query}")
        assert resp.status == 400, (query, resp.status)
        text = await resp.text()
        assert "outside the dates" in text or "is not a date" in text, text


def test_ids_with_line_breaks_cannot_forge_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """What `vwindow serve` logs through (configure_logging): one record, one line, whatever a client sent."""
    from server.cli.main import configure_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers = []
    try:
        configure_logging(verbose=False)
        log = logging.getLogger("server.web.auth")
        log.warning("login failed for %s", "x\n2026-12-02 10:00:00,000 INFO server.web.auth: login ok admin\r\u2028")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("call %s failed", "c-1\nFORGED")
    finally:
        root.handlers, level = saved
        root.setLevel(level)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0].endswith("login failed for x\\x0a2026-12-02 10:00:00,000 INFO server.web.auth: login ok admin"
                             "\\x0d\\u2028"), lines
    assert "call c-1\\x0aFORGED failed" in lines[1]
    assert "Traceback (most recent call last):" in lines[2]  # the server's own traceback keeps its lines
    assert not any(line.startswith(("2026-12-02 10:00", "FORGED")) for line in lines)
