"""The bots' channel decodes every server event and ack with its struct: a message that does not match is a clear
ProtocolError ``bad_message``, never a KeyError. Pure decoding first, then the bots against a tiny scripted
Socket.IO server (no server/)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
import socketio
from aiohttp import web
from aiohttp.test_utils import TestServer

from client.bot import ClerkBot, KioskBot
from client.channel import (
    BAD_MESSAGE,
    KIOSK_NAMESPACE,
    BotError,
    Channel,
    ProtocolError,
    decode_ack,
    decode_event,
)
from client.peerlink import RestartTiming
from signaling import messages as m

TIMEOUT = 10.0
REGION = "sh/jiading/xincheng/park-3"
TAX = m.FieldInfo("tax", "receipt", "never", {"en": "Tax"}, [m.MatterInfo("tax-consultation", {"en": "Consultation"})])


def out(msg: msgspec.Struct) -> Any:
    return m.to_builtins(msg)


def kiosk_welcome(call: m.KioskCall | None = None) -> Any:
    return out(m.KioskWelcome(m.KioskInfo("k-1", "Park 3", REGION, {}), [TAX], ["en"], 180, call))


def clerk_welcome() -> Any:
    clerk = m.ClerkInfo("c-1", "Clerk Li", "Jiading", ["tax"], ["sh/jiading"], {}, ["en"])
    return out(m.ClerkWelcome(clerk, "away", 20, 180, [TAX], [], None))


# -- decoding alone ---------------------------------------------------------------------------------------------------


def test_a_server_event_that_does_not_match_its_struct_is_a_protocol_error() -> None:
    good = out(m.QueuedMsg("call-1", 2, None, 0, ""))
    assert decode_event("queued", m.QueuedMsg, (good,)) == m.QueuedMsg("call-1", 2, None, 0, "")
    cases = [
        ({**good, "position": "second"}, "Expected `int`, got `str` - at `$.position`"),
        ({k: v for k, v in good.items() if k != "stage"}, "missing required field `stage`"),
        (None, "Expected `object`, got `null`"),
    ]
    for payload, why in cases:
        with pytest.raises(ProtocolError) as info:
            decode_event("queued", m.QueuedMsg, (payload,))
        assert (info.value.event, info.value.code) == ("queued", BAD_MESSAGE)
        assert why in info.value.message and "QueuedMsg" in info.value.message
    with pytest.raises(ProtocolError, match="expected one payload object, got 2 arguments"):
        decode_event("queued", m.QueuedMsg, (good, good))
    # a field the struct does not know is left alone: servers may add fields
    assert decode_event("queued", m.QueuedMsg, ({**good, "new": 1},)).position == 2


def test_acks_are_decoded_with_the_ack_struct_of_their_event() -> None:
    assert decode_ack("set_status", m.StatusNow, {"ok": True, "status": "ringing"}) == m.StatusNow("ringing")
    assert decode_ack("hangup", m.Done, {"ok": True}) == m.Done()
    with pytest.raises(ProtocolError) as info:
        decode_ack("request_call", m.CallRequested, {"ok": True, "call_id": "c", "state": "queued"})
    assert (info.value.event, info.value.code) == ("request_call", BAD_MESSAGE)
    assert "CallRequested" in info.value.message and "missing required field `position`" in info.value.message
    with pytest.raises(ProtocolError) as info:
        decode_ack("accept", m.Accepted, {"ok": False, "error": {"code": "wrong_state", "message": "not ringing"}})
    assert (info.value.code, info.value.message) == ("wrong_state", "not ringing")
    for bad in ([True], {"status": "away"}, {"ok": False, "error": "nope"}, {"ok": "yes"}):
        with pytest.raises(ProtocolError) as info:
            decode_ack("set_status", m.StatusNow, bad)
        assert info.value.code == BAD_MESSAGE, bad


async def test_the_channel_raises_a_malformed_event_where_the_bot_takes_it() -> None:
    channel = Channel("http://127.0.0.1:9", "token", KIOSK_NAMESPACE, request_timeout_s=1)
    channel.receive("ringing", m.Ringing, ({"call_id": "call-1"},))
    channel.receive("call_ended", m.KioskCallEnded, ({"call_id": "call-1", "reason": 7, "by": "clerk"},))
    assert (await channel.get(None)).message == m.Ringing("call-1")
    with pytest.raises(ProtocolError) as info:
        await channel.get(None)
    assert str(info.value).startswith("call_ended: bad_message: ")
    assert "`$.reason`" in info.value.message


async def test_the_channel_sends_only_the_structs_of_its_namespace() -> None:
    channel = Channel("http://127.0.0.1:9", "token", KIOSK_NAMESPACE, request_timeout_s=1)
    with pytest.raises(BotError, match="not an event a client may send on /kiosk"):
        await channel.call("accept", m.CallRef("call-1"))
    with pytest.raises(BotError, match="takes CallRef, not SetStatus"):
        await channel.call("hangup", m.SetStatus("away"))


# -- the bots against a scripted server -------------------------------------------------------------------------------

Script = list[tuple[str, Any]]  # events to emit, in order: (event, payload)


class ScriptedServer:
    """Sends what the test says, good or bad: events on connect, and for each client event an ack with events
    emitted before it."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncServer(async_mode="aiohttp")
        self.on_connect: dict[str, Script] = {"/kiosk": [], "/clerk": []}
        self.refuse: dict[str, m.Refused] = {}
        self.replies: dict[tuple[str, str], tuple[Script, Any]] = {}
        self.received: list[tuple[str, str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        for ns, table in (("/kiosk", m.KIOSK_IN), ("/clerk", m.CLERK_IN)):
            self.sio.on("connect", self._connect(ns), namespace=ns)
            for event in table:
                self.sio.on(event, self._handler(ns, event), namespace=ns)

    def _connect(self, ns: str) -> Any:
        async def connect(sid: str, environ: Any, auth: Any) -> None:
            task = asyncio.create_task(self._welcome(ns, sid))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return connect

    async def _welcome(self, ns: str, sid: str) -> None:
        await asyncio.sleep(0.05)  # after the namespace's CONNECT, as the real server does
        refused = self.refuse.get(ns)
        if refused is not None:
            await self.sio.emit("refused", out(refused), to=sid, namespace=ns)
            await self.sio.disconnect(sid, namespace=ns)
            return
        for event, payload in self.on_connect[ns]:
            await self.sio.emit(event, payload, to=sid, namespace=ns)

    def _handler(self, ns: str, event: str) -> Any:
        async def handle(sid: str, payload: Any) -> Any:
            self.received.append((ns, event, payload))
            emits, ack = self.replies.get((ns, event), ([], {"ok": True}))
            for name, data in emits:
                await self.sio.emit(name, data, to=sid, namespace=ns)
            return ack

        return handle


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[ScriptedServer, str]]:
    server = ScriptedServer()
    app = web.Application()
    server.sio.attach(app)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    try:
        yield server, str(test_server.make_url("")).rstrip("/")
    finally:
        await test_server.close()


REQUESTED = {"ok": True, **out(m.CallRequested("call-1", "queued", 1, None))}


async def test_a_kiosk_bot_stops_with_bad_message_on_a_malformed_welcome(scripted: tuple[ScriptedServer, str]) -> None:
    server, url = scripted
    welcome = kiosk_welcome()
    del welcome["fields"]
    server.on_connect["/kiosk"] = [("welcome", welcome)]
    result = await KioskBot(url, "token", field="tax").run(seconds=0, timeout_s=TIMEOUT)
    assert not result.ok
    assert result.reason.startswith("welcome: bad_message: the server's 'welcome' does not match KioskWelcome: ")
    assert "`fields`" in result.reason
    assert [e for _, e, _ in server.received] == []


async def test_a_kiosk_bot_stops_with_bad_message_on_a_malformed_ack_or_event(
        scripted: tuple[ScriptedServer, str]) -> None:
    server, url = scripted
    server.on_connect["/kiosk"] = [("welcome", kiosk_welcome())]
    server.replies["/kiosk", "request_call"] = ([], {"ok": True, "call_id": "call-1", "state": "waiting"})
    result = await KioskBot(url, "token", field="tax").run(seconds=0, timeout_s=TIMEOUT)
    assert result.reason.startswith("request_call: bad_message: the ack of 'request_call' does not match "
                                    "CallRequested"), result.reason

    queued = {**out(m.QueuedMsg("call-1", 1, None, 0, "")), "position": None}
    server.replies["/kiosk", "request_call"] = ([("queued", queued)], REQUESTED)
    result = await KioskBot(url, "token", field="tax").run(seconds=0, timeout_s=TIMEOUT)
    assert not result.ok and result.call_id == "call-1"
    assert result.reason.startswith("queued: bad_message: ") and "`$.position`" in result.reason, result.reason
    assert ("/kiosk", "hangup", {"call_id": "call-1"}) in server.received  # the bot still hangs up its call


async def test_a_clerk_bot_raises_bad_message_on_a_malformed_ring(scripted: tuple[ScriptedServer, str]) -> None:
    server, url = scripted
    server.on_connect["/clerk"] = [("welcome", clerk_welcome())]
    ring = out(m.RingMsg("call-1", "tax", "en", REGION, {}, m.KioskName("Park 3"), 0.0, 20.0, 0))
    del ring["kiosk"]
    server.replies["/clerk", "set_status"] = ([("ring", ring)], {"ok": True, "status": "ringing"})
    with pytest.raises(ProtocolError) as info:
        await asyncio.wait_for(ClerkBot(url, "token").run(max_calls=1), TIMEOUT)
    assert (info.value.event, info.value.code) == ("ring", BAD_MESSAGE)
    assert "RingMsg" in info.value.message and "`kiosk`" in info.value.message


async def test_refused_after_connecting_is_a_protocol_error_with_the_servers_code(
        scripted: tuple[ScriptedServer, str]) -> None:
    server, url = scripted
    server.refuse["/clerk"] = m.Refused("unknown_region", "no region sh/nowhere")
    with pytest.raises(ProtocolError) as info:
        await asyncio.wait_for(ClerkBot(url, "token").run(max_calls=1), TIMEOUT)
    assert (info.value.event, info.value.code, info.value.message) == ("connect", "unknown_region",
                                                                      "no region sh/nowhere")


async def test_a_kiosk_bot_takes_up_its_waiting_call_from_welcome_and_logs_peer_connection(
        scripted: tuple[ScriptedServer, str], caplog: pytest.LogCaptureFixture) -> None:
    server, url = scripted
    server.on_connect["/kiosk"] = [
        ("welcome", kiosk_welcome(m.KioskCall("call-7", "tax", "en"))),
        ("peer_connection", out(m.PeerConnection("call-7", False, 30.0))),
        ("peer_connection", out(m.PeerConnection("call-7", True, 0.0))),
        ("call_ended", out(m.KioskCallEnded("call-7", "cancelled", "system"))),
    ]
    with caplog.at_level(logging.INFO, logger="client.bot"):
        result = await KioskBot(url, "token", field="tax").run(seconds=0, timeout_s=TIMEOUT)
    assert result.call_id == "call-7" and result.ended_reason == "cancelled"
    assert result.reason == "call ended before media: cancelled by system"
    assert server.received == []  # no request_call: the kiosk already had a call; no hangup: it ended
    assert "the clerk of call call-7 lost its connection; the call waits up to 30 s for it" in caplog.text
    assert "the clerk of call call-7 is connected again" in caplog.text


async def test_a_kiosk_bot_back_in_a_call_in_progress_restarts_its_media(
        scripted: tuple[ScriptedServer, str]) -> None:
    server, url = scripted
    matched = m.KioskMatched("call-7", "offerer", [], "tax", False, m.ClerkPeer("Clerk Li", "Jiading"))
    server.on_connect["/kiosk"] = [("welcome", kiosk_welcome(m.KioskCall("call-7", "tax", "en", "active", matched)))]
    server.replies["/kiosk", "signal"] = ([], {"ok": True, "relayed": True})
    result = await KioskBot(url, "token", field="tax").run(seconds=0, timeout_s=2)
    assert result.call_id == "call-7" and result.reason == "timeout waiting for media"
    events = [(e, p.get("attempt"), p.get("description", {}).get("type")) for _, e, p in server.received]
    # no request_call: the call is taken up, with the offer of the one restart (the old connection is gone)
    assert events == [("signal", 1, "offer"), ("hangup", None, None)]


async def test_a_clerk_bot_back_in_a_call_waits_for_the_restart_then_reports_and_wraps_up(
        scripted: tuple[ScriptedServer, str]) -> None:
    server, url = scripted
    peer = m.KioskPeer("Park 3", REGION, {}, "en")
    call = m.ClerkCall("call-7", "active", m.ClerkMatched("call-7", "answerer", [], "tax", False, peer))
    welcome = clerk_welcome()
    welcome.update(status="busy", call=out(call))
    server.on_connect["/clerk"] = [("welcome", welcome)]
    ended = out(m.ClerkCallEnded("call-7", "media_failed", "clerk", True))
    server.replies["/clerk", "media_failed"] = ([("call_ended", ended)], {"ok": True})
    server.replies["/clerk", "wrap_up"] = ([], {"ok": True, "matters": [1], "followups": []})
    bot = ClerkBot(url, "token", timing=RestartTiming(restart_wait_s=0.2))
    await asyncio.wait_for(bot.run(max_calls=1), TIMEOUT)
    assert [e for _, e, _ in server.received] == ["media_failed", "wrap_up"]  # no set_status: it was busy
    [stats] = bot.calls
    assert (stats.call_id, stats.ended_reason, stats.wrapped_up) == ("call-7", "media_failed", True)
