"""Login, logout, CSRF and roles, through the real app with aiohttp's test client."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient
from yarl import URL

from server.app import create_app
from server.keys import DB, IDENTITIES
from server.records.db import web_sessions
from server.settings import load_settings
from server.web.auth import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from server.web.urls import local_path
from tests.conftest import NewDatabase
from tests.server.conftest import ENGLISH

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]

ADMIN = ("admin", "correct horse battery")
CLERK = ("clerk1", "clerk password one")
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_token(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found is not None, html
    return found.group(1)


async def login(client: Client, username: str, password: str) -> str:
    """Log in through the form (with the login CSRF cookie and token); return the session's CSRF token."""
    client.session.cookie_jar.clear()
    resp = await client.get("/login")
    assert resp.status == 200
    token = form_token(await resp.text())
    resp = await client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                             allow_redirects=False)
    assert resp.status == 303, await resp.text()
    resp = await client.get("/login")  # a logged-in user's page carries the session's CSRF token
    return form_token(await resp.text())


def session_cookie(client: Client) -> str | None:
    for cookie in client.session.cookie_jar:
        if cookie.key == SESSION_COOKIE:
            return cookie.value
    return None


@pytest.fixture
async def app(tmp_path: Path, new_database: NewDatabase) -> web.Application:
    app = create_app(load_settings(data_dir=tmp_path, database_url=new_database()))
    return app


@pytest.fixture
async def client(aiohttp_client: ClientFactory, app: web.Application) -> Client:
    client = await aiohttp_client(app, headers=ENGLISH)  # the checks below read the pages' English texts
    ids = app[IDENTITIES]
    await ids.add_user("Ada Admin", "admin", username=ADMIN[0], password=ADMIN[1])
    await ids.add_user("Carl Clerk", "clerk", fields=["tax"], regions=["sh/jiading"], languages=["zh"],
                       username=CLERK[0], password=CLERK[1])
    return client


@pytest.mark.databases  # login sessions are rows
async def test_wrong_password_is_401_without_a_session(client: Client) -> None:
    resp = await client.get("/login")
    token = form_token(await resp.text())
    assert any(c.key == LOGIN_CSRF_COOKIE for c in client.session.cookie_jar)
    resp = await client.post("/login", data={"username": ADMIN[0], "password": "wrong", "csrf_token": token},
                             allow_redirects=False)
    assert resp.status == 401
    assert "Wrong username or password" in await resp.text()
    assert SESSION_COOKIE not in resp.cookies
    assert session_cookie(client) is None
    resp = await client.post("/login", data={"username": "nobody", "password": "x", "csrf_token": token},
                             allow_redirects=False)
    assert resp.status == 401


async def test_login_without_csrf_token_is_refused(client: Client) -> None:
    await client.get("/login")
    resp = await client.post("/login", data={"username": ADMIN[0], "password": ADMIN[1]}, allow_redirects=False)
    assert resp.status == 403
    assert session_cookie(client) is None
    resp = await client.post("/login", data={"username": ADMIN[0], "password": ADMIN[1], "csrf_token": "forged"},
                             allow_redirects=False)
    assert resp.status == 403


@pytest.mark.databases  # login sessions are rows
async def test_admin_logs_in_reaches_the_board_and_logs_out_with_csrf(client: Client) -> None:
    csrf = await login(client, *ADMIN)
    resp = await client.get("/admin", allow_redirects=False)
    assert resp.status == 200
    html = await resp.text()
    assert "Live board" in html and 'action="/logout"' in html and csrf in html
    assert "/static/admin.js" in html and "<script>" not in html  # no inline script under the CSP

    resp = await client.post("/logout", allow_redirects=False)
    assert resp.status == 403
    resp = await client.post("/logout", data={"csrf_token": "wrong"}, allow_redirects=False)
    assert resp.status == 403
    assert (await client.get("/admin", allow_redirects=False)).status == 200  # still logged in

    resp = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    resp = await client.get("/admin", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/login")


@pytest.mark.databases  # login sessions are rows
async def test_the_old_session_cookie_is_dead_after_logout(client: Client) -> None:
    csrf = await login(client, *ADMIN)
    cookie = session_cookie(client)
    assert cookie is not None
    await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: cookie})
    resp = await client.get("/admin", allow_redirects=False)
    assert resp.status == 303


@pytest.mark.databases  # login sessions are rows
async def test_expired_sessions_are_removed_when_someone_logs_in(client: Client) -> None:
    await login(client, *ADMIN)
    engine = client.app[DB]
    async with engine.begin() as conn:  # the session just made, and one that expired a second ago
        await conn.execute(web_sessions.insert().values(id_hash="e" * 64, user_id="old", csrf="x", created_at=0.0,
                                                        expires_at=time.time() - 1))
        assert len((await conn.execute(sa.select(web_sessions))).all()) == 2
    await login(client, *ADMIN)
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(web_sessions.c.id_hash, web_sessions.c.expires_at))).all()
    assert "e" * 64 not in [r.id_hash for r in rows]  # the expired one is gone
    assert len(rows) == 2 and all(r.expires_at > time.time() for r in rows)  # both live logins stay


