"""The recorder peer: answers a participant's offer and writes what it sends, per call and participant.

:class:`Recorder` is the in-process recorder (one per worker process, see
:mod:`recordings.worker`): :meth:`Recorder.answer` takes a participant's SDP
offer and returns the answer; :meth:`Recorder.stop_call` closes the call's
peers and returns the finished recordings.

:class:`ParticipantRecorder` is one participant's recorder peer connection.
Before the offer is applied it adds one receive-only transceiver per audio or
video m-line of the offer, with codec preferences VP8 (and RTX) for video and
Opus for audio, and taps each receiver (:mod:`recordings.tap`) so complete
encoded frames go to a :class:`~recordings.track.TrackRecorder` instead of a
decoder. An offer whose video has no VP8 (or audio no Opus) is refused
(aiortc raises ``OperationError`` from ``setRemoteDescription``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from recordings import files
from recordings.finalize import TAG_CALL_ID, TAG_CREATION_TIME, TAG_PARTICIPANT, finalize
from recordings.info import RecordingInfo
from recordings.tap import EncodedFrame, ReceiverTap, tap_receiver
from recordings.track import FrameWriter, Timeline, TrackRecorder, TrackStats, WriterSpec
from recordings.writer import TrackWriter

logger = logging.getLogger(__name__)

_M_LINE = re.compile(r"^m=(\w+) ", re.MULTILINE)
PREFERRED_CODEC = {"audio": "audio/opus", "video": "video/vp8"}


def codec_preferences(kind: str) -> list[RTCRtpCodecCapability]:
    """The recorder's codec preferences for ``kind``: VP8 (with RTX) for video, Opus for audio; nothing else."""
    capabilities = RTCRtpReceiver.getCapabilities(kind)
    if capabilities is None:
        raise ValueError(f"aiortc has no {kind} capabilities")
    wanted = PREFERRED_CODEC[kind]
    codecs = [codec for codec in capabilities.codecs if codec.mimeType.lower() == wanted]
    codecs += [codec for codec in capabilities.codecs if codec.mimeType.lower() == f"{kind}/rtx"]
    return codecs


def media_kinds(sdp: str) -> list[str]:
    """The kind of each m-line of an SDP, in order (``audio``, ``video``, ``application``...)."""
    return _M_LINE.findall(sdp)


def default_configuration() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[])


@dataclass
class ParticipantStats:
    call_id: str
    participant: str
    stem: str
    connection_state: str
    tracks: dict[str, TrackStats] = field(default_factory=dict)


class ParticipantRecorder:
    """One participant's recorder peer connection and the part files of its tracks."""

    def __init__(
        self,
        directory: Path,
        call_id: str,
        participant: str,
        stem: str,
        *,
        configuration: RTCConfiguration | None = None,
    ) -> None:
        self.directory = directory
        self.call_id = call_id
        self.participant = participant
        self.stem = stem
        self.final_path = files.final_path(directory, stem)
        self.pc = RTCPeerConnection(configuration or default_configuration())
        self.tracks: dict[int, TrackRecorder] = {}
        self.taps: dict[int, ReceiverTap] = {}
        self.timeline = Timeline()
        self._lock = files.RecordingLock(self.final_path)
        self._started_wall: datetime.datetime | None = None
        self._failed: set[int] = set()
        self._stopped = False
        self.pc.on("connectionstatechange", self._on_connection_state)

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        log = logger.warning if state == "failed" else logger.debug
        log("recorder %s/%s: connection %s", self.call_id, self.stem, state)

    async def answer(self, offer_sdp: str) -> str:
        """Apply the participant's offer; return the recorder's answer (with its ICE candidates)."""
        for index, kind in enumerate(media_kinds(offer_sdp)):
            if kind not in PREFERRED_CODEC:
                continue
            transceiver = self.pc.addTransceiver(kind, direction="recvonly")
            transceiver.setCodecPreferences(codec_preferences(kind))
            self.tracks[index] = TrackRecorder(
                kind,
                timeline=self.timeline,
                open_writer=functools.partial(self._open_writer, index, kind),
                request_keyframe=functools.partial(self._request_keyframe, index),
                clock=time.monotonic,
            )
            self.taps[index] = tap_receiver(transceiver.receiver, functools.partial(self._on_frame, index))
        if not self.tracks:
            raise ValueError("the offer has no audio or video to record")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        local = self.pc.localDescription
        assert local is not None
        return str(local.sdp)

    def _request_keyframe(self, index: int) -> None:
        self.taps[index].request_keyframe()

    def _on_frame(self, index: int, frame: EncodedFrame) -> None:
        """The tap's sink: runs inside aiortc's packet handling, so it must never raise."""
        if index in self._failed:
            return
        try:
            self.tracks[index].on_frame(frame)
        except Exception:
            self._failed.add(index)
            logger.exception(
                "recorder %s/%s: track %d failed; it is no longer recorded", self.call_id, self.stem, index
            )
            with contextlib.suppress(Exception):
                self.tracks[index].close()

    def _open_writer(self, index: int, kind: str, spec: WriterSpec) -> FrameWriter:
        if not self._lock.held:
            self.directory.mkdir(parents=True, exist_ok=True)
            if not self._lock.acquire():
                raise RuntimeError(f"the recording {self.final_path} is locked by another process")
        if self._started_wall is None:
            origin = self.timeline.origin if self.timeline.origin is not None else time.monotonic()
            elapsed = time.monotonic() - origin
            self._started_wall = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=elapsed)
        metadata = {
            TAG_CREATION_TIME: self._started_wall.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            TAG_CALL_ID: self.call_id,
            TAG_PARTICIPANT: self.participant,
        }
        path = files.part_path(self.directory, self.stem, index, kind)
        return TrackWriter(path, spec.codec, metadata=metadata, width=spec.width, height=spec.height)

    def stats(self) -> ParticipantStats:
        return ParticipantStats(
            call_id=self.call_id,
            participant=self.participant,
            stem=self.stem,
            connection_state=str(self.pc.connectionState),
            tracks={f"{index}-{track.kind}": track.stats for index, track in self.tracks.items()},
        )

    async def close(self) -> None:
        """Close the peer connection and the part files (the recording is not finalized yet)."""
        if self._stopped:
            return
        self._stopped = True
        await self.pc.close()  # the receivers stop: no more packets
        for index, track in self.tracks.items():
            self.taps[index].flush()  # the last frame, if complete (through _on_frame, which skips failed tracks)
            if index not in self._failed:
                try:
                    track.close()
                except Exception:
                    logger.exception("recorder %s/%s: closing track %d failed", self.call_id, self.stem, index)

    async def stop(self) -> RecordingInfo | None:
        """Close, then finalize the recording (in a thread); ``None`` if nothing was recorded."""
        await self.close()
        if not self._lock.held:  # no frame was ever written
            return None
        return await asyncio.to_thread(finalize, self.final_path, lock=self._lock)


