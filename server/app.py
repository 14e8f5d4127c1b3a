"""The application factory: ``create_app(settings)``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from server.keys import (
    CHECKPOINTER,
    DB,
    DESK,
    EVIDENCE,
    IDENTITIES,
    LOGINS,
    PLAYBACKS,
    PROXIES,
    RECORDS,
    ROUTER,
    SETTINGS,
    SIO,
)
from server.live.limits import CLERK_LIMITS, KIOSK_LIMITS
from server.live.namespaces import ClerkNamespace, KioskNamespace
from server.live.recording_desk import RecordingDesk
from server.live.router import make_router
from server.live.transport import make_socketio_server, skip_for_socketio
from server.live.writer import Clock, SystemClock
from server.records import db
from server.records.casework import CaseFiles
from server.records.chain import Records
from server.records.checkpoints import Checkpointer, load_or_create_key, run_checkpointer
from server.records.db import make_engine
from server.records.evidence import MIN_PURGE_INTERVAL_S, RecordingStore, purge_periodically
from server.records.identities import Clerk, IdentityStore
from server.settings import Settings
from server.web import auth, i18n
from server.web.auth import session_middleware
from server.web.logins import LoginThrottle
from server.web.middlewares import security_headers, storable_text
from server.web.playbacks import PlaybackLog
from server.web.proxies import Proxies
from server.web.routes import setup_routes
from signaling.commands import RecorderLost

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "client" / "templates"


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    app = web.Application(middlewares=[security_headers, storable_text, session_middleware])
    app[SETTINGS] = settings
    engine = make_engine(settings.db_url)
    app[DB] = engine
    identities = IdentityStore(engine, settings.password_hash_workers)
    app[IDENTITIES] = identities
    clock = clock or SystemClock()
    app[LOGINS] = LoginThrottle.build(settings.login_failures_per_account, settings.login_failures_per_address,
                                      settings.login_window_s, settings.login_backoff_max_s, clock.now)
    proxies = Proxies(settings.proxy_networks())
    app[PROXIES] = proxies
    app[PLAYBACKS] = PlaybackLog(clock.now)

    sio = make_socketio_server(settings)
    sio.attach(app)
    app[SIO] = sio

    records = Records(engine)
    app[RECORDS] = records
    evidence = RecordingStore(records, settings.recordings_root)
    app[EVIDENCE] = evidence
    desk = RecordingDesk(evidence, settings.recording_workers) if settings.records_calls else None
    router = make_router(settings, CaseFiles(engine), identities, sio, clock, desk)
    if desk is not None:
        async def interrupted(call_id: str, participant: str) -> None:
            await router.submit(RecorderLost(call_id, participant))  # type: ignore[arg-type]

        desk.on_interrupted = interrupted
    app[ROUTER] = router
    if desk is not None:
        app[DESK] = desk

    async def session_user(cookie: str | None) -> Clerk | None:
        found = await auth.user_from_cookie(app, cookie)
        return found[0] if found else None

    limited = settings.socket_rate_limits
    sio.register_namespace(KioskNamespace(router, identities, desk, KIOSK_LIMITS if limited else None))
    sio.register_namespace(ClerkNamespace(router, identities, desk, session_user, CLERK_LIMITS if limited else None))

    app[i18n.LANGUAGES] = i18n.Languages.load(settings.languages)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(default=True),
        context_processors=[skip_for_socketio(auth.context_processor), skip_for_socketio(i18n.context_processor)],
    )
    i18n.install(env)
    setup_routes(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await asyncio.to_thread(db.upgrade, settings.db_url)
        if desk is not None:
            await desk.recover()
            desk.warm()  # the workers start in the background, ready for the first recorded call
        await router.start()  # closes the calls a killed server left open: the first checkpoint covers that
        signer = Checkpointer(engine, await asyncio.to_thread(load_or_create_key, settings.checkpoint_key_path),
                              settings.checkpoint_every_events, settings.checkpoint_interval_s)
        app[CHECKPOINTER] = signer
        signing = asyncio.create_task(run_checkpointer(signer))
        purge: asyncio.Task[None] | None = None
        if settings.recording_retention_days > 0:  # recordings past retention go now and every interval
            purge = asyncio.create_task(purge_periodically(
                evidence, settings.recording_retention_days,
                max(settings.recording_purge_interval_s, MIN_PURGE_INTERVAL_S)))
        yield
        if purge is not None:
            purge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purge
        await router.close()
        signing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await signing
        with contextlib.suppress(Exception):  # sign what this run wrote last, so a clean stop leaves nothing open
            await signer.maybe(force=True)
        if desk is not None:
            await desk.close()
        identities.passwords.close()
        await engine.dispose()

    async def shutting_down(app: web.Application) -> None:
        await router.shutting_down()

    app.on_shutdown.append(shutting_down)
    app.cleanup_ctx.append(lifecycle)
    return app
