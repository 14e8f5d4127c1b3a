"""Managing clerks and kiosk devices: ``/admin/clerks`` and ``/admin/kiosks``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from multidict import MultiDictProxy

from server.keys import DB, IDENTITIES, ROUTER, SETTINGS
from server.records.db import users
from server.records.identities import Clerk
from server.settings import Settings
from server.web.auth import end_sessions, require_role
from server.web.i18n import translations
from server.web.logins import recent_failures
from server.web.pages import (
    admin_action,
    render,
)

# ---------------------------------------------------------------- clerks


@dataclass
class ClerkForm:
    name: str = ""
    center: str = ""
    fields: list[str] = dataclasses.field(default_factory=list)
    regions: list[str] = dataclasses.field(default_factory=list)
    languages: list[str] = dataclasses.field(default_factory=list)
    username: str = ""
    password: str = ""
    errors: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, clerk: Clerk) -> ClerkForm:
        return cls(clerk.name, clerk.center, list(clerk.fields), list(clerk.regions), list(clerk.languages),
                   clerk.username or "")


MIN_PASSWORD = 10


def parse_clerk_form(form: MultiDictProxy[Any], settings: Settings, with_login: bool,
                     _: Callable[[str], str] = str) -> ClerkForm:
    """Read and check the clerk form against the catalog, the region tree and the offered languages; ``_``
    translates the problems (gettext of the staff catalog)."""
    f = ClerkForm(
        name=str(form.get("name", "")).strip(), center=str(form.get("center", "")).strip(),
        fields=[str(v) for v in form.getall("fields", [])], regions=[str(v) for v in form.getall("regions", [])],
        languages=[str(v) for v in form.getall("languages", [])],
        username=str(form.get("username", "")).strip(), password=str(form.get("password", "")),
    )
    if not f.name:
        f.errors["name"] = _("A name is required.")
    elif len(f.name) > 200:
        f.errors["name"] = _("At most 200 characters.")
    if len(f.center) > 200:
        f.errors["center"] = _("At most 200 characters.")
    bad = [x for x in f.fields if x not in settings.catalog]
    if bad or not f.fields:
        f.errors["fields"] = (_("Unknown service field: %(names)s") % {"names": ", ".join(bad)} if bad
                              else _("Choose at least one service field."))
    bad = [x for x in f.regions if x not in settings.regions]
    if bad or not f.regions:
        f.errors["regions"] = (_("Unknown region: %(names)s") % {"names": ", ".join(bad)} if bad
                               else _("Choose at least one region the clerk covers."))
    bad = [x for x in f.languages if x not in settings.languages]
    if bad or not f.languages:
        f.errors["languages"] = (_("Unknown language: %(names)s") % {"names": ", ".join(bad)} if bad
                                 else _("Choose at least one language."))
    if with_login and (f.username or f.password):
        if not f.username:
            f.errors["username"] = _("A password needs a username.")
        elif len(f.username) > 100 or any(c.isspace() for c in f.username):
            f.errors["username"] = _("A username has no spaces and at most 100 characters.")
        if len(f.password) < MIN_PASSWORD:
            f.errors["password"] = _("A password needs at least %(count)s characters.") % {"count": MIN_PASSWORD}
    return f


async def _clerks_response(request: web.Request, form: ClerkForm | None = None, issued: dict[str, str] | None = None,
                           status: int = 200) -> web.Response:
    settings = request.app[SETTINGS]
    response = render("admin_clerks.html", request, {
        "clerks": await request.app[IDENTITIES].clerks(), "form": form or ClerkForm(languages=[settings.languages[0]]),
        "issued": issued, "languages": settings.languages, "failed_logins": await recent_failures(request.app[DB]),
    }, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _console_url(request: web.Request, path: str, token: str) -> str:
    return f"{request.url.origin()}{path}#token={token}"


@require_role("admin")
async def clerks_page(request: web.Request) -> web.StreamResponse:
    return await _clerks_response(request)


@require_role("admin")
async def add_clerk(request: web.Request) -> web.StreamResponse:
    _ = translations(request).gettext
    form = parse_clerk_form(await request.post(), request.app[SETTINGS], with_login=True, _=_)
    if form.username and "username" not in form.errors:
        async with request.app[DB].connect() as conn:
            taken = (await conn.execute(sa.select(users.c.id).where(users.c.username == form.username))).first()
        if taken is not None:
            form.errors["username"] = _("This username is taken.")
    if form.errors:
        return await _clerks_response(request, form, status=400)
    try:
        clerk, token = await request.app[IDENTITIES].add_clerk(
            form.name, form.fields, form.regions, form.languages, center=form.center,
            username=form.username or None, password=form.password or None)
    except sa.exc.IntegrityError:  # the username was taken meanwhile
        form.errors["username"] = _("This username is taken.")
        return await _clerks_response(request, form, status=400)
    await admin_action(request, "clerk_added", clerk_id=clerk.id, name=clerk.name, center=clerk.center,
                       fields=form.fields, regions=form.regions, languages=form.languages,
                       username=form.username or None)
    return await _clerks_response(request, issued={
        "kind": "clerk", "id": clerk.id, "name": clerk.name, "token": token,
        "url": _console_url(request, "/clerk", token)})


async def _clerk(request: web.Request) -> Clerk:
    clerk = await request.app[IDENTITIES].user(request.match_info["id"])
    if clerk is None or clerk.role != "clerk":
        raise web.HTTPNotFound(text="no such clerk")
    return clerk


def _edit_response(request: web.Request, clerk: Clerk, form: ClerkForm, status: int = 200) -> web.Response:
    return render("admin_clerk_edit.html", request, {"clerk": clerk, "form": form,
                                                     "languages": request.app[SETTINGS].languages}, status=status)


@require_role("admin")
async def clerk_page(request: web.Request) -> web.StreamResponse:
    clerk = await _clerk(request)
    return _edit_response(request, clerk, ClerkForm.of(clerk))


@require_role("admin")
async def edit_clerk(request: web.Request) -> web.StreamResponse:
    clerk = await _clerk(request)
    _ = translations(request).gettext
    form = parse_clerk_form(await request.post(), request.app[SETTINGS], with_login=False, _=_)
    form.username = clerk.username or ""
    if form.password and len(form.password) < MIN_PASSWORD:
        form.errors["password"] = _("A password needs at least %(count)s characters.") % {"count": MIN_PASSWORD}
    if form.password and not clerk.username:
        form.errors["password"] = _("This clerk has no username to log in with; add them again with one.")
    if form.errors:
        return _edit_response(request, clerk, form, 400)
    identities = request.app[IDENTITIES]
    await identities.update_clerk(clerk.id, name=form.name, center=form.center, fields=form.fields,
                                  regions=form.regions, languages=form.languages)
    if form.password:
        await identities.set_password(clerk.id, form.password)
        await end_sessions(request.app, clerk)  # logged in with the old password: out, console included
    await admin_action(request, "clerk_changed", clerk_id=clerk.id, name=form.name, center=form.center,
                       fields=form.fields, regions=form.regions, languages=form.languages,
                       password_changed=bool(form.password))
    raise web.HTTPSeeOther("/admin/clerks")


@require_role("admin")
async def revoke_clerk(request: web.Request) -> web.StreamResponse:
    clerk = await _clerk(request)
    if await request.app[IDENTITIES].revoke(clerk.id):
        await admin_action(request, "clerk_revoked", clerk_id=clerk.id, name=clerk.name)
    await request.app[ROUTER].revoke(clerk.id)  # an open console is cut off at once
    raise web.HTTPSeeOther("/admin/clerks")


@require_role("admin")
async def clerk_token(request: web.Request) -> web.StreamResponse:
    clerk = await _clerk(request)
    token = await request.app[IDENTITIES].new_token_for(clerk.id)
    if token is None:
        raise web.HTTPConflict(text="this clerk is revoked; add them again instead")
    await admin_action(request, "clerk_token_issued", clerk_id=clerk.id, name=clerk.name)
    return await _clerks_response(request, issued={
        "kind": "clerk", "id": clerk.id, "name": clerk.name, "token": token,
        "url": _console_url(request, "/clerk", token)})


# ---------------------------------------------------------------- kiosks


async def _kiosks_response(request: web.Request, form: Mapping[str, str] | None = None,
                           errors: Mapping[str, str] | None = None, issued: dict[str, str] | None = None,
                           status: int = 200) -> web.Response:
    response = render("admin_kiosks.html", request, {
        "kiosks": await request.app[IDENTITIES].kiosks(), "form": form or {"name": "", "region": ""},
        "errors": errors or {}, "issued": issued,
    }, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


@require_role("admin")
async def kiosks_page(request: web.Request) -> web.StreamResponse:
    return await _kiosks_response(request)


@require_role("admin")
async def add_kiosk(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    data = await request.post()
    form = {"name": str(data.get("name", "")).strip(), "region": str(data.get("region", "")).strip()}
    _ = translations(request).gettext
    errors = {}
    if not form["name"] or len(form["name"]) > 200:
        errors["name"] = _("Give the kiosk a name (at most 200 characters).")
    if form["region"] not in settings.regions:
        errors["region"] = _("Choose the region the kiosk stands in.")
    if errors:
        return await _kiosks_response(request, form, errors, status=400)
    kiosk, token = await request.app[IDENTITIES].add_kiosk(form["name"], form["region"])
    await admin_action(request, "kiosk_added", kiosk_id=kiosk.id, name=kiosk.name, region=kiosk.region)
    return await _kiosks_response(request, issued={
        "kind": "kiosk", "id": kiosk.id, "name": kiosk.name, "token": token,
        "url": _console_url(request, "/kiosk", token)})


@require_role("admin")
async def revoke_kiosk(request: web.Request) -> web.StreamResponse:
    identities = request.app[IDENTITIES]
    kiosk = await identities.kiosk(request.match_info["id"])
    if kiosk is None:
        raise web.HTTPNotFound(text="no such kiosk")
    if await identities.revoke(kiosk.id):
        await admin_action(request, "kiosk_revoked", kiosk_id=kiosk.id, name=kiosk.name)
    await request.app[ROUTER].revoke(kiosk.id)  # a connected kiosk is cut off at once
    raise web.HTTPSeeOther("/admin/kiosks")


# ---------------------------------------------------------------- routes
