"""The bots' Socket.IO channel: one ordered queue of server events, acks as values, clear errors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import socketio

logger = logging.getLogger(__name__)


KIOSK_NAMESPACE = "/kiosk"
CLERK_NAMESPACE = "/clerk"

Payload = dict[str, Any]


class BotError(Exception):
    """A bot could not go on: refused connection, lost connection, timeout, failed ICE, ..."""


class ProtocolError(BotError):
    """The server answered an event with ``{ok: false, error: {code, message}}``."""

    def __init__(self, event: str, code: str, message: str) -> None:
        super().__init__(f"{event}: {code}: {message}")
        self.event = event
        self.code = code
        self.message = message


def connect_error_code(error: object) -> tuple[str, str]:
    """``(code, message)`` from what ``connect_error`` received.

    python-socketio hands over ``{message, data: {code, message}}`` when the server refused with
    ``ConnectionRefusedError(message, {code, message})``; a bare ``{code, message}`` or a string is read too.
    """
    if isinstance(error, Mapping):
        data = error.get("data")
        if isinstance(data, Mapping) and data.get("code"):
            return str(data["code"]), str(data.get("message") or error.get("message") or "")
        return str(error.get("code") or ""), str(error.get("message") or "")
    return "", "" if error is None else str(error)


def text_of(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    return value if isinstance(value, str) else ""


def mapping_of(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = payload.get(key)
    return value if isinstance(value, Mapping) else {}


# -- socket.io plumbing -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Incoming:
    """One thing for a bot's loop to handle: a server event, or an internal one (name starting with ``_``)."""

    event: str
    payload: Payload
    source: object = None  # for internal events: the peer connection wrapper they come from


class Channel:
    """One Socket.IO connection to one namespace; server events land in ``queue``."""

    def __init__(
        self, url: str, token: str, namespace: str, events: Sequence[str], *, request_timeout_s: float
    ) -> None:
        self.url = url
        self.token = token
        self.namespace = namespace
        self.request_timeout_s = request_timeout_s
        self.queue: asyncio.Queue[Incoming] = asyncio.Queue()
        self.connected = False
        self._connect_error: object = None
        self._closing = False
        self.sio = socketio.AsyncClient(reconnection=False)
        for event in ("welcome", *events):
            self.sio.on(event, handler=self._enqueuer(event), namespace=namespace)
        self.sio.on("connect_error", handler=self._on_connect_error, namespace=namespace)
        self.sio.on("disconnect", handler=self._on_disconnect, namespace=namespace)

    def _enqueuer(self, event: str) -> Callable[..., None]:
        def enqueue(payload: object = None, *_: object) -> None:
            self.queue.put_nowait(Incoming(event, payload if isinstance(payload, dict) else {}))

        return enqueue

    def _on_connect_error(self, data: object = None, *_: object) -> None:
        self._connect_error = data

    def _on_disconnect(self, *args: object) -> None:
        was = self.connected
        self.connected = False
        if was and not self._closing:
            reason = str(args[0]) if args else ""
            self.queue.put_nowait(Incoming("_disconnected", {"reason": reason}))

    async def connect(self, timeout_s: float) -> Payload:
        """Connect with the token and return the ``welcome`` payload."""
        try:
            await asyncio.wait_for(
                self.sio.connect(
                    self.url,
                    auth={"token": self.token},
                    namespaces=[self.namespace],
                    wait_timeout=timeout_s,
                ),
                timeout_s,
            )
        except (socketio.exceptions.ConnectionError, TimeoutError) as exc:
            code, message = connect_error_code(self._connect_error)
            if code:
                raise ProtocolError("connect", code, message) from exc
            raise BotError(f"cannot connect to {self.url}{self.namespace}: {message or exc}") from exc
        self.connected = True
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    item = await self.queue.get()
                    if item.event == "welcome":
                        return item.payload
                    if item.event == "_disconnected":
                        raise BotError(f"disconnected before welcome: {item.payload.get('reason')}")
                    logger.debug("%s: %s before welcome, dropped", self.namespace, item.event)
        except TimeoutError as exc:
            raise BotError(f"no welcome from {self.url}{self.namespace} within {timeout_s} s") from exc

    async def call(self, event: str, payload: Payload) -> Payload:
        """Emit ``event`` with an ack and return the ack; raise :class:`ProtocolError` on ``ok: false``."""
        if not self.connected:
            raise BotError(f"{event}: not connected")
        try:
            ack = await self.sio.call(event, payload, namespace=self.namespace, timeout=self.request_timeout_s)
        except socketio.exceptions.TimeoutError as exc:
            raise BotError(f"{event}: no ack within {self.request_timeout_s} s") from exc
        except socketio.exceptions.BadNamespaceError as exc:
            raise BotError(f"{event}: not connected") from exc
        if not isinstance(ack, dict):
            raise ProtocolError(event, "bad_ack", f"ack is not an object: {ack!r}")
        if ack.get("ok") is not True:
            error = mapping_of(ack, "error")
            raise ProtocolError(event, text_of(error, "code") or "unknown", text_of(error, "message"))
        return ack

    async def get(self, deadline: float | None) -> Incoming:
        """The next queued item; ``TimeoutError`` at ``deadline`` (a ``loop.time()``)."""
        if deadline is None:
            return await self.queue.get()
        async with asyncio.timeout_at(deadline):
            return await self.queue.get()

    async def close(self) -> None:
        self._closing = True
        self.connected = False
        with contextlib.suppress(Exception):
            await self.sio.disconnect()


