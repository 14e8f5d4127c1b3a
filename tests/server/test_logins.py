"""Logins under attack (issue 11): password checks off the event loop, failed logins limited per username and
per address with the wait on the page, every login logged (never the password) and shown to administrators,
and the end of every session and console of a user at logout or a password change."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
import sqlalchemy as sa
from aiohttp import web
from argon2.exceptions import VerifyMismatchError

from server.app import create_app
from server.keys import DB, IDENTITIES
from server.records.db import events
from server.settings import load_settings
from tests.conftest import NewDatabase
from tests.server.conftest import ENGLISH, FakeClock, HarnessFactory, login_cookie
from tests.server.test_auth import ADMIN, CLERK, Client, ClientFactory, form_token, login, session_cookie

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


async def make_client(aiohttp_client: ClientFactory, tmp_path: Path, database_url: str,
                      clock: FakeClock | None = None, **overrides: Any) -> Client:
    app = create_app(load_settings(data_dir=tmp_path, database_url=database_url, **overrides), clock=clock)
    client = await aiohttp_client(app, headers=ENGLISH)
    ids = app[IDENTITIES]
    await ids.add_user("Ada Admin", "admin", username=ADMIN[0], password=ADMIN[1])
    await ids.add_user("Carl Clerk", "clerk", fields=["tax"], regions=["sh/jiading"], languages=["zh"],
                       username=CLERK[0], password=CLERK[1])
    return client


async def attempt(client: Client, username: str, password: str, **headers: str) -> aiohttp.ClientResponse:
    """One login through the form, as a browser posts it."""
    html = await (await client.get("/login")).text()
    return await client.post("/login", allow_redirects=False, headers=headers, data={
        "username": username, "password": password, "csrf_token": form_token(html)})


async def test_failed_logins_per_account_wait_longer_each_time_and_the_page_says_how_long(
        aiohttp_client: ClientFactory, tmp_path: Path, new_database: NewDatabase) -> None:
    clock = FakeClock()
    client = await make_client(aiohttp_client, tmp_path, new_database(), clock, login_failures_per_account=2)
    assert (await attempt(client, ADMIN[0], "wrong")).status == 401
    assert (await attempt(client, "ADMIN", "wrong")).status == 401  # the same account, however spelt
    resp = await attempt(client, ADMIN[0], ADMIN[1])  # even the right password waits: it is not checked
    assert resp.status == 429 and resp.headers["Retry-After"] == "1"
    assert "Too many failed logins. Wait 1 second, then try again." in await resp.text()
    assert session_cookie(client) is None
    clock.t += 1
    assert (await attempt(client, ADMIN[0], "wrong again")).status == 401
    resp = await attempt(client, ADMIN[0], "wrong")
    assert resp.status == 429 and resp.headers["Retry-After"] == "2"  # back-off doubles
    assert "Wait 2 seconds" in await resp.text()
    clock.t += 1.5
    assert (await attempt(client, ADMIN[0], ADMIN[1])).headers["Retry-After"] == "1"  # half a second left: 1
    assert (await attempt(client, CLERK[0], CLERK[1])).status == 303  # another account is not held up
    clock.t += 0.5
    assert (await attempt(client, ADMIN[0], ADMIN[1])).status == 303
    assert (await attempt(client, ADMIN[0], "wrong")).status == 401  # a success cleared the account's count
    assert (await attempt(client, ADMIN[0], "wrong")).status == 401
    clock.t += 900  # the window slides past the failures
    assert (await attempt(client, ADMIN[0], "wrong")).status == 401


async def test_failed_logins_per_address_behind_a_trusted_proxy_only(
        aiohttp_client: ClientFactory, tmp_path: Path, new_database: NewDatabase) -> None:
    clock = FakeClock()
    client = await make_client(aiohttp_client, tmp_path, new_database(), clock, login_failures_per_address=3,
                               trusted_proxies="127.0.0.1")
    one = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}  # the proxy appended the client's address last
    for name in ("a", "b", "c"):
        assert (await attempt(client, name, "x", **one)).status == 401
    resp = await attempt(client, "d", "x", **one)  # any username from that address waits now
    assert resp.status == 429 and "Wait 1 second" in await resp.text()
    assert (await attempt(client, ADMIN[0], ADMIN[1], **{"X-Forwarded-For": "198.51.100.8"})).status == 303
    async with client.app[DB].connect() as conn:  # type: ignore[index]
        addresses = [r.data["address"] for r in await conn.execute(
            sa.select(events.c.data).where(events.c.kind.in_(("login_failed", "login"))).order_by(events.c.id))]
    assert addresses == ["198.51.100.7"] * 3 + ["198.51.100.8"]


async def test_forwarded_addresses_from_anyone_else_are_ignored(
        aiohttp_client: ClientFactory, tmp_path: Path, new_database: NewDatabase) -> None:
    client = await make_client(aiohttp_client, tmp_path, new_database(), FakeClock(), login_failures_per_address=2)
    for i in range(2):
        assert (await attempt(client, f"u{i}", "x", **{"X-Forwarded-For": f"10.0.0.{i}"})).status == 401
    assert (await attempt(client, "u9", "x", **{"X-Forwarded-For": "10.0.0.9"})).status == 429  # all 127.0.0.1


@pytest.mark.databases  # the login events are rows
async def test_every_login_is_logged_without_the_password_and_administrators_see_the_failures(
        aiohttp_client: ClientFactory, tmp_path: Path, new_database: NewDatabase,
        caplog: pytest.LogCaptureFixture) -> None:
    client = await make_client(aiohttp_client, tmp_path, new_database())
    caplog.set_level(logging.INFO, logger="server.web")
    secret = "hunter2-not-logged"
    assert (await attempt(client, "mallory\nlogin ok: 'admin'", secret)).status == 401
    assert (await attempt(client, ADMIN[0], secret)).status == 401
    await login(client, *ADMIN)
    async with client.app[DB].connect() as conn:  # type: ignore[index]
        rows = [(r.kind, r.actor, r.data) for r in await conn.execute(
            sa.select(events.c.kind, events.c.actor, events.c.data)
            .where(events.c.kind.in_(("login_failed", "login"))).order_by(events.c.id))]
    assert [(kind, data["username"]) for kind, _, data in rows] == [
        ("login_failed", "mallory\nlogin ok: 'admin'"), ("login_failed", ADMIN[0]), ("login", ADMIN[0])]
    assert rows[2][1].startswith("user:a-") and all(data["address"] == "127.0.0.1" for _, _, data in rows)
    assert secret not in repr(rows) and secret not in caplog.text
    lines = [r.getMessage() for r in caplog.records if r.name == "server.web.logins"]
    assert len(lines) == 3 and "login failed" in lines[0] and "login ok" in lines[2]
    assert "\n" not in lines[0]  # the username is quoted (repr): its line break cannot start a log line
    html = await (await client.get("/admin/clerks")).text()
    section = html[html.index('data-testid="failed-logins"'):]
    assert "Recent failed logins" in section and "127.0.0.1" in section and "mallory" in section
    assert section.index(">admin<") < section.index("mallory")  # newest first


class BlockingHasher:
    """argon2's verify, held until the test lets it go: a login that is being checked, for as long as needed."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def verify(self, stored: str, password: str) -> bool:
        self.entered.release()
        self.release.wait(30)
        raise VerifyMismatchError("held and refused")

    def hash(self, password: str) -> str:  # pragma: no cover - no user is added while it is installed
        raise AssertionError("not expected")


