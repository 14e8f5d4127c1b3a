"""Packets no real client sends, each against the running server: a clear answer (or a clean refusal), no
traceback in the server's log, and the socket (and everyone else) served on."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
import socketio

from server.keys import SIO
from server.live.transport import MAX_MESSAGE_BYTES
from tests.server.conftest import EVENT_TIMEOUT, Harness
from tests.server.rawsocket import RawSocket

PARK = "sh/jiading/xincheng/park-3"
DEEP = "[" * 1_200 + "]" * 1_200

# (what, frames sent after connecting, the error code answering ack id 1 or None for no answer)
BAD_FRAMES = [
    ("JSON nested 1,200 deep", ['42/kiosk,1["rate",' + DEEP + "]"], "invalid_payload"),
    ("JSON nested 1,200 deep in an object", ['42/kiosk,1["rate",{"call_id":' + DEEP + "}]"], "invalid_payload"),
    ("JSON nested 1,000 deep", ['42/kiosk,1["rate",' + "[" * 1_000 + "]" * 1_000 + "]"], "invalid_payload"),
    ("a lone surrogate in a value", ['42/kiosk,1["rate",{"call_id":"\\ud800","score":"neutral"}]'],
     "invalid_payload"),
    ("a lone surrogate in a field name", ['42/kiosk,1["rate",{"\\udc00x":1}]'], "invalid_payload"),
    ("a lone surrogate in the event name", ['42/kiosk,1["\\ud800",{}]'], "unknown_event"),
    ("an integer of 5,000 digits", ['42/kiosk,1["rate",{"call_id":' + "9" * 5_000 + "}]"], "invalid_payload"),
    ("not JSON", ['42/kiosk,1["rate",{nope'], "invalid_payload"),
    ("a binary event with a broken placeholder", ['451-/kiosk,1["rate",{"_placeholder":true,"num":5}]',
                                                  b"\x01\x02"], "invalid_payload"),
    ("a binary event whose attachment never comes", ['451-/kiosk,1["rate",{"_placeholder":true,"num":0}]'],
     "invalid_payload"),
    ("a binary event claiming no attachment", ['45/kiosk,1["rate",{}]'], "invalid_payload"),
    ("a binary frame alone", [b"\x01\x02\x03"], None),
    ("an empty frame", [""], None),
    ("an Engine.IO packet of unknown type", ["9"], None),
    ("an Engine.IO message with nothing in it", ["4"], None),
    ("a Socket.IO packet of unknown type", ["49"], None),
    ("a Socket.IO CONNECT_ERROR from the client", ['44/kiosk,{"message":"x"}'], None),
    ("an ack the server never asked for", ['43/kiosk,7[{"ok":true}]'], None),
    ("an event on a namespace the socket is not connected to", ['42/clerk,1["set_status",{}]'], None),
]


@pytest.mark.parametrize(("frames", "code"), [pytest.param(f, c, id=what) for what, f, c in BAD_FRAMES])
async def test_a_bad_packet_is_answered_or_dropped_and_the_socket_goes_on(
        harness: Harness, caplog: pytest.LogCaptureFixture, frames: list[str | bytes], code: str | None) -> None:
    caplog.set_level(logging.ERROR)
    _, token = await harness.identities.add_kiosk("Prober", PARK)
    raw = RawSocket(harness.url, "/kiosk")
    try:
        assert (await raw.connect({"token": token})).startswith("40/kiosk,")
        for frame in frames:
            await raw.send(frame)
        await raw.emit(2, "hangup", {"call_id": "nothing"})  # the socket answers what comes next, in order
        assert (await raw.ack(2))["error"]["code"] == "no_such_call"
        if code is None:
            assert 1 not in raw.acks
        else:
            assert (await raw.ack(1))["error"]["code"] == code
        assert not raw.closed.is_set()
    finally:
        await raw.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_an_oversize_long_polling_post_is_answered_413_at_once(harness: Harness) -> None:
    timeout = aiohttp.ClientTimeout(total=EVENT_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.get(harness.url + "socket.io/?EIO=4&transport=polling") as resp:
            sid = json.loads((await resp.text())[1:])["sid"]  # no login, no token: an Engine.IO session
        body = b"4" + b"x" * (MAX_MESSAGE_BYTES + 1)
        async with http.post(harness.url + f"socket.io/?EIO=4&transport=polling&sid={sid}", data=body) as resp:
            assert resp.status == 413
        # declared but never sent: answered on the length alone
        async def trickle() -> AsyncIterator[bytes]:
            yield b"4"
            await asyncio.Event().wait()  # the rest never comes
        async with http.post(harness.url + "socket.io/?EIO=4&transport=polling&sid=whatever", data=trickle(),
                             headers={"Content-Length": str(10 * MAX_MESSAGE_BYTES)}) as resp:
            assert resp.status == 413
    kiosk = await harness.kiosk()  # the server serves on
    assert (await kiosk.call("hangup", {"call_id": "x"}))["error"]["code"] == "no_such_call"


@pytest.mark.parametrize("namespace", ["/", "/KIOSK", "/kiosk/", "//kiosk", "/admin"])
async def test_only_the_protocols_namespaces_take_sockets(harness: Harness, namespace: str) -> None:
    _, token = await harness.identities.add_kiosk("K", PARK)
    for auth in (None, {"token": token}):
        client = socketio.AsyncClient(reconnection=False)
        refusals: list[object] = []
        client.on("connect_error", refusals.append, namespace=namespace)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(harness.url, namespaces=[namespace], auth=auth, transports=["websocket"],
                                 wait_timeout=EVENT_TIMEOUT)
        await client.disconnect()
        assert refusals and isinstance(refusals[0], dict) and refusals[0]["data"]["code"] == "unauthorized"
    assert not harness.server.app[SIO].manager.rooms.get(namespace)  # no socket of the namespace is left


async def test_newlines_in_client_text_cannot_forge_log_lines(harness: Harness,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    kiosk = await harness.kiosk()
    forged = "x\nINFO server.live.writer: FORGED line\r\x1b[2K"
    assert (await kiosk.call("hangup", {"call_id": forged[:60]}))["error"]["code"] == "no_such_call"
    assert (await kiosk.call(forged, {}))["error"]["code"] == "unknown_event"
    await kiosk.sio.emit(forged, {}, namespace="/kiosk")
    async with aiohttp.ClientSession() as http:
        for method in ("GET", "POST"):
            async with http.request(method, harness.url + "socket.io/", params={
                    "EIO": "4", "transport": "polling", "sid": forged}) as resp:
                assert resp.status == 400
    assert (await kiosk.call("hangup", {"call_id": "y"}))["error"]["code"] == "no_such_call"  # all handled
    logged = [r.getMessage() for r in caplog.records]
    assert any("x\\nINFO" in line for line in logged)  # logged, escaped
    assert not [line for line in logged if "\nINFO server.live.writer: FORGED" in line or "\x1b" in line]
