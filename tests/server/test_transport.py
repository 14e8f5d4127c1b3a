"""The transport levers (server/live/transport.py): same protocol, fewer tasks, no deflate, no page context."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from server.keys import SIO
from server.live import transport
from server.live.transport import FastSocket, JsonCodec, skip_for_socketio
from tests.server.conftest import EVENT_TIMEOUT, Harness, Peer
from tests.server.test_signaling_server import connect_call

# ---------------------------------------------------------------- JSON


def test_json_codec_matches_the_standard_library() -> None:
    value = {"call_id": "abc", "n": [1, 2.5, None, True], "text": "税务 ضرائب", "nested": {"a": []}}
    encoded = JsonCodec.dumps(value, separators=(",", ":"))
    assert isinstance(encoded, str)
    assert json.loads(encoded) == value
    assert JsonCodec.loads(encoded) == value
    assert JsonCodec.loads(encoded.encode()) == value
    assert JsonCodec.dumps({1: "a"}) == '{"1":"a"}'  # as json.dumps: non-string keys become strings


def test_json_codec_falls_back_to_the_standard_library() -> None:
    big = 2**70
    assert json.loads(JsonCodec.dumps([big])) == [big]  # past 64 bits: json.dumps writes it
    assert math.isnan(JsonCodec.loads("[NaN]")[0])  # json.loads reads what orjson refuses
    with pytest.raises(ValueError):
        JsonCodec.loads("[" + "9" * 5000 + "]")  # python-engineio's guard against huge integers holds
    with pytest.raises(ValueError):
        JsonCodec.loads("{not json")


# ---------------------------------------------------------------- the page context


async def test_context_processors_skip_socketio_requests() -> None:
    calls: list[str] = []

    async def processor(request: web.Request) -> dict[str, Any]:
        calls.append(request.path)
        return {"lang": "en"}

    wrapped = skip_for_socketio(processor)
    assert await wrapped(make_mocked_request("GET", "/socket.io/?EIO=4&transport=websocket")) == {}
    assert await wrapped(make_mocked_request("GET", "/clerk")) == {"lang": "en"}
    assert calls == ["/clerk"]


# ---------------------------------------------------------------- sockets


def _sockets(harness: Harness) -> list[Any]:
    return list(harness.server.app[SIO].eio.sockets.values())


async def test_websocket_connections_get_the_fast_socket(harness: Harness) -> None:
    kiosk = await harness.kiosk()
    [sock] = _sockets(harness)
    assert isinstance(sock, FastSocket)
    assert sock._ws is not None  # on WebSocket, packets go straight out
    await kiosk.close()


async def test_signals_are_relayed_in_order_both_ways(harness: Harness) -> None:
    kiosk, clerk = await harness.kiosk(), await harness.clerk()
    call_id = await connect_call(kiosk, clerk)
    n = 60
    candidates = [{"call_id": call_id, "candidate": {"candidate": f"candidate:{i} 1 udp 1 127.0.0.1 {9000 + i} typ "
                                                     "host", "sdpMid": "0", "sdpMLineIndex": 0}} for i in range(n)]
    # sent without waiting for the acks, as a browser trickles candidates
    acks = await asyncio.gather(*(kiosk.sio.call("signal", c, namespace="/kiosk", timeout=EVENT_TIMEOUT)
                                  for c in candidates))
    assert all(a == {"ok": True, "relayed": True} for a in acks)
    got = [await clerk.next("signal") for _ in range(n)]
    assert [g["candidate"]["candidate"] for g in got] == [c["candidate"]["candidate"] for c in candidates]
    back = await asyncio.gather(*(clerk.sio.call("signal", {**c, "call_id": call_id}, namespace="/clerk",
                                                 timeout=EVENT_TIMEOUT) for c in candidates))
    assert all(a["ok"] for a in back)
    got = [await kiosk.next("signal") for _ in range(n)]
    assert [g["candidate"]["candidate"] for g in got] == [c["candidate"]["candidate"] for c in candidates]


async def test_long_polling_and_the_upgrade_still_work(harness: Harness) -> None:
    """Browsers start on long-polling and upgrade to WebSocket; events flow before, during and after."""
    _, token = await harness.identities.add_kiosk("Polling kiosk", "sh/jiading/xincheng/park-3")
    peer = Peer(harness.url, "/kiosk", token)
    await peer.sio.connect(harness.url, namespaces=["/kiosk"], auth={"token": token},
                           transports=["polling", "websocket"], wait_timeout=EVENT_TIMEOUT)
    try:
        assert (await peer.next("welcome"))["kiosk"]["name"] == "Polling kiosk"
        for _ in range(50):  # until the upgrade is done
            if peer.sio.transport() == "websocket":
                break
            await asyncio.sleep(0.05)
        assert peer.sio.transport() == "websocket"
        ack = await peer.call("request_call", {"field": "nope", "language": "en"})
        assert ack["ok"] is False and ack["error"]["code"] == "unknown_field"
        clerk = await harness.clerk()
        call_id = await connect_call(peer, clerk)
        await peer.ok("signal", {"call_id": call_id, "description": {"type": "offer", "sdp": "v=0\r\n"}})
        assert (await clerk.next("signal"))["description"]["type"] == "offer"
    finally:
        await peer.close()


async def test_websocket_refuses_permessage_deflate(harness: Harness) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(
            harness.url + "socket.io/?EIO=4&transport=websocket", compress=15) as ws:
        assert ws.compress == 0
        opened = await ws.receive_str()
        assert opened.startswith("0{")


async def test_a_silent_peer_is_dropped_after_ping_interval_and_timeout(harness_factory: Any) -> None:
    harness: Harness = await harness_factory(ping_interval_s=0.2, ping_timeout_s=0.2)
    async with aiohttp.ClientSession() as http, http.ws_connect(
            harness.url + "socket.io/?EIO=4&transport=websocket") as ws:
        assert (await ws.receive_str()).startswith("0{")
        assert _sockets(harness)
        # never answer the pings: the server closes the connection
        async with asyncio.timeout(5):
            while not ws.closed:
                msg = await ws.receive()
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    break
    for _ in range(100):  # and forgets the socket
        if not _sockets(harness):
            break
        await asyncio.sleep(0.05)
    assert not _sockets(harness)


async def test_emit_to_a_room_of_several_still_reaches_all(harness: Harness) -> None:
    one, two = await harness.kiosk(name="One"), await harness.kiosk(name="Two")
    sio = harness.server.app[SIO]
    for peer in (one, two):
        sid = peer.sio.get_sid("/kiosk")
        await sio.enter_room(sid, "everyone", namespace="/kiosk")
    await sio.emit("notice", {"n": 1}, to="everyone", namespace="/kiosk")
    assert await one.next("notice") == {"n": 1}
    assert await two.next("notice") == {"n": 1}


def test_the_server_is_made_with_the_levers() -> None:
    from server.settings import load_settings

    sio = transport.make_socketio_server(load_settings(recording_workers=0))
    assert isinstance(sio, socketio.AsyncServer)
    assert isinstance(sio.manager, transport.DirectManager)
    assert isinstance(sio.eio, transport.EngineIOServer)


def test_binary_attachments_are_still_found() -> None:
    assert transport.JsonPacket.data_is_binary({"a": [1, {"b": b"\x00"}]}) is True
    assert transport.JsonPacket.data_is_binary({"a": [1, {"b": "text"}], 2: None}) is False
    pkt = transport.JsonPacket(socketio.packet.EVENT, data=["file", {"blob": b"\x01\x02"}], namespace="/kiosk")
    assert pkt.packet_type == socketio.packet.BINARY_EVENT
