"""The transport under the live side: the JSON codec and the make-up of the Socket.IO server.

Nothing here changes the protocol (docs/protocol.md) or what the namespaces see; it changes how packets get
from the socket to the handlers and back (``bench/signaling.py`` measures each lever against a bare
python-socketio relay):

- ``JsonCodec``: orjson behind the ``dumps``/``loads`` that python-socketio and python-engineio call.
- ``FastSocket``: an Engine.IO socket that, once on WebSocket, reads without a task and a ``wait_for`` per
  packet (one timer per connection watches for a silent peer) and writes a packet straight to the connection
  when nothing is queued before it (the queue and its writer task stay for long-polling, the upgrade and
  anything sent while a write is under way).
- ``JsonPacket``: whether a packet has binary attachments is one orjson pass, not a walk in Python.
- ``DirectManager``: an emit to one client is sent in place, not through a task per recipient and an
  ``asyncio.wait``.
- WebSockets without permessage-deflate, as the reference Socket.IO server has them by default: a
  browser asks for it, and a zlib compressor and decompressor per connection cost far more memory than an
  idle connection otherwise needs.
- ``skip_for_socketio``: the page context processors do not run for Socket.IO's requests.
"""

from __future__ import annotations

import asyncio
import binascii
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import engineio
import orjson
import socketio
from aiohttp import web
from engineio import async_socket, exceptions
from engineio import json as engineio_json
from engineio.async_drivers import aiohttp as engineio_aiohttp
from socketio import packet as sio_packet

from server.live.logtext import shown
from server.live.presence import CLERK_NS, KIOSK_NS
from server.settings import Settings
from server.web.proxies import Proxies, same_origin_check
from signaling import errors
from signaling.messages import RESERVED_EVENTS

logger = logging.getLogger(__name__)

SOCKETIO_PATH = "/socket.io/"
# the head of a Socket.IO packet: its type, attachments, namespace and acknowledgement id (as python-socketio reads
# them), for answering a packet whose JSON cannot be read
PACKET_HEAD = re.compile(r"([0-6])(?:\d{1,10}-)?(?:(/[^,]*),)?(\d{1,99})?")
MAX_MESSAGE_BYTES = 1024 * 1024 + 4096  # a message up to 1 MiB (and its framing); a larger one closes the socket
FAIR_BURST = 32  # packets one socket's reader handles before it lets the other sockets' run


# ---------------------------------------------------------------- JSON


