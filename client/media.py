"""Synthetic media for the headless client, and counters for what it receives.

:class:`CaptionVideoTrack` sends a moving test pattern with a caption (who is
calling, about what, from where); :class:`ToneAudioTrack` sends a 440 Hz tone.
Both pace themselves in real time like aiortc's own dummy tracks, so they can
be handed straight to ``RTCPeerConnection.addTrack``. :class:`MediaCounter`
drains a received track in a task and counts its frames.

CPU cost is kept low: the background gradient, the caption bitmap and one
second of tone are computed once; a video frame is a copy of the background,
a bar and a pasted caption.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack, VideoStreamTrack
from av import AudioFrame, VideoFrame
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)

AUDIO_SAMPLE_RATE = 48_000
AUDIO_PTIME = 0.020
AUDIO_SAMPLES = int(AUDIO_SAMPLE_RATE * AUDIO_PTIME)  # 960 samples per 20 ms frame
AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_SAMPLE_RATE)

Pixels = npt.NDArray[np.uint8]


def gradient_background(width: int, height: int) -> Pixels:
    """A ``height x width x 3`` RGB gradient: red grows left to right, blue top to bottom."""
    x = np.linspace(40, 215, width, dtype=np.float32)
    y = np.linspace(40, 215, height, dtype=np.float32)
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:, :, 0] = x[np.newaxis, :].astype(np.uint8)
    image[:, :, 1] = 90
    image[:, :, 2] = y[:, np.newaxis].astype(np.uint8)
    return image


def _load_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # a scalable font when Pillow has FreeType
    except (TypeError, ValueError, OSError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def render_caption(lines: Sequence[str], *, font_size: int = 22, max_width: int = 10_000) -> Pixels:
    """Render caption lines as white text on a dark box; returns an RGB array sized to the text."""
    font = _load_font(font_size)
    if not isinstance(font, ImageFont.FreeTypeFont):  # pragma: no cover - the bitmap font is latin-1 only
        lines = [line.encode("latin-1", "replace").decode("latin-1") for line in lines]
    padding = max(4, font_size // 3)
    spacing = max(2, font_size // 4)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    boxes = [measure.textbbox((0, 0), line or " ", font=font) for line in lines]
    line_height = math.ceil(max(box[3] for box in boxes)) if boxes else font_size
    text_width = math.ceil(max(box[2] for box in boxes)) if boxes else 0
    width = min(max_width, text_width + 2 * padding)
    height = len(lines) * line_height + (len(lines) - 1) * spacing + 2 * padding
    image = Image.new("RGB", (max(1, width), max(1, height)), (16, 16, 24))
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((padding, padding + index * (line_height + spacing)), line, fill=(255, 255, 255), font=font)
    return np.asarray(image, dtype=np.uint8).copy()


class CaptionVideoTrack(VideoStreamTrack):
    """A video track showing a sweeping bar over a colour gradient, with a caption of 1–3 lines.

    ``caption`` is a string (one line) or a sequence of lines, e.g. the sender's
    name, the service field and the center. Frames are RGB ``av.VideoFrame`` s
    with a 90 kHz time base, paced at ``fps`` frames a second.
    """

    def __init__(
        self,
        caption: str | Sequence[str] = (),
        *,
        width: int = 640,
        height: int = 480,
        fps: float = 15.0,
        font_size: int | None = None,
    ) -> None:
        super().__init__()
        if width < 16 or height < 16 or width % 2 or height % 2:
            raise ValueError(f"frame size must be even and at least 16x16, got {width}x{height}")
        if not 0 < fps <= 60:
            raise ValueError(f"fps must be in (0, 60], got {fps}")
        lines = [caption] if isinstance(caption, str) else list(caption)
        if len(lines) > 3:
            raise ValueError(f"a caption has at most 3 lines, got {len(lines)}")
        self.width = width
        self.height = height
        self.fps = fps
        self.caption = tuple(lines)
        self._background = gradient_background(width, height)
        self._bar_width = max(4, width // 16)
        size = font_size if font_size is not None else max(10, height // 22)
        self._caption_pixels: Pixels | None = None
        if any(lines):
            pixels = render_caption(lines, font_size=size, max_width=width - 16)
            self._caption_pixels = pixels[: height - 16, : width - 16]
        self._frame_index = 0
        self._ticks_per_frame = round(VIDEO_CLOCK_RATE / fps)
        self._started: float | None = None
        self._pts = 0

    async def next_timestamp(self) -> tuple[int, fractions.Fraction]:
        """Like :meth:`VideoStreamTrack.next_timestamp`, at this track's frame rate instead of a fixed 30 fps."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._started is None:
            self._started = time.time()
            self._pts = 0
        else:
            self._pts += self._ticks_per_frame
            wait = self._started + self._pts / VIDEO_CLOCK_RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        return self._pts, VIDEO_TIME_BASE

    def render(self, index: int) -> Pixels:
        """The RGB pixels of frame number ``index`` (pure: no pacing, no timestamps)."""
        image = self._background.copy()
        period = max(1, round(self.fps * 4))  # the bar crosses the frame in about 4 seconds
        x = (index % period) * (self.width + self._bar_width) // period - self._bar_width
        left, right = max(0, x), min(self.width, x + self._bar_width)
        if right > left:
            image[:, left:right] = (240, 240, 240)
        if self._caption_pixels is not None:
            h, w = self._caption_pixels.shape[:2]
            top = self.height - h - 8
            image[top : top + h, 8 : 8 + w] = self._caption_pixels
        return image

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame.from_ndarray(self.render(self._frame_index), format="rgb24")
        self._frame_index += 1
        frame.pts = pts
        frame.time_base = time_base
        return frame


