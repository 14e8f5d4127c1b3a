"""Benchmark of the signaling server's transport: the project against two relays written here.

Run from the repository root::

    .venv/bin/python -m bench.signaling            # about 3 minutes
    .venv/bin/python -m bench.signaling --quick    # about 1 minute, 1,000 idle clients
    .venv/bin/python -m bench.signaling --idle 10000

Three servers, each in its own process on 127.0.0.1:

- **project**: ``server.app.create_app(load_settings(data_dir=tmp, ...))`` served by aiohttp's
  ``AppRunner``/``TCPSite`` on asyncio's loop with the logging ``vwindow serve`` sets up. Kiosks and
  clerks are real identities (``IdentityStore`` on the same database, made before the server starts) and
  every relay runs in a real call: ``request_call``, the clerk's ``set_status available``, ``ring``,
  ``accept``, ``matched``, then ``signal`` events, as in docs/protocol.md.
- **socketio**: a bare python-socketio relay in its default configuration (``AsyncServer(async_mode=
  "aiohttp")``, everything else default): the same namespaces, a token names the pair, ``signal`` is
  passed to the other side and acked ``{ok: true, relayed: true}``.
- **raw**: an aiohttp WebSocket handler that speaks just enough Engine.IO 4 / Socket.IO 5 for the same
  client (open packet, namespace connect with auth, events with ack ids, pong) and relays ``signal``
  the same way, decoding and encoding each packet's JSON as any relay that looks at ``call_id`` must.

The load generator is a minimal Socket.IO client over aiohttp's WebSocket client (websocket transport
only, ``EIO=4&transport=websocket``; no permessage-deflate, like a python-socketio client, unless
``--deflate`` asks for it as browsers do), in separate processes (two, or one for a single call); it answers
the server's pings. Its own CPU per relay is printed on stderr: on two shared cores it is of the same order
as the server's, so at 100 calls the latencies and rates are the machine's as much as the server's.

What is measured:

- **relay**: per call the kiosk emits ``signal`` with a 1.8 KB SDP offer (with an ack); the clerk, on
  receiving it, emits ``signal`` with a 1.8 KB answer (with an ack); one *round trip* ends when the kiosk
  has both its ack and the answer, and the next starts at once (closed loop per call). Each round trip is
  two relayed signals. **CPU µs per relay** is the server process's user + system CPU (``/proc/<pid>/stat``,
  every thread) over the measured window divided by the signals relayed in it. **p50/p99** are of the
  round trip (kiosk emit -> clerk receives -> clerk answers -> kiosk receives the answer), in ms.
  **relays/s** counts relayed signals per second of the window. Levels: 1, 20 and 100 concurrent calls;
  each first runs unmeasured for a moment.
- **connects**: a fresh server; N kiosk sockets (distinct identities for the project) connect 128 at a
  time; a connect ends when the namespace CONNECT packet arrives (Engine.IO open, auth, token lookup and
  the server's connect handler done). **connects/s** is N over the wall time; **KiB per idle connection**
  is the server's RSS growth (``VmRSS``) from before the first of the N to 1 s after the last, divided by N.
- **whole call** (project only): 10 kiosk/clerk pairs, each kiosk placing calls one after another:
  ``request_call``, ``ring``, ``accept``, ``matched`` on both sides, the kiosk's ``hangup``,
  ``call_ended``, the clerk's ``wrap_up`` with one matter; **server CPU ms per call** over all of them.

The machine is shared and has two cores (the server, the load generator and other work share them):
CPU per relay is the steadiest figure; the latencies and rates move with whatever else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's folder comes first on the path, where this module would hide the `signaling`
# package the server imports: the repository's root goes there instead.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

KINDS = ("project", "socketio", "raw")
LABELS = {"project": "project", "socketio": "bare python-socketio", "raw": "raw aiohttp WebSocket"}
LEVELS = (1, 20, 100)
KIOSK_REGION = "sh/jiading/xincheng/park-3"
FIELD = "tax"  # recording "ask": without consent the call is not recorded
MATTER = "tax-consultation"
CONNECT_CONCURRENCY = 64  # per load process
WHOLE_CALL_PAIRS = 10
TIMEOUT_S = 20.0

# ------------------------------------------------------------------ JSON for the load generator (not measured)

try:
    import orjson

    def dumps(obj: Any) -> str:
        return orjson.dumps(obj).decode()

    loads: Callable[[str | bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency; the fallback keeps the bench runnable
    def dumps(obj: Any) -> str:
        return json.dumps(obj, separators=(",", ":"))

    loads = json.loads


def _sdp(kind: str, size: int = 1800) -> str:
    """A WebRTC-looking session description of about ``size`` characters."""
    token = secrets.token_hex(8)
    lines = [
        "v=0", f"o=- {secrets.randbelow(10**10)} 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
        "a=extmap-allow-mixed", "a=msid-semantic: WMS bench",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
        f"a=ice-ufrag:{token[:4]}", f"a=ice-pwd:{token}{token[:8]}", "a=ice-options:trickle",
        "a=fingerprint:sha-256 " + ":".join(secrets.token_hex(1).upper() for _ in range(32)),
        f"a=setup:{'actpass' if kind == 'offer' else 'active'}", "a=mid:0", "a=sendrecv", "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2", "a=rtcp-fb:111 transport-cc", "a=fmtp:111 minptime=10;useinbandfec=1",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103", "c=IN IP4 0.0.0.0", "a=mid:1", "a=sendrecv",
        "a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 goog-remb", "a=rtcp-fb:96 transport-cc", "a=rtcp-fb:96 ccm fir",
        "a=rtcp-fb:96 nack", "a=rtcp-fb:96 nack pli", "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96",
    ]
    ssrc = itertools.count(1000)
    while sum(len(line) + 2 for line in lines) < size:
        lines.append(f"a=ssrc:{next(ssrc)} cname:{token}")
    return "\r\n".join(lines)[:size] + "\r\n"


# ------------------------------------------------------------------ the baselines


def _sio_baseline_app() -> web.Application:
    """A bare python-socketio relay, default configuration: a token ``pair-N`` names the call."""
    import socketio

    sio = socketio.AsyncServer(async_mode="aiohttp")
    app = web.Application()
    sio.attach(app)
    sids: dict[str, dict[str, str]] = {"/kiosk": {}, "/clerk": {}}  # namespace -> token -> sid
    tokens: dict[str, str] = {}  # sid -> token
    other = {"/kiosk": "/clerk", "/clerk": "/kiosk"}

    for ns in ("/kiosk", "/clerk"):
        def handlers(ns: str) -> None:
            @sio.on("connect", namespace=ns)  # type: ignore[untyped-decorator]
            async def connect(sid: str, environ: Any, auth: Any) -> None:
                sids[ns][auth["token"]] = sid
                tokens[sid] = auth["token"]

            @sio.on("signal", namespace=ns)  # type: ignore[untyped-decorator]
            async def relay(sid: str, data: Any) -> dict[str, Any]:
                peer = sids[other[ns]].get(tokens[sid])
                if peer is not None:
                    await sio.emit("signal", data, to=peer, namespace=other[ns])
                return {"ok": True, "relayed": peer is not None}

        handlers(ns)
    return app


def _raw_baseline_app() -> web.Application:
    """A relay on aiohttp's WebSocket alone, speaking only as much of Socket.IO as the load generator needs."""
    peers: dict[tuple[str, str], web.WebSocketResponse] = {}  # (namespace, token) -> socket
    other = {"/kiosk": "/clerk", "/clerk": "/kiosk"}
    relayed = dumps([{"ok": True, "relayed": True}])

    async def handle(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=256 * 1024)
        await ws.prepare(request)
        sid = secrets.token_urlsafe(12)
        await ws.send_str("0" + dumps({"sid": sid, "upgrades": [], "pingInterval": 25000, "pingTimeout": 20000,
                                       "maxPayload": 1000000}))
        mine: list[tuple[str, str]] = []
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                data: str = msg.data
                if data.startswith("42"):
                    comma = data.index(",")
                    ns = data[2:comma]
                    bracket = data.index("[", comma)
                    ack_id = data[comma + 1:bracket]
                    event, payload = loads(data[bracket:])
                    if event == "signal":
                        peer = peers.get((other[ns], mine[0][1]))
                        if peer is not None:
                            await peer.send_str(f"42{other[ns]}," + dumps(["signal", payload]))
                        await ws.send_str(f"43{ns},{ack_id}{relayed}")
                elif data.startswith("40"):
                    comma = data.index(",")
                    ns, auth = data[2:comma], loads(data[comma + 1:])
                    peers[(ns, auth["token"])] = ws
                    mine.append((ns, auth["token"]))
                    await ws.send_str(f"40{ns}," + dumps({"sid": secrets.token_urlsafe(12)}))
        finally:
            for key in mine:
                if peers.get(key) is ws:
                    del peers[key]
        return ws

    app = web.Application()
    app.router.add_get("/socket.io/", handle)
    return app