class JsonCodec:
    """orjson as python-socketio's ``json`` module: ``dumps`` gives ``str``, keyword arguments are ignored.

    orjson always writes compact JSON (python-socketio asks for ``separators=(",", ":")``) and UTF-8 rather
    than ``\\uXXXX`` escapes. Whatever orjson refuses goes to the standard library as before: values it cannot
    encode (integers past 64 bits, ...), and input it cannot decode (``NaN``, huge integers), which
    python-engineio's own ``loads`` reads, with its guard against integers too long to parse cheaply.
    """

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        try:
            return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:
            return json.dumps(obj, **kwargs)

    @staticmethod
    def loads(text: str | bytes, **kwargs: Any) -> Any:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            if "depth limit" in str(exc):  # nested past orjson's 1,024 levels: the standard library would recurse
                raise ValueError("JSON nested too deep") from None
        try:
            return engineio_json.loads(text, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deep") from None


# ---------------------------------------------------------------- Engine.IO


class FastSocket(async_socket.AsyncSocket):  # type: ignore[misc]
    """An Engine.IO socket whose WebSocket loop costs no task and no ``wait_for`` per packet.

    The reader waits for the next packet with no timeout of its own; a timer per connection ends the read when
    nothing came for ping interval plus ping timeout (python-engineio's limit). A packet to send goes straight
    to the WebSocket when the socket is on WebSocket, no upgrade is under way, the queue is empty and the
    writer task is not writing: it cannot overtake anything. Otherwise it goes through the queue and the
    writer task, as in python-engineio.
    """

    connected: bool
    upgraded: bool
    upgrading: bool
    _ws: Any = None  # the WebSocket, while packets may be written to it directly
    _writing = False  # the writer task is sending packets it took from the queue

    async def send(self, pkt: Any) -> None:
        ws = self._ws
        if ws is None or self._writing or not self.queue.empty():
            await super().send(pkt)
            return
        if not await self.check_ping_timeout():
            return
        try:
            await ws.send(pkt.encode())
        except Exception as exc:  # the connection is gone; the reader sees it end and closes the socket
            self.server.logger.info("%s: send failed: %s", self.sid, exc)

    async def poll(self) -> list[Any]:
        """Packets to send, waiting under ``asyncio.timeout`` rather than ``wait_for`` (long-polling)."""
        try:
            async with asyncio.timeout(self.server.ping_interval + self.server.ping_timeout):
                first = await self.queue.get()
        except (TimeoutError, asyncio.CancelledError):
            raise exceptions.QueueEmpty() from None
        self.queue.task_done()
        return self._drain(first)

    async def handle_post_request(self, environ: dict[str, Any]) -> None:
        """A long-polling POST's packets (python-engineio's, with its unreadable packets dropped, not raised)."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > self.server.max_http_buffer_size:  # pragma: no cover (answered 413 before: EngineIOServer)
            raise exceptions.ContentTooLongError()
        body = (await environ["wsgi.input"].read(length)).decode("utf-8", "replace")
        if not body:
            return
        encoded = body.split("\x1e")
        if len(encoded) > engineio.payload.Payload.max_decode_packets:
            logger.info("%s: long-polling payload of %d packets dropped", self.sid, len(encoded))
            return
        for text in encoded:
            pkt = engine_packet(text, self.sid)
            if pkt is not None:
                await self.receive(pkt)

    def _drain(self, first: Any) -> list[Any]:
        if first is None:
            return []
        packets = [first]
        while True:
            try:
                pkt = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            self.queue.task_done()
            if pkt is None:
                self.queue.put_nowait(None)
                break
            packets.append(pkt)
        return packets

    async def _websocket_handler(self, ws: Any) -> None:
        """python-engineio's handler (4.x), with the reader and writer described above."""
        server = self.server

        async def websocket_wait() -> Any:
            data = await ws.wait()
            if data and len(data) > server.max_http_buffer_size:
                raise ValueError("packet is too large")
            return data

        if self.connected:  # the socket was already connected (long-polling): this is an upgrade
            self.upgrading = True  # hold packet sends during the upgrade
            try:
                pkt = await websocket_wait()
            except OSError:  # pragma: no cover
                return
            decoded_pkt = engineio.packet.Packet(encoded_packet=pkt)
            if decoded_pkt.packet_type != engineio.packet.PING or decoded_pkt.data != "probe":
                server.logger.info("%s: Failed websocket upgrade, no PING packet", self.sid)
                self.upgrading = False
                return
            await ws.send(engineio.packet.Packet(engineio.packet.PONG, data="probe").encode())
            await self.queue.put(engineio.packet.Packet(engineio.packet.NOOP))  # end poll
            try:
                pkt = await websocket_wait()
            except OSError:  # pragma: no cover
                self.upgrading = False
                return
            decoded_pkt = engineio.packet.Packet(encoded_packet=pkt)
            if decoded_pkt.packet_type != engineio.packet.UPGRADE:
                self.upgraded = False
                server.logger.info("%s: Failed websocket upgrade, expected UPGRADE packet, received %s instead.",
                                   self.sid, pkt)
                self.upgrading = False
                return
            self.upgraded = True
            self.upgrading = False
        else:
            self.connected = True
            self.upgraded = True

        async def writer() -> None:
            while True:
                try:
                    packets = self._drain(await self.queue.get())  # no time limit: the reader watches the peer
                except asyncio.CancelledError:
                    break
                if not packets:  # the reader is done
                    break
                self._writing = True
                try:
                    for pkt in packets:
                        await ws.send(pkt.encode())
                except Exception:
                    break
                finally:
                    self._writing = False
            await ws.close()

        writer_task = asyncio.ensure_future(writer())
        self._ws = ws
        server.logger.info("%s: Upgrade to websocket successful", self.sid)
        # The peer must send something (at least its pong) within ping interval + ping timeout: one timer per
        # connection checks that, rather than a timeout around every read.
        loop = asyncio.get_running_loop()
        reader = asyncio.current_task()
        assert reader is not None
        limit = server.ping_interval + server.ping_timeout
        last_rx = loop.time()
        reading = timed_out = False
        check: asyncio.TimerHandle

        def watchdog() -> None:
            nonlocal check, timed_out
            now = loop.time()
            if reading and now - last_rx >= limit:  # silent too long: end the read (never a handler)
                timed_out = True
                reader.cancel()
                return
            check = loop.call_at(max(last_rx + limit, now + 1.0), watchdog)

        check = loop.call_at(last_rx + limit, watchdog)
        burst = 0
        try:
            while True:
                reading = True
                try:
                    p = await websocket_wait()
                except asyncio.CancelledError:
                    if timed_out:
                        reader.uncancel()
                    break
                except Exception:
                    break
                finally:
                    reading = False
                last_rx = loop.time()
                if p is None:  # connection closed by client
                    break
                burst += 1
                if burst >= FAIR_BURST:  # frames already buffered are read without a pause: let others run
                    burst = 0
                    await asyncio.sleep(0)
                pkt = engine_packet(p, self.sid)
                if pkt is None:
                    continue
                try:
                    await self.receive(pkt)
                except exceptions.UnknownPacketError:  # pragma: no cover
                    pass
                except exceptions.SocketIsClosedError:  # pragma: no cover
                    server.logger.info("Receive error -- socket is closed")
                    break
                except Exception:  # pragma: no cover
                    server.logger.exception("Unknown receive error")
        finally:
            check.cancel()
            self._ws = None
        await self.queue.put(None)  # unlock the writer task so it can exit
        await writer_task
        await self.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)


