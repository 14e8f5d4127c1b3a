"""TrackRecorder frame by frame: keyframe waits, keyframe requests, timestamps."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import pytest

from recordings.tap import EncodedFrame
from recordings.track import KEYFRAME_RETRY_S, Timeline, TrackRecorder, WriterSpec


def vp8_key(width: int = 640, height: int = 480) -> bytes:
    """A VP8 keyframe header (frame tag with the key bit clear, start code, size) and some payload."""
    size = 20
    tag = (size << 5) | 0x10  # key frame (bit 0 clear), version 0, show_frame
    return struct.pack("<I", tag)[:3] + b"\x9d\x01\x2a" + struct.pack("<HH", width, height) + bytes(size)


def vp8_delta() -> bytes:
    return struct.pack("<I", (20 << 5) | 0x11)[:3] + bytes(20)


OPUS_20MS = b"\xf8\xff\xfe"  # CELT fullband 20 ms, one frame


@dataclass
class FakeWriter:
    spec: WriterSpec
    written: list[tuple[bytes, int, int, bool]] = field(default_factory=list)
    frames: int = 0
    closed: bool = False

    def write(self, data: bytes, pts_ms: int, *, duration_ms: int = 0, keyframe: bool = True) -> None:
        self.written.append((data, pts_ms, duration_ms, keyframe))
        self.frames += 1

    def close(self) -> None:
        self.closed = True


class Rig:
    def __init__(self, kind: str, timeline: Timeline | None = None) -> None:
        self.now = 100.0
        self.requests = 0
        self.writers: list[FakeWriter] = []
        self.timeline = timeline or Timeline()
        self.track = TrackRecorder(
            kind, timeline=self.timeline, open_writer=self.open, request_keyframe=self.request, clock=lambda: self.now
        )

    def open(self, spec: WriterSpec) -> FakeWriter:
        writer = FakeWriter(spec)
        self.writers.append(writer)
        return writer

    def request(self) -> None:
        self.requests += 1

    def feed(self, data: bytes, timestamp: int, *, at: float | None = None, gap: bool = False, ssrc: int = 1) -> None:
        if at is not None:
            self.now = at
        self.track.on_frame(EncodedFrame(data, timestamp & 0xFFFFFFFF, ssrc, self.now, gap))

    @property
    def pts(self) -> list[int]:
        return [pts for writer in self.writers for _, pts, _, _ in writer.written]


def test_video_waits_for_a_keyframe_and_asks_for_one() -> None:
    rig = Rig("video")
    rig.feed(vp8_delta(), 0, at=100.0)
    assert rig.requests == 1  # the stream started without a keyframe: ask at once
    rig.feed(vp8_delta(), 6000, at=100.066)
    assert rig.requests == 1  # not again before KEYFRAME_RETRY_S
    rig.feed(vp8_delta(), 12000, at=100.0 + KEYFRAME_RETRY_S + 0.01)
    assert rig.requests == 2
    assert rig.writers == []
    rig.feed(vp8_key(320, 240), 18000, at=100.6)
    rig.feed(vp8_delta(), 24000, at=100.67)
    assert len(rig.writers) == 1
    assert rig.writers[0].spec == WriterSpec("vp8", 320, 240)
    assert [keyframe for *_, keyframe in rig.writers[0].written] == [True, False]
    assert rig.pts == [0, 67]
    assert rig.track.stats.dropped == 3 and rig.track.stats.written == 2


def test_video_starting_with_a_keyframe_asks_for_nothing() -> None:
    rig = Rig("video")
    rig.feed(vp8_key(), 1000)
    rig.feed(vp8_delta(), 7000)
    assert rig.requests == 0 and rig.track.stats.written == 2


def test_a_gap_in_video_waits_for_the_next_keyframe() -> None:
    rig = Rig("video")
    rig.feed(vp8_key(), 0, at=100.0)
    rig.feed(vp8_delta(), 6000, at=100.066)
    rig.feed(vp8_delta(), 18000, at=100.2, gap=True)  # frames were lost: this one references a missing picture
    rig.feed(vp8_delta(), 24000, at=100.266)
    assert rig.requests == 1 and rig.track.waiting_keyframe
    rig.feed(vp8_key(), 30000, at=100.333, gap=False)
    assert not rig.track.waiting_keyframe
    assert rig.pts == [0, 67, 333]
    assert rig.track.stats.gaps == 1 and rig.track.stats.dropped == 2


def test_a_gap_landing_on_a_keyframe_costs_nothing() -> None:
    rig = Rig("video")
    rig.feed(vp8_key(), 0)
    rig.feed(vp8_key(), 90000, at=101.0, gap=True)
    assert rig.requests == 0 and rig.track.stats.written == 2


def test_a_new_ssrc_waits_for_a_keyframe_and_reanchors() -> None:
    rig = Rig("video")
    rig.feed(vp8_key(), 500_000, at=100.0)
    rig.feed(vp8_delta(), 123, at=101.0, ssrc=2)  # a new source: new timestamps, pictures from elsewhere
    assert rig.track.waiting_keyframe and rig.requests == 1
    rig.feed(vp8_key(), 6123, at=101.066, ssrc=2)
    assert rig.pts == [0, 1066]


def test_audio_timestamps_follow_rtp_and_wrap() -> None:
    rig = Rig("audio")
    start = 0xFFFFFFFF - 960 * 2 + 1  # wraps after two frames
    for index in range(5):
        rig.feed(OPUS_20MS, start + index * 960, at=100.0 + index * 0.02 + (0.05 if index == 2 else 0))
    assert rig.pts == [0, 20, 40, 60, 80]  # arrival jitter does not move frames; the wrap does not either
    assert [duration for writer in rig.writers for _, _, duration, _ in writer.written] == [20] * 5
    assert rig.writers[0].spec == WriterSpec("opus")


def test_second_track_starts_at_its_arrival_on_the_shared_timeline() -> None:
    timeline = Timeline()
    audio = Rig("audio", timeline)
    video = Rig("video", timeline)
    audio.feed(OPUS_20MS, 77_000, at=50.0)
    video.feed(vp8_key(), 3_000_000, at=50.25)
    audio.feed(OPUS_20MS, 77_960, at=50.02)
    video.feed(vp8_delta(), 3_006_000, at=50.3)
    assert audio.pts == [0, 20]
    assert video.pts == [250, 317]


def test_timestamps_never_go_back_and_jumps_resync() -> None:
    rig = Rig("audio")
    rig.feed(OPUS_20MS, 10_000, at=100.0)
    rig.feed(OPUS_20MS, 5_000, at=100.02)  # backwards: re-anchored at arrival, after the previous frame
    rig.feed(OPUS_20MS, 5_000 + 48_000 * 60, at=100.04)  # a minute ahead of real time
    rig.feed(OPUS_20MS, 5_000 + 48_000 * 60 + 960, at=100.06)
    assert rig.pts == [0, 20, 40, 60]
    assert rig.track.stats.resyncs == 2


def test_closed_track_ignores_frames() -> None:
    rig = Rig("audio")
    rig.feed(OPUS_20MS, 0)
    rig.track.close()
    rig.feed(OPUS_20MS, 960)
    assert rig.writers[0].closed and rig.track.stats.written == 1


def test_track_kind_is_checked() -> None:
    with pytest.raises(ValueError, match="kind"):
        Rig("data")
