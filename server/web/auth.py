"""People who log in: server-side sessions, CSRF protection, roles.

A session is a random id in an HttpOnly, SameSite=Strict cookie; the
database keeps only its SHA-256 and the session's CSRF token. Every unsafe
request (POST, PUT, PATCH, DELETE) must carry that token as the form field
``csrf_token`` or the header ``X-CSRF-Token``; the login form, which has no
session yet, uses a double-submit cookie. Socket.IO traffic has its own
authentication and is not subject to the CSRF check.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
import sqlalchemy as sa
from aiohttp import web
from aiohttp.typedefs import Handler

from server.keys import DB, IDENTITIES, LOGINS, PROXIES, RECORDS, ROUTER
from server.records.db import web_sessions
from server.records.identities import Clerk, PasswordCheckBusyError
from server.web.i18n import translations
from server.web.logins import account_key, log_login
from server.web.urls import local_path

logger = logging.getLogger(__name__)

SESSION_COOKIE = "vw_session"
LOGIN_CSRF_COOKIE = "vw_login_csrf"
SESSION_TTL_S = 12 * 3600
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EXEMPT_PREFIXES = ("/socket.io/",)
STATIC_PREFIX = "/static/"  # read-only files: no session lookup (one database read saved per file)
USER_KEY = "user"
CSRF_KEY = "csrf_token"


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def current_user(request: web.Request) -> Clerk | None:
    user = request.get(USER_KEY)
    return user if isinstance(user, Clerk) else None


def csrf_token(request: web.Request) -> str:
    return str(request.get(CSRF_KEY, ""))


async def user_from_cookie(app: web.Application, cookie_value: str | None) -> tuple[Clerk, str] | None:
    """The logged-in user and CSRF token of a session cookie, if the session is alive."""
    if not cookie_value:
        return None
    async with app[DB].connect() as conn:
        row = (await conn.execute(sa.select(web_sessions).where(
            web_sessions.c.id_hash == _hash(cookie_value), web_sessions.c.expires_at > time.time()))).first()
    if row is None:
        return None
    user = await app[IDENTITIES].user(row.user_id)
    if user is None or user.revoked:
        return None
    return user, row.csrf


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(EXEMPT_PREFIXES) or (
        request.path.startswith(STATIC_PREFIX) and request.method not in UNSAFE
    ):
        return await handler(request)
    found = await user_from_cookie(request.app, request.cookies.get(SESSION_COOKIE))
    if found is not None:
        request[USER_KEY], request[CSRF_KEY] = found
    elif request.path == "/login":
        request[CSRF_KEY] = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    if request.method in UNSAFE:
        sent = request.headers.get("X-CSRF-Token")
        if sent is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            sent = str((await request.post()).get("csrf_token", ""))
        expected = request.get(CSRF_KEY)
        if request.path == "/login" and found is None:
            expected = request.cookies.get(LOGIN_CSRF_COOKIE)
        if not expected or not sent or not hmac.compare_digest(str(sent), str(expected)):
            raise web.HTTPForbidden(text="CSRF token missing or wrong: reload the page and try again")
    response = await handler(request)
    if request.path == "/login" and found is None and LOGIN_CSRF_COOKIE not in request.cookies:
        response.set_cookie(LOGIN_CSRF_COOKIE, request[CSRF_KEY], httponly=True, samesite="Strict",
                            secure=request.app[PROXIES].is_https(request), path="/login")
    return response


View = Callable[[web.Request], Awaitable[web.StreamResponse]]


def require_role(*roles: str) -> Callable[[View], View]:
    """Only logged-in users with one of ``roles`` (any role if none given); others go to login or get 403."""

    def wrap(view: View) -> View:
        @wraps(view)
        async def guarded(request: web.Request) -> web.StreamResponse:
            user = current_user(request)
            if user is None:
                if request.path.startswith("/api/") or request.headers.get("Accept", "").startswith("application/json"):
                    raise web.HTTPUnauthorized(text="log in first")
                raise web.HTTPSeeOther(f"/login?next={quote(str(request.rel_url), safe='/')}")
            if roles and user.role not in roles:
                raise web.HTTPForbidden(text="your role may not open this page")
            return await view(request)

        return guarded

    return wrap


def _safe_next(value: str | None, user: Clerk) -> str:
    return local_path(value, "/admin" if user.is_admin else "/clerk")


async def login_page(request: web.Request) -> web.StreamResponse:
    return aiohttp_jinja2.render_template("login.html", request, {
        "csrf_token": csrf_token(request), "next": request.query.get("next", ""), "error": "",
        "user": current_user(request),
    })


def _login_form(request: web.Request, next_value: object, error: str, status: int) -> web.Response:
    response: web.Response = aiohttp_jinja2.render_template("login.html", request, {
        "csrf_token": csrf_token(request), "next": next_value or "", "error": error, "user": None,
    })
    response.set_status(status)
    return response


REFUSAL_PAUSE_S = 1.0  # a login refused for too many failures is answered after this long (at most its wait)


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
    app = request.app
    throttle = app[LOGINS]
    address = app[PROXIES].client_address(request)
    account = account_key(username)
    tr = translations(request)
    wait = throttle.wait_s(account, address, throttle.now())
    if wait > 0:  # not checked: no hashing for whoever keeps guessing
        # and answered only after a pause: a client that keeps posting gets about one answer a second, so a flood
        # of refusals (each a rendered page and a log line) cannot take the event loop from the calls
        await asyncio.sleep(min(wait, REFUSAL_PAUSE_S))
        logger.warning("login refused: %r from %s must wait %d s after failed logins", username[:100], address, wait)
        response = _login_form(request, form.get("next"), tr.ngettext(
            "Too many failed logins. Wait %(num)d second, then try again.",
            "Too many failed logins. Wait %(num)d seconds, then try again.", wait) % {"num": wait}, 429)
        response.headers["Retry-After"] = str(wait)
        return response
    try:
        user = await app[IDENTITIES].authenticate(username, password) if username and password else None
    except PasswordCheckBusyError:
        logger.warning("login of %r from %s answered busy: too many password checks waiting", username[:100], address)
        response = _login_form(request, form.get("next"), tr.gettext(
            "The server is busy checking other logins. Try again in a few seconds."), 503)
        response.headers["Retry-After"] = "5"
        return response
    if user is None:
        throttle.failed(account, address, throttle.now())
        await log_login(app[RECORDS], ok=False, username=username, address=address,
                        reason="wrong username or password" if username and password else "empty field")
        return _login_form(request, form.get("next"), tr.gettext("Wrong username or password."), 401)
    throttle.succeeded(account)
    await log_login(app[RECORDS], ok=True, username=username, address=address, user_id=user.id)
    session_id = secrets.token_urlsafe(32)
    now = time.time()
    async with app[DB].begin() as conn:
        # expired sessions go whenever someone logs in, so the table never grows without bound
        await conn.execute(web_sessions.delete().where(web_sessions.c.expires_at <= now))
        await conn.execute(web_sessions.insert().values(
            id_hash=_hash(session_id), user_id=user.id, csrf=secrets.token_urlsafe(24), created_at=now,
            expires_at=now + SESSION_TTL_S))
    response = web.HTTPSeeOther(_safe_next(str(form.get("next", "")), user))
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="Strict",
                        secure=app[PROXIES].is_https(request), max_age=SESSION_TTL_S, path="/")
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    raise response


async def end_sessions(app: web.Application, user: Clerk) -> None:
    """Every login session of ``user`` ends (their cookies stop working at once) and their open clerk console
    is cut off, through the core's revocation path (the one that cuts off a revoked clerk); the roster is read
    again at once, so the clerk stays on record and may connect again."""
    async with app[DB].begin() as conn:
        await conn.execute(web_sessions.delete().where(web_sessions.c.user_id == user.id))
    if user.role == "clerk":
        router = app[ROUTER]
        await router.revoke(user.id)
        await router.roster_changed()


async def logout(request: web.Request) -> web.StreamResponse:
    """Log out: every session of this user ends, on every browser, and their open console is disconnected."""
    user = current_user(request)
    if user is not None:
        await end_sessions(request.app, user)
        logger.info("logout: %s (%s); all of their sessions ended", user.username, user.id)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


def template_globals(request: web.Request) -> dict[str, Any]:
    """Put the user and CSRF token into every template (aiohttp_jinja2 context processor)."""
    return {"user": current_user(request), "csrf_token": csrf_token(request)}


async def context_processor(request: web.Request) -> dict[str, Any]:
    return template_globals(request)
