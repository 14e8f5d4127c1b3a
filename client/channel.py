"""The bots' Socket.IO channel: one ordered queue of server events, decoded with the protocol's structs; acks as
structs; clear errors.

Every server event of the channel's namespace is decoded with its struct from
:data:`signaling.messages.KIOSK_OUT` or :data:`~signaling.messages.CLERK_OUT`,
and every acknowledgement with the ack struct of its event in
:data:`~signaling.messages.KIOSK_IN` or :data:`~signaling.messages.CLERK_IN`:
the bots read typed attributes, never dictionaries. A server message that does
not match its struct is a :class:`ProtocolError` with code ``bad_message``
(naming the event and what msgspec found wrong), raised where the bot takes it:
from :meth:`Channel.get` for an event, from :meth:`Channel.call` for an ack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import socketio

from signaling import messages
from signaling.errors import UNAVAILABLE  # a node that is stopping refuses so: another node may take the connection

logger = logging.getLogger(__name__)


KIOSK_NAMESPACE = "/kiosk"
CLERK_NAMESPACE = "/clerk"
RETRY_PAUSE_S = 0.25  # between rounds over the servers when none answered
BAD_MESSAGE = "bad_message"  # the code of a ProtocolError for a server message that does not match its struct

Payload = dict[str, Any]  # an internal event's payload (names starting with "_")
Message = msgspec.Struct  # a server event or an ack, decoded

# namespace -> (server events and their structs, client events and their (message, ack) structs)
PROTOCOL: dict[str, tuple[Mapping[str, type[msgspec.Struct]], Mapping[str, tuple[type[Any], type[Any]]]]] = {
    KIOSK_NAMESPACE: (messages.KIOSK_OUT, messages.KIOSK_IN),
    CLERK_NAMESPACE: (messages.CLERK_OUT, messages.CLERK_IN),
}


class BotError(Exception):
    """A bot could not go on: refused connection, lost connection, timeout, failed ICE, ..."""


class ProtocolError(BotError):
    """The server refused an event (``{ok: false, error: {code, message}}``) or the connection (``refused``,
    ``connect_error``), or sent a message that does not match its struct (code ``bad_message``)."""

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


def call_of(message: Message) -> str | None:
    """The ``call_id`` a server event is about; None for those about no call (``welcome``, ``status``, ...)."""
    value = getattr(message, "call_id", None)
    return value if isinstance(value, str) else None


# -- decoding -------------------------------------------------------------------------------------------------------


class _Error(msgspec.Struct):
    code: str
    message: str = ""


class _Refusal(msgspec.Struct):
    ok: bool
    error: _Error


def decode_event(event: str, kind: type[msgspec.Struct], args: tuple[Any, ...]) -> Message:
    """The arguments of server event ``event`` as its struct ``kind``; :class:`ProtocolError` if they are not."""
    if len(args) != 1:
        raise ProtocolError(event, BAD_MESSAGE, f"expected one payload object, got {len(args)} arguments")
    try:
        return messages.decode(kind, args[0])
    except msgspec.ValidationError as exc:
        raise ProtocolError(event, BAD_MESSAGE, f"the server's {event!r} does not match {kind.__name__}: {exc}") \
            from None


def decode_ack(event: str, kind: type[msgspec.Struct], ack: Any) -> Message:
    """The acknowledgement of client event ``event``: its struct ``kind`` when ``ok: true``; :class:`ProtocolError`
    with the server's code when ``ok: false``, with ``bad_message`` when it is neither."""
    if not isinstance(ack, dict):
        raise ProtocolError(event, BAD_MESSAGE, f"the ack of {event!r} is not an object: {ack!r:.200}")
    ok = ack.get("ok")
    if ok is True:
        try:
            return messages.decode(kind, {k: v for k, v in ack.items() if k != "ok"})
        except msgspec.ValidationError as exc:
            raise ProtocolError(event, BAD_MESSAGE, f"the ack of {event!r} does not match {kind.__name__}: {exc}") \
                from None
    if ok is False:
        try:
            refusal = msgspec.convert(ack, _Refusal)
        except msgspec.ValidationError as exc:
            raise ProtocolError(event, BAD_MESSAGE, f"the refusal of {event!r} is malformed: {exc}") from None
        raise ProtocolError(event, refusal.error.code or "unknown", refusal.error.message)
    raise ProtocolError(event, BAD_MESSAGE, f"the ack of {event!r} has no `ok: true` or `ok: false`")


