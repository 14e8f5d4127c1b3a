"""Typed application keys, in one place."""

from __future__ import annotations

import socketio
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from server.live.recording_desk import RecordingDesk
from server.live.router import Router
from server.records.chain import Records
from server.records.checkpoints import Checkpointer
from server.records.evidence import RecordingStore
from server.records.identities import IdentityStore
from server.settings import Settings
from server.web.logins import LoginThrottle
from server.web.playbacks import PlaybackLog
from server.web.proxies import Proxies

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", AsyncEngine)
IDENTITIES = web.AppKey("identities", IdentityStore)
RECORDS = web.AppKey("records", Records)
ROUTER = web.AppKey("router", Router)
DESK = web.AppKey("desk", RecordingDesk)  # absent when no field of this server records its calls
SIO = web.AppKey("sio", socketio.AsyncServer)
EVIDENCE = web.AppKey("evidence", RecordingStore)
LOGINS = web.AppKey("logins", LoginThrottle)
PROXIES = web.AppKey("proxies", Proxies)
PLAYBACKS = web.AppKey("playbacks", PlaybackLog)
CHECKPOINTER = web.AppKey("checkpointer", Checkpointer)  # signs the chain head now and then
