"""What to do with each received frame of one track: wait for a keyframe, stamp it, write it.

:class:`TrackRecorder` is plain logic around three injected things: a clock
(``time.monotonic``), a way to ask the sender for a keyframe (RTCP PLI) and
a writer factory. It knows nothing of aiortc or sockets, so tests drive it
frame by frame.

Video: nothing is written until a keyframe arrives (a file starts with a
picture that decodes on its own). A keyframe is asked for when the stream
starts without one and again every :data:`KEYFRAME_RETRY_S` while waiting.
When frames were lost for good (a ``gap``: the tap saw the sequence numbers
jump) the frames that follow reference pictures the file does not have, so
the track waits for a keyframe again, asking for one, and drops what comes
until then (the picture freezes, as in a browser).

Timestamps: each track is placed on its participant's timeline, which starts
(0 ms) when the participant's first frame that is written arrived. A track's
first written frame is placed at its arrival time on that timeline and later
frames by their RTP timestamps (the sender's media clock, free of network
jitter), so audio and video stay in step to within the arrival jitter of
their first frames. A new SSRC, a timestamp going backwards, or one running
more than :data:`RESYNC_S` ahead of real time re-anchors the track at the
frame's arrival time. Written timestamps never decrease.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from recordings.bitstream import opus_packet_samples, vp8_keyframe_size
from recordings.tap import EncodedFrame
from recordings.writer import Codec

KEYFRAME_RETRY_S = 0.5
RESYNC_S = 5.0
VIDEO_CLOCK_RATE = 90_000
AUDIO_CLOCK_RATE = 48_000


class FrameWriter(Protocol):
    frames: int

    def write(self, data: bytes, pts_ms: int, *, duration_ms: int = 0, keyframe: bool = True) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class WriterSpec:
    """What a writer needs to open its file: the codec, and the picture size for video."""

    codec: Codec
    width: int = 0
    height: int = 0


WriterFactory = Callable[[WriterSpec], FrameWriter]


class Timeline:
    """A participant's recording clock: 0 at the first written frame of any of its tracks."""

    def __init__(self) -> None:
        self.origin: float | None = None  # time.monotonic() of 0 ms

    def offset(self, arrival: float) -> float:
        """Seconds since the origin (fixing the origin at ``arrival`` if not set yet)."""
        if self.origin is None:
            self.origin = arrival
        return arrival - self.origin


@dataclass
class TrackStats:
    received: int = 0
    written: int = 0
    dropped: int = 0  # video frames thrown away while waiting for a keyframe
    gaps: int = 0
    keyframe_requests: int = 0
    resyncs: int = 0


class TrackRecorder:
    """Receives one track's :class:`~recordings.tap.EncodedFrame` s and writes the ones worth keeping."""

    def __init__(
        self,
        kind: str,
        *,
        timeline: Timeline,
        open_writer: WriterFactory,
        request_keyframe: Callable[[], None],
        clock: Callable[[], float],
    ) -> None:
        if kind not in ("audio", "video"):
            raise ValueError(f"kind is 'audio' or 'video', not {kind!r}")
        self.kind = kind
        self.codec: Codec = "vp8" if kind == "video" else "opus"
        self.clock_rate = VIDEO_CLOCK_RATE if kind == "video" else AUDIO_CLOCK_RATE
        self.stats = TrackStats()
        self.writer: FrameWriter | None = None
        self._timeline = timeline
        self._open_writer = open_writer
        self._request_keyframe = request_keyframe
        self._clock = clock
        self._waiting_keyframe = kind == "video"
        self._last_request: float | None = None
        self._ssrc: int | None = None
        # anchor: the RTP timestamp (extended to 64 bits) placed at anchor_s on the timeline
        self._anchor_s = 0.0
        self._extended = 0
        self._last_rtp: int | None = None
        self._last_pts_ms: int | None = None
        self.closed = False

    @property
    def waiting_keyframe(self) -> bool:
        return self._waiting_keyframe

    def on_frame(self, frame: EncodedFrame) -> None:
        if self.closed:
            return
        self.stats.received += 1
        new_source = self._ssrc is not None and frame.ssrc != self._ssrc
        if frame.gap or new_source:
            self.stats.gaps += 1
        if self.kind == "video":
            size = vp8_keyframe_size(frame.data)
            if size is None and (frame.gap or new_source):
                self._waiting_keyframe = True
            if self._waiting_keyframe:
                if size is None:
                    self.stats.dropped += 1
                    self._ask_keyframe()
                    return
                self._waiting_keyframe = False
            pts_ms = self._stamp(frame, new_source)
            if self.writer is None:
                assert size is not None  # the first written video frame is a keyframe
                self.writer = self._open_writer(WriterSpec(self.codec, width=size[0], height=size[1]))
            self.writer.write(frame.data, pts_ms, keyframe=size is not None)
        else:
            pts_ms = self._stamp(frame, new_source)
            if self.writer is None:
                self.writer = self._open_writer(WriterSpec(self.codec))
            duration_ms = round(opus_packet_samples(frame.data) * 1000 / AUDIO_CLOCK_RATE)
            self.writer.write(frame.data, pts_ms, duration_ms=duration_ms)
        self._ssrc = frame.ssrc
        self.stats.written += 1

    def _ask_keyframe(self) -> None:
        now = self._clock()
        if self._last_request is None or now - self._last_request >= KEYFRAME_RETRY_S:
            self._last_request = now
            self.stats.keyframe_requests += 1
            self._request_keyframe()

    def _stamp(self, frame: EncodedFrame, new_source: bool) -> int:
        """The frame's timestamp on the timeline, in ms (never less than the previous one)."""
        arrival_s = self._timeline.offset(frame.arrival)
        if self._last_rtp is None or new_source:
            self._anchor(frame.timestamp, arrival_s)
        else:
            delta = (frame.timestamp - self._last_rtp) & 0xFFFFFFFF
            if delta >= 1 << 31:
                delta -= 1 << 32
            self._extended += delta
            self._last_rtp = frame.timestamp
            media_s = self._anchor_s + self._extended / self.clock_rate
            if delta < 0 or media_s - arrival_s > RESYNC_S:
                self.stats.resyncs += 1
                self._anchor(frame.timestamp, arrival_s)
        pts_ms = round((self._anchor_s + self._extended / self.clock_rate) * 1000)
        if self._last_pts_ms is not None and pts_ms <= self._last_pts_ms:
            pts_ms = self._last_pts_ms + 1
        self._last_pts_ms = pts_ms
        return pts_ms

    def _anchor(self, rtp: int, arrival_s: float) -> None:
        self._last_rtp = rtp
        self._extended = 0
        last_s = (self._last_pts_ms or 0) / 1000
        self._anchor_s = max(arrival_s, last_s) if self._last_pts_ms is not None else arrival_s

    def close(self) -> None:
        """Close the writer (if the track wrote anything)."""
        self.closed = True
        if self.writer is not None:
            self.writer.close()