def engine_packet(encoded: str | bytes, sid: str) -> engineio.packet.Packet | None:
    """An Engine.IO packet as received, or None (logged) if it is not one: an empty frame, an unknown type."""
    try:
        pkt = engineio.packet.Packet(encoded_packet=encoded)
    except (ValueError, TypeError, IndexError, binascii.Error) as exc:
        logger.info("%s: unreadable Engine.IO packet dropped (%s)", sid, shown(exc))
        return None
    if not 0 <= pkt.packet_type < len(engineio.packet.packet_names):
        logger.info("%s: Engine.IO packet of unknown type %s dropped", sid, pkt.packet_type)
        return None
    return pkt


class _SocketTable(dict[str, Any]):
    """The Engine.IO server's sockets: each one it makes is registered here, and becomes a ``FastSocket``.

    python-engineio makes its ``AsyncSocket`` inside ``_handle_connect``, with no hook for the class; the socket
    is registered here before it sends or receives anything. ``FastSocket`` adds no state of its own.
    """

    def __setitem__(self, sid: str, socket: Any) -> None:
        if type(socket) is async_socket.AsyncSocket:
            socket.__class__ = FastSocket
        super().__setitem__(sid, socket)


class _WebSocket(engineio_aiohttp.WebSocket):  # type: ignore[misc]
    """python-engineio's aiohttp WebSocket, without permessage-deflate."""

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request = environ["aiohttp.request"]
        self._sock = web.WebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=False)
        await self._sock.prepare(request)
        self.environ = environ
        await self.handler(self)
        return self._sock


class EngineIOServer(engineio.AsyncServer):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sockets = _SocketTable()
        self._async: dict[str, Any] = {**self._async, "websocket": _WebSocket}

    async def handle_request(self, request: web.Request) -> Any:
        """A long-polling POST larger than a message may be is answered 413 at once, unread, and its socket closed.

        python-engineio would close the socket and wait for its queue to be polled empty before answering,
        which a client that sends and never polls makes forever (its file handles held until the ping timeout);
        and an Engine.IO session needs no login.
        """
        if request.method == "POST" and (request.content_length or 0) > self.max_http_buffer_size:
            sid = request.query.get("sid", "")
            socket = self.sockets.pop(sid, None) if sid else None
            if socket is not None:
                logger.info("%s: long-polling POST of %d bytes refused; the socket is closed", sid,
                            request.content_length)
                asyncio.get_running_loop().create_task(
                    socket.close(wait=False, abort=True, reason=self.reason.TRANSPORT_ERROR))
            return web.Response(status=413, text="message too large", headers={"Connection": "close"})
        return await super().handle_request(request)

    def _log_error_once(self, message: str, message_key: str) -> None:
        """A client's error (a bad session id, origin or transport): a warning with the client's text escaped,
        then (for the same kind) informational; never an error of the server's."""
        if message_key not in self.log_message_keys:
            self.log_message_keys.add(message_key)
            logger.warning("Engine.IO: %s (further occurrences are logged at level INFO)", shown(message))
        else:
            logger.info("Engine.IO: %s", shown(message))

    async def disconnect(self, sid: str | None = None) -> None:
        await super().disconnect(sid)
        if not isinstance(self.sockets, _SocketTable):  # disconnecting everyone starts a new table
            self.sockets = _SocketTable(self.sockets)


