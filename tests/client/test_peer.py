"""Peers in one process: aiortc with the synthetic tracks, loopback ICE, and the bots over a minimal relay."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
import msgspec
import pytest
import socketio
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from client.bot import (
    ClerkBot,
    KioskBot,
    ProtocolError,
    candidate_from_json,
    connect_error_code,
    ice_servers_from,
)
from client.media import CaptionVideoTrack, MediaCounter, ToneAudioTrack
from rtc import loopback as ice
from rtc.loopback import LoopbackPatchError, only_loopback_candidates, selected_candidate_pair
from signaling import messages as m

TIMEOUT = 20.0
CANDIDATE_LINE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ", re.MULTILINE)


# -- two peers, no server ---------------------------------------------------------------------------------------------


@dataclass
class Side:
    pc: RTCPeerConnection
    caption: str
    counters: dict[str, MediaCounter] = field(default_factory=dict)
    tracks: list[MediaStreamTrack] = field(default_factory=list)

    def add_tracks(self) -> None:
        self.tracks = [CaptionVideoTrack([self.caption]), ToneAudioTrack()]
        for track in self.tracks:
            self.pc.addTrack(track)

    async def close(self) -> None:
        await self.pc.close()
        for track in self.tracks:
            track.stop()
        for counter in self.counters.values():
            await counter.stop()


def make_side(caption: str) -> Side:
    side = Side(RTCPeerConnection(RTCConfiguration(iceServers=[])), caption)

    def on_track(track: MediaStreamTrack) -> None:
        side.counters[track.kind] = MediaCounter(track)

    side.pc.on("track", on_track)
    return side


@contextlib.asynccontextmanager
async def two_sides() -> AsyncIterator[tuple[Side, Side]]:
    offerer, answerer = make_side("offerer"), make_side("answerer")
    try:
        yield offerer, answerer
    finally:
        await offerer.close()
        await answerer.close()


async def negotiate(offerer: Side, answerer: Side) -> None:
    """Offer/answer as the bots do it: the offerer adds its tracks first, the answerer after the offer."""
    offerer.add_tracks()
    await offerer.pc.setLocalDescription(await offerer.pc.createOffer())
    await answerer.pc.setRemoteDescription(offerer.pc.localDescription)
    answerer.add_tracks()
    await answerer.pc.setLocalDescription(await answerer.pc.createAnswer())
    await offerer.pc.setRemoteDescription(answerer.pc.localDescription)


async def wait_media(*sides: Side) -> None:
    async def both(side: Side) -> None:
        assert set(side.counters) == {"video", "audio"}  # "track" fires within setRemoteDescription
        for counter in side.counters.values():
            await counter.wait_frames(3, timeout_s=TIMEOUT)

    await asyncio.wait_for(asyncio.gather(*(both(s) for s in sides)), TIMEOUT)


def sdp_hosts(sdp: str) -> set[str]:
    return set(CANDIDATE_LINE.findall(sdp))


def assert_received(side: Side) -> None:
    assert side.counters["video"].frames >= 3
    assert side.counters["audio"].frames >= 3
    assert side.counters["video"].frame_size == (640, 480)


async def test_two_peers_exchange_video_and_audio() -> None:
    started = time.monotonic()
    async with two_sides() as (offerer, answerer):
        await negotiate(offerer, answerer)
        await wait_media(offerer, answerer)
        assert offerer.pc.connectionState == answerer.pc.connectionState == "connected"
        assert_received(offerer)
        assert_received(answerer)
        assert selected_candidate_pair(offerer.pc) is not None
    assert time.monotonic() - started < TIMEOUT


async def test_only_loopback_candidates_still_connect() -> None:
    """A loopback-only host, simulated: 127.0.0.1 is the only candidate and the call connects over it."""
    with only_loopback_candidates():
        async with two_sides() as (offerer, answerer):
            await negotiate(offerer, answerer)
            assert sdp_hosts(offerer.pc.localDescription.sdp) == {"127.0.0.1"}
            assert sdp_hosts(answerer.pc.localDescription.sdp) == {"127.0.0.1"}
            await wait_media(offerer, answerer)
            assert_received(offerer)
            assert_received(answerer)
            for side in (offerer, answerer):
                pair = selected_candidate_pair(side.pc)
                assert pair is not None
                (local_host, _), (remote_host, _) = pair
                assert local_host == remote_host == "127.0.0.1"
    assert ice.loopback_mode() is None


async def test_candidates_trickled_as_browser_json() -> None:
    """The answerer gets the offer without candidates and then each candidate as RTCIceCandidate.toJSON()."""
    async with two_sides() as (offerer, answerer):
        offerer.add_tracks()
        await offerer.pc.setLocalDescription(await offerer.pc.createOffer())
        full = offerer.pc.localDescription.sdp
        bare = "".join(line for line in full.splitlines(keepends=True) if "candidate" not in line)
        await answerer.pc.setRemoteDescription(RTCSessionDescription(sdp=bare, type="offer"))
        mids = re.findall(r"^a=mid:(\S+)", full, re.MULTILINE)
        for index, section in enumerate(full.split("\r\nm=")[1:]):
            for line in re.findall(r"^a=(candidate:.*?)\r?$", section, re.MULTILINE):
                json = {"candidate": line + " generation 0 ufrag abcd", "sdpMid": mids[index], "sdpMLineIndex": index}
                await answerer.pc.addIceCandidate(candidate_from_json(json))
        assert candidate_from_json({"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0}) is None
        answerer.add_tracks()
        await answerer.pc.setLocalDescription(await answerer.pc.createAnswer())
        await offerer.pc.setRemoteDescription(answerer.pc.localDescription)
        await wait_media(offerer, answerer)
        assert_received(answerer)


# -- the loopback patch -----------------------------------------------------------------------------------------------


async def gathered_hosts() -> set[str]:
    connection = aioice.ice.Connection(ice_controlling=True, components=1)
    try:
        await connection.gather_candidates()
        return {c.host for c in connection.local_candidates}
    finally:
        await connection.close()


async def test_loopback_ice_fixture_adds_127_0_0_1(loopback_ice: ice.LoopbackPatch) -> None:
    assert ice.loopback_mode() == "allow"
    hosts = await gathered_hosts()
    assert "127.0.0.1" in hosts
    with only_loopback_candidates():
        assert await gathered_hosts() == {"127.0.0.1"}
    assert ice.loopback_mode() == "allow"


async def test_without_patch_aioice_leaves_loopback_out() -> None:
    assert ice.loopback_mode() is None
    assert "127.0.0.1" not in await gathered_hosts()


def test_install_is_idempotent_and_uninstall_restores() -> None:
    original = aioice.ice.get_host_addresses
    try:
        ice.install_loopback_candidates()
        ice.install_loopback_candidates()
        assert ice.loopback_mode() == "allow"
        assert aioice.ice.get_host_addresses is not original
        patch = ice.allow_loopback_candidates()  # a plain call patches too
        ice.install_loopback_candidates(only=True)
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(False, True) == []
        patch.undo()
        assert ice.loopback_mode() == "allow"
    finally:
        ice.uninstall_loopback_candidates()
        ice.uninstall_loopback_candidates()
    assert aioice.ice.get_host_addresses is original
    assert ice.loopback_mode() is None


def test_patch_fails_loudly_without_the_aioice_internals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(aioice.ice, "get_host_addresses")
    with pytest.raises(LoopbackPatchError, match="get_host_addresses"):
        ice.install_loopback_candidates()


def test_patch_fails_loudly_if_gathering_no_longer_uses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    async def gather_candidates(self: Any) -> None:
        pass

    monkeypatch.setattr(aioice.ice.Connection, "gather_candidates", gather_candidates)
    with pytest.raises(LoopbackPatchError, match="gather_candidates"), only_loopback_candidates():
        pass  # pragma: no cover
    assert ice.loopback_mode() is None


# -- bot helpers ------------------------------------------------------------------------------------------------------


def test_candidate_from_browser_json() -> None:
    candidate = candidate_from_json(
        {
            "candidate": "candidate:842163049 1 udp 1677729535 203.0.113.7 56143 typ srflx raddr 10.0.0.2 "
            "rport 56143 generation 0 ufrag sK2a network-cost 999",
            "sdpMid": "0",
            "sdpMLineIndex": 0,
            "usernameFragment": "sK2a",
        }
    )
    assert candidate is not None
    assert (candidate.ip, candidate.port, candidate.type, candidate.protocol) == ("203.0.113.7", 56143, "srflx", "udp")
    assert (candidate.relatedAddress, candidate.relatedPort) == ("10.0.0.2", 56143)
    assert (candidate.sdpMid, candidate.sdpMLineIndex) == ("0", 0)
    assert candidate_from_json({"candidate": ""}) is None
    assert candidate_from_json({}) is None


def test_ice_servers_from_matched() -> None:
    servers = ice_servers_from(
        [
            {"urls": "stun:stun.example.org:3478"},
            {"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p", "extra": 1},
            {"username": "no urls"},
        ]
    )
    assert [s.urls for s in servers] == ["stun:stun.example.org:3478", ["turn:turn.example.org:3478"]]
    assert (servers[1].username, servers[1].credential) == ("u", "p")
    assert ice_servers_from([]) == []
    assert ice_servers_from(None) == []


def test_connect_error_code() -> None:
    refused = {"message": "unknown token", "data": {"code": "unauthorized", "message": "unknown or revoked token"}}
    assert connect_error_code(refused) == ("unauthorized", "unknown or revoked token")
    assert connect_error_code({"code": "unauthorized", "message": "m"}) == ("unauthorized", "m")
    assert connect_error_code("Connection refused by the server") == ("", "Connection refused by the server")
    assert connect_error_code(None) == ("", "")


# -- the bots over a minimal relay ------------------------------------------------------------------------------------

KIOSK_TOKEN = "kiosk-token"
CLERK_TOKEN = "clerk-token"


TAX = m.FieldInfo("tax", "receipt", "never", {"en": "Tax"}, [
    m.MatterInfo("tax-consultation", {"en": "Consultation"}), m.MatterInfo("invoice", {"en": "Invoice"})])


class MiniRelay:
    """The least of docs/protocol.md for one kiosk and one clerk, to drive the bots without server/; its messages
    are the protocol's structs (signaling.messages)."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncServer(async_mode="aiohttp")
        self.kiosk: str | None = None
        self.clerk: str | None = None
        self.available = False
        self.call_id: str | None = None
        self.waiting = False
        self.received: list[tuple[str, str, dict[str, Any]]] = []
        self.media_connected: set[str] = set()
        on = self.sio.on
        on("connect", self.kiosk_connect, namespace="/kiosk")
        on("connect", self.clerk_connect, namespace="/clerk")
        for event in ("request_call", "hangup", "signal", "media_connected"):
            on(event, self._handler("/kiosk", event), namespace="/kiosk")
        for event in ("set_status", "accept", "hangup", "signal", "media_connected", "wrap_up"):
            on(event, self._handler("/clerk", event), namespace="/clerk")

    @staticmethod
    def _check(auth: Any, token: str) -> None:
        if not isinstance(auth, dict) or auth.get("token") != token:
            message = "unknown or revoked token"
            raise socketio.exceptions.ConnectionRefusedError(message, {"code": "unauthorized", "message": message})

    async def kiosk_connect(self, sid: str, environ: Any, auth: Any) -> None:
        self._check(auth, KIOSK_TOKEN)
        self.kiosk = sid
        welcome = m.KioskWelcome(m.KioskInfo("k-1", "Park 3", "sh/jiading/xincheng/park-3", {}), [TAX], ["en"], 180,
                                 None)
        await self.sio.emit("welcome", m.to_builtins(welcome), to=sid, namespace="/kiosk")

    async def clerk_connect(self, sid: str, environ: Any, auth: Any) -> None:
        self._check(auth, CLERK_TOKEN)
        self.clerk = sid
        clerk = m.ClerkInfo("c-1", "Clerk Li", "Jiading", ["tax"], ["sh/jiading"], {}, ["en"])
        welcome = m.ClerkWelcome(clerk, "away", 20, 180, [TAX], [], None)
        await self.sio.emit("welcome", m.to_builtins(welcome), to=sid, namespace="/clerk")

    def _handler(self, namespace: str, event: str) -> Any:
        async def handle(sid: str, payload: dict[str, Any]) -> dict[str, Any]:
            self.received.append((namespace, event, payload))
            ack: dict[str, Any] = await getattr(self, f"on_{event}")(namespace, payload)
            return ack

        return handle

    async def to_kiosk(self, msg: Any) -> None:  # a struct of KIOSK_OUT
        await self.sio.emit(msg.EVENT, m.to_builtins(msg), to=self.kiosk, namespace="/kiosk")

    async def to_clerk(self, msg: Any) -> None:  # a struct of CLERK_OUT
        await self.sio.emit(msg.EVENT, m.to_builtins(msg), to=self.clerk, namespace="/clerk")

    @staticmethod
    def ok(ack: msgspec.Struct) -> dict[str, Any]:
        return {"ok": True, **m.to_builtins(ack)}

    async def ring_if_possible(self) -> None:
        if self.waiting and self.available and self.call_id:
            self.waiting = False
            await self.to_kiosk(m.Ringing(self.call_id))
            await self.to_clerk(m.RingMsg(self.call_id, "tax", "en", "sh/jiading/xincheng/park-3", {},
                                          m.KioskName("Park 3"), 0.0, 20.0, 0))

    async def on_request_call(self, ns: str, payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("field") != "tax":
            return {"ok": False, "error": {"code": "unknown_field", "message": "no such field"}}
        self.call_id, self.waiting = "call-1", True
        await self.to_kiosk(m.QueuedMsg(self.call_id, 1, None, 0, ""))
        await self.ring_if_possible()
        return self.ok(m.CallRequested(self.call_id, "queued", 1, None))

    async def on_set_status(self, ns: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.available = payload["status"] == "available"
        await self.to_clerk(m.StatusMsg(payload["status"], ""))
        await self.ring_if_possible()
        return self.ok(m.StatusNow(payload["status"]))

    async def on_accept(self, ns: str, payload: dict[str, Any]) -> dict[str, Any]:
        assert self.call_id is not None
        await self.to_kiosk(m.KioskMatched(self.call_id, "offerer", [], "tax", False,
                                           m.ClerkPeer("Clerk Li", "Jiading")))
        await self.to_clerk(m.ClerkMatched(self.call_id, "answerer", [], "tax", False,
                                           m.KioskPeer("Park 3", "sh/jiading/xincheng/park-3", {}, "en")))
        return self.ok(m.Accepted(self.call_id))

    async def on_signal(self, ns: str, payload: dict[str, Any]) -> dict[str, Any]:
        await (self.to_clerk if ns == "/kiosk" else self.to_kiosk)(m.parse(m.Signal, payload))
        return self.ok(m.Relayed(True))

    async def on_media_connected(self, ns: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.media_connected.add(ns)
        return self.ok(m.Done())

    async def on_hangup(self, ns: str, payload: dict[str, Any]) -> dict[str, Any]:
        call_id, by = payload["call_id"], "visitor" if ns == "/kiosk" else "clerk"
        await self.to_kiosk(m.KioskCallEnded(call_id, "hangup", by))
        await self.to_clerk(m.ClerkCallEnded(call_id, "hangup", by, True))
        return self.ok(m.Done())

    async def on_wrap_up(self, ns: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self.ok(m.WrappedUp([1], []))


@pytest.fixture
async def relay() -> AsyncIterator[tuple[MiniRelay, str]]:
    mini = MiniRelay()
    app = web.Application()
    mini.sio.attach(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield mini, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def cancel(task: asyncio.Task[None]) -> None:
    """End a bot task a failed test left running, so the relay can shut down at once."""
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def test_kiosk_and_clerk_bots_make_a_call(relay: tuple[MiniRelay, str], loopback_ice: ice.LoopbackPatch) -> None:
    mini, url = relay
    clerk = ClerkBot(url, CLERK_TOKEN)
    stop = asyncio.Event()
    clerk_task = asyncio.create_task(clerk.run(stop=stop))
    try:
        await asyncio.wait_for(clerk.ready.wait(), TIMEOUT)
        assert (clerk.name, clerk.center, clerk.status) == ("Clerk Li", "Jiading", "available")
        result = await KioskBot(url, KIOSK_TOKEN, field="tax").run(seconds=0.3, timeout_s=TIMEOUT)
        assert result.ok, result.summary()
        assert result.call_id == "call-1" and result.clerk_name == "Clerk Li"
        assert result.video_size == (640, 480)
        assert result.video_frames > 0 and result.audio_frames > 0
        assert result.queue_wait_s is not None and result.time_to_media_s is not None
        assert result.summary().startswith("OK (completed): call call-1 with clerk Clerk Li")
        stats = await clerk.wait_media("call-1", timeout_s=TIMEOUT)
        ended = await clerk.wait_ended("call-1", timeout_s=TIMEOUT)
        assert ended is stats and stats.ended_reason == "hangup" and stats.ended_by == "visitor"
        assert stats.video_frames > 0 and stats.audio_frames > 0 and stats.video_size == (640, 480)
        assert stats.media_connected and stats.wrapped_up
        [wrap_up] = [p for _, e, p in mini.received if e == "wrap_up"]
        assert wrap_up["call_id"] == "call-1"
        assert [(m["matter_type"], m["outcome"]) for m in wrap_up["matters"]] == [("tax-consultation", "completed")]
        assert mini.media_connected == {"/kiosk", "/clerk"}
        signals = [(ns, p.get("description", {}).get("type")) for ns, e, p in mini.received if e == "signal"]
        assert signals == [("/kiosk", "offer"), ("/clerk", "answer")]
        stop.set()
        await asyncio.wait_for(clerk_task, TIMEOUT)
        assert not clerk.ready.is_set()
    finally:
        await cancel(clerk_task)


async def test_clerk_bot_stops_after_max_calls(relay: tuple[MiniRelay, str], loopback_ice: ice.LoopbackPatch) -> None:
    _, url = relay
    clerk = ClerkBot(url, CLERK_TOKEN, center="Anting")
    clerk_task = asyncio.create_task(clerk.run(max_calls=1))
    try:
        await asyncio.wait_for(clerk.ready.wait(), TIMEOUT)
        assert clerk.center == "Anting"
        result = await KioskBot(url, KIOSK_TOKEN, field="tax").run(seconds=0, timeout_s=TIMEOUT)
        assert result.ok, result.summary()
        await asyncio.wait_for(clerk_task, TIMEOUT)
        assert [c.call_id for c in clerk.calls] == ["call-1"]
    finally:
        await cancel(clerk_task)


async def test_kiosk_bot_reports_refusals(relay: tuple[MiniRelay, str]) -> None:
    _, url = relay
    refused = await KioskBot(url, "wrong", field="tax").run(seconds=0, timeout_s=TIMEOUT)
    assert not refused.ok and "unauthorized" in refused.reason
    unknown = await KioskBot(url, KIOSK_TOKEN, field="astrology").run(seconds=0, timeout_s=TIMEOUT)
    assert not unknown.ok and unknown.reason == "request_call: unknown_field: no such field"
    assert unknown.summary().startswith("FAILED (request_call: unknown_field")
    with pytest.raises(ProtocolError) as info:
        await ClerkBot(url, "wrong").run(max_calls=1)
    assert info.value.code == "unauthorized"


async def test_kiosk_bot_times_out_without_a_clerk(relay: tuple[MiniRelay, str]) -> None:
    mini, url = relay
    result = await KioskBot(url, KIOSK_TOKEN, field="tax").run(seconds=0, timeout_s=0.5)
    assert not result.ok and result.reason == "timeout waiting for a clerk"
    assert ("/kiosk", "hangup", {"call_id": "call-1"}) in mini.received
