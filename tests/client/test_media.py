"""The synthetic tracks: sizes, formats, timestamps, the caption and the tone."""

from __future__ import annotations

import asyncio
import fractions

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

from client.media import AUDIO_SAMPLES, CaptionVideoTrack, MediaCounter, ToneAudioTrack, render_caption

TIMEOUT = 10.0


async def test_video_frames_have_size_format_and_increasing_pts() -> None:
    track = CaptionVideoTrack(["Alice", "tax", "Jiading"], width=320, height=240, fps=30)
    frames = [await asyncio.wait_for(track.recv(), TIMEOUT) for _ in range(4)]
    track.stop()
    for frame in frames:
        assert isinstance(frame, VideoFrame)
        assert (frame.width, frame.height) == (320, 240)
        assert frame.format.name == "rgb24"
        assert frame.time_base == fractions.Fraction(1, 90_000)
    pts = [f.pts or 0 for f in frames]
    assert frames[0].pts == 0
    assert pts == sorted(pts) and len(set(pts)) == len(pts)
    assert pts[1] - pts[0] == 3000  # 30 fps in a 90 kHz clock


async def test_video_defaults_to_640x480_at_15_fps() -> None:
    track = CaptionVideoTrack("Visitor")
    first = await asyncio.wait_for(track.recv(), TIMEOUT)
    second = await asyncio.wait_for(track.recv(), TIMEOUT)
    track.stop()
    assert isinstance(first, VideoFrame) and isinstance(second, VideoFrame)
    assert (first.width, first.height) == (640, 480)
    assert (second.pts or 0) - (first.pts or 0) == 6000


async def test_stopped_track_raises() -> None:
    track = CaptionVideoTrack()
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


def test_pattern_moves() -> None:
    track = CaptionVideoTrack(width=160, height=120)
    assert not np.array_equal(track.render(0), track.render(5))


def test_caption_changes_pixels() -> None:
    plain = CaptionVideoTrack(width=320, height=240).render(3)
    captioned = CaptionVideoTrack(["Alice", "tax", "Jiading center"], width=320, height=240).render(3)
    assert plain.shape == captioned.shape == (240, 320, 3)
    changed = np.any(plain != captioned, axis=2)
    assert changed.sum() > 1000
    rows = np.nonzero(changed.any(axis=1))[0]
    assert rows.min() > 240 // 2  # the caption sits at the bottom


def test_caption_renders_each_line_and_any_script() -> None:
    one = render_caption(["Alice"])
    three = render_caption(["Alice", "税务", "مركز"])
    assert three.shape[0] > 2 * one.shape[0]
    assert three.dtype == np.uint8 and three.shape[2] == 3


def test_caption_has_at_most_three_lines() -> None:
    with pytest.raises(ValueError, match="at most 3"):
        CaptionVideoTrack(["a", "b", "c", "d"])


@pytest.mark.parametrize("stereo", [False, True])
async def test_tone_frames(stereo: bool) -> None:
    track = ToneAudioTrack(stereo=stereo)
    frames = [await asyncio.wait_for(track.recv(), TIMEOUT) for _ in range(3)]
    track.stop()
    for frame in frames:
        assert isinstance(frame, AudioFrame)
        assert frame.format.name == "s16"
        assert frame.sample_rate == 48_000
        assert frame.samples == AUDIO_SAMPLES == 960
        assert frame.layout.name == ("stereo" if stereo else "mono")
        assert frame.time_base == fractions.Fraction(1, 48_000)
    assert [f.pts for f in frames] == [0, 960, 1920]


async def test_tone_has_its_energy_at_440_hz() -> None:
    track = ToneAudioTrack()
    frames = [await asyncio.wait_for(track.recv(), TIMEOUT) for _ in range(5)]
    track.stop()
    samples = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float64)
    assert len(samples) == 5 * 960
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), d=1 / 48_000)
    peak = freqs[int(np.argmax(spectrum))]
    assert abs(peak - 440) <= 10  # 10 Hz bins over 100 ms
    band = spectrum[(freqs > 400) & (freqs < 480)].sum()
    assert band / spectrum.sum() > 0.8


def test_tone_is_continuous_across_frames() -> None:
    track = ToneAudioTrack()
    joined = np.concatenate([track.samples(0), track.samples(960), track.samples(1920)]).astype(np.int32)
    # no jump at the frame boundaries bigger than the sine's own steepest step
    steepest = np.abs(np.diff(joined)).max()
    assert abs(int(joined[960]) - int(joined[959])) <= steepest
    assert steepest < 0.3 * 32767 * 2 * np.pi * 440 / 48_000 + 2


class _FiniteTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, count: int) -> None:
        super().__init__()
        self.source = CaptionVideoTrack(width=64, height=48, fps=60)
        self.left = count

    async def recv(self) -> VideoFrame:
        if self.left == 0:
            self.source.stop()
            raise MediaStreamError
        self.left -= 1
        frame = await self.source.recv()
        assert isinstance(frame, VideoFrame)
        return frame


async def test_media_counter_counts_until_the_track_ends() -> None:
    seen: list[int] = []
    counter = MediaCounter(_FiniteTrack(3), on_frame=lambda c: seen.append(c.frames))
    await asyncio.wait_for(counter.first_frame.wait(), TIMEOUT)
    await counter.wait_frames(3, timeout_s=TIMEOUT)
    await asyncio.wait_for(counter.ended.wait(), TIMEOUT)
    assert counter.frames == 3
    assert seen == [1, 2, 3]
    assert counter.frame_size == (64, 48)
    assert counter.first_frame_at is not None
    with pytest.raises(MediaStreamError):
        await counter.wait_frames(4, timeout_s=TIMEOUT)
    await counter.stop()


async def test_media_counter_stop_keeps_counts() -> None:
    track = CaptionVideoTrack(width=64, height=48, fps=60)
    counter = MediaCounter(track)
    await counter.wait_frames(2, timeout_s=TIMEOUT)
    await counter.stop()
    frames = counter.frames
    assert frames >= 2
    assert counter.ended.is_set()
    track.stop()