@pytest.mark.parametrize("path", ["/admin", "/admin/clerks", "/admin/kiosks", "/stats", "/admin/api/live",
                                  "/stats/export/sessions.csv", "/stats/export/matters.csv"])
async def test_a_clerk_may_not_open_admin_pages(client: Client, path: str) -> None:
    await login(client, *CLERK)
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 403


async def test_a_clerk_may_not_manage(client: Client) -> None:
    csrf = await login(client, *CLERK)
    resp = await client.post("/admin/kiosks", data={"csrf_token": csrf, "name": "K", "region": "sh/jiading"},
                             allow_redirects=False)
    assert resp.status == 403
    assert await client.app[IDENTITIES].kiosks() == []  # type: ignore[index]


async def test_a_clerk_reaches_their_own_review_pages(client: Client) -> None:
    await login(client, *CLERK)
    for path in ("/sessions", "/followups"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 200, path


@pytest.mark.parametrize("path", ["/admin", "/admin/clerks", "/admin/kiosks", "/stats", "/sessions", "/followups",
                                  "/sessions/some-call", "/stats/export/sessions.csv"])
async def test_anonymous_visitors_are_sent_to_login(client: Client, path: str) -> None:
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"].startswith("/login?next=")


async def test_login_returns_to_the_page_asked_for_with_its_whole_query(client: Client) -> None:
    resp = await client.get("/sessions?field=tax&district=sh/putuo", allow_redirects=False)
    assert resp.status == 303
    resp = await client.get(resp.headers["Location"])
    html = await resp.text()
    assert 'name="next" value="/sessions?field=tax&amp;district=sh/putuo"' in html
    resp = await client.post("/login", allow_redirects=False, data={
        "username": ADMIN[0], "password": ADMIN[1], "csrf_token": form_token(html),
        "next": "/sessions?field=tax&district=sh/putuo"})
    assert resp.status == 303 and resp.headers["Location"] == "/sessions?field=tax&district=sh/putuo"


OFF_SITE = ["//evil.example/", "/\\evil.example/", "https://evil.example/", "/\t/evil.example/", "/\n/evil.example/",
            "/\r/evil.example/", "//x", "/\\x", "\\\\x", "http:evil.example", "HTTPS://evil.example", " //evil.example",
            "/\x00/evil", "javascript:alert(1)", "evil.example", "/\u3000/evil", "///evil.example"]


@pytest.mark.parametrize("target", OFF_SITE)
async def test_login_never_redirects_off_site(client: Client, target: str) -> None:
    html = await (await client.get("/login")).text()
    resp = await client.post("/login", allow_redirects=False, data={
        "username": ADMIN[0], "password": ADMIN[1], "csrf_token": form_token(html), "next": target})
    assert resp.status in (303, 400)  # 400: a NUL character is refused before any page
    if resp.status == 303:
        assert resp.headers["Location"] == "/admin"


@pytest.mark.parametrize("encoded", ["%2F%09%2Fevil.example%2F", "%2F%0A%2Fevil.example%2F", "%2F%0D%2Fevil.example%2F",
                                     "%2F%2Fx", "%2F%5Cx", "https%3A%2F%2Fevil.example%2F"])
async def test_the_next_of_the_login_page_never_leaves_the_site(client: Client, encoded: str) -> None:
    """The whole way, as the probe did it: ``/login?next=...`` in the address bar, the form posted as it is."""
    html = await (await client.get(f"/login?next={encoded}")).text()
    found = re.search(r'name="next" value="([^"]*)"', html)
    assert found is not None
    resp = await client.post("/login", allow_redirects=False, data={
        "username": ADMIN[0], "password": ADMIN[1], "csrf_token": form_token(html),
        "next": __import__("html").unescape(found.group(1))})
    assert resp.status == 303
    location = URL(resp.headers["Location"])
    assert not location.is_absolute() and location.path == "/admin", resp.headers["Location"]
    # the language switch goes back the same careful way
    resp = await client.get(f"/lang/en?next={encoded}", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/"


@pytest.mark.parametrize(("target", "expected"), [("/sessions?field=tax", "/sessions?field=tax"),
                                                   ("/followups#due", "/followups#due"), ("/", "/")])
def test_same_site_paths_are_kept(target: str, expected: str) -> None:
    assert local_path(target, "/admin") == expected


async def test_anonymous_api_call_is_401(client: Client) -> None:
    resp = await client.get("/admin/api/live", allow_redirects=False)
    assert resp.status == 401
    assert (await resp.json())["error"]


async def test_anonymous_post_is_refused_before_anything_happens(client: Client) -> None:
    resp = await client.post("/admin/kiosks", data={"name": "K", "region": "sh/jiading"}, allow_redirects=False)
    assert resp.status == 403
    assert await client.app[IDENTITIES].kiosks() == []  # type: ignore[index]
