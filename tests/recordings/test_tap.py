"""The aiortc internals the tap relies on, checked so an aiortc upgrade that changes them fails here, loudly.

Two kinds of check: :func:`recordings.tap.check_aiortc_internals` (names,
signatures, what the receiver's code calls; it also raises when one is
changed), and a real ``RTCRtpReceiver`` fed RTP packets from aiortc's own VP8
and Opus encoders through a stand-in transport: the frames come out whole and
byte for byte, nothing is decoded, and a keyframe request leaves as an RTCP PLI.
"""

from __future__ import annotations

import fractions
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import aiortc
import aiortc.rtcrtpreceiver
import av
import numpy as np
import pytest
from aiortc.codecs import get_decoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpDecodingParameters, RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import RemoteStreamTrack, RTCRtpReceiver
from aiortc.rtp import RTCP_PSFB_PLI, RtcpPacket, RtcpPsfbPacket, RtpPacket
from aiortc.stats import RTCStatsReport

import recordings.tap
from client.media import CaptionVideoTrack, ToneAudioTrack
from recordings.bitstream import is_vp8_keyframe
from recordings.tap import EncodedFrame, TapError, check_aiortc_internals, tap_receiver

MEDIA_SSRC = 0x1234
OUR_SSRC = 0x5678
VP8_PT = 97
OPUS_PT = 96
VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=VP8_PT)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=OPUS_PT)


# -- the static checks -------------------------------------------------------------------------------------------------


def test_aiortc_internals_are_as_expected() -> None:
    recordings.tap._checked = False
    check_aiortc_internals()


@pytest.fixture
def unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recordings.tap, "_checked", False)


@pytest.mark.usefixtures("unchecked")
def test_another_aiortc_series_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc, "__version__", "1.17.0")
    with pytest.raises(TapError, match=r"1\.16\.x"):
        check_aiortc_internals()


@pytest.mark.usefixtures("unchecked")
def test_a_changed_jitter_buffer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def _remove_frame(self: JitterBuffer, seq: int) -> None:
        return None

    monkeypatch.setattr(JitterBuffer, "_remove_frame", _remove_frame)
    with pytest.raises(TapError, match="_remove_frame"):
        check_aiortc_internals()


@pytest.mark.usefixtures("unchecked")
def test_a_receiver_that_no_longer_uses_the_jitter_buffer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    async def _handle_rtp_packet(self: RTCRtpReceiver, packet: RtpPacket, arrival_time_ms: int) -> None:
        await self._send_rtcp_pli(packet.ssrc)

    monkeypatch.setattr(RTCRtpReceiver, "_handle_rtp_packet", _handle_rtp_packet)
    with pytest.raises(TapError, match="_RTCRtpReceiver__jitter_buffer"):
        check_aiortc_internals()


# -- a real receiver ---------------------------------------------------------------------------------------------------


@dataclass
class FakeTransport:
    """What RTCRtpReceiver uses of its RTCDtlsTransport: registration, sending RTCP, stats."""

    state: str = "connected"
    _stats_id: str = "transport"
    sent: list[bytes] = field(default_factory=list)

    def _register_rtp_receiver(self, receiver: RTCRtpReceiver, parameters: object) -> None:
        pass

    def _unregister_rtp_receiver(self, receiver: RTCRtpReceiver) -> None:
        pass

    async def _send_rtp(self, data: bytes) -> None:
        self.sent.append(data)

    def _get_stats(self) -> RTCStatsReport:
        return RTCStatsReport()

    def plis(self) -> list[int]:
        """Media SSRCs of the RTCP PLIs sent so far."""
        return [
            packet.media_ssrc
            for data in self.sent
            for packet in RtcpPacket.parse(data)
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI
        ]


@dataclass
class Tapped:
    receiver: RTCRtpReceiver
    transport: FakeTransport
    tap: recordings.tap.ReceiverTap
    frames: list[EncodedFrame]
    decoders: list[str]


@pytest.fixture
async def tapped(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Tapped]:
    kind: str = request.param
    decoders: list[str] = []

    def counting_get_decoder(codec: RTCRtpCodecParameters) -> object:
        decoders.append(codec.mimeType)
        return get_decoder(codec)

    monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", counting_get_decoder)
    transport = FakeTransport()
    receiver = RTCRtpReceiver(kind, cast(Any, transport))
    receiver._set_rtcp_ssrc(OUR_SSRC)
    receiver._track = RemoteStreamTrack(kind=kind)
    frames: list[EncodedFrame] = []
    tap = tap_receiver(receiver, frames.append)
    codec, payload_type = (VP8, VP8_PT) if kind == "video" else (OPUS, OPUS_PT)
    await receiver.receive(
        RTCRtpReceiveParameters(
            codecs=[codec], encodings=[RTCRtpDecodingParameters(ssrc=MEDIA_SSRC, payloadType=payload_type)]
        )
    )
    with pytest.raises(TapError, match="already started"):
        tap_receiver(receiver, frames.append)
    try:
        yield Tapped(receiver, transport, tap, frames, decoders)
    finally:
        await receiver.stop()


def video_frames(count: int) -> list[tuple[int, list[bytes]]]:
    """``count`` frames of aiortc's VP8 encoder: (RTP timestamp, RTP payloads), the first a keyframe."""
    encoder = Vp8Encoder()
    source = CaptionVideoTrack(["tap"])
    noise = np.random.default_rng(5).integers(0, 255, (480, 640, 3), dtype=np.uint8)  # a keyframe of many packets
    frames = []
    for index in range(count):
        pixels = noise if index == 0 else source.render(index)
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        frame.pts = index * 6000
        frame.time_base = fractions.Fraction(1, 90000)
        payloads, timestamp = encoder.encode(frame)
        assert payloads
        frames.append((timestamp, payloads))
    return frames


