"""Sender peers for the recorder tests: synthetic video and audio, and a copy of every frame their encoders made.

Each :class:`Participant` offers a send-only VP8 video and Opus audio track
(``client.media``'s moving pattern and tone). Its RTP senders are given a
:class:`CapturingEncoder` (through aiortc's private ``__encoder`` slot, a test
convenience), so the test knows the exact bytes of every encoded frame and
can check that the recorder wrote those bytes, not a re-encoding.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.base import Encoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc.rtcrtpsender import RTCRtpSender
from av.frame import Frame
from av.packet import Packet

from client.media import CaptionVideoTrack, ToneAudioTrack
from recordings.info import RecordingInfo

TIMEOUT = 20.0
SEND_S = 3.0  # how long the tests send
VIDEO_FPS = 15
AUDIO_FPS = 50
_ENCODER_SLOT = "_RTCRtpSender__encoder"


@dataclass
class SentFrame:
    timestamp: int  # RTP timestamp
    data: bytes  # the codec bitstream of the frame (VP8 without payload descriptors; one Opus packet)
    at: float  # time.monotonic() when it was encoded


@dataclass
class Sent:
    """The frames one encoder produced, in order."""

    kind: str
    frames: list[SentFrame] = field(default_factory=list)
    _waiters: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)

    def add(self, frame: SentFrame) -> None:
        self.frames.append(frame)
        for count, waiter in self._waiters:
            if len(self.frames) >= count and not waiter.done():
                waiter.set_result(None)

    async def wait(self, count: int, timeout_s: float = TIMEOUT) -> None:
        """Wait until ``count`` frames were encoded."""
        if len(self.frames) >= count:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((count, waiter))
        await asyncio.wait_for(waiter, timeout_s)


class CapturingEncoder(Encoder):
    """aiortc's VP8 or Opus encoder, keeping a copy of what it encodes.

    ``encode`` runs in aiortc's executor thread: results are handed to the
    loop with ``call_soon_threadsafe``.
    """

    def __init__(self, inner: Encoder, sent: Sent, loop: asyncio.AbstractEventLoop) -> None:
        self.inner = inner
        self.sent = sent
        self.loop = loop

    @property
    def target_bitrate(self) -> int:
        return int(getattr(self.inner, "target_bitrate", 0))

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        if hasattr(self.inner, "target_bitrate"):
            self.inner.target_bitrate = bitrate

    def _keep(self, payloads: list[bytes], timestamp: int) -> None:
        if not payloads:
            return
        at = time.monotonic()
        if self.sent.kind == "video":
            frames = [b"".join(vp8_depayload(payload) for payload in payloads)]
        else:
            frames = payloads
        for data in frames:
            self.loop.call_soon_threadsafe(self.sent.add, SentFrame(timestamp, data, at))

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        payloads, timestamp = self.inner.encode(frame, force_keyframe)
        self._keep(payloads, timestamp)
        return payloads, timestamp

    def pack(self, packet: Packet[Any]) -> tuple[list[bytes], int]:
        payloads, timestamp = self.inner.pack(packet)
        self._keep(payloads, timestamp)
        return payloads, timestamp


def capture_encoder(sender: RTCRtpSender, kind: str) -> Sent:
    """Give ``sender`` a capturing VP8 / Opus encoder before its first frame; the frames it will encode."""
    assert hasattr(sender, _ENCODER_SLOT), "aiortc's RTCRtpSender has no __encoder slot any more"
    sent = Sent(kind)
    inner: Encoder = Vp8Encoder() if kind == "video" else OpusEncoder()
    setattr(sender, _ENCODER_SLOT, CapturingEncoder(inner, sent, asyncio.get_running_loop()))
    return sent


class Participant:
    """A send-only peer with a moving-pattern video (640x480, 15 fps) and a tone, as a kiosk or clerk would send."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.video = CaptionVideoTrack([name])
        self.audio = ToneAudioTrack()
        video = self.pc.addTransceiver(self.video, direction="sendonly")
        audio = self.pc.addTransceiver(self.audio, direction="sendonly")
        self.sent = {"video": capture_encoder(video.sender, "video"), "audio": capture_encoder(audio.sender, "audio")}
        self.connected = asyncio.Event()

        @self.pc.on("connectionstatechange")
        def on_state() -> None:
            if self.pc.connectionState == "connected":
                self.connected.set()

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        description = self.pc.localDescription
        assert description is not None
        return str(description.sdp)

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    async def close(self) -> None:
        await self.pc.close()
        self.video.stop()
        self.audio.stop()


