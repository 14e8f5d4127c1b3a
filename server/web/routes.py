"""URL routes."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from server.web import admin, auth, i18n, sessions, views

STATIC_DIR = Path(__file__).resolve().parents[2] / "client" / "static"


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/", views.index, name="index")
    app.router.add_get("/kiosk", views.kiosk, name="kiosk")
    app.router.add_get("/clerk", views.clerk, name="clerk")
    app.router.add_get("/api/catalog", views.catalog, name="catalog")
    app.router.add_get("/healthz", views.healthz, name="healthz")
    app.router.add_get("/docs/protocol", views.protocol, name="protocol")
    app.router.add_get("/login", auth.login_page, name="login")
    app.router.add_post("/login", auth.login)
    app.router.add_post("/logout", auth.logout, name="logout")
    app.router.add_get("/lang/{code}", i18n.switch_language, name="language")
    app.router.add_static("/static/", STATIC_DIR, name="static")
    app.router.add_get(r"/recordings/{rec_id:\d{1,18}}", sessions.play_recording, name="recording")
    admin.setup_routes(app)