def audio_frames(count: int) -> list[tuple[int, bytes]]:
    encoder = OpusEncoder()
    tone = ToneAudioTrack()
    frames = []
    for index in range(count):
        samples = tone.samples(index * 960).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = index * 960
        frame.time_base = fractions.Fraction(1, 48000)
        payloads, timestamp = encoder.encode(frame)
        frames += [(timestamp, payload) for payload in payloads]
    return frames


class Feeder:
    def __init__(self, tapped: Tapped, payload_type: int) -> None:
        self.tapped = tapped
        self.payload_type = payload_type
        self.sequence = 1000

    async def send(self, timestamp: int, payloads: list[bytes], *, drop: bool = False, last: bool = True) -> None:
        for index, payload in enumerate(payloads):
            packet = RtpPacket(
                payload_type=self.payload_type,
                marker=int(last and index == len(payloads) - 1),
                sequence_number=self.sequence & 0xFFFF,
                timestamp=timestamp,
                ssrc=MEDIA_SSRC,
                payload=payload,
            )
            self.sequence += 1
            if not drop:
                await self.tapped.receiver._handle_rtp_packet(packet, arrival_time_ms=0)


@pytest.mark.parametrize("tapped", ["video"], indirect=True)
async def test_video_frames_come_out_whole_and_undecoded(tapped: Tapped) -> None:
    frames = video_frames(12)
    feeder = Feeder(tapped, VP8_PT)
    for timestamp, payloads in frames:
        await feeder.send(timestamp, payloads)
    # A frame is complete when the next one starts: all but the last came out, as the encoder made them.
    expected = [b"".join(vp8_depayload(p) for p in payloads) for _, payloads in frames[:-1]]
    assert [frame.data for frame in tapped.frames] == expected
    assert [frame.timestamp for frame in tapped.frames] == [timestamp for timestamp, _ in frames[:-1]]
    assert all(frame.ssrc == MEDIA_SSRC and not frame.gap for frame in tapped.frames)
    assert is_vp8_keyframe(tapped.frames[0].data) and not is_vp8_keyframe(tapped.frames[1].data)
    assert len(frames[0][1]) > 3  # the keyframe spans several packets
    assert tapped.tap.frames == len(expected)
    # Nothing reached the decoder.
    assert tapped.decoders == []
    decoder_queue = "_RTCRtpReceiver__decoder_queue"
    assert getattr(tapped.receiver, decoder_queue).qsize() == 0
    assert tapped.receiver._track is not None and tapped.receiver._track._queue.qsize() == 0
    # A keyframe request goes out as a PLI for the media SSRC with the next packet.
    assert tapped.transport.plis() == []
    tapped.tap.request_keyframe()
    await feeder.send(frames[-1][0] + 6000, frames[-1][1])
    assert tapped.transport.plis() == [MEDIA_SSRC]


@pytest.mark.parametrize("tapped", ["audio"], indirect=True)
async def test_audio_frames_without_prefetch_and_gaps_flagged(tapped: Tapped) -> None:
    frames = audio_frames(40)
    feeder = Feeder(tapped, OPUS_PT)
    for timestamp, payload in frames[:10]:
        await feeder.send(timestamp, [payload])
    # No playout prefetch: each frame is out as soon as the next packet arrives.
    assert [frame.data for frame in tapped.frames] == [payload for _, payload in frames[:9]]
    # Packet 10 is lost for good: the buffer (16 packets) overflows, skips it, and flags the frame after it.
    await feeder.send(frames[10][0], [frames[10][1]], drop=True)
    for timestamp, payload in frames[11:40]:
        await feeder.send(timestamp, [payload])
    after = tapped.frames[9:]
    assert after[0].gap and not any(frame.gap for frame in after[1:])
    assert after[0].data == frames[11][1]
    assert [frame.data for frame in after] == [payload for _, payload in frames[11:39]]
    assert tapped.tap.gaps == 1
    assert tapped.decoders == []


@pytest.mark.parametrize("tapped", ["video"], indirect=True)
async def test_flush_hands_out_the_last_frame_only_when_complete(tapped: Tapped) -> None:
    frames = video_frames(3)
    big = frames[0][1]  # the keyframe, several packets: sent last
    feeder = Feeder(tapped, VP8_PT)
    for timestamp, payloads in frames[1:]:
        await feeder.send(timestamp, payloads)
    last_timestamp = frames[2][0] + 6000
    await feeder.send(last_timestamp, big[:-1], last=False)  # the last frame without its marker packet
    assert len(tapped.frames) == 2
    tapped.tap.flush()
    assert len(tapped.frames) == 2  # incomplete: kept back
    await feeder.send(last_timestamp, big[-1:])
    tapped.tap.flush()
    assert tapped.frames[-1].data == b"".join(vp8_depayload(p) for p in big)
    assert tapped.frames[-1].timestamp == last_timestamp and not tapped.frames[-1].gap
    tapped.tap.flush()  # nothing left
    assert len(tapped.frames) == 3


@pytest.mark.parametrize("tapped", ["audio"], indirect=True)
async def test_flush_hands_out_the_last_audio_frame(tapped: Tapped) -> None:
    frames = audio_frames(3)
    feeder = Feeder(tapped, OPUS_PT)
    for timestamp, payload in frames:
        await feeder.send(timestamp, [payload])
    assert len(tapped.frames) == len(frames) - 1
    tapped.tap.flush()
    assert [frame.data for frame in tapped.frames] == [payload for _, payload in frames]
