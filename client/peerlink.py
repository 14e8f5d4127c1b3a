"""One aiortc peer connection of a bot call, with its synthetic media, frame counters and ICE helpers."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiortc import RTCConfiguration, RTCIceCandidate, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from client.channel import Incoming, Payload, text_of
from client.ice import selected_candidate_pair
from client.media import CaptionVideoTrack, MediaCounter, ToneAudioTrack

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


def description_to_json(description: RTCSessionDescription) -> Payload:
    return {"type": description.type, "sdp": description.sdp}


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
            RTCSessionDescription(sdp=text_of(description, "sdp"), type=text_of(description, "type"))
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


