"""The media of a bot call: one aiortc peer connection per attempt (:class:`PeerLink`), with its synthetic media,
frame counters and ICE helpers, and :class:`CallLink`, which replaces a lost connection once (the media restart of
docs/protocol.md) before it reports ``media_failed``."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from aiortc import (
    RTCConfiguration,
    RTCIceCandidate,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from client.channel import Incoming, Message, ProtocolError
from client.media import CaptionVideoTrack, MediaCounter, ToneAudioTrack
from rtc.loopback import selected_candidate_pair
from signaling import messages
from signaling.messages import MAX_ATTEMPT, CallRef, IceCandidate, SessionDescription, Signal

logger = logging.getLogger(__name__)

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


def candidate_from_json(data: Mapping[str, Any] | IceCandidate) -> RTCIceCandidate | None:
    """An aiortc candidate from ``RTCIceCandidate.toJSON()`` (as relayed in a ``signal``, or its plain JSON);
    ``None`` for the empty end-of-candidates marker."""
    fields: Mapping[str, Any] = messages.to_builtins(data) if isinstance(data, IceCandidate) else data
    text = str(fields.get("candidate") or "").strip()
    if text.startswith("a="):
        text = text[2:]
    if text.startswith("candidate:"):
        text = text[len("candidate:") :]
    if not text:
        return None
    candidate = candidate_from_sdp(text)
    mid = fields.get("sdpMid")
    index = fields.get("sdpMLineIndex")
    candidate.sdpMid = str(mid) if mid is not None else None
    candidate.sdpMLineIndex = int(index) if index is not None else None
    return candidate


def description_to_message(description: RTCSessionDescription) -> SessionDescription:
    """An aiortc description as the ``description`` of a ``signal``."""
    if description.type not in ("offer", "answer"):
        raise ValueError(f"a signal carries an offer or an answer, not {description.type!r}")
    return SessionDescription(description.type, description.sdp)  # type: ignore[arg-type]


Role = Literal["offerer", "answerer"]
Recovery = Literal["restart", "await_restart", "give_up"]


def after_loss(role: Role, attempt: int) -> Recovery:
    """What a side does when the connection of ``attempt`` is lost: the offerer (kiosk) opens the next attempt,
    the answerer (clerk) waits for its offer; once the one restart is spent, both give up (``media_failed``)."""
    if attempt >= MAX_ATTEMPT:
        return "give_up"
    return "restart" if role == "offerer" else "await_restart"


@dataclass(frozen=True)
class RestartTiming:
    """When a connection counts as lost (docs/protocol.md, "Lost media"), in seconds. aiortc reports
    ``failed`` but has no ``disconnected``, so its other sign of loss is an attempt that never connects."""

    connect_timeout_s: float = 20.0  # not connected this long after the offer was sent (offerer) or answered
    restart_wait_s: float = 30.0  # the answerer's wait for the offerer's restart offer (longer than it takes to notice)


# -- one peer connection ----------------------------------------------------------------------------------------------

_peer_ids = itertools.count(1)


class PeerLink:
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
        attempt: int = 0,
        ice_transport_policy: RTCIceTransportPolicy = RTCIceTransportPolicy.ALL,
    ) -> None:
        self.id = next(_peer_ids)
        self.call_id = call_id
        self.attempt = attempt
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers, iceTransportPolicy=ice_transport_policy))
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

    async def offer(self) -> SessionDescription:
        self.add_tracks()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return description_to_message(self.pc.localDescription)

    async def answer(self, offer: SessionDescription) -> SessionDescription:
        await self._set_remote(offer)
        self.add_tracks()
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return description_to_message(self.pc.localDescription)

    async def accept_answer(self, answer: SessionDescription) -> None:
        await self._set_remote(answer)

    async def _set_remote(self, description: SessionDescription) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=description.sdp, type=description.type))
        pending, self._pending_candidates = self._pending_candidates, []
        for candidate in pending:
            await self._add_candidate(candidate)

    async def add_candidate(self, data: IceCandidate) -> None:
        try:
            candidate = candidate_from_json(data)
        except (AssertionError, ValueError, IndexError) as exc:
            logger.warning("call %s: unreadable ICE candidate %r: %s", self.call_id, data.candidate, exc)
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




# -- the media of one call, across its attempts -----------------------------------------------------------------------

Send = Callable[[str, msgspec.Struct], Awaitable[Message]]  # Channel.call


class CallLink:
    """The media of one call: a :class:`PeerLink` per attempt, replaced once when it is lost.

    The bot hands it the ``signal`` s of the call (:meth:`on_signal`) and the events of its current peer
    (``_pc_state`` to :meth:`on_state`, ``_media_timer`` to :meth:`on_timer`); it sends what it must through
    ``send`` (the channel's acknowledged emit): offers and answers with their ``attempt``, ``media_connected``
    once per attempt and, when the restart did not help, ``media_failed``. Its timers are posted to ``post``
    as ``_media_timer`` events of the peer that armed them, so a bot drops those of a replaced peer as it
    drops that peer's other events.
    """

    def __init__(
        self,
        call_id: str,
        role: Role,
        ice_servers: list[RTCIceServer],
        caption: Sequence[str],
        post: Callable[[Incoming], None],
        send: Send,
        *,
        on_frame: Callable[[MediaCounter], None] | None = None,
        timing: RestartTiming | None = None,
        ice_transport_policy: RTCIceTransportPolicy = RTCIceTransportPolicy.ALL,
    ) -> None:
        self.call_id = call_id
        self.ice_transport_policy = ice_transport_policy
        self.role: Role = role
        self.timing = timing or RestartTiming()
        self.restarts = 0
        self.gave_up = False  # media_failed was sent
        self._ice_servers = ice_servers
        self._caption = list(caption)
        self._post = post
        self._send = send
        self._on_frame = on_frame
        self._timer: asyncio.TimerHandle | None = None
        self.peer = self._new_peer(0)

    @property
    def attempt(self) -> int:
        return self.peer.attempt

    def _new_peer(self, attempt: int) -> PeerLink:
        return PeerLink(self.call_id, self._ice_servers, self._caption, self._post, on_frame=self._on_frame,
                        attempt=attempt, ice_transport_policy=self.ice_transport_policy)

    async def start(self) -> None:
        """The offerer's first step (and each restart's): send the offer of the current attempt."""
        offer = await self.peer.offer()
        await self._signal(offer)
        self._arm("connect", self.timing.connect_timeout_s)

    async def on_signal(self, signal: Signal) -> None:
        """A ``signal`` from the other side: applied to the current attempt; a newer offer replaces it (answerer);
        one of a replaced attempt is dropped."""
        attempt = signal.attempt
        description = signal.description
        if attempt < self.attempt:
            logger.debug("call %s: signal of replaced attempt %d dropped", self.call_id, attempt)
            return
        if attempt > self.attempt:
            if self.role != "answerer" or description is None or description.type != "offer":
                logger.warning("call %s: signal of attempt %d that has not started, ignored", self.call_id, attempt)
                return
            logger.info("call %s: the kiosk restarts the media (attempt %d)", self.call_id, attempt)
            await self._replace(attempt)
        if description is not None:
            await self._on_description(description)
        elif signal.candidate is not None:
            await self.peer.add_candidate(signal.candidate)

    async def _on_description(self, description: SessionDescription) -> None:
        kind = description.type
        if self.role == "answerer" and kind == "offer":
            answer = await self.peer.answer(description)
            await self._signal(answer)
            self._arm("connect", self.timing.connect_timeout_s)
        elif self.role == "offerer" and kind == "answer":
            await self.peer.accept_answer(description)
        else:
            logger.warning("call %s: the %s got a description of type %r, ignored", self.call_id, self.role, kind)

    async def on_state(self, state: str) -> bool:
        """The current peer's ``connectionState`` changed; True when it has just connected (for the first time in
        this attempt, after which ``media_connected`` has been sent)."""
        logger.info("call %s: connection %s (attempt %d)", self.call_id, state, self.attempt)
        if state == "connected":
            self._disarm()
            if not self.peer.media_connected_sent:
                self.peer.media_connected_sent = True
                logger.info("call %s: ICE connected via %s", self.call_id, self.peer.describe_pair())
                await self._send("media_connected", CallRef(self.call_id))
                return True
        elif state == "failed":
            await self._lost("ICE failed")
        return False

    async def on_timer(self, payload: Mapping[str, Any]) -> None:
        """A ``_media_timer`` of the current peer went off."""
        if payload.get("kind") == "restart_wait":
            await self._give_up("no restart offer came")
        elif self.peer.pc.connectionState != "connected":
            await self._lost(f"not connected within {self.timing.connect_timeout_s:g} s")

    async def lost(self, why: str) -> None:
        """The current connection is lost for a reason the peer connection cannot see (the bot's earlier run, whose
        connection it was, is gone): recover as after a failure, by the one restart (offerer) or waiting for it."""
        await self._lost(why)

    async def _lost(self, why: str) -> None:
        if self.gave_up:
            return
        recovery = after_loss(self.role, self.attempt)
        logger.warning("call %s: connection lost at attempt %d (%s): %s", self.call_id, self.attempt, why,
                       recovery.replace("_", " "))
        if recovery == "restart":
            await self._replace(self.attempt + 1)
            await self.start()
        elif recovery == "await_restart":
            self._arm("restart_wait", self.timing.restart_wait_s)
        else:
            await self._give_up(why)

    async def _replace(self, attempt: int) -> None:
        self._disarm()
        old = self.peer
        self.peer = self._new_peer(attempt)
        self.restarts += 1
        await old.close()

    async def _give_up(self, why: str) -> None:
        self._disarm()
        if self.gave_up:
            return
        self.gave_up = True
        logger.warning("call %s: media failed (%s); telling the server", self.call_id, why)
        with contextlib.suppress(ProtocolError):  # the other side may have reported it first
            await self._send("media_failed", CallRef(self.call_id))

    async def _signal(self, description: SessionDescription) -> None:
        await self._send("signal", Signal(self.call_id, description=description, attempt=self.attempt))

    def _arm(self, kind: str, delay_s: float) -> None:
        self._disarm()
        event = Incoming("_media_timer", {"kind": kind, "attempt": self.attempt}, self.peer)
        self._timer = asyncio.get_running_loop().call_later(delay_s, self._post, event)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def close(self) -> None:
        self._disarm()
        await self.peer.close()
