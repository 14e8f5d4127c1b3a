"""HTTP middlewares: security headers on every response; text the records cannot store is refused."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from signaling.messages import unstorable_text

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)


CACHEABLE_PREFIX = "/static/"  # the only answers without personal data that a cache may keep


def _secure(request: web.Request, response: web.StreamResponse) -> None:
    if response.prepared:  # a WebSocket or a file already on its way: its headers are gone
        return
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Permissions-Policy", "camera=(self), microphone=(self)")
    if not request.path.startswith(CACHEABLE_PREFIX):
        headers.setdefault("Cache-Control", "no-store")


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The security headers on every answer, redirects and errors (raised as exceptions) included; and
    ``Cache-Control: no-store`` on everything but the static files: staff pages, their APIs and the
    redirects and errors around them carry personal data or say who is logged in."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _secure(request, exc)
        raise
    _secure(request, response)
    return response


FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


@web.middleware
async def storable_text(request: web.Request, handler: Handler) -> web.StreamResponse:
    """400 for a NUL character (or a lone surrogate) in the path, the query or a form field.

    SQLite would store such text or look it up; PostgreSQL refuses it in any query, which would surface as a
    500 in the middle of a page. No page has a use for it, so it is refused before any handler runs.
    """
    fields: dict[str, list[str]] = {"path": [request.path]}
    for key, value in request.query.items():
        fields.setdefault(f"query {key!r}", []).extend((key, value))
    if request.method == "POST" and request.content_type in FORMS:
        for key, item in (await request.post()).items():  # read once; the handler gets the same form
            if isinstance(item, str):
                fields.setdefault(f"form field {key!r}", []).extend((key, item))
    for where, texts in fields.items():
        if unstorable_text(texts, "") is not None:
            return web.Response(status=400, text=f"bad request: the {where} holds a NUL character or invalid "
                                "Unicode, which no page accepts")
    return await handler(request)
