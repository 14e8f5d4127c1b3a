"""Socket.IO namespaces for kiosks and clerks: thin.

A socket authenticates with its token (or a clerk's login cookie) when it
connects; once connected, it becomes a command for the core. Each event is
validated against its schema (:data:`signaling.messages.KIOSK_IN`,
:data:`~signaling.messages.CLERK_IN`), becomes one command for the router, and
its answer is acknowledged as ``{ok: true, ...}`` or ``{ok: false, error:
{code, message}}``. Nothing a client sends can crash a namespace or go
unanswered.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any, Protocol

import socketio

from server.live.limits import ANY_EVENT, CLERK_LIMITS, KIOSK_LIMITS, OTHER, Limit, RateLimiter
from server.live.logtext import shown
from server.live.presence import CLERK_NS, KIOSK_NS
from server.live.recording_desk import RecorderUnavailableError
from server.live.writer import Answer
from server.records.identities import Clerk, IdentityStore
from server.web.auth import SESSION_COOKIE
from signaling import errors, messages
from signaling.commands import (
    CLERK,
    KIOSK,
    ClerkCard,
    ClerkConnected,
    Command,
    Disconnected,
    KioskCard,
    KioskConnected,
    Party,
    Received,
    RecorderAnswered,
)
from signaling.errors import SignalingError

logger = logging.getLogger(__name__)

FLOOD_PAUSE_S = 1.0  # the longest a flooding socket's answer (and its next packet) waits
FRESH_ID_EVENTS = frozenset({"request_call", "transfer", "request_callback"})  # events that open a call or case
CLOSED = frozenset({"client disconnect", "server disconnect"})  # said goodbye, or cut off by the server (revoked)


class Router(Protocol):
    def attach(self, party: Party, sid: str, card: KioskCard | ClerkCard) -> str:
        """This node's socket ``sid`` is now ``party``'s; the connection's id for the core."""

    def detach(self, party: Party, sid: str) -> None: ...

    async def submit(self, cmd: Command) -> Answer: ...


class Recorder(Protocol):
    async def answer(self, call_id: str, participant: str, offer_sdp: str) -> str: ...


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


