"""Typed application keys, in one place."""

from __future__ import annotations

import socketio
from aiohttp import web

from server.identities import IdentityStore
from server.settings import Settings
from server.switchboard import Switchboard

SETTINGS = web.AppKey("settings", Settings)
IDENTITIES = web.AppKey("identities", IdentityStore)
SWITCHBOARD = web.AppKey("switchboard", Switchboard)
SIO = web.AppKey("sio", socketio.AsyncServer)