# ---------------------------------------------------------------- Socket.IO


class DirectManager(socketio.AsyncManager):  # type: ignore[misc]
    """Emits to a single client are sent in place; rooms, broadcasts and emits with callbacks as before."""

    async def emit(self, event: str, data: Any, namespace: str, room: Any = None, skip_sid: Any = None,
                   callback: Any = None, to: Any = None, **kwargs: Any) -> None:
        room = to or room
        if callback is not None or skip_sid is not None or not isinstance(room, str):
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs)
            return
        participants = self.rooms.get(namespace, {}).get(room)
        if participants is None or len(participants) != 1:
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs)
            return
        ((_, eio_sid),) = participants._fwdm.items()
        if isinstance(data, tuple):
            args = list(data)
        elif data is not None:
            args = [data]
        else:
            args = []
        encoded = self.server.packet_class(sio_packet.EVENT, namespace=namespace, data=[event, *args]).encode()
        for part in encoded if isinstance(encoded, list) else [encoded]:
            try:
                await self.server._send_eio_packet(eio_sid, engineio.packet.Packet(engineio.packet.MESSAGE, part))
            except Exception:  # as with a task per recipient, a failed send does not fail the emitter
                logger.exception("emit of %s to %s failed", event, room)


class JsonPacket(socketio.packet.Packet):  # type: ignore[misc]
    """python-socketio's packet, which looks for binary attachments with one pass of orjson, not a Python walk."""

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        try:
            orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # bytes, or something else orjson does not write: look as python-socketio does
            return bool(super().data_is_binary(data))
        return False


class SocketIOServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio with the levers above, and what the protocol needs on top of it.

    - A client event named like one of Socket.IO's own (``connect``, ``disconnect``, ...) is answered
      ``unknown_event`` and changes nothing: python-socketio would otherwise hand it to the namespace as if the
      socket had connected or disconnected.
    - A client's packets are handled in order, inline: a ``disconnect`` it sends is told apart from a
      connection that broke, and there is no task per packet.
    - Once a namespace's CONNECT has been sent, the namespace's ``connected(sid)`` runs: only then may the
      server send to the socket (its ``welcome``); a second CONNECT of the same namespace is refused and
      changes nothing.
    - Packets are decoded here, so that none can raise out of the decoding (``_handle_eio_message``); a
      namespace other than the protocol's is refused with a code.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.eio.async_handlers = False

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return EngineIOServer

    async def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> None:
        """One Socket.IO packet, decoded here so that no packet can raise out of it.

        A packet that is not valid JSON (or nested past 1,024 levels, or with an integer too long to read) is
        answered ``invalid_payload`` if it is an event whose namespace and acknowledgement id can be read, and
        dropped otherwise. The protocol has no binary attachments: a binary event is answered
        ``invalid_payload`` at once and binary frames are dropped, so a malformed attachment leaves nothing
        waiting for the next frame.
        """
        if not isinstance(data, str):
            logger.info("%s: binary frame dropped (the protocol has no binary attachments)", eio_sid)
            return
        try:
            pkt = self.packet_class(encoded_packet=data)
        except (ValueError, TypeError, RecursionError) as exc:
            await self._unreadable(eio_sid, data, f"the message cannot be read: {shown(exc, 120)}")
            return
        kind = pkt.packet_type
        if kind == sio_packet.CONNECT:
            await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        elif kind == sio_packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
        elif kind == sio_packet.EVENT:
            await self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
        elif kind == sio_packet.ACK:
            await self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data)
        elif kind == sio_packet.BINARY_EVENT:
            await self._unreadable(eio_sid, data, "binary attachments are not part of the protocol: send JSON")
        else:
            logger.info("%s: Socket.IO packet of type %s dropped", eio_sid, shown(kind, 20))

    async def _unreadable(self, eio_sid: str, data: str, message: str) -> None:
        head = PACKET_HEAD.match(data)
        if head is None:
            logger.info("%s: unreadable Socket.IO packet dropped", eio_sid)
            return
        kind, namespace, ack_id = head.group(1), head.group(2) or "/", head.group(3)
        if kind == "0":  # a CONNECT that cannot be read is refused
            await self._send_packet(eio_sid, self.packet_class(sio_packet.CONNECT_ERROR, namespace=namespace, data={
                "message": message, "data": {"code": errors.INVALID_PAYLOAD, "message": message}}))
        elif kind in "25" and ack_id and self.manager.sid_from_eio_sid(eio_sid, namespace) is not None:
            await self._send_packet(eio_sid, self.packet_class(
                sio_packet.ACK, namespace=namespace, id=int(ack_id),
                data=[{"ok": False, "error": {"code": errors.INVALID_PAYLOAD, "message": message}}]))
        else:
            logger.info("%s: unreadable Socket.IO packet dropped", eio_sid)

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        name = data[0] if isinstance(data, list) and data else None
        if not isinstance(name, str) or name in RESERVED_EVENTS:
            if id is not None:
                shown = repr(name)[:64]
                await self._send_packet(eio_sid, self.packet_class(
                    sio_packet.ACK, namespace=namespace or "/", id=id,
                    data=[{"ok": False, "error": {"code": errors.UNKNOWN_EVENT,
                                                  "message": f"{shown} is not an event a client may send"}}]))
            return
        await super()._handle_event(eio_sid, namespace, id, data)

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        ns = namespace or "/"
        if ns not in self.namespace_handlers:  # the default namespace "/" among them: no socket without a token
            message = f"no namespace {shown(ns, 64)!r}: connect to {' or '.join(sorted(self.namespace_handlers))}"
            await self._send_packet(eio_sid, self.packet_class(sio_packet.CONNECT_ERROR, namespace=ns, data={
                "message": message, "data": {"code": errors.UNAUTHORIZED, "message": message}}))
            return
        if self.manager.sid_from_eio_sid(eio_sid, ns) is not None:
            # a second CONNECT of a namespace the socket is in: python-socketio refuses it, and it must not
            # count as the identity connecting again (a second welcome, a "reconnected" event on record)
            await super()._handle_connect(eio_sid, namespace, data)
            return
        await super()._handle_connect(eio_sid, namespace, data)
        sid = self.manager.sid_from_eio_sid(eio_sid, ns)
        handler = self.namespace_handlers.get(ns)
        if sid is not None and self.manager.is_connected(sid, ns) and hasattr(handler, "connected"):
            await handler.connected(sid)


def make_socketio_server(settings: Settings) -> socketio.AsyncServer:
    """The Socket.IO server the namespaces are registered on."""
    return SocketIOServer(
        async_mode="aiohttp",
        client_manager=DirectManager(),
        serializer=JsonPacket,
        json=JsonCodec,
        # a browser's handshake from another site is refused (an empty list turned the check off)
        cors_allowed_origins=same_origin_check(Proxies(settings.proxy_networks()), settings.allowed_origins),
        namespaces=[KIOSK_NS, CLERK_NS],  # the default namespace "/" takes no sockets
        ping_interval=settings.ping_interval_s,
        ping_timeout=settings.ping_timeout_s,
        async_handlers=False,  # one client's events are handled in order (offer before candidates)
        max_http_buffer_size=MAX_MESSAGE_BYTES,
    )


# ---------------------------------------------------------------- the pages' context processors

ContextProcessor = Callable[[web.Request], Awaitable[dict[str, Any]]]


def skip_for_socketio(processor: ContextProcessor) -> ContextProcessor:
    """A template context processor that gives nothing for Socket.IO's requests (they render no template).

    aiohttp_jinja2 runs every context processor for every request, the handshake and the WebSocket of each
    Socket.IO connection included; their context would be kept for the connection's lifetime.
    """

    async def processor_unless_socketio(request: web.Request) -> dict[str, Any]:
        if request.path.startswith(SOCKETIO_PATH):
            return {}
        return await processor(request)

    return processor_unless_socketio
