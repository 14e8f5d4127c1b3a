"""What a finished recording reports: the value the server keeps in its records and event log."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a finished recording, in file order."""

    kind: str  # "audio" or "video"
    codec: str  # "vp8" or "opus"
    frames: int  # packets in the file: one encoded frame each
    start_s: float  # first frame, seconds after the recording's start
    duration_s: float  # from the first frame to the end of the last one
    width: int = 0  # video only
    height: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "codec": self.codec,
            "frames": self.frames,
            "start_s": self.start_s,
            "duration_s": self.duration_s,
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamInfo:
        return cls(
            kind=str(data["kind"]),
            codec=str(data["codec"]),
            frames=int(data["frames"]),
            start_s=float(data["start_s"]),
            duration_s=float(data["duration_s"]),
            width=int(data.get("width", 0)),
            height=int(data.get("height", 0)),
        )


@dataclass(frozen=True)
class RecordingInfo:
    """A finished (finalized) recording of one participant of one call.

    ``started_at`` is the wall-clock time (UTC) of the first recorded frame;
    ``duration_s`` runs from there to the end of the last frame of any
    stream. ``sha256`` and ``size_bytes`` are of the file at ``path`` as
    finalized. ``recovered`` is true when the recording was finalized after
    its recorder died (``finalize_pending``) rather than at a clean stop: it
    then ends up to about a second before the crash.
    """

    call_id: str
    participant: str
    path: Path
    started_at: datetime.datetime
    duration_s: float
    size_bytes: int
    sha256: str
    streams: tuple[StreamInfo, ...]
    recovered: bool = False

    @property
    def codecs(self) -> tuple[str, ...]:
        """The codec of each stream, in file order (e.g. ``("opus", "vp8")``)."""
        return tuple(stream.codec for stream in self.streams)

    @property
    def frames(self) -> dict[str, int]:
        """Frames per kind of stream (summed if a kind has several streams)."""
        counts: dict[str, int] = {}
        for stream in self.streams:
            counts[stream.kind] = counts.get(stream.kind, 0) + stream.frames
        return counts

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (``started_at`` as ISO 8601, ``path`` as a string)."""
        return {
            "call_id": self.call_id,
            "participant": self.participant,
            "path": str(self.path),
            "started_at": self.started_at.isoformat(),
            "duration_s": self.duration_s,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "streams": [stream.to_dict() for stream in self.streams],
            "recovered": self.recovered,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecordingInfo:
        return cls(
            call_id=str(data["call_id"]),
            participant=str(data["participant"]),
            path=Path(data["path"]),
            started_at=datetime.datetime.fromisoformat(data["started_at"]),
            duration_s=float(data["duration_s"]),
            size_bytes=int(data["size_bytes"]),
            sha256=str(data["sha256"]),
            streams=tuple(StreamInfo.from_dict(stream) for stream in data["streams"]),
            recovered=bool(data.get("recovered", False)),
        )
