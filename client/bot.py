"""Headless kiosk and clerk bots: docs/protocol.md over Socket.IO, media over aiortc.

:class:`KioskBot` requests one call, sends the offer with a captioned test
pattern and a tone, checks that the clerk's video and audio arrive, keeps the
call for a while and hangs up. :class:`ClerkBot` goes available, accepts
rung calls, answers with its own synthetic media and counts what it receives.
They are meant for demos, tests and load; the browser pages speak the same
protocol.

Every incoming Socket.IO event, and every peer-connection event the bots care
about, goes through one queue and is handled in order by the bot's own loop,
so there is no interleaving between, say, a ``matched`` and the ``signal``
that follows it. Waiting is always on that queue, with deadlines.

Local ICE candidates are not trickled: aiortc gathers them all before
``setLocalDescription`` returns, so the SDP carries them. Candidates trickled
by a browser peer are accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import socketio
from aiortc import RTCConfiguration, RTCIceCandidate, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from client.ice import selected_candidate_pair
from client.media import CaptionVideoTrack, MediaCounter, ToneAudioTrack

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


# -- pure helpers -----------------------------------------------------------------------------------------------------

_ICE_SERVER_KEYS = ("urls", "username", "credential", "credentialType")


def ice_servers_from(servers: object) -> list[RTCIceServer]:
    """``RTCIceServer`` s from the ``ice_servers`` of a ``matched`` payload (unknown keys are left out)."""
    if not isinstance(servers, list):
        return []
    result = []
    for server in servers:
        if isinstance(server, Mapping) and server.get("urls"):
            result.append(RTCIceServer(**{k: server[k] for k in _ICE_SERVER_KEYS if k in server}))
    return result


def candidate_from_json(data: Mapping[str, Any]) -> RTCIceCandidate | None:
    """An aiortc candidate from ``RTCIceCandidate.toJSON()``; ``None`` for the empty end-of-candidates marker."""
    text = str(data.get("candidate") or "").strip()
    if text.startswith("a="):
        text = text[2:]
    if text.startswith("candidate:"):
        text = text[len("candidate:") :]
    if not text:
        return None
    candidate = candidate_from_sdp(text)
    mid = data.get("sdpMid")
    index = data.get("sdpMLineIndex")
    candidate.sdpMid = str(mid) if mid is not None else None
    candidate.sdpMLineIndex = int(index) if index is not None else None
    return candidate


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


def description_to_json(description: RTCSessionDescription) -> Payload:
    return {"type": description.type, "sdp": description.sdp}


def _text(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    return value if isinstance(value, str) else ""


def _mapping(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = payload.get(key)
    return value if isinstance(value, Mapping) else {}


# -- socket.io plumbing -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Incoming:
    """One thing for a bot's loop to handle: a server event, or an internal one (name starting with ``_``)."""

    event: str
    payload: Payload
    source: object = None  # for internal events: the peer connection wrapper they come from


class _Channel:
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
            error = _mapping(ack, "error")
            raise ProtocolError(event, _text(error, "code") or "unknown", _text(error, "message"))
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


# -- one peer connection ----------------------------------------------------------------------------------------------

_peer_ids = itertools.count(1)


