"""Real, small WebM recordings for the review tests: VP8 video and Opus audio encoded with PyAV.

A file made here looks to :func:`recordings.finalize.describe` like one the
recorder finalized: the same tags (``creation_time``, ``CALL_ID``,
``PARTICIPANT``), a VP8 and an Opus stream, Cues at the front so a browser can
seek in it.
"""

from __future__ import annotations

import datetime
import fractions
from pathlib import Path

import av
import numpy as np

from recordings import files
from recordings.finalize import FINAL_OPTIONS, TAG_CALL_ID, TAG_CREATION_TIME, TAG_PARTICIPANT, describe
from recordings.info import RecordingInfo

FPS = 15
WIDTH, HEIGHT = 160, 120
SAMPLE_RATE = 48000
AUDIO_FRAME = 960  # 20 ms


def _picture(index: int, shade: int) -> np.ndarray:
    """A frame that changes every frame (a bar moving across), so the video visibly plays."""
    image = np.full((HEIGHT, WIDTH, 3), shade, dtype=np.uint8)
    x = (index * 4) % WIDTH
    image[:, x : x + 8] = (255, 255, 0)
    image[HEIGHT // 2 - 4 : HEIGHT // 2 + 4, : (index % FPS + 1) * WIDTH // FPS] = (0, 0, 255)
    return image


def make_webm(path: Path, *, call_id: str, participant: str, started_at: datetime.datetime, seconds: float = 3.0,
              shade: int = 40) -> Path:
    """Encode ``seconds`` of a moving picture (VP8) and a tone (Opus) into the WebM file ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="webm", container_options=FINAL_OPTIONS) as out:
        out.metadata[TAG_CREATION_TIME] = started_at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out.metadata[TAG_CALL_ID] = call_id
        out.metadata[TAG_PARTICIPANT] = participant
        video = out.add_stream("libvpx", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.bit_rate = 200_000
        video.options = {"deadline": "realtime", "cpu-used": "8", "g": str(FPS)}
        audio = out.add_stream("libopus", rate=SAMPLE_RATE)
        audio.layout = "mono"  # type: ignore[attr-defined]
        for index in range(round(seconds * FPS)):
            frame = av.VideoFrame.from_ndarray(_picture(index, shade), format="rgb24")
            frame.pts = index
            frame.time_base = fractions.Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
        for index in range(len(tone) // AUDIO_FRAME):
            samples = np.ascontiguousarray(tone[index * AUDIO_FRAME : (index + 1) * AUDIO_FRAME].reshape(1, -1))
            sound = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            sound.sample_rate = SAMPLE_RATE
            sound.pts = index * AUDIO_FRAME
            sound.time_base = fractions.Fraction(1, SAMPLE_RATE)
            out.mux(audio.encode(sound))
        out.mux(audio.encode(None))
    return path


def make_recording(root: Path, *, call_id: str, participant: str, started_at: datetime.datetime,
                   seconds: float = 3.0, stem: str | None = None, shade: int = 40) -> RecordingInfo:
    """A finished recording where the recorder puts it (``<root>/<call_id>/<participant>.webm``), described."""
    path = files.final_path(files.call_dir(root, call_id), stem or participant)
    make_webm(path, call_id=call_id, participant=participant, started_at=started_at, seconds=seconds, shade=shade)
    return describe(path)