class Recorder:
    """The recorder of one process: recorder peers by call and participant, under ``root``.

    A participant that offers again in a call (a reconnect) replaces its
    previous recorder peer, which is stopped and finalized in the background;
    :meth:`stop_call` waits for those too and returns every recording of the
    call.
    """

    def __init__(self, root: Path, *, configuration: RTCConfiguration | None = None) -> None:
        self.root = root
        self.configuration = configuration
        self._active: dict[str, dict[str, ParticipantRecorder]] = {}
        self._retiring: dict[str, list[asyncio.Task[RecordingInfo | None]]] = {}
        self._stems: dict[str, set[str]] = {}

    @property
    def load(self) -> int:
        """Participants being recorded."""
        return sum(len(participants) for participants in self._active.values())

    def calls(self) -> list[str]:
        return sorted(set(self._active) | set(self._retiring))

    async def answer(self, call_id: str, participant: str, offer_sdp: str) -> str:
        """Create the recorder peer for ``participant`` of ``call_id``; return its SDP answer."""
        directory = files.call_dir(self.root, call_id)
        files.check_name(participant, "participant")
        participants = self._active.setdefault(call_id, {})
        previous = participants.pop(participant, None)
        if previous is not None:
            self._retiring.setdefault(call_id, []).append(asyncio.create_task(previous.stop()))
        taken = self._stems.setdefault(call_id, set())
        stem = files.free_stem(directory, participant, taken)
        taken.add(stem)
        recorder = ParticipantRecorder(directory, call_id, participant, stem, configuration=self.configuration)
        participants[participant] = recorder
        try:
            return await recorder.answer(offer_sdp)
        except BaseException:
            if participants.get(participant) is recorder:
                del participants[participant]
            await recorder.close()
            raise

    async def stop_call(self, call_id: str) -> list[RecordingInfo]:
        """Close the call's recorder peers, finalize their files and return the recordings."""
        participants = self._active.pop(call_id, {})
        tasks = self._retiring.pop(call_id, [])
        tasks += [asyncio.create_task(recorder.stop()) for recorder in participants.values()]
        self._stems.pop(call_id, None)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        infos = []
        for result in results:
            if isinstance(result, BaseException):
                logger.error("recorder: finishing a recording of %s failed: %r", call_id, result)
            elif result is not None:
                infos.append(result)
        return infos

    async def close(self) -> list[RecordingInfo]:
        """Stop every call; the recordings of all of them."""
        infos = []
        for call_id in self.calls():
            infos += await self.stop_call(call_id)
        return infos

    def stats(self) -> list[ParticipantStats]:
        return [recorder.stats() for participants in self._active.values() for recorder in participants.values()]

    def participant(self, call_id: str, participant: str) -> ParticipantRecorder | None:
        return self._active.get(call_id, {}).get(participant)