def find_run(recorded: list[bytes], sent: list[SentFrame]) -> int:
    """Where ``recorded`` occurs in ``sent`` as a contiguous run of frames (byte for byte); -1 if nowhere."""
    data = [frame.data for frame in sent]
    for start in range(len(data) - len(recorded) + 1):
        if data[start : start + len(recorded)] == recorded:
            return start
    return -1


def packets_of(path: Path, kind: str) -> list[tuple[int, bytes]]:
    """``(pts in ms, bytes)`` of every packet of the ``kind`` stream of a WebM file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0] if kind == "video" else container.streams.audio[0]
        return [(int(p.pts), bytes(p)) for p in container.demux(stream) if p.size and p.pts is not None]


def check_recording(info: RecordingInfo, participant: Participant, root: Path, call_id: str) -> None:
    """The file is the participant's frames, byte for byte, at the right times."""
    assert info.call_id == call_id
    assert info.participant == participant.name
    assert info.path == root / call_id / f"{participant.name}.webm"
    assert info.path.stat().st_size == info.size_bytes
    assert sorted(info.codecs) == ["opus", "vp8"]
    assert not info.recovered
    assert abs((datetime.datetime.now(datetime.UTC) - info.started_at).total_seconds()) < 30

    sent_video = participant.sent["video"].frames
    sent_audio = participant.sent["audio"].frames
    with av.open(str(info.path)) as container:
        assert len(container.streams.video) == 1 and len(container.streams.audio) == 1
        assert container.streams.video[0].codec_context.name == "vp8"
        assert container.streams.audio[0].codec_context.name == "opus"
        decoded = sum(1 for _ in container.decode(video=0))
    video = packets_of(info.path, "video")
    audio = packets_of(info.path, "audio")
    assert info.frames == {"video": len(video), "audio": len(audio)}
    assert decoded == len(video)  # every recorded picture decodes

    # Close to what was sent: the last frame of each stream stays in the jitter buffer, and the first keyframe
    # may be lost before the recorder's receiver starts (then the recorder asks for another one).
    assert len(sent_video) - 8 <= len(video) <= len(sent_video)
    assert len(sent_audio) - 8 <= len(audio) <= len(sent_audio)
    assert len(video) >= SEND_S * VIDEO_FPS * 0.8
    assert len(audio) >= SEND_S * AUDIO_FPS * 0.8

    # No re-encoding: the packets are the sender's encoded frames, byte for byte, in order.
    assert find_run([data for _, data in video], sent_video) >= 0
    assert find_run([data for _, data in audio], sent_audio) >= 0

    # Timing: the file lasts as long as the frames it holds, and audio and video line up.
    sent_span = (sent_audio[-1].at - sent_audio[0].at) + 0.02
    assert info.duration_s == pytest.approx(sent_span, abs=0.5)
    video_span = (video[-1][0] - video[0][0]) / 1000
    assert video_span == pytest.approx((len(video) - 1) / VIDEO_FPS, abs=0.2)
    audio_start = audio[0][0] / 1000
    video_start = video[0][0] / 1000
    first_video = find_run([video[0][1]], sent_video)
    first_audio = find_run([audio[0][1]], sent_audio)
    sent_offset = sent_video[first_video].at - sent_audio[first_audio].at
    # the sender's side is timed when each frame is encoded, the recorder's when it arrives: on a loaded machine
    # the two clocks drift apart by up to a couple of frames (0.15 s failed once at load average 4-5); a real
    # misalignment bug is seconds
    assert video_start - audio_start == pytest.approx(sent_offset, abs=0.25)