class _Peer:
    """The peer connection of one call (one attempt of it), with its synthetic media and frame counters.

    Its events (``_pc_state``, ``_media``) are posted to ``post`` with this object as their ``source``, so
    that a bot can ignore events of a peer it has already replaced.
    """

    def __init__(
        self,
        call_id: str,
        ice_servers: list[RTCIceServer],
        caption: Sequence[str],
        post: Callable[[Incoming], None],
        *,
        on_frame: Callable[[MediaCounter], None] | None = None,
    ) -> None:
        self.id = next(_peer_ids)
        self.call_id = call_id
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers))
        self.video: MediaCounter | None = None
        self.audio: MediaCounter | None = None
        self.media_connected_sent = False
        self.closed = False
        self._caption = list(caption)
        self._post = post
        self._on_frame = on_frame
        self._local_tracks: list[MediaStreamTrack] = []
        self._pending_candidates: list[RTCIceCandidate] = []
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if self.closed:
            return
        counter = MediaCounter(track, on_frame=self._frame)
        if track.kind == "video":
            self.video = counter
        elif track.kind == "audio":
            self.audio = counter

    def _frame(self, counter: MediaCounter) -> None:
        if counter.frames == 1:
            self._post(Incoming("_media", {"kind": counter.kind}, self))
        if self._on_frame is not None:
            self._on_frame(counter)

    def _on_state(self) -> None:
        self._post(Incoming("_pc_state", {"state": self.pc.connectionState}, self))

    @property
    def media_received(self) -> bool:
        return bool(self.video and self.video.frames and self.audio and self.audio.frames)

    def add_tracks(self) -> None:
        for track in (CaptionVideoTrack(self._caption), ToneAudioTrack()):
            self._local_tracks.append(track)
            self.pc.addTrack(track)

    async def offer(self) -> Payload:
        self.add_tracks()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return description_to_json(self.pc.localDescription)

    async def answer(self, offer: Mapping[str, Any]) -> Payload:
        await self._set_remote(offer)
        self.add_tracks()
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return description_to_json(self.pc.localDescription)

    async def accept_answer(self, answer: Mapping[str, Any]) -> None:
        await self._set_remote(answer)

    async def _set_remote(self, description: Mapping[str, Any]) -> None:
        await self.pc.setRemoteDescription(
            RTCSessionDescription(sdp=_text(description, "sdp"), type=_text(description, "type"))
        )
        pending, self._pending_candidates = self._pending_candidates, []
        for candidate in pending:
            await self._add_candidate(candidate)

    async def add_candidate(self, data: Mapping[str, Any]) -> None:
        try:
            candidate = candidate_from_json(data)
        except (AssertionError, ValueError, IndexError) as exc:
            logger.warning("call %s: unreadable ICE candidate %r: %s", self.call_id, data.get("candidate"), exc)
            return
        if candidate is None:
            return  # end of candidates: aiortc copes without it
        if self.pc.remoteDescription is None:
            self._pending_candidates.append(candidate)
        else:
            await self._add_candidate(candidate)

    async def _add_candidate(self, candidate: RTCIceCandidate) -> None:
        try:
            await self.pc.addIceCandidate(candidate)
        except (ValueError, OSError) as exc:
            logger.warning("call %s: ICE candidate refused: %s", self.call_id, exc)

    def describe_pair(self) -> str:
        pair = selected_candidate_pair(self.pc)
        if pair is None:
            return "unknown pair"
        (lh, lp), (rh, rp) = pair
        return f"{lh}:{lp} <-> {rh}:{rp}"

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self.pc.close()
        for track in self._local_tracks:
            track.stop()
        for counter in (self.video, self.audio):
            if counter is not None:
                await counter.stop()


# -- kiosk ------------------------------------------------------------------------------------------------------------


@dataclass
class KioskResult:
    """What one kiosk call came to."""

    ok: bool
    reason: str
    call_id: str | None
    queue_wait_s: float | None  # from the request_call ack to `matched`
    time_to_media_s: float | None  # from `matched` to the first frame of both the clerk's video and audio
    video_frames: int
    audio_frames: int
    video_size: tuple[int, int] | None
    clerk_name: str | None

    def summary(self) -> str:
        def secs(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f} s"

        size = f"{self.video_size[0]}x{self.video_size[1]}" if self.video_size else "no video"
        head = "OK" if self.ok else "FAILED"
        return (
            f"{head} ({self.reason}): call {self.call_id or '-'} with clerk {self.clerk_name or '-'}; "
            f"waited {secs(self.queue_wait_s)}, media after {secs(self.time_to_media_s)}; "
            f"received {self.video_frames} video frames ({size}) and {self.audio_frames} audio frames"
        )


