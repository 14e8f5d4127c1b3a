"""Socket.IO namespaces for kiosks and clerks: thin.

Each event is looked up in a table of (schema, handler). The payload is
validated against the schema, the handler (a switchboard method) is called and
its result acknowledged as ``{ok: true, ...}``; any error becomes
``{ok: false, error: {code, message}}``. Nothing a client sends can crash the
namespace or leave an event unanswered.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any, Generic, TypeVar

import socketio

from server.live.switchboard import CLERK_NS, KIOSK_NS, Switchboard
from server.records.identities import Clerk, IdentityStore, Kiosk
from server.web.auth import SESSION_COOKIE
from signaling import errors, messages
from signaling.errors import SignalingError

logger = logging.getLogger(__name__)

P = TypeVar("P", Kiosk, Clerk)
Handler = Callable[[Any, Any], Awaitable[dict[str, Any]]]


def error_ack(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


def _token(auth: Any) -> str:
    if not isinstance(auth, dict) or not isinstance(auth.get("token"), str) or not auth["token"]:
        raise socketio.exceptions.ConnectionRefusedError(
            "missing token", {"code": errors.UNAUTHORIZED, "message": "connect with auth: {token: ...}"}
        )
    return str(auth["token"])


def _refuse(what: str) -> socketio.exceptions.ConnectionRefusedError:
    message = f"unknown or revoked {what} token"
    return socketio.exceptions.ConnectionRefusedError(message, {"code": errors.UNAUTHORIZED, "message": message})


class _Namespace(socketio.AsyncNamespace, Generic[P]):  # type: ignore[misc]
    def __init__(self, namespace: str, switchboard: Switchboard, identities: IdentityStore) -> None:
        super().__init__(namespace)
        self.switchboard = switchboard
        self.identities = identities
        self.peers: dict[str, P] = {}
        self.events: dict[str, tuple[type[Any], Handler]] = {}

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event == "connect":
            return await self.handle_connect(args[0], args[2] if len(args) > 2 else None, args[1])
        if event == "disconnect":
            peer = self.peers.pop(args[0], None)
            if peer is not None:
                await self.handle_disconnect(args[0])
            return None
        sid, payload = args[0], args[1:]
        return await self.dispatch(sid, event, payload)

    async def dispatch(self, sid: str, event: str, payload: tuple[Any, ...]) -> dict[str, Any]:
        peer = self.peers.get(sid)
        if peer is None:
            return error_ack(errors.UNAUTHORIZED, "not connected")
        entry = self.events.get(event)
        if entry is None:
            return error_ack(errors.UNKNOWN_EVENT, f"unknown event {event!r}; known: {', '.join(sorted(self.events))}")
        schema, handler = entry
        try:
            if len(payload) > 1:
                raise SignalingError(errors.INVALID_PAYLOAD, f"send one payload object, got {len(payload)} arguments")
            msg = messages.parse(schema, payload[0] if payload else None)
            result = await handler(peer, msg)
        except SignalingError as exc:
            logger.info("%s %s from %s refused: %s %s", self.namespace, event, sid, exc.code, exc.message)
            return {"ok": False, "error": exc.as_dict()}
        except Exception:
            logger.exception("%s %s from %s failed", self.namespace, event, sid)
            return error_ack(errors.INTERNAL, "the server failed to handle this event; it had no effect")
        return {"ok": True, **result}

    async def handle_connect(self, sid: str, auth: Any, environ: Any = None) -> None:
        raise NotImplementedError

    async def handle_disconnect(self, sid: str) -> None:
        raise NotImplementedError


class KioskNamespace(_Namespace[Kiosk]):
    def __init__(self, switchboard: Switchboard, identities: IdentityStore) -> None:
        super().__init__(KIOSK_NS, switchboard, identities)
        sb = switchboard
        self.events = {
            "request_call": (messages.RequestCall, sb.request_call),
            "cancel_call": (messages.CallRef, sb.cancel_call),
            "hangup": (messages.CallRef, sb.kiosk_hangup),
            "signal": (messages.Signal, sb.kiosk_signal),
            "media_connected": (messages.CallRef, sb.kiosk_media_connected),
            "recorder_offer": (messages.RecorderOffer, sb.kiosk_recorder_offer),
            "media_failed": (messages.CallRef, sb.kiosk_media_failed),
            "rate": (messages.Rate, sb.rate),
            "request_callback": (messages.CallbackRequest, sb.request_callback),
        }

    async def handle_connect(self, sid: str, auth: Any, environ: Any = None) -> None:
        kiosk = await self.identities.kiosk_by_token(_token(auth))
        if kiosk is None:
            raise _refuse("kiosk")
        self.peers[sid] = kiosk
        await self.switchboard.kiosk_connected(sid, kiosk)

    async def handle_disconnect(self, sid: str) -> None:
        await self.switchboard.kiosk_disconnected(sid)


SessionLookup = Callable[[str | None], Awaitable[Clerk | None]]


def _cookie(environ: Any, name: str) -> str | None:
    raw = environ.get("HTTP_COOKIE", "") if isinstance(environ, dict) else ""
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None


class ClerkNamespace(_Namespace[Clerk]):
    """Clerks connect with their token (bots, provisioned consoles) or their login session cookie."""

    def __init__(self, switchboard: Switchboard, identities: IdentityStore, session_user: SessionLookup) -> None:
        super().__init__(CLERK_NS, switchboard, identities)
        self.session_user = session_user
        sb = switchboard
        self.events = {
            "set_status": (messages.SetStatus, sb.set_status),
            "accept": (messages.CallRef, sb.accept),
            "decline": (messages.CallRef, sb.decline),
            "hangup": (messages.CallRef, sb.clerk_hangup),
            "signal": (messages.Signal, sb.clerk_signal),
            "media_connected": (messages.CallRef, sb.clerk_media_connected),
            "recorder_offer": (messages.RecorderOffer, sb.clerk_recorder_offer),
            "media_failed": (messages.CallRef, sb.clerk_media_failed),
            "wrap_up": (messages.WrapUp, sb.wrap_up),
            "transfer": (messages.Transfer, sb.transfer),
        }

    async def handle_connect(self, sid: str, auth: Any, environ: Any = None) -> None:
        if isinstance(auth, dict) and auth.get("token"):
            clerk = await self.identities.clerk_by_token(_token(auth))
        else:
            clerk = await self.session_user(_cookie(environ, SESSION_COOKIE))
            if clerk is None:
                _token(auth)  # neither a token nor a login: say how to connect
            elif clerk.role != "clerk":
                raise _refuse("clerk")
        if clerk is None:
            raise _refuse("clerk")
        self.peers[sid] = clerk
        await self.switchboard.clerk_connected(sid, clerk)

    async def handle_disconnect(self, sid: str) -> None:
        await self.switchboard.clerk_disconnected(sid)
