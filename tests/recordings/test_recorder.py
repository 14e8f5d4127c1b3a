"""A recorded call, in process: two sender peers (visitor and clerk) and the recorder peer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiortc.rtcrtpreceiver
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.codecs import get_decoder
from aiortc.exceptions import OperationError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from recordings.recorder import Recorder, codec_preferences, media_kinds
from rtc.loopback import LoopbackPatch
from tests.recordings.senders import SEND_S, TIMEOUT, VIDEO_FPS, Participant, check_recording


@pytest.fixture
def decoders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every decoder aiortc's receivers create in this process (the recorder should create none)."""
    created: list[str] = []

    def counting_get_decoder(codec: RTCRtpCodecParameters) -> object:
        created.append(codec.mimeType)
        return get_decoder(codec)

    monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", counting_get_decoder)
    return created


async def connect(recorder: Recorder, call_id: str, *names: str) -> list[Participant]:
    participants = [Participant(name) for name in names]
    for participant in participants:
        answer = await recorder.answer(call_id, participant.name, await participant.offer())
        assert "VP8/90000" in answer and "opus/48000" in answer
        assert "H264" not in answer  # the recorder asks for VP8 only
        await participant.accept(answer)
    await asyncio.wait_for(asyncio.gather(*(p.connected.wait() for p in participants)), TIMEOUT)
    return participants


async def test_recorded_call_is_the_senders_frames(
    tmp_path: Path, loopback_ice: LoopbackPatch, decoders: list[str]
) -> None:
    recorder = Recorder(tmp_path)
    participants = await connect(recorder, "call-1", "visitor", "clerk")
    try:
        for participant in participants:
            await participant.sent["video"].wait(int(SEND_S * VIDEO_FPS))
        for participant in participants:
            stats = recorder.participant("call-1", participant.name)
            assert stats is not None
            assert set(stats.stats().tracks) == {"0-video", "1-audio"}
    finally:
        for participant in participants:
            await participant.close()
    infos = await recorder.stop_call("call-1")
    assert sorted(info.participant for info in infos) == ["clerk", "visitor"]
    for info in infos:
        participant = next(p for p in participants if p.name == info.participant)
        check_recording(info, participant, tmp_path, "call-1")
    assert decoders == []  # the recorder decoded nothing
    assert sorted(p.name for p in (tmp_path / "call-1").iterdir()) == ["clerk.webm", "visitor.webm"]
    assert await recorder.stop_call("call-1") == []


async def test_reoffer_starts_a_second_recording(tmp_path: Path, loopback_ice: LoopbackPatch) -> None:
    recorder = Recorder(tmp_path)
    first = (await connect(recorder, "call-2", "visitor"))[0]
    await first.sent["video"].wait(10)
    second = (await connect(recorder, "call-2", "visitor"))[0]  # the kiosk reconnected
    await second.sent["video"].wait(10)
    await first.close()
    await second.close()
    infos = await recorder.stop_call("call-2")
    assert sorted(info.path.name for info in infos) == ["visitor-2.webm", "visitor.webm"]
    assert {info.participant for info in infos} == {"visitor"}
    assert all(info.frames["video"] > 0 for info in infos)


async def test_offer_without_vp8_is_refused(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        video = pc.addTransceiver("video", direction="sendonly")
        capabilities = RTCRtpSender.getCapabilities("video")
        assert capabilities is not None
        video.setCodecPreferences([c for c in capabilities.codecs if c.mimeType == "video/H264"])
        await pc.setLocalDescription(await pc.createOffer())
        assert pc.localDescription is not None and "VP8" not in pc.localDescription.sdp
        with pytest.raises(OperationError):
            await recorder.answer("call-3", "visitor", pc.localDescription.sdp)
    finally:
        await pc.close()
    assert recorder.load == 0
    assert not (tmp_path / "call-3").exists()


async def test_names_are_checked(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)
    with pytest.raises(ValueError, match="call_id"):
        await recorder.answer("../etc", "visitor", "v=0\r\n")
    with pytest.raises(ValueError, match="participant"):
        await recorder.answer("call-4", "visitor/../../x", "v=0\r\n")


def test_codec_preferences_are_vp8_and_opus_only() -> None:
    assert [c.mimeType for c in codec_preferences("video")] == ["video/VP8", "video/rtx"]
    assert [c.mimeType for c in codec_preferences("audio")] == ["audio/opus"]
    assert media_kinds("v=0\r\nm=audio 9 X 0\r\nm=video 9 X 0\r\nm=application 9 X\r\n") == [
        "audio",
        "video",
        "application",
    ]
