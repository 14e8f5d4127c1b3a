"""HTTP views: the pages and a small JSON API."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from server.keys import SETTINGS
from server.web import i18n
from server.web.auth import current_user

PROTOCOL_DOC = "protocol.md"


def _page_context(request: web.Request) -> dict[str, Any]:
    settings = request.app[SETTINGS]
    return {"fields": settings.catalog.as_dicts(), "languages": settings.languages}


@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict[str, Any]:
    return _page_context(request)


@aiohttp_jinja2.template("kiosk.html")
async def kiosk(request: web.Request) -> dict[str, Any]:
    """The kiosk page in its default language, with every kiosk language's texts for the visitor to choose."""
    settings = request.app[SETTINGS]
    languages = request.app[i18n.LANGUAGES].supported(i18n.KIOSK)
    return {**_page_context(request), **i18n.page_context(request, i18n.KIOSK), "languages": languages,
            "i18n_catalogs": i18n.js_catalog(request, i18n.KIOSK, languages),
            # names of kiosks and centers in the visitor's languages, and what the start screen tells
            "names": settings.names, "service_hours": settings.service_hours, "timezone": settings.timezone}


@aiohttp_jinja2.template("clerk.html")
async def clerk(request: web.Request) -> dict[str, Any]:
    user = current_user(request)
    return {**_page_context(request), "logged_in_clerk": user is not None and user.role == "clerk",
            "timezone": request.app[SETTINGS].timezone}


async def catalog(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return web.json_response({"fields": settings.catalog.as_dicts(), "languages": settings.languages})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def protocol(request: web.Request) -> web.Response:
    path = request.app[SETTINGS].config_dir.parent / "docs" / PROTOCOL_DOC
    if not path.is_file():
        raise web.HTTPNotFound(text="the protocol document is not installed here")
    return web.Response(text=path.read_text(encoding="utf-8"), content_type="text/markdown", charset="utf-8")