_KIOSK_EVENTS = ("queued", "ringing", "matched", "signal", "call_ended")


class KioskBot:
    """A kiosk that requests one call in ``field`` and checks that the clerk's media arrives."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        field: str,
        language: str = "en",
        caption: str = "Visitor",
        request_timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self.token = token
        self.field = field
        self.language = language
        self.caption = caption
        self.request_timeout_s = request_timeout_s
        self._reset()

    def _reset(self) -> None:
        self.welcome: Payload | None = None
        self.call_id: str | None = None
        self._peer: _Peer | None = None
        self._requested_at: float | None = None
        self._matched_at: float | None = None
        self._queue_wait_s: float | None = None
        self._time_to_media_s: float | None = None
        self._clerk_name: str | None = None
        self._ended: tuple[str, str] | None = None  # (reason, by)
        self._counts: tuple[int, int, tuple[int, int] | None] = (0, 0, None)

    async def run(self, seconds: float, timeout_s: float = 60.0) -> KioskResult:
        """Connect, request a call, wait (at most ``timeout_s``) until the clerk's video and audio arrive,
        keep the call ``seconds`` longer, hang up and disconnect. Never raises for a failed call: the
        result says why (``ok`` is true only if the clerk's video and audio were received)."""
        self._reset()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        channel = _Channel(
            self.url, self.token, KIOSK_NAMESPACE, _KIOSK_EVENTS, request_timeout_s=self.request_timeout_s
        )
        ok, reason = False, ""
        try:
            self.welcome = await channel.connect(timeout_s)
            ack = await channel.call("request_call", {"field": self.field, "language": self.language})
            self.call_id = _text(ack, "call_id")
            self._requested_at = time.monotonic()
            logger.info("kiosk: call %s %s, position %s", self.call_id, ack.get("state"), ack.get("position"))
            await self._pump(channel, deadline, lambda: self._peer is not None and self._peer.media_received)
            assert self._peer is not None and self._matched_at is not None
            assert self._peer.video is not None and self._peer.audio is not None
            first = max(self._peer.video.first_frame_at or 0.0, self._peer.audio.first_frame_at or 0.0)
            self._time_to_media_s = first - self._matched_at
            logger.info("kiosk: call %s media received after %.2f s", self.call_id, self._time_to_media_s)
            ok, reason = True, "completed"
            with contextlib.suppress(TimeoutError):
                await self._pump(channel, loop.time() + seconds, lambda: self._ended is not None)
            if self._ended is not None:
                reason = f"ended early: {self._ended[0]} by {self._ended[1]}"
        except TimeoutError:
            reason = "timeout waiting for " + ("media" if self._matched_at is not None else "a clerk")
        except BotError as exc:
            reason = f"ended early: {exc}" if ok else str(exc)
        finally:
            await self._finish(channel)
        video_frames, audio_frames, video_size = self._counts
        ok = ok and video_frames > 0 and audio_frames > 0
        result = KioskResult(
            ok=ok,
            reason=reason,
            call_id=self.call_id,
            queue_wait_s=self._queue_wait_s,
            time_to_media_s=self._time_to_media_s,
            video_frames=video_frames,
            audio_frames=audio_frames,
            video_size=video_size,
            clerk_name=self._clerk_name,
        )
        logger.info("kiosk: %s", result.summary())
        return result

    async def _pump(self, channel: _Channel, deadline: float, done: Callable[[], bool]) -> None:
        while not done():
            await self._handle(channel, await channel.get(deadline))

    async def _handle(self, channel: _Channel, item: Incoming) -> None:
        event, payload = item.event, item.payload
        if item.source is not None and item.source is not self._peer:
            return  # an event of a peer connection already closed
        if event not in ("_pc_state", "_media", "_disconnected") and _text(payload, "call_id") != self.call_id:
            logger.debug("kiosk: %s for another call, ignored", event)
            return
        if event == "queued":
            logger.info("kiosk: queued at %s (%s)", payload.get("position"), payload.get("reason") or "waiting")
            if payload.get("reason") == "clerk_disconnected" and self._peer is not None:
                await self._peer.close()
                self._peer = None
                self._matched_at = None
        elif event == "ringing":
            logger.info("kiosk: a clerk is being rung")
        elif event == "matched":
            await self._on_matched(channel, payload)
        elif event == "signal":
            if self._peer is None:
                logger.warning("kiosk: signal before matched, ignored")
            elif isinstance(payload.get("description"), Mapping):
                description = _mapping(payload, "description")
                if description.get("type") != "answer":
                    raise BotError(f"kiosk expected an answer, got {description.get('type')!r}")
                await self._peer.accept_answer(description)
            elif isinstance(payload.get("candidate"), Mapping):
                await self._peer.add_candidate(_mapping(payload, "candidate"))
        elif event == "_pc_state":
            await self._on_pc_state(channel, _text(payload, "state"))
        elif event == "call_ended":
            self._ended = (_text(payload, "reason"), _text(payload, "by"))
            logger.info("kiosk: call %s ended: %s by %s", self.call_id, *self._ended)
            if self._peer is None or not self._peer.media_received:
                raise BotError(f"call ended before media: {self._ended[0]} by {self._ended[1]}")
        elif event == "_disconnected":
            raise BotError(f"disconnected by the server: {payload.get('reason')}")

    async def _on_matched(self, channel: _Channel, payload: Payload) -> None:
        assert self.call_id is not None
        now = time.monotonic()
        if self._queue_wait_s is None and self._requested_at is not None:
            self._queue_wait_s = now - self._requested_at
        self._matched_at = now
        self._clerk_name = _text(_mapping(payload, "peer"), "name") or None
        logger.info("kiosk: matched with clerk %s", self._clerk_name)
        if self._peer is not None:
            await self._peer.close()
        caption = [self.caption, _text(payload, "field") or self.field]
        self._peer = _Peer(
            self.call_id, ice_servers_from(payload.get("ice_servers")), caption, channel.queue.put_nowait
        )
        offer = await self._peer.offer()
        await channel.call("signal", {"call_id": self.call_id, "description": offer})

    async def _on_pc_state(self, channel: _Channel, state: str) -> None:
        peer = self._peer
        assert peer is not None and self.call_id is not None
        logger.info("kiosk: call %s connection %s", self.call_id, state)
        if state == "connected" and not peer.media_connected_sent:
            peer.media_connected_sent = True
            logger.info("kiosk: call %s ICE connected via %s", self.call_id, peer.describe_pair())
            await channel.call("media_connected", {"call_id": self.call_id})
        elif state == "failed":
            raise BotError("ICE failed")

    async def _finish(self, channel: _Channel) -> None:
        if self.call_id and self._ended is None and channel.connected:
            try:
                await channel.call("hangup", {"call_id": self.call_id})
            except BotError as exc:
                logger.warning("kiosk: hangup failed: %s", exc)
        peer = self._peer
        if peer is not None:
            await peer.close()
            video, audio = peer.video, peer.audio
            self._counts = (
                video.frames if video else 0,
                audio.frames if audio else 0,
                video.frame_size if video else None,
            )
        await channel.close()


# -- clerk ------------------------------------------------------------------------------------------------------------


@dataclass
class CallStats:
    """One call a :class:`ClerkBot` took: what it received and how it ended."""

    call_id: str
    field: str = ""
    peer_name: str = ""
    video_frames: int = 0
    audio_frames: int = 0
    video_size: tuple[int, int] | None = None
    media_connected: bool = False
    wrapped_up: bool = False
    ended_reason: str | None = None
    ended_by: str | None = None
    media_received: asyncio.Event = dataclasses.field(default_factory=asyncio.Event, repr=False, compare=False)
    ended: asyncio.Event = dataclasses.field(default_factory=asyncio.Event, repr=False, compare=False)


_CLERK_EVENTS = ("status", "ring", "ring_ended", "matched", "signal", "call_ended")


class ClerkBot:
    """A clerk that goes available and (with ``auto_accept``) accepts every call it is rung for.

    When the server puts the clerk into wrap-up after a call (``call_ended`` with ``wrap_up: true``),
    the bot logs one matter at once (the first matter type of the call's field, outcome
    ``completed``), so that it is offered the next call; ``wrap_up=False`` leaves that to the caller.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        auto_accept: bool = True,
        center: str = "",
        wrap_up: bool = True,
        request_timeout_s: float = 10.0,
        connect_timeout_s: float = 30.0,
    ) -> None:
        self.url = url
        self.token = token
        self.auto_accept = auto_accept
        self.wrap_up = wrap_up
        self.center = center
        self.request_timeout_s = request_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.name = ""
        self.status = ""
        self.welcome: Payload | None = None
        self.calls: list[CallStats] = []
        self.rings: list[Payload] = []
        #: Set once connected, welcomed and available.
        self.ready = asyncio.Event()
        self._channel: _Channel | None = None
        self._peer: _Peer | None = None
        self._current: CallStats | None = None
        self._want_available = True
        self._stopping = False
        self._changed = asyncio.Event()

    # -- for tests and callers ---------------------------------------------------------------------------------------

    def call(self, call_id: str) -> CallStats | None:
        return next((c for c in self.calls if c.call_id == call_id), None)

    async def wait_for(self, predicate: Callable[[], CallStats | None], timeout_s: float) -> CallStats:
        """Wait until ``predicate()`` returns a call (re-checked whenever the bot's state changes)."""
        async with asyncio.timeout(timeout_s):
            while True:
                changed = self._changed
                found = predicate()
                if found is not None:
                    return found
                await changed.wait()

    async def wait_media(self, call_id: str | None = None, timeout_s: float = 30.0) -> CallStats:
        """Wait until video and audio were received on ``call_id`` (or on any call)."""

        def received() -> CallStats | None:
            return next(
                (c for c in self.calls if c.media_received.is_set() and call_id in (None, c.call_id)),
                None,
            )

        return await self.wait_for(received, timeout_s)

    async def wait_ended(self, call_id: str | None = None, timeout_s: float = 30.0) -> CallStats:
        """Wait until ``call_id`` (or any call) has ended."""

        def ended() -> CallStats | None:
            return next((c for c in self.calls if c.ended.is_set() and call_id in (None, c.call_id)), None)

        return await self.wait_for(ended, timeout_s)

    async def accept(self, call_id: str) -> None:
        await self._require_channel().call("accept", {"call_id": call_id})

    async def decline(self, call_id: str) -> None:
        await self._require_channel().call("decline", {"call_id": call_id})

    async def hangup(self, call_id: str | None = None) -> None:
        call_id = call_id or (self._current.call_id if self._current else None)
        if call_id is None:
            raise BotError("hangup: no call in progress")
        await self._require_channel().call("hangup", {"call_id": call_id})

    async def set_status(self, status: str) -> None:
        self._want_available = status == "available"
        ack = await self._require_channel().call("set_status", {"status": status})
        self.status = _text(ack, "status") or status
        self._notify()

    # -- the loop ----------------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None, max_calls: int | None = None) -> None:
        """Serve calls until ``stop`` is set or ``max_calls`` calls have ended; raises :class:`BotError`
        if the connection is refused or lost."""
        channel = _Channel(
            self.url, self.token, CLERK_NAMESPACE, _CLERK_EVENTS, request_timeout_s=self.request_timeout_s
        )
        self._channel = channel
        watcher: asyncio.Task[None] | None = None
        try:
            self.welcome = await channel.connect(self.connect_timeout_s)
            clerk = _mapping(self.welcome, "clerk")
            self.name = _text(clerk, "name")
            self.center = self.center or _text(clerk, "center")
            self.status = _text(self.welcome, "status")
            logger.info("clerk %s: connected, %s", self.name, self.status)
            await self.set_status("available")
            self.ready.set()
            self._notify()
            if stop is not None:
                watcher = asyncio.create_task(self._watch(stop, channel))
            while not self._stopping:
                if max_calls is not None and sum(c.ended.is_set() for c in self.calls) >= max_calls:
                    break
                await self._handle(channel, await channel.get(None))
        finally:
            self._stopping = True
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await self._finish(channel)

    @staticmethod
    async def _watch(stop: asyncio.Event, channel: _Channel) -> None:
        await stop.wait()
        channel.queue.put_nowait(Incoming("_stop", {}))

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _require_channel(self) -> _Channel:
        if self._channel is None or not self._channel.connected:
            raise BotError("the clerk bot is not connected")
        return self._channel

    async def _handle(self, channel: _Channel, item: Incoming) -> None:
        event, payload = item.event, item.payload
        if item.source is not None and item.source is not self._peer:
            return
        if event == "status":
            await self._on_status(channel, payload)
        elif event == "ring":
            await self._on_ring(channel, payload)
        elif event == "ring_ended":
            logger.info("clerk %s: ring for %s ended: %s", self.name, payload.get("call_id"), payload.get("reason"))
        elif event == "matched":
            await self._on_matched(payload)
        elif event == "signal":
            await self._on_signal(channel, payload)
        elif event == "_pc_state":
            await self._on_pc_state(channel, _text(payload, "state"))
        elif event == "_media":
            if self._peer is not None and self._current is not None and self._peer.media_received:
                self._current.media_received.set()
                logger.info("clerk %s: call %s media received", self.name, self._current.call_id)
        elif event == "call_ended":
            await self._on_call_ended(channel, payload)
        elif event == "_stop":
            self._stopping = True
        elif event == "_disconnected":
            raise BotError(f"clerk {self.name}: disconnected by the server: {payload.get('reason')}")
        self._notify()

    async def _on_status(self, channel: _Channel, payload: Payload) -> None:
        self.status = _text(payload, "status")
        logger.info("clerk %s: status %s %s", self.name, self.status, payload.get("reason") or "")
        if self.status == "away" and self._want_available and self._current is None and not self._stopping:
            try:
                ack = await channel.call("set_status", {"status": "available"})
                self.status = _text(ack, "status") or "available"
            except ProtocolError as exc:
                logger.warning("clerk %s: cannot go available again: %s", self.name, exc)

    async def _on_ring(self, channel: _Channel, payload: Payload) -> None:
        self.rings.append(payload)
        call_id = _text(payload, "call_id")
        logger.info("clerk %s: rung for %s (%s)", self.name, call_id, payload.get("field"))
        if self.auto_accept and self._current is None and not self._stopping:
            try:
                await channel.call("accept", {"call_id": call_id})
            except ProtocolError as exc:  # the ring may have ended meanwhile
                logger.warning("clerk %s: accept failed: %s", self.name, exc)

    async def _on_matched(self, payload: Payload) -> None:
        call_id = _text(payload, "call_id")
        if self._peer is not None:
            await self._peer.close()
        field = _text(payload, "field")
        stats = CallStats(call_id=call_id, field=field, peer_name=_text(_mapping(payload, "peer"), "name"))
        self.calls.append(stats)
        self._current = stats
        caption = [line for line in (self.name or "Clerk", field, self.center) if line]
        assert self._channel is not None
        self._peer = _Peer(
            call_id,
            ice_servers_from(payload.get("ice_servers")),
            caption,
            self._channel.queue.put_nowait,
            on_frame=lambda counter: self._count(stats, counter),
        )
        logger.info("clerk %s: matched on %s with %s", self.name, call_id, stats.peer_name)

    @staticmethod
    def _count(stats: CallStats, counter: MediaCounter) -> None:
        if counter.kind == "video":
            stats.video_frames = counter.frames
            stats.video_size = counter.frame_size
        else:
            stats.audio_frames = counter.frames

    async def _on_signal(self, channel: _Channel, payload: Payload) -> None:
        peer = self._peer
        if peer is None or peer.call_id != _text(payload, "call_id"):
            logger.warning(
                "clerk %s: signal for %s without a matching call, ignored", self.name, payload.get("call_id")
            )
            return
        if isinstance(payload.get("description"), Mapping):
            description = _mapping(payload, "description")
            if description.get("type") != "offer":
                logger.warning("clerk %s: expected an offer, got %r", self.name, description.get("type"))
                return
            answer = await peer.answer(description)
            await channel.call("signal", {"call_id": peer.call_id, "description": answer})
        elif isinstance(payload.get("candidate"), Mapping):
            await peer.add_candidate(_mapping(payload, "candidate"))

    async def _on_pc_state(self, channel: _Channel, state: str) -> None:
        peer, stats = self._peer, self._current
        if peer is None or stats is None:
            return
        logger.info("clerk %s: call %s connection %s", self.name, peer.call_id, state)
        if state == "connected" and not peer.media_connected_sent:
            peer.media_connected_sent = True
            stats.media_connected = True
            logger.info("clerk %s: call %s ICE connected via %s", self.name, peer.call_id, peer.describe_pair())
            await channel.call("media_connected", {"call_id": peer.call_id})
        elif state == "failed":
            logger.warning("clerk %s: call %s ICE failed, hanging up", self.name, peer.call_id)
            with contextlib.suppress(ProtocolError):
                await channel.call("hangup", {"call_id": peer.call_id})

    async def _on_call_ended(self, channel: _Channel, payload: Payload) -> None:
        stats = self.call(_text(payload, "call_id"))
        if stats is None:
            return
        stats.ended_reason = _text(payload, "reason")
        stats.ended_by = _text(payload, "by")
        logger.info("clerk %s: call %s ended: %s by %s", self.name, stats.call_id, stats.ended_reason, stats.ended_by)
        if self._peer is not None and self._peer.call_id == stats.call_id:
            await self._peer.close()
            self._peer = None
        if self._current is stats:
            self._current = None
        if payload.get("wrap_up") is True and self.wrap_up:
            await self._wrap_up(channel, stats)
        stats.ended.set()

    def matter_type_for(self, field: str) -> str | None:
        """The first matter type of ``field`` in the catalog from ``welcome``."""
        fields = (self.welcome or {}).get("fields")
        for entry in fields if isinstance(fields, list) else []:
            if isinstance(entry, Mapping) and entry.get("id") == field:
                matters = entry.get("matters")
                for matter in matters if isinstance(matters, list) else []:
                    if isinstance(matter, Mapping) and _text(matter, "id"):
                        return _text(matter, "id")
        return None

    async def _wrap_up(self, channel: _Channel, stats: CallStats) -> None:
        matter_type = self.matter_type_for(stats.field)
        if matter_type is None:
            logger.warning("clerk %s: no matter type for field %r, cannot wrap up", self.name, stats.field)
            return
        matter = {"matter_type": matter_type, "outcome": "completed", "notes": "logged by a headless bot clerk"}
        try:
            await channel.call("wrap_up", {"call_id": stats.call_id, "matters": [matter]})
        except BotError as exc:
            logger.warning("clerk %s: wrap-up of %s failed: %s", self.name, stats.call_id, exc)
            return
        stats.wrapped_up = True

    async def _finish(self, channel: _Channel) -> None:
        if self._current is not None and channel.connected:
            try:
                await channel.call("hangup", {"call_id": self._current.call_id})
            except BotError as exc:
                logger.warning("clerk %s: hangup failed: %s", self.name, exc)
        if self._peer is not None:
            await self._peer.close()
            self._peer = None
        if self._current is not None:
            self._current.ended_reason = self._current.ended_reason or "bot_stopped"
            self._current.ended.set()
            self._current = None
        self.ready.clear()
        await channel.close()
        self._notify()