class _Namespace(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(self, namespace: str, router: Router, identities: IdentityStore,
                 recorder: Recorder | None, schemas: dict[str, tuple[type[Any], type[Any]]],
                 limits: Mapping[str, Limit] | None) -> None:
        super().__init__(namespace)
        self.limiter = RateLimiter(limits) if limits is not None else None
        self.router = router
        self.identities = identities
        self.recorder = recorder
        self.schemas = schemas
        self.peers: dict[str, tuple[Party, KioskCard | ClerkCard]] = {}
        self.conns: dict[str, str] = {}  # sid -> the connection's id for the core

    async def trigger_event(self, event: str, *args: Any) -> Any:
        # the server refuses client events named like these (server.live.transport), so these are real
        if event == "connect":
            return await self.authenticate(args[0], args[2] if len(args) > 2 else None, args[1])
        if event == "disconnect":
            await self.gone(args[0], str(args[1]) if len(args) > 1 else "")
            return None
        return await self.dispatch(args[0], event, args[1:])

    async def connected(self, sid: str) -> None:
        """The socket is connected (the client has its CONNECT packet): now the core hears of it."""
        entry = self.peers.get(sid)
        if entry is None:
            return
        party, card = entry
        conn = self.conns[sid] = self.router.attach(party, sid, card)
        cmd = KioskConnected(conn, card) if isinstance(card, KioskCard) else ClerkConnected(conn, card)
        answer = await self.router.submit(cmd)
        if answer.error is not None:
            logger.warning("%s refused after connecting: %s", party, shown(answer.error.message))
            self.peers.pop(sid, None)
            self.conns.pop(sid, None)
            self.router.detach(party, sid)
            refused = messages.Refused(answer.error.code, answer.error.message)
            await self.emit(refused.EVENT, messages.to_builtins(refused), to=sid)
            await self.disconnect(sid)

    async def gone(self, sid: str, reason: str) -> None:
        entry = self.peers.pop(sid, None)
        if entry is None:
            return
        party = entry[0]
        conn = self.conns.pop(sid, sid)
        self.router.detach(party, sid)
        if self.limiter is not None:
            self.limiter.forget_idle(party.id)
        logger.info("%s disconnected: %s", party, shown(reason))
        await self.router.submit(Disconnected(party, conn, lost=reason not in CLOSED))

    async def dispatch(self, sid: str, event: str, payload: tuple[Any, ...]) -> dict[str, Any]:
        entry = self.peers.get(sid)
        if entry is None:
            return error_ack(errors.UNAUTHORIZED, "not connected")
        party = entry[0]
        limiter = self.limiter
        try:
            if limiter is not None:  # before anything else: a flood is refused for the price of a dict look-up
                try:
                    limiter.take(party.id, ANY_EVENT)
                except SignalingError as exc:
                    # a flood: this socket's reader waits here (it reads the next packet only after this one),
                    # so the flooder's packets stay in its own buffers instead of costing everyone the loop
                    await asyncio.sleep(min(exc.retry_after_s or 0.0, FLOOD_PAUSE_S))
                    raise
            schema = self.schemas.get(event)
            if schema is None:
                if limiter is not None:
                    limiter.take(party.id, OTHER)
                raise SignalingError(errors.UNKNOWN_EVENT, f"unknown event {str(event)[:64]!r}; "
                                     f"known: {', '.join(sorted(self.schemas))}")
            if len(payload) > 1:
                raise SignalingError(errors.INVALID_PAYLOAD, f"send one payload object, got {len(payload)} arguments")
            msg = messages.parse(schema[0], payload[0] if payload else None)
            if limiter is not None:  # a valid message: now it counts against its event's limit
                limiter.take(party.id, event)
            fresh = secrets.token_urlsafe(16) if event in FRESH_ID_EVENTS else ""
            answer = await self.router.submit(Received(party, self.conns.get(sid, sid), event, msg, fresh))
            if answer.error is None and event == "recorder_offer":
                return await self._recorder_offer(party, msg)
        except SignalingError as exc:
            answer = Answer(None, exc)
        except Exception:
            logger.exception("%s %s from %s failed", self.namespace, shown(event), party)
            return error_ack(errors.INTERNAL, "the server failed to handle this event; it had no effect")
        if answer.error is not None and answer.error.code != errors.RATE_LIMITED:  # a flood is not logged line by line
            logger.info("%s %s from %s refused: %s %s", self.namespace, shown(event, 64), party, answer.error.code,
                        shown(answer.error.message))
        return answer.ack()

    async def _recorder_offer(self, party: Party, msg: messages.RecorderOffer) -> dict[str, Any]:
        """The core allowed it: the recorder answers (outside the one writer: it takes a while), then the core hears."""
        who = "visitor" if party.role == KIOSK else "clerk"
        try:
            if self.recorder is None:
                raise RecorderUnavailableError("this server has no recorder")
            sdp = await self.recorder.answer(msg.call_id, who, msg.sdp)
        except RecorderUnavailableError as exc:
            await self.router.submit(RecorderAnswered(msg.call_id, who, str(exc)))  # type: ignore[arg-type]
            return error_ack(errors.RECORDER_UNAVAILABLE, str(exc))
        await self.router.submit(RecorderAnswered(msg.call_id, who))  # type: ignore[arg-type]
        return {"ok": True, "sdp": sdp}

    async def authenticate(self, sid: str, auth: Any, environ: Any = None) -> None:
        raise NotImplementedError


class KioskNamespace(_Namespace):
    def __init__(self, router: Router, identities: IdentityStore, recorder: Recorder | None,
                 limits: Mapping[str, Limit] | None = KIOSK_LIMITS) -> None:
        super().__init__(KIOSK_NS, router, identities, recorder, messages.KIOSK_IN, limits)

    async def authenticate(self, sid: str, auth: Any, environ: Any = None) -> None:
        kiosk = await self.identities.kiosk_by_token(_token(auth))
        if kiosk is None:
            raise _refuse("kiosk")
        self.peers[sid] = (Party(KIOSK, kiosk.id), kiosk.card())


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


class ClerkNamespace(_Namespace):
    """Clerks connect with their token (bots, provisioned consoles) or their login session cookie."""

    def __init__(self, router: Router, identities: IdentityStore, recorder: Recorder | None,
                 session_user: SessionLookup, limits: Mapping[str, Limit] | None = CLERK_LIMITS) -> None:
        super().__init__(CLERK_NS, router, identities, recorder, messages.CLERK_IN, limits)
        self.session_user = session_user

    async def authenticate(self, sid: str, auth: Any, environ: Any = None) -> None:
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
        self.peers[sid] = (Party(CLERK, clerk.id), clerk.card())