# ------------------------------------------------------------------ the server process


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _serve(kind: str, port: int, data_dir: Path) -> None:
    if kind == "project":
        from server.app import create_app
        from server.settings import load_settings

        # one call relays as fast as it can: far past a kiosk's rate limits (bench/abuse.py keeps them, as served)
        limits = os.environ.get("VW_BENCH_SOCKET_LIMITS") == "1"
        app = create_app(load_settings(data_dir=data_dir, recording_workers=0, host="127.0.0.1", port=port,
                                       socket_rate_limits=limits))
    elif kind == "socketio":
        app = _sio_baseline_app()
    else:
        app = _raw_baseline_app()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("READY", flush=True)
    await stop.wait()
    await runner.cleanup()


def serve_main(kind: str, port: int, data_dir: Path) -> None:
    _raise_fd_limit()
    if kind == "project":  # with the logging `vwindow serve` sets up
        from server.cli.main import configure_logging

        configure_logging(verbose=False)
    asyncio.run(_serve(kind, port, data_dir))  # asyncio's own loop, as `vwindow serve` (uvloop gave nothing)


# ------------------------------------------------------------------ the load generator: a minimal Socket.IO client


class ConnectRefusedError(Exception):
    pass


class Sock:
    """One Socket.IO connection to one namespace, over aiohttp's WebSocket client."""

    def __init__(self, ns: str, token: str) -> None:
        self.ns = ns
        self.token = token
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.ids = itertools.count(1)
        self.connected: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.on_event: Callable[[Sock, str, Any], Awaitable[None] | None] = lambda sock, name, data: None
        self.events: dict[str, list[Any]] = {}  # events nobody handled, kept for the set-up
        self.waiters: dict[str, asyncio.Future[Any]] = {}
        self.reader: asyncio.Task[None] | None = None
        self.prefix = f"42{ns},"

    async def connect(self, session: aiohttp.ClientSession, url: str, compress: int = 0) -> None:
        self.ws = await session.ws_connect(url, autoping=True, max_msg_size=0, compress=compress)
        self.reader = asyncio.get_running_loop().create_task(self._read())
        await self.ws.send_str(f"40{self.ns}," + dumps({"token": self.token}))
        async with asyncio.timeout(TIMEOUT_S):
            await self.connected

    async def _read(self) -> None:
        assert self.ws is not None
        ws = self.ws
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                data: str = msg.data
                kind = data[0]
                if kind == "4":
                    reply = self._packet(data)
                    if reply is not None:
                        await reply
                elif kind == "2":
                    await ws.send_str("3")
                elif kind == "1":
                    break
        finally:
            for fut in [self.connected, *self.acks.values(), *self.waiters.values()]:
                fut.cancel()  # whoever waits learns that the connection is gone

    def _packet(self, data: str) -> Awaitable[None] | None:
        kind = data[1]
        i = 2
        if data.startswith("/", 2):
            comma = data.find(",", 2)
            i = len(data) if comma < 0 else comma + 1
        j = i
        while j < len(data) and data[j].isdigit():
            j += 1
        ack_id = int(data[i:j]) if j > i else None
        payload: Any = loads(data[j:]) if j < len(data) else None
        if kind == "2":  # EVENT
            name, arg = payload[0], payload[1] if len(payload) > 1 else None
            waiter = self.waiters.pop(name, None)
            if waiter is not None:
                if not waiter.done():
                    waiter.set_result(arg)
            else:
                return self.on_event(self, name, arg)
        elif kind == "3" and ack_id is not None:  # ACK
            fut = self.acks.pop(ack_id, None)
            if fut is not None and not fut.done():
                fut.set_result(payload[0] if payload else None)
        elif kind == "0":  # CONNECT
            if not self.connected.done():
                self.connected.set_result(payload)
        elif kind == "4":  # CONNECT_ERROR
            if not self.connected.done():
                self.connected.set_exception(ConnectRefusedError(str(payload)))
        return None

    async def emit(self, event: str, data: Any) -> asyncio.Future[Any]:
        """Send an event with an ack id; the future resolves to the ack's payload."""
        assert self.ws is not None
        ack_id = next(self.ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks[ack_id] = fut
        await self.ws.send_str(f"{self.prefix}{ack_id}" + dumps([event, data]))
        return fut

    async def call(self, event: str, data: Any) -> Any:
        fut = await self.emit(event, data)
        async with asyncio.timeout(TIMEOUT_S):
            return await fut

    def expect(self, event: str) -> asyncio.Future[Any]:
        """A future for the next ``event`` (or one received already and not handled)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        kept = self.events.get(event)
        if kept:
            fut.set_result(kept.pop(0))
        else:
            self.waiters[event] = fut
        return fut

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self.reader is not None:
            with contextlib.suppress(BaseException):
                await self.reader


def _keep(sock: Sock, name: str, data: Any) -> None:
    sock.events.setdefault(name, []).append(data)


def _check_ok(ack: Any, what: str) -> dict[str, Any]:
    if not isinstance(ack, dict) or ack.get("ok") is not True:
        raise RuntimeError(f"{what} refused: {ack!r}")
    return ack


@dataclass
class RelayCall:
    kiosk: Sock
    clerk: Sock
    call_id: str
    answer: asyncio.Future[Any] | None = None


@dataclass
class LoadState:
    url: str
    session: aiohttp.ClientSession
    compress: int = 0  # 15: ask for permessage-deflate, as browsers do
    calls: list[RelayCall] = field(default_factory=list)
    idle: list[Sock] = field(default_factory=list)
    clerk_acks: set[asyncio.Future[Any]] = field(default_factory=set)
    failures: int = 0
    offer: str = field(default_factory=lambda: _sdp("offer"))
    answer: str = field(default_factory=lambda: _sdp("answer"))
    wrapups: int = 0
    wrapped: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    pairs: list[tuple[Sock, Sock]] = field(default_factory=list)


async def _open(state: LoadState, ns: str, token: str) -> Sock:
    sock = Sock(ns, token)
    sock.on_event = _keep
    await sock.connect(state.session, state.url, state.compress)
    return sock


async def op_setup(state: LoadState, kind: str, pairs: list[list[str]]) -> dict[str, Any]:
    """Connect a kiosk and a clerk per pair and put each pair in a call (the project: a real one)."""
    socks = await asyncio.gather(*(asyncio.gather(_open(state, "/kiosk", k), _open(state, "/clerk", c))
                                   for k, c in pairs))
    if kind != "project":
        calls = [RelayCall(k, c, f"pair-{i}") for i, (k, c) in enumerate(socks)]
    else:
        calls = []
        for kiosk, clerk in socks:  # one at a time, so each kiosk's call rings its own clerk
            ring = clerk.expect("ring")
            _check_ok(await clerk.call("set_status", {"status": "available"}), "set_status")
            kiosk_matched, clerk_matched = kiosk.expect("matched"), clerk.expect("matched")
            ack = _check_ok(await kiosk.call("request_call", {"field": FIELD, "language": "en"}), "request_call")
            call_id = ack["call_id"]
            async with asyncio.timeout(TIMEOUT_S):
                rung = await ring
            if rung["call_id"] != call_id:
                raise RuntimeError(f"clerk rung for {rung['call_id']}, not {call_id}")
            _check_ok(await clerk.call("accept", {"call_id": call_id}), "accept")
            async with asyncio.timeout(TIMEOUT_S):
                await kiosk_matched
                await clerk_matched
            calls.append(RelayCall(kiosk, clerk, call_id))
    for call in calls:
        call.kiosk.on_event = _kiosk_event(call)
        call.clerk.on_event = _clerk_event(state, call)
    state.calls = calls
    return {"calls": len(calls)}


def _kiosk_event(call: RelayCall) -> Callable[[Sock, str, Any], None]:
    def on_event(sock: Sock, name: str, data: Any) -> None:
        if name == "signal" and call.answer is not None and not call.answer.done():
            call.answer.set_result(data)
    return on_event


def _clerk_event(state: LoadState, call: RelayCall) -> Callable[[Sock, str, Any], Awaitable[None] | None]:
    answer = {"call_id": call.call_id, "description": {"type": "answer", "sdp": state.answer}}

    async def reply(sock: Sock) -> None:  # awaited by the clerk's reader: no task per signal
        _track_ack(state, await sock.emit("signal", answer))

    def on_event(sock: Sock, name: str, data: Any) -> Awaitable[None] | None:
        return reply(sock) if name == "signal" else None
    return on_event


def _track_ack(state: LoadState, fut: asyncio.Future[Any]) -> None:
    state.clerk_acks.add(fut)

    def done(f: asyncio.Future[Any]) -> None:
        state.clerk_acks.discard(f)
        if f.cancelled() or f.exception() is not None or not (isinstance(f.result(), dict) and f.result().get("ok")):
            state.failures += 1
    fut.add_done_callback(done)


async def op_relay(state: LoadState, seconds: float) -> dict[str, Any]:
    """Round trips on every call for ``seconds``; their times in µs."""
    deadline = time.perf_counter() + seconds
    rtts: list[int] = []
    loop = asyncio.get_running_loop()

    async def run(call: RelayCall) -> int:
        done = 0
        offer = {"call_id": call.call_id, "description": {"type": "offer", "sdp": state.offer}}
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            call.answer = loop.create_future()
            ack_fut = await call.kiosk.emit("signal", offer)
            async with asyncio.timeout(TIMEOUT_S):
                ack = await ack_fut
                await call.answer
            rtts.append(int((time.perf_counter() - t0) * 1e6))
            if not (isinstance(ack, dict) and ack.get("ok") and ack.get("relayed")):
                state.failures += 1
            done += 1
        return done

    counts = await asyncio.gather(*(run(call) for call in state.calls))
    async with asyncio.timeout(TIMEOUT_S):
        while state.clerk_acks:
            await asyncio.wait(list(state.clerk_acks))
    return {"round_trips": sum(counts), "rtts": rtts, "failures": state.failures}


async def op_teardown(state: LoadState) -> dict[str, Any]:
    socks = [s for call in state.calls for s in (call.kiosk, call.clerk)] + state.idle
    socks += [s for pair in state.pairs for s in pair]
    await asyncio.gather(*(s.close() for s in socks))
    state.calls, state.idle, state.pairs, state.failures = [], [], [], 0
    return {"closed": len(socks)}


async def op_connect(state: LoadState, ns: str, tokens: list[str], concurrency: int) -> dict[str, Any]:
    """Connect a socket per token, ``concurrency`` at a time, and keep them open."""
    todo = iter(tokens)
    refused = 0

    async def worker() -> None:
        nonlocal refused
        for token in todo:
            sock = Sock(ns, token)
            try:
                await sock.connect(state.session, state.url, state.compress)
            except ConnectRefusedError:
                refused += 1
            state.idle.append(sock)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"connected": len(tokens) - refused, "refused": refused, "seconds": time.perf_counter() - t0}


async def op_calls_setup(state: LoadState, pairs: list[list[str]]) -> dict[str, Any]:
    socks = await asyncio.gather(*(asyncio.gather(_open(state, "/kiosk", k), _open(state, "/clerk", c))
                                   for k, c in pairs))
    for _, clerk in socks:
        clerk.on_event = _whole_call_clerk(state)
        _check_ok(await clerk.call("set_status", {"status": "available"}), "set_status")
    state.pairs = list(socks)
    return {"pairs": len(socks)}


def _whole_call_clerk(state: LoadState) -> Callable[[Sock, str, Any], None]:
    """A clerk that accepts every ring and wraps up every call that ends."""
    loop = asyncio.get_running_loop()

    async def accept(sock: Sock, call_id: str) -> None:
        _check_ok(await sock.call("accept", {"call_id": call_id}), "accept")

    async def wrap_up(sock: Sock, call_id: str) -> None:
        _check_ok(await sock.call("wrap_up", {"call_id": call_id, "matters": [
            {"matter_type": MATTER, "outcome": "completed", "notes": "bench"}]}), "wrap_up")
        state.wrapups += 1
        state.wrapped.set()

    def on_event(sock: Sock, name: str, data: Any) -> None:
        if name == "ring":
            task = loop.create_task(accept(sock, data["call_id"]))
        elif name == "call_ended" and data.get("wrap_up"):
            task = loop.create_task(wrap_up(sock, data["call_id"]))
        else:
            return
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)
    return on_event


async def op_calls_run(state: LoadState, per_kiosk: int) -> dict[str, Any]:
    """Each kiosk places ``per_kiosk`` whole calls one after another; the clerks answer and wrap up."""
    async def kiosk_calls(kiosk: Sock) -> None:
        for _ in range(per_kiosk):
            matched = kiosk.expect("matched")
            ack = _check_ok(await kiosk.call("request_call", {"field": FIELD, "language": "en"}), "request_call")
            async with asyncio.timeout(TIMEOUT_S):
                got = await matched
            if got["call_id"] != ack["call_id"]:
                raise RuntimeError("matched for another call")
            _check_ok(await kiosk.call("hangup", {"call_id": ack["call_id"]}), "hangup")

    before = state.wrapups
    await asyncio.gather(*(kiosk_calls(k) for k, _ in state.pairs))
    expected = before + per_kiosk * len(state.pairs)
    async with asyncio.timeout(TIMEOUT_S):
        while state.wrapups < expected:
            state.wrapped.clear()
            await state.wrapped.wait()
    return {"calls": per_kiosk * len(state.pairs)}


async def load_main_async(url: str, compress: int, stdin: TextIO, stdout: TextIO) -> None:
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        state = LoadState(url, session, compress)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, stdin.readline)
            if not line:
                break
            cmd = json.loads(line)
            op = cmd.pop("op")
            try:
                if op == "setup":
                    out = await op_setup(state, cmd["kind"], cmd["pairs"])
                elif op == "relay":
                    out = await op_relay(state, cmd["seconds"])
                elif op == "connect":
                    out = await op_connect(state, cmd["ns"], cmd["tokens"], cmd["concurrency"])
                elif op == "calls_setup":
                    out = await op_calls_setup(state, cmd["pairs"])
                elif op == "calls_run":
                    out = await op_calls_run(state, cmd["per_kiosk"])
                elif op == "teardown":
                    out = await op_teardown(state)
                else:
                    raise ValueError(f"unknown op {op}")
            except Exception as exc:  # reported to the parent, which stops the run
                out = {"error": f"{type(exc).__name__}: {exc}"}
            stdout.write(json.dumps(out) + "\n")
            stdout.flush()


def load_main(url: str, compress: int) -> None:
    _raise_fd_limit()
    asyncio.run(load_main_async(url, compress, sys.stdin, sys.stdout))


# ------------------------------------------------------------------ the parent: processes, phases, the table


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Proc:
    popen: subprocess.Popen[str]

    def send(self, cmd: dict[str, Any]) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(json.dumps(cmd) + "\n")
        self.popen.stdin.flush()

    def reply(self) -> dict[str, Any]:
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline()
        if not line:
            raise RuntimeError(f"load process exited ({self.popen.poll()})")
        out: dict[str, Any] = json.loads(line)
        if "error" in out:
            raise RuntimeError(f"load process: {out['error']}")
        return out


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.log = tmp / "server.log"

    @contextlib.contextmanager
    def server(self, kind: str, data_dir: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
        port = _free_port()
        with self.log.open("a") as log:
            proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port), "--data-dir",
                                     str(data_dir)], stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "READY":
                raise RuntimeError(f"{kind} server did not start; see {self.log}:\n{self.log.read_text()[-3000:]}")
            yield proc, f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    @contextlib.contextmanager
    def loaders(self, url: str, n: int) -> Iterator[list[Proc]]:
        deflate = ["--deflate"] if self.args.deflate else []
        procs = [Proc(subprocess.Popen([sys.executable, __file__, "--load", url, *deflate], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True, cwd=ROOT)) for _ in range(n)]
        try:
            yield procs
        finally:
            for p in procs:
                assert p.popen.stdin is not None
                p.popen.stdin.close()
            for p in procs:
                try:
                    p.popen.wait(20)
                except subprocess.TimeoutExpired:
                    p.popen.kill()
                    p.popen.wait()

    @staticmethod
    def all(procs: Sequence[Proc], cmds: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        for p, cmd in zip(procs, cmds, strict=True):
            p.send(cmd)
        return [p.reply() for p in procs]

    def profiler(self, pid: int, output: Path | None = None, seconds: float | None = None) \
            -> subprocess.Popen[bytes] | None:
        """With --profile: py-spy samples the project's server through the measured window (collapsed stacks)."""
        output = output or self.args.profile
        if not output:
            return None
        spy = Path(sys.executable).with_name("py-spy")
        return subprocess.Popen([str(spy if spy.exists() else "py-spy"), "record", "--pid", str(pid), "--nonblocking",
                                 "--rate", "400", "--duration", str(max(1, int(seconds or self.args.seconds))),
                                 "--format", "raw", "--output", str(output)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # -------------------------------------------------------------- phases

    def relay_phase(self, kind: str, pid: int, procs: list[Proc], pairs: list[list[str]]) -> dict[str, float]:
        active = procs[:1] if len(pairs) == 1 else procs
        shares = [pairs[i::len(active)] for i in range(len(active))]
        for proc, share in zip(active, shares, strict=True):  # one after another: each call rings its own clerk
            proc.send({"op": "setup", "kind": kind, "pairs": share})
            proc.reply()
        self.all(active, [{"op": "relay", "seconds": self.args.warmup} for _ in active])
        spy = self.profiler(pid) if kind == "project" and len(pairs) == max(LEVELS) else None
        load0 = sum(_cpu_s(p.popen.pid) for p in active)
        cpu0, t0 = _cpu_s(pid), time.perf_counter()
        replies = self.all(active, [{"op": "relay", "seconds": self.args.seconds} for _ in active])
        cpu1, t1 = _cpu_s(pid), time.perf_counter()
        load1 = sum(_cpu_s(p.popen.pid) for p in active)
        if spy is not None:
            spy.wait()
        self.all(active, [{"op": "teardown"} for _ in active])
        failures = sum(r["failures"] for r in replies)
        if failures:
            raise RuntimeError(f"{kind}: {failures} signals not relayed or not acked ok")
        trips = sum(r["round_trips"] for r in replies)
        rtts = sorted(x for r in replies for x in r["rtts"])
        relays = 2 * trips
        return {
            "cpu_us": (cpu1 - cpu0) / relays * 1e6,
            "p50_ms": rtts[len(rtts) // 2] / 1000,
            "p99_ms": rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))] / 1000,
            "relays_s": relays / (t1 - t0),
            "load_cpu_us": (load1 - load0) / relays * 1e6,
        }

    def connect_phase(self, kind: str, pid: int, procs: list[Proc], tokens: list[str]) -> dict[str, float]:
        warm, tokens = tokens[:200], tokens[200:]
        self.all(procs, [{"op": "connect", "ns": "/kiosk", "tokens": warm[i::len(procs)], "concurrency": 16}
                         for i in range(len(procs))])
        self.all(procs, [{"op": "teardown"} for _ in procs])
        time.sleep(1.0)
        rss0, cpu0, t0 = _rss_kib(pid), _cpu_s(pid), time.perf_counter()
        replies = self.all(procs, [{"op": "connect", "ns": "/kiosk", "tokens": tokens[i::len(procs)],
                                    "concurrency": CONNECT_CONCURRENCY} for i in range(len(procs))])
        cpu1, t1 = _cpu_s(pid), time.perf_counter()
        refused = sum(r["refused"] for r in replies)
        if refused:
            raise RuntimeError(f"{kind}: {refused} connects refused")
        time.sleep(1.0)
        rss1 = _rss_kib(pid)
        self.all(procs, [{"op": "teardown"} for _ in procs])
        return {"connects_s": len(tokens) / (t1 - t0), "connect_cpu_ms": (cpu1 - cpu0) / len(tokens) * 1000,
                "kib_idle": (rss1 - rss0) / len(tokens), "idle_n": len(tokens)}

    def whole_call_phase(self, pid: int, proc: Proc, pairs: list[list[str]]) -> dict[str, float]:
        proc.send({"op": "calls_setup", "pairs": pairs})
        proc.reply()
        proc.send({"op": "calls_run", "per_kiosk": 2})  # warm-up
        proc.reply()
        spy = self.profiler(pid, self.args.profile_calls, 5) if self.args.profile_calls else None
        cpu0 = _cpu_s(pid)
        proc.send({"op": "calls_run", "per_kiosk": self.args.calls_per_kiosk})
        calls = proc.reply()["calls"]
        cpu1 = _cpu_s(pid)
        if spy is not None:
            spy.wait()
        proc.send({"op": "teardown"})
        proc.reply()
        return {"call_cpu_ms": (cpu1 - cpu0) / calls * 1000}

    # -------------------------------------------------------------- per server

    def identities(self, data_dir: Path) -> tuple[dict[int, list[list[str]]], list[list[str]], list[str]]:
        """Kiosks and clerks for the project, in its database (made before the server starts)."""
        return asyncio.run(_make_identities(data_dir, self.args.idle + 200))

    def run(self, kind: str) -> dict[str, float]:
        data_dir = self.tmp / kind
        data_dir.mkdir()
        if kind == "project":
            relay_pairs, call_pairs, idle_tokens = self.identities(data_dir)
        else:
            relay_pairs = {n: [[f"pair-{n}-{i}", f"pair-{n}-{i}"] for i in range(n)] for n in LEVELS}
            call_pairs, idle_tokens = [], [f"idle-{i}" for i in range(self.args.idle + 200)]
        out: dict[str, float] = {}
        with self.server(kind, data_dir) as (server, url), self.loaders(url, 2) as procs:
            for n in LEVELS:
                for key, value in self.relay_phase(kind, server.pid, procs, relay_pairs[n]).items():
                    out[f"{key}@{n}"] = value
                print(f"  {kind} {n} calls: {out[f'cpu_us@{n}']:.0f} µs/relay, p99 {out[f'p99_ms@{n}']:.1f} ms, "
                      f"load generator {out[f'load_cpu_us@{n}']:.0f} µs/relay", file=sys.stderr)
            if call_pairs:
                out.update(self.whole_call_phase(server.pid, procs[0], call_pairs))
                print(f"  {kind} whole call: {out['call_cpu_ms']:.1f} ms", file=sys.stderr)
        with self.server(kind, data_dir) as (server, url), self.loaders(url, 2) as procs:
            out.update(self.connect_phase(kind, server.pid, procs, idle_tokens))
            print(f"  {kind} connects: {out['connects_s']:.0f}/s, {out['kib_idle']:.1f} KiB idle", file=sys.stderr)
        return out


async def _make_identities(data_dir: Path, idle: int) -> tuple[dict[int, list[list[str]]], list[list[str]],
                                                                   list[str]]:
    import time as _time

    from server.records import db
    from server.records.db import kiosks, make_engine
    from server.records.identities import IdentityStore, hash_token, new_token
    from server.settings import load_settings

    settings = load_settings(data_dir=data_dir, recording_workers=0)
    await asyncio.to_thread(db.upgrade, settings.db_url)
    engine = make_engine(settings.db_url)
    store = IdentityStore(engine)

    async def pair(name: str) -> list[str]:
        _, kiosk_token = await store.add_kiosk(f"{name} kiosk", KIOSK_REGION)
        _, clerk_token = await store.add_clerk(f"{name} clerk", [FIELD], ["sh/jiading"], ["zh", "en"],
                                               center="Jiading center")
        return [kiosk_token, clerk_token]

    relay = {n: [await pair(f"relay {n}.{i}") for i in range(n)] for n in LEVELS}
    calls = [await pair(f"call {i}") for i in range(WHOLE_CALL_PAIRS)]
    # the idle kiosks in one transaction: the same rows IdentityStore.add_kiosk writes, 10,000 in a second
    tokens = [new_token() for _ in range(idle)]
    async with engine.begin() as conn:
        await conn.execute(kiosks.insert(), [
            {"id": f"k-idle{i:05d}", "name": f"idle {i}", "region": KIOSK_REGION, "token_hash": hash_token(t),
             "demo": False, "created_at": _time.time()} for i, t in enumerate(tokens)])
    await engine.dispose()
    return relay, calls, tokens


# ------------------------------------------------------------------ the table


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(results: dict[str, dict[str, float]], idle: int) -> str:
    have = [k for k in KINDS if k in results]
    base = results.get("socketio")
    rows: list[tuple[str, str, str, Callable[[float, float], str]]] = []

    def ratio_target(limit: float, higher_is_better: bool = False) -> Callable[[float, float], str]:
        def check(project: float, bare: float) -> str:
            ok = project >= limit * bare if higher_is_better else project <= limit * bare
            return f"{'≥' if higher_is_better else '≤'} {limit:g}× bare {'✓' if ok else '✗'}"
        return check

    def none(project: float, bare: float) -> str:
        return ""

    for n in LEVELS:
        rows.append((f"server CPU µs per relay, {n} call{'s' if n > 1 else ''}", f"cpu_us@{n}", "", ratio_target(0.6)))
    for n in LEVELS:
        rows.append((f"round trip p50 ms, {n} call{'s' if n > 1 else ''}", f"p50_ms@{n}", "", none))
        rows.append((f"round trip p99 ms, {n} call{'s' if n > 1 else ''}", f"p99_ms@{n}", "",
                     ratio_target(0.5) if n == 100 else none))
    for n in LEVELS:
        rows.append((f"relays/s, {n} call{'s' if n > 1 else ''}", f"relays_s@{n}", "", none))
    rows.append((f"connects/s, {idle:,} clients", "connects_s", "", ratio_target(1.0, higher_is_better=True)))
    rows.append(("server CPU ms per connect", "connect_cpu_ms", "", none))
    rows.append((f"KiB per idle connection, {idle:,} clients", "kib_idle", "< 40 KiB", none))
    rows.append(("server CPU ms per whole call", "call_cpu_ms", "≤ 5 ms", none))

    head = "| measure | " + " | ".join(LABELS[k] for k in have) + " | project / bare | target |"
    lines = [head, "|---" + "|---:" * len(have) + "|---:|---|"]
    for label, key, fixed, target in rows:
        cells = [_num(results[k][key]) if key in results[k] else "-" for k in have]
        p = results.get("project", {}).get(key)
        b = base.get(key) if base else None
        ratio = f"{p / b:.2f}×" if p is not None and b else "-"
        goal = fixed
        if p is not None and b:
            goal = target(p, b) or fixed
        if fixed and p is not None:
            limit = float(fixed.split()[1])
            goal = f"{fixed} {'✓' if p < limit or (fixed.startswith('≤') and p <= limit) else '✗'}"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {ratio} | {goal} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short windows and 1,000 idle clients (about a minute)")
    p.add_argument("--idle", type=int, default=None, help="idle clients for connects/s and memory (default 5,000)")
    p.add_argument("--only", default=",".join(KINDS), help="servers to run, comma-separated (project,socketio,raw)")
    p.add_argument("--profile", type=Path, default=None, metavar="FILE",
                   help="sample the project at 100 calls with py-spy into FILE (collapsed stacks; perturbs figures)")
    p.add_argument("--profile-calls", type=Path, default=None, metavar="FILE",
                   help="sample the project through the whole-call phase with py-spy into FILE (collapsed stacks)")
    p.add_argument("--deflate", action="store_true",
                   help="clients ask for permessage-deflate, as browsers do (the project does not agree to it)")
    p.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve_main(args.serve, args.port, args.data_dir)
        return 0
    if args.load:
        load_main(args.load, 15 if args.deflate else 0)
        return 0
    _raise_fd_limit()
    args.seconds = 1.5 if args.quick else 5.0
    args.warmup = 0.3 if args.quick else 0.5
    args.calls_per_kiosk = 5 if args.quick else 20
    if args.idle is None:
        args.idle = 1000 if args.quick else 5000
    kinds = [k for k in KINDS if k in args.only.split(",")]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vw-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        results: dict[str, dict[str, float]] = {}
        for kind in kinds:
            print(f"{LABELS[kind]} ...", file=sys.stderr)
            results[kind] = bench.run(kind)
    print(table(results, args.idle))
    print(f"\n{len(kinds)} servers in {time.perf_counter() - started:.0f} s; relay windows of {args.seconds:g} s; "
          f"CPU from /proc/<pid>/stat; p50/p99 of the kiosk -> clerk -> kiosk round trip "
          f"(two relayed signals).", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