# -- socket.io plumbing -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Incoming:
    """One thing for a bot's loop to handle: a server event (``message``, its struct), or an internal one
    (name starting with ``_``, with a ``payload``)."""

    event: str
    payload: Payload = field(default_factory=dict)  # internal events only
    source: object = None  # for internal events: the peer connection wrapper they come from
    message: Message | None = None  # server events: the payload decoded with the event's struct
    error: ProtocolError | None = None  # a server event that did not match its struct: raised by Channel.get


def server_urls(url: str | Sequence[str]) -> list[str]:
    """The servers to try, in order: one URL, several separated by commas, or a list (the nodes of a cluster)."""
    urls = [u.strip() for u in url.split(",")] if isinstance(url, str) else [u.strip() for u in url]
    urls = [u for u in urls if u]
    if not urls:
        raise BotError("no server URL given")
    return urls


class Channel:
    """One Socket.IO connection to one namespace (:data:`KIOSK_NAMESPACE` or :data:`CLERK_NAMESPACE`); every
    server event of the namespace lands in ``queue``, decoded.

    ``url`` may name several servers (the nodes of a cluster): :meth:`connect` takes the first that answers, and
    :meth:`reconnect`, after a lost connection, tries the others first. Connections are WebSocket only, so that no
    request of a connection can reach another node behind a proxy without sticky sessions.
    """

    def __init__(self, url: str | Sequence[str], token: str, namespace: str, *, request_timeout_s: float) -> None:
        self.urls = server_urls(url)
        self.url = self.urls[0]  # the server of the current (or last) connection
        self.token = token
        self.namespace = namespace
        self.request_timeout_s = request_timeout_s
        self.events, self.requests = PROTOCOL[namespace]
        self.queue: asyncio.Queue[Incoming] = asyncio.Queue()
        self.connected = False
        self.replaced = False  # the server closed the connection (the same identity connected elsewhere, ...)
        self._connect_error: object = None
        self._closing = False
        self.sio = self._client()

    def _client(self) -> socketio.AsyncClient:
        sio = socketio.AsyncClient(reconnection=False)
        for event, kind in self.events.items():
            sio.on(event, handler=self._receiver(event, kind), namespace=self.namespace)
        sio.on("connect_error", handler=self._on_connect_error, namespace=self.namespace)
        sio.on("disconnect", handler=self._on_disconnect, namespace=self.namespace)
        return sio

    def _receiver(self, event: str, kind: type[msgspec.Struct]) -> Callable[..., None]:
        def receive(*args: Any) -> None:
            self.receive(event, kind, args)

        return receive

    def receive(self, event: str, kind: type[msgspec.Struct], args: tuple[Any, ...]) -> None:
        """A server event as Socket.IO handed it over: queued decoded, or as the error it is."""
        try:
            self.queue.put_nowait(Incoming(event, message=decode_event(event, kind, args)))
        except ProtocolError as exc:
            logger.warning("%s: %s", self.namespace, exc)
            self.queue.put_nowait(Incoming(event, error=exc))

    def _on_connect_error(self, data: object = None, *_: object) -> None:
        self._connect_error = data

    def _on_disconnect(self, *args: object) -> None:
        was = self.connected
        self.connected = False
        if was and not self._closing:
            reason = str(args[0]) if args else ""
            self.replaced = reason == self.sio.reason.SERVER_DISCONNECT
            self.queue.put_nowait(Incoming("_disconnected", {"reason": reason, "replaced": self.replaced}))

    async def connect(self, timeout_s: float) -> Message:
        """Connect with the token to the first server that answers and return the ``welcome`` (a
        ``KioskWelcome`` or ``ClerkWelcome``)."""
        return await self._connect_any(self.urls, timeout_s)

    async def reconnect(self, timeout_s: float) -> Message:
        """After a lost connection: connect again, the other servers first (the one that was lost may be down),
        within ``timeout_s`` in all; return the new ``welcome``."""
        start = self.urls.index(self.url) + 1 if self.url in self.urls else 0
        order = self.urls[start:] + self.urls[:start]
        with contextlib.suppress(Exception):
            await self.sio.disconnect()
        return await self._connect_any(order, timeout_s)

    async def _connect_any(self, urls: list[str], timeout_s: float) -> Message:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        each = timeout_s / len(urls) if len(urls) > 1 else timeout_s
        last: BotError | None = None
        while True:
            for url in urls:
                left = deadline - loop.time()
                if left <= 0:
                    raise last or BotError(f"cannot connect to {', '.join(urls)} within {timeout_s} s")
                try:
                    return await self._connect_to(url, min(each, left))
                except ProtocolError as exc:
                    if exc.code != UNAVAILABLE:
                        raise  # the server answered and refused: another node would say the same
                    logger.info("%s: %s", self.namespace, exc)  # that node is stopping: the next one
                    last = exc
                except BotError as exc:
                    logger.info("%s: %s", self.namespace, exc)
                    last = exc
            if len(urls) == 1:
                raise last or BotError(f"cannot connect to {urls[0]}")
            await asyncio.sleep(min(RETRY_PAUSE_S, max(0.0, deadline - loop.time())))  # every node failed: pause

    async def _connect_to(self, url: str, timeout_s: float) -> Message:
        self.url = url
        if self.sio.connected or self.sio.eio.state != "disconnected":
            with contextlib.suppress(Exception):
                await self.sio.disconnect()
        self.sio = self._client()
        self._connect_error = None
        self.replaced = False
        try:
            await asyncio.wait_for(
                self.sio.connect(
                    url,
                    auth={"token": self.token},
                    namespaces=[self.namespace],
                    transports=["websocket"],
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
        refused: messages.Refused | None = None
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    item = await self.get(None)
                    if isinstance(item.message, messages.Refused):
                        refused = item.message  # the server closes the connection next
                    elif item.event == "welcome" and item.message is not None:
                        return item.message
                    elif item.event == "_disconnected":
                        if refused is not None:
                            raise ProtocolError("connect", refused.code, refused.message)
                        raise BotError(f"disconnected before welcome: {item.payload.get('reason')}")
                    else:
                        logger.debug("%s: %s before welcome, dropped", self.namespace, item.event)
        except TimeoutError as exc:
            if refused is not None:
                raise ProtocolError("connect", refused.code, refused.message) from exc
            raise BotError(f"no welcome from {self.url}{self.namespace} within {timeout_s} s") from exc

    async def call(self, event: str, message: msgspec.Struct) -> Message:
        """Emit client event ``event`` with ``message`` (its struct from the namespace's table) and return the ack
        decoded with the event's ack struct; raise :class:`ProtocolError` on ``ok: false`` or a malformed ack."""
        schema = self.requests.get(event)
        if schema is None:
            raise BotError(f"{event}: not an event a client may send on {self.namespace}")
        if not isinstance(message, schema[0]):
            raise BotError(f"{event}: takes {schema[0].__name__}, not {type(message).__name__}")
        if not self.connected:
            raise BotError(f"{event}: not connected")
        try:
            ack = await self.sio.call(event, messages.to_builtins(message), namespace=self.namespace,
                                      timeout=self.request_timeout_s)
        except socketio.exceptions.TimeoutError as exc:
            raise BotError(f"{event}: no ack within {self.request_timeout_s} s") from exc
        except socketio.exceptions.BadNamespaceError as exc:
            raise BotError(f"{event}: not connected") from exc
        return decode_ack(event, schema[1], ack)

    async def get(self, deadline: float | None) -> Incoming:
        """The next queued item; ``TimeoutError`` at ``deadline`` (a ``loop.time()``); the
        :class:`ProtocolError` of a server event that did not match its struct."""
        if deadline is None:
            item = await self.queue.get()
        else:
            async with asyncio.timeout_at(deadline):
                item = await self.queue.get()
        if item.error is not None:
            raise item.error
        return item

    async def close(self) -> None:
        self._closing = True
        self.connected = False
        with contextlib.suppress(Exception):
            await self.sio.disconnect()