async def test_a_login_flood_does_not_hold_up_a_call(harness_factory: HarnessFactory,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """8 logins whose password checks never finish while a kiosk places a call and a clerk is rung: the call goes
    through first. (When the check ran on the event loop, nothing moved until the checks ended: here a timer
    ends them after 10 s, and the order of the two shows it.)"""
    harness = await harness_factory()
    clerk = await harness.clerk()
    kiosk = await harness.kiosk()
    hasher = BlockingHasher()
    monkeypatch.setattr("server.records.identities._hasher", hasher)
    order: list[str] = []

    def give_up() -> None:
        order.append("released by the timer")
        hasher.release.set()

    timer = threading.Timer(10, give_up)
    timer.start()
    try:
        async with aiohttp.ClientSession(harness.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get("/login") as resp:
                token = CSRF_RE.search(await resp.text())
            assert token is not None

            async def flood(i: int) -> int:
                async with http.post("/login", allow_redirects=False, data={
                        "username": f"guess{i}", "password": "wrong", "csrf_token": token.group(1)}) as resp:
                    return resp.status

            floods = [asyncio.create_task(flood(i)) for i in range(8)]
            await asyncio.to_thread(hasher.entered.acquire)  # a check is under way (and holds, until released)
            ack = await kiosk.ok("request_call", {"field": "tax", "language": "en"})
            ring = await clerk.next("ring", timeout=30)
            assert ring["call_id"] == ack["call_id"]
            await clerk.ok("accept", {"call_id": ack["call_id"]})
            await kiosk.next("matched", timeout=30)
            order.append("call matched")
            order.append("released by the test")
            hasher.release.set()
            statuses = await asyncio.gather(*floods)
    finally:
        timer.cancel()
        hasher.release.set()
    assert order == ["call matched", "released by the test"], order
    assert sorted(set(statuses)) <= [401, 503] and statuses.count(401) >= 2, statuses


async def test_too_many_waiting_checks_are_answered_busy_at_once(harness_factory: HarnessFactory,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    harness = await harness_factory(password_hash_workers=1)  # 1 checking, 4 waiting at most
    hasher = BlockingHasher()
    monkeypatch.setattr("server.records.identities._hasher", hasher)
    try:
        async with aiohttp.ClientSession(harness.url, cookie_jar=aiohttp.CookieJar(unsafe=True),
                                         headers=ENGLISH) as http:
            async with http.get("/login") as resp:
                token = CSRF_RE.search(await resp.text())
            assert token is not None

            async def post(i: int) -> tuple[int, str]:
                async with http.post("/login", allow_redirects=False, data={
                        "username": f"u{i}", "password": "x", "csrf_token": token.group(1)}) as resp:
                    return resp.status, await resp.text()

            held = [asyncio.create_task(post(i)) for i in range(4)]
            await asyncio.to_thread(hasher.entered.acquire)
            while harness.identities.passwords._pending < 4:  # noqa: ASYNC110 (polls the server's own count)
                await asyncio.sleep(0.01)
            status, text = await post(99)
            assert status == 503 and "The server is busy checking other logins" in text
            hasher.release.set()
            assert [s for s, _ in await asyncio.gather(*held)] == [401] * 4
    finally:
        hasher.release.set()


# ---------------------------------------------------------------- sessions


@pytest.mark.databases  # login sessions are rows
async def test_logout_ends_every_session_of_the_user(aiohttp_client: ClientFactory, tmp_path: Path,
                                                     new_database: NewDatabase) -> None:
    client = await make_client(aiohttp_client, tmp_path, new_database())
    await login(client, *ADMIN)
    first = session_cookie(client)
    csrf = await login(client, *ADMIN)  # a second browser of the same user
    second = session_cookie(client)
    assert first and second and first != second
    assert (await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)).status == 303
    for cookie in (first, second):
        client.session.cookie_jar.update_cookies({"vw_session": cookie})
        assert (await client.get("/admin", allow_redirects=False)).status == 303  # to the login page


async def test_a_password_change_ends_the_clerks_sessions(aiohttp_client: ClientFactory, tmp_path: Path,
                                                          new_database: NewDatabase) -> None:
    client = await make_client(aiohttp_client, tmp_path, new_database())
    await login(client, *CLERK)
    clerk_cookie = session_cookie(client)
    assert (await client.get("/sessions", allow_redirects=False)).status == 200
    csrf = await login(client, *ADMIN)
    clerk = next(c for c in await client.app[IDENTITIES].clerks() if c.username == CLERK[0])  # type: ignore[index]
    resp = await client.post(f"/admin/clerks/{clerk.id}", allow_redirects=False, data=[
        ("csrf_token", csrf), ("name", clerk.name), ("center", "x"), ("fields", "tax"), ("regions", "sh/jiading"),
        ("languages", "zh"), ("password", "a brand new password")])
    assert resp.status == 303, await resp.text()
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({"vw_session": clerk_cookie})
    assert (await client.get("/sessions", allow_redirects=False)).status == 303
    assert (await attempt(client, CLERK[0], "a brand new password")).status == 303


async def _console(url: str, cookie: str) -> tuple[socketio.AsyncClient, asyncio.Event]:
    console = socketio.AsyncClient(reconnection=False)
    gone = asyncio.Event()
    console.on("disconnect", lambda *_: gone.set(), namespace="/clerk")
    await console.connect(url, namespaces=["/clerk"], headers={"Cookie": f"vw_session={cookie}"},
                          transports=["websocket"], wait_timeout=5)
    return console, gone


async def test_logout_and_a_password_change_cut_off_the_open_console(harness_factory: HarnessFactory) -> None:
    harness = await harness_factory()
    clerk, _ = await harness.identities.add_clerk("Console clerk", ["tax"], ["sh/jiading"], ["en"],
                                                  username="clerk1", password="correct horse battery")
    await harness.identities.add_user("Admin", "admin", username="boss", password="correct horse battery")
    cookie = await login_cookie(harness.url, "clerk1", "correct horse battery")
    console, gone = await _console(harness.url, cookie)
    ack = await console.call("set_status", {"status": "available"}, namespace="/clerk", timeout=5)
    assert ack["ok"] is True
    async with aiohttp.ClientSession(harness.url, cookies={"vw_session": cookie}) as http:
        async with http.get("/login") as resp:
            csrf = CSRF_RE.search(await resp.text())
        assert csrf is not None
        async with http.post("/logout", data={"csrf_token": csrf.group(1)}, allow_redirects=False) as resp:
            assert resp.status == 303
    await asyncio.wait_for(gone.wait(), 10)
    with pytest.raises(socketio.exceptions.ConnectionError):  # the old cookie opens no console either
        await _console(harness.url, cookie)
    # the clerk is still on the roster: logging in again gives a console that is offered calls
    cookie = await login_cookie(harness.url, "clerk1", "correct horse battery")
    console, gone = await _console(harness.url, cookie)
    assert (await console.call("set_status", {"status": "available"}, namespace="/clerk", timeout=5))["ok"]
    assert clerk.id in harness.switch.roster
    # an administrator changes the clerk's password: the console goes at once
    admin = await login_cookie(harness.url, "boss", "correct horse battery")
    async with aiohttp.ClientSession(harness.url, cookies={"vw_session": admin}) as http:
        async with http.get("/login") as resp:
            csrf = CSRF_RE.search(await resp.text())
        assert csrf is not None
        async with http.post(f"/admin/clerks/{clerk.id}", allow_redirects=False, data=[
                ("csrf_token", csrf.group(1)), ("name", "Console clerk"), ("center", ""), ("fields", "tax"),
                ("regions", "sh/jiading"), ("languages", "en"), ("password", "another good password")]) as resp:
            assert resp.status == 303, await resp.text()
    await asyncio.wait_for(gone.wait(), 10)
    await console.disconnect()


async def _set_cookie_headers(app: web.Application, aiohttp_client: ClientFactory, **headers: str) -> list[str]:
    client = await aiohttp_client(app)
    await app[IDENTITIES].add_user("Ada Admin", "admin", username=ADMIN[0], password=ADMIN[1])
    page = await client.get("/login", headers=headers)
    csrf = form_token(await page.text())
    login_cookie = [v for v in page.headers.getall("Set-Cookie") if v.startswith("vw_login_csrf=")]
    assert len(login_cookie) == 1
    client.session.cookie_jar.clear()  # a Secure cookie goes back over TLS only: the proxy's side, sent by hand
    resp = await client.post("/login", allow_redirects=False, data={
        "username": ADMIN[0], "password": ADMIN[1], "csrf_token": csrf},
        headers={**headers, "Cookie": f"vw_login_csrf={csrf}"})
    assert resp.status == 303
    return [*login_cookie, *(v for v in resp.headers.getall("Set-Cookie") if v.startswith("vw_session="))]


@pytest.mark.parametrize(("trusted", "secure"), [("127.0.0.1", True), ("10.0.0.0/8", False), ("", False)])
async def test_the_session_cookie_is_secure_behind_a_trusted_tls_proxy(
        aiohttp_client: ClientFactory, tmp_path: Path, new_database: NewDatabase, trusted: str, secure: bool) -> None:
    app = create_app(load_settings(data_dir=tmp_path, database_url=new_database(), trusted_proxies=trusted))
    cookies = await _set_cookie_headers(app, aiohttp_client, **{"X-Forwarded-Proto": "https"})
    assert len(cookies) == 2
    assert all(("; Secure" in c) is secure for c in cookies), cookies  # the login form's cookie and the session's
