"""The Socket.IO server, with what the protocol needs on top of python-socketio.

- A client event named like one of Socket.IO's own (``connect``,
  ``disconnect``, ...) is answered ``unknown_event`` and changes nothing:
  python-socketio would otherwise hand it to the namespace as if the socket
  had connected or disconnected.
- A client's packets are handled in order, inline: a ``disconnect`` it sends is
  told apart from a connection that broke.
- Once a namespace's CONNECT has been sent, the namespace's ``connected(sid)``
  runs: only then may the server send to the socket (its ``welcome``).
"""

from __future__ import annotations

from typing import Any

import socketio

from signaling import errors
from signaling.messages import RESERVED_EVENTS


class SocketServer(socketio.AsyncServer):  # type: ignore[misc]
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Engine.IO hands each message to a task of its own by default: a client's DISCONNECT packet could then
        # lose the race with the closing of its socket, and a deliberate hang-up would pass for a lost link.
        # Handled inline, one client's packets are taken in order (and without a task per packet).
        self.eio.async_handlers = False

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        name = data[0] if isinstance(data, list) and data else None
        if not isinstance(name, str) or name in RESERVED_EVENTS:
            if id is not None:
                shown = repr(name)[:64]
                await self._send_packet(eio_sid, self.packet_class(
                    socketio.packet.ACK, namespace=namespace or "/", id=id,
                    data=[{"ok": False, "error": {"code": errors.UNKNOWN_EVENT,
                                                  "message": f"{shown} is not an event a client may send"}}]))
            return
        await super()._handle_event(eio_sid, namespace, id, data)

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        await super()._handle_connect(eio_sid, namespace, data)
        ns = namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, ns)
        handler = self.namespace_handlers.get(ns)
        if sid is not None and self.manager.is_connected(sid, ns) and hasattr(handler, "connected"):
            await handler.connected(sid)
