"""A Socket.IO client written on a bare aiohttp WebSocket, for tests that send what no real client would.

It speaks just enough of Engine.IO 4 and Socket.IO 5: the open packet, a namespace's CONNECT, pongs to the
server's pings, and any frame the test gives (text or binary, valid or not). Acknowledgements are kept by id,
events by name; a frame it cannot read is kept as it came.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Any

import aiohttp

from tests.server.conftest import EVENT_TIMEOUT


class RawSocket:
    def __init__(self, url: str, namespace: str) -> None:
        self.url = url
        self.namespace = namespace
        self.acks: dict[int, Any] = {}
        self.events: dict[str, list[Any]] = defaultdict(list)
        self.other: list[str | bytes] = []  # frames that are neither acks nor events of the namespace
        self.closed = asyncio.Event()
        self._acked = asyncio.Condition()
        self._missing: list[set[int]] = []  # ids that someone waits for, not answered yet
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._prefix = f"43{namespace},"
        self._event_prefix = f"42{namespace},"

    async def connect(self, auth: dict[str, Any] | None) -> str:
        """Open the WebSocket and connect to the namespace; the server's answer to the CONNECT (``40...`` or
        ``44...``)."""
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(self.url + "socket.io/?EIO=4&transport=websocket",
                                               max_msg_size=0)
        opened = await self._ws.receive_str(timeout=EVENT_TIMEOUT)
        assert opened.startswith("0{"), opened
        await self._ws.send_str(f"40{self.namespace}," + (json.dumps(auth) if auth is not None else ""))
        answer = await self._ws.receive_str(timeout=EVENT_TIMEOUT)
        self._reader = asyncio.create_task(self._read())
        return answer

    @property
    def ws(self) -> aiohttp.ClientWebSocketResponse:
        assert self._ws is not None
        return self._ws

    async def send(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    def event_frame(self, ack_id: int | None, *args: Any) -> str:
        return f"{self._event_prefix}{'' if ack_id is None else ack_id}{json.dumps(list(args))}"

    async def emit(self, ack_id: int | None, *args: Any) -> None:
        await self.send(self.event_frame(ack_id, *args))

    async def ack(self, ack_id: int, timeout: float = EVENT_TIMEOUT) -> Any:
        """The answer to the event with this id (waits for it)."""
        await self.acked({ack_id}, timeout)
        return self.acks[ack_id]

    async def acked(self, ids: set[int], timeout: float = EVENT_TIMEOUT) -> None:
        """Wait until every id in ``ids`` is answered."""
        missing = ids - self.acks.keys()
        self._missing.append(missing)
        try:
            async with asyncio.timeout(timeout), self._acked:
                await self._acked.wait_for(lambda: not missing or self.closed.is_set())
        finally:
            self._missing.remove(missing)
        assert not missing, f"{len(missing)} event(s) never answered, e.g. {sorted(missing)[:5]} (socket closed)"

    async def _read(self) -> None:
        ws = self.ws
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await self._frame(msg.data)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    self.other.append(msg.data)
                else:
                    break
        finally:
            self.closed.set()
            async with self._acked:
                self._acked.notify_all()

    async def _frame(self, text: str) -> None:
        if text == "2":  # the server's ping
            await self.ws.send_str("3")
        elif text.startswith(self._prefix):
            body = text[len(self._prefix):]
            digits = len(body) - len(body.lstrip("0123456789"))
            ack_id, data = int(body[:digits]), json.loads(body[digits:])
            self.acks[ack_id] = data[0] if len(data) == 1 else data
            done = False
            for missing in self._missing:
                if ack_id in missing:
                    missing.discard(ack_id)
                    done = done or not missing
            if done:
                async with self._acked:
                    self._acked.notify_all()
        elif text.startswith(self._event_prefix):
            name, *args = json.loads(text[len(self._event_prefix):])
            self.events[name].append(args[0] if len(args) == 1 else args)
        else:
            self.other.append(text)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await self._reader
        if self._http is not None:
            await self._http.close()