def tone_samples(frequency: float, sample_rate: int, seconds: int = 1, amplitude: float = 0.3) -> npt.NDArray[np.int16]:
    """``seconds`` of a sine as int16; with an integer frequency it loops seamlessly."""
    t = np.arange(sample_rate * seconds, dtype=np.float64) / sample_rate
    return (np.sin(2 * math.pi * frequency * t) * amplitude * 32767).astype(np.int16)


class ToneAudioTrack(AudioStreamTrack):
    """An audio track playing a sine tone: s16, 48 kHz, 20 ms frames, mono or stereo."""

    def __init__(self, frequency: float = 440.0, *, stereo: bool = False, amplitude: float = 0.3) -> None:
        super().__init__()
        self.frequency = frequency
        self.layout = "stereo" if stereo else "mono"
        self.sample_rate = AUDIO_SAMPLE_RATE
        # One second holds a whole number of 20 ms frames; with an integer frequency also of periods.
        self._tone = tone_samples(frequency, AUDIO_SAMPLE_RATE, amplitude=amplitude)
        self._channels = 2 if stereo else 1
        self._started: float | None = None
        self._pts = 0

    def samples(self, pts: int) -> npt.NDArray[np.int16]:
        """The mono samples of the frame starting at sample ``pts``."""
        start = pts % len(self._tone)
        return self._tone[start : start + AUDIO_SAMPLES]

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._started is None:
            self._started = time.time()
            self._pts = 0
        else:
            self._pts += AUDIO_SAMPLES
            wait = self._started + self._pts / AUDIO_SAMPLE_RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        mono = self.samples(self._pts)
        packed = np.repeat(mono, self._channels) if self._channels > 1 else mono
        frame = AudioFrame.from_ndarray(packed.reshape(1, -1), format="s16", layout=self.layout)
        frame.sample_rate = AUDIO_SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = AUDIO_TIME_BASE
        return frame


class MediaCounter:
    """Drains a received track in a task, counting its frames.

    For video it also records when the first frame arrived (``time.monotonic()``)
    and the frame size. ``on_frame`` is called after every frame (keep it cheap).
    Create it inside a running event loop; :meth:`stop` cancels the task.
    """

    def __init__(self, track: MediaStreamTrack, *, on_frame: Callable[[MediaCounter], None] | None = None) -> None:
        self.track = track
        self.kind: str = track.kind
        self.frames = 0
        self.first_frame_at: float | None = None
        self.frame_size: tuple[int, int] | None = None
        self.first_frame = asyncio.Event()
        self.ended = asyncio.Event()
        self._on_frame = on_frame
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._task = asyncio.create_task(self._run(), name=f"MediaCounter({self.kind})")

    async def _run(self) -> None:
        try:
            while True:
                frame = await self.track.recv()
                self.frames += 1
                if self.first_frame_at is None:
                    self.first_frame_at = time.monotonic()
                    if isinstance(frame, VideoFrame):
                        self.frame_size = (frame.width, frame.height)
                    self.first_frame.set()
                if self._waiters:
                    self._wake()
                if self._on_frame is not None:
                    self._on_frame(self)
        except MediaStreamError:
            logger.debug("%s track ended after %d frames", self.kind, self.frames)
        finally:
            self.ended.set()
            for _, waiter in self._waiters:
                if not waiter.done():
                    waiter.set_exception(MediaStreamError(f"{self.kind} track ended after {self.frames} frames"))
            self._waiters.clear()

    def _wake(self) -> None:
        still = []
        for count, waiter in self._waiters:
            if self.frames >= count and not waiter.done():
                waiter.set_result(None)
            elif not waiter.done():
                still.append((count, waiter))
        self._waiters = still

    async def wait_frames(self, count: int = 1, timeout_s: float | None = None) -> None:
        """Wait until ``count`` frames in total were received (``TimeoutError`` after ``timeout_s`` seconds)."""
        if self.frames >= count:
            return
        if self.ended.is_set():
            raise MediaStreamError(f"{self.kind} track ended after {self.frames} frames")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((count, waiter))
        await asyncio.wait_for(waiter, timeout_s)

    async def stop(self) -> None:
        """Stop counting (the counts stay)."""
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
