"""One track's crash-safe part file: encoded frames muxed into WebM as they come, never re-encoded.

Each track gets its own file (see :mod:`recordings.files`), because libavformat
interleaves the streams of one file by timestamp and holds a packet until
every stream has one queued, and it never gives up waiting for a VP8 stream
(``ff_interleave_packet_per_dts`` leaves VP8/VP9 out of its
``max_interleave_delta`` escape). One file per participant would keep all of
its audio in memory, and lose it in a crash, for as long as its video stalls
or has not started (no keyframe yet). With one stream per file every packet
goes straight to the muxer; :func:`recordings.finalize.finalize` merges the
tracks into one file afterwards.

Muxer options (FFmpeg's matroska/webm muxer, see :data:`MUX_OPTIONS`):

- ``live=1``: append only. The muxer never seeks back to patch sizes, the
  duration or an index, so a file cut anywhere is a valid prefix; the Cues
  and duration come with finalization.
- ``cluster_time_limit=500`` (ms) and ``cluster_size_limit``: the muxer keeps
  the open cluster in memory and writes it whole when it closes, so these
  bound what a crash can lose (about half a second).
- ``flush_packets=1``: the AVIO buffer is flushed after every packet, so a
  closed cluster reaches the kernel at once instead of when 32 KiB piled up.

Nothing is fsynced while recording: a killed process loses at most the open
cluster; a power cut may lose what the kernel had not written yet.
"""

from __future__ import annotations

import fractions
import functools
import io
from pathlib import Path
from typing import Literal

import av
from av.container import InputContainer, OutputContainer
from av.stream import Stream

from recordings.bitstream import opus_head

TIME_BASE = fractions.Fraction(1, 1000)  # Matroska's default timestamp scale: milliseconds
CLUSTER_TIME_LIMIT_MS = 500
CLUSTER_SIZE_LIMIT = 256 * 1024
MUX_OPTIONS: dict[str, str] = {
    "live": "1",
    "cluster_time_limit": str(CLUSTER_TIME_LIMIT_MS),
    "cluster_size_limit": str(CLUSTER_SIZE_LIMIT),
    "flush_packets": "1",
}

Codec = Literal["vp8", "opus"]

# A 20 ms Opus packet of silence (CELT, fullband): the payload of the template below.
_OPUS_SILENCE = b"\xf8\xff\xfe"


@functools.cache
def _opus_template() -> tuple[InputContainer, Stream]:
    """An Opus stream to create output streams from.

    PyAV's ``add_mux_stream`` (a stream without a codec context) cannot set an
    audio stream's channel layout or its extradata, which Matroska needs as
    the track's CodecPrivate (``OpusHead``); ``add_stream_from_template`` can,
    through the template's codec context, which is never opened (nothing is
    decoded or encoded). The template comes from a one-packet WebM built in
    memory; kept open for the life of the process.
    """
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm") as out:
        stream = out.add_mux_stream("opus", rate=48_000, time_base=TIME_BASE)
        packet = av.Packet(_OPUS_SILENCE)
        packet.pts = packet.dts = 0
        packet.duration = 20
        packet.time_base = TIME_BASE
        packet.stream = stream
        out.mux(packet)
    buffer.seek(0)
    template = av.open(buffer, "r")
    return template, template.streams.audio[0]


class TrackWriter:
    """Writes one track's encoded frames to a part file (``.webm.part``), as received.

    ``metadata`` goes into the file's global tags (call id, participant, the
    wall-clock start as ``creation_time``), so a part left by a crash still
    says what it is. Timestamps are milliseconds on the recording's timeline;
    :meth:`write` needs them non-decreasing.
    """

    def __init__(
        self,
        path: Path,
        codec: Codec,
        *,
        metadata: dict[str, str],
        width: int = 0,
        height: int = 0,
        channels: int = 2,
    ) -> None:
        self.path = path
        self.codec: Codec = codec
        self.frames = 0
        self.bytes = 0
        self.last_pts: int | None = None
        container: OutputContainer = av.open(str(path), "w", format="webm", container_options=MUX_OPTIONS)
        try:
            container.metadata.update(metadata)
            if codec == "vp8":
                stream = container.add_mux_stream("vp8", width=width, height=height, time_base=TIME_BASE)
            else:
                stream = container.add_stream_from_template(_opus_template()[1], opaque=True)
                context = stream.codec_context
                context.extradata = opus_head(channels)
                context.layout = "stereo" if channels == 2 else "mono"  # type: ignore[attr-defined]
                context.sample_rate = 48_000  # type: ignore[attr-defined]
                stream.time_base = TIME_BASE
            container.start_encoding()  # the header (and the tags) on disk now, not with the first frame
        except BaseException:
            container.close()
            raise
        self._container = container
        self._stream = stream

    def write(self, data: bytes, pts_ms: int, *, duration_ms: int = 0, keyframe: bool = True) -> None:
        packet = av.Packet(data)
        packet.pts = packet.dts = pts_ms
        packet.duration = duration_ms
        packet.time_base = TIME_BASE
        packet.is_keyframe = keyframe
        packet.stream = self._stream
        self._container.mux_one(packet)
        self.frames += 1
        self.bytes += len(data)
        self.last_pts = pts_ms

    def close(self) -> None:
        """Write what the muxer still holds (the open cluster) and close the file."""
        self._container.close()
