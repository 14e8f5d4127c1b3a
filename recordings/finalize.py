"""Turn a recording's part files into one finished WebM: stream copy, an index, an atomic rename.

:func:`finalize` merges a recording's per-track part files (see
:mod:`recordings.files`) into ``<stem>.webm``: the packets are copied as they
are (no decoding, no encoding) in timestamp order into a new file, which the
muxer, writing to a seekable file this time, gives a duration and Cues (moved
to the front, so a browser can seek before it has the whole file). The new
file is written as ``<stem>.webm.tmp``, fsynced and renamed over the final
name; only then are the parts deleted. A crash at any point leaves either the
parts (finalize again) or the finished file.

:func:`finalize_pending` does that for every recording under the root that
still has part files and that no live process holds the lock of: the ones a
crashed recorder left behind.

:func:`describe` reads a finished file into a :class:`~recordings.info.RecordingInfo`.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import heapq
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from av.container import InputContainer
from av.packet import Packet

from recordings import files
from recordings.info import RecordingInfo, StreamInfo
from recordings.writer import TIME_BASE

logger = logging.getLogger(__name__)

FINAL_OPTIONS: dict[str, str] = {"cues_to_front": "1"}
TAG_CALL_ID = "CALL_ID"
TAG_PARTICIPANT = "PARTICIPANT"
TAG_CREATION_TIME = "creation_time"
_KEPT_TAGS = (TAG_CALL_ID, TAG_PARTICIPANT, TAG_CREATION_TIME)


class RecordingBusyError(RuntimeError):
    """Another process (or another lock object) holds the recording's lock: it is still being written."""


def finalize(path: Path, *, lock: files.RecordingLock | None = None, recovered: bool = False) -> RecordingInfo | None:
    """Merge the part files of the recording ``path`` (``<dir>/<stem>.webm``) into ``path``.

    Returns the finished recording's info, or ``None`` when there was no media
    at all (the empty parts are removed). With no parts left but ``path``
    there (finalized before), just describes it. ``lock`` is the recording's
    lock if the caller holds it (the recorder does while it records);
    otherwise it is taken here, and :class:`RecordingBusyError` raised if
    someone else holds it. The lock file is removed at the end either way.
    """
    own = lock is None
    lock = lock or files.RecordingLock(path)
    if not lock.acquire():
        raise RecordingBusyError(f"{path} is being recorded by another process")
    try:
        parts = files.parts_of(path)
        if parts:
            merged = _merge(parts, files.tmp_path(path))
            if merged:
                _fsync_file(files.tmp_path(path))
                os.replace(files.tmp_path(path), path)
            for part in parts:
                part.path.unlink()
            files.fsync_dir(path.parent)
        with contextlib.suppress(FileNotFoundError):
            files.tmp_path(path).unlink()
        info = describe(path, recovered=recovered) if path.exists() else None
    finally:
        lock.release(delete=True)
    if own:
        logger.debug("finalized %s", path)
    return info


def finalize_pending(root: Path, *, call_id: str | None = None) -> list[RecordingInfo]:
    """Finalize every recording under ``root`` (or only in the call ``call_id``) left with part files.

    Recordings whose lock a live process holds are left alone. A recording
    that fails to finalize is logged and skipped (its parts stay for the next
    attempt). Stale locks and temporary files of finished recordings are
    removed.
    """
    directories = [files.call_dir(root, call_id)] if call_id is not None else sorted(root.iterdir())
    infos = []
    for directory in directories:
        if not directory.is_dir():
            continue
        for final in files.pending_recordings(directory):
            lock = files.RecordingLock(final)
            if not lock.acquire():
                logger.info("%s is still being recorded; left alone", final)
                continue
            try:
                info = finalize(final, lock=lock, recovered=True)
            except Exception:
                logger.exception("could not finalize %s; its parts stay for the next attempt", final)
                lock.release()
                continue
            if info is not None:
                logger.warning("finalized %s after its recorder stopped unexpectedly", final)
                infos.append(info)
        _remove_stale(directory)
    return infos


def _remove_stale(directory: Path) -> None:
    for lock_file in directory.glob(f"*{files.LOCK_SUFFIX}"):
        final = lock_file.with_name(lock_file.name[: -len(files.LOCK_SUFFIX)] + files.FINAL_SUFFIX)
        lock = files.RecordingLock(final)
        if not files.parts_of(final) and lock.acquire():
            lock.release(delete=True)
    for tmp in directory.glob(f"*{files.TMP_SUFFIX}"):
        final = tmp.with_name(tmp.name[: -len(files.TMP_SUFFIX)] + files.FINAL_SUFFIX)
        lock = files.RecordingLock(final)
        if not files.parts_of(final) and lock.acquire():
            tmp.unlink(missing_ok=True)
            lock.release(delete=True)


# -- merging -----------------------------------------------------------------------------------------------------------


def _open_part(part: files.PartFile) -> InputContainer | None:
    try:
        container = av.open(str(part.path), "r")
    except (av.FFmpegError, EOFError) as exc:  # a header cut short: the recorder died before the first cluster
        logger.warning("skipping unreadable part %s: %s", part.path, exc)
        return None
    if len(container.streams) != 1:
        container.close()
        logger.warning("skipping part %s: it holds %d streams, not 1", part.path, len(container.streams))
        return None
    return container


def _packets(container: InputContainer, index: int) -> Iterator[tuple[int, int, Packet[Any]]]:
    """``(dts, index, packet)`` of a part's packets, the missing durations filled from the next packet."""
    previous: Packet[Any] | None = None
    interval = 0
    try:
        for packet in container.demux(container.streams[0]):
            if packet.dts is None or packet.pts is None or packet.size == 0 or packet.is_corrupt:
                continue
            if previous is not None:
                assert previous.pts is not None and previous.dts is not None
                interval = max(packet.pts - previous.pts, 0)
                if not previous.duration:
                    previous.duration = interval
                yield previous.dts, index, previous
            previous = packet
    except (av.FFmpegError, EOFError) as exc:  # the end of a part cut by a crash
        logger.info("part %s ends early: %s", container.name, exc)
    if previous is not None:
        assert previous.dts is not None
        if not previous.duration:
            previous.duration = interval
        yield previous.dts, index, previous


def _merge(parts: list[files.PartFile], target: Path) -> bool:
    """Stream-copy the parts' packets into ``target``; ``False`` (and no file) when they hold none."""
    inputs = [container for part in parts if (container := _open_part(part)) is not None]
    try:
        if not inputs:
            return False
        metadata = {key: value for key, value in inputs[0].metadata.items() if key in _KEPT_TAGS}
        with av.open(str(target), "w", format="webm", container_options=FINAL_OPTIONS) as out:
            out.metadata.update(metadata)
            streams = [out.add_stream_from_template(container.streams[0], opaque=True) for container in inputs]
            for stream in streams:
                stream.time_base = TIME_BASE
            count = 0
            merged = heapq.merge(*(_packets(container, index) for index, container in enumerate(inputs)))
            for _, index, packet in merged:
                packet.stream = streams[index]
                out.mux_one(packet)
                count += 1
            if count == 0:
                raise _EmptyError
    except _EmptyError:
        target.unlink(missing_ok=True)
        return False
    finally:
        for container in inputs:
            container.close()
    return True


class _EmptyError(Exception):
    pass


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- describing a finished file ----------------------------------------------------------------------------------------


@dataclass
class _Span:
    frames: int = 0
    start: int | None = None
    end: int = 0


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _started_at(value: str | None, fallback: Path) -> datetime.datetime:
    if value:
        with contextlib.suppress(ValueError):
            parsed = datetime.datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)
    return datetime.datetime.fromtimestamp(fallback.stat().st_mtime, datetime.UTC)


def describe(path: Path, *, recovered: bool = False) -> RecordingInfo:
    """The :class:`RecordingInfo` of a finished recording file (every packet is read, none decoded)."""
    with av.open(str(path), "r") as container:
        metadata = dict(container.metadata)
        spans = [_Span() for _ in container.streams]
        for packet in container.demux():
            if packet.pts is None or packet.size == 0:
                continue
            span = spans[packet.stream.index]
            span.frames += 1
            if span.start is None:
                span.start = packet.pts
            span.end = max(span.end, packet.pts + (packet.duration or 0))
        streams = []
        for stream, span in zip(container.streams, spans, strict=True):
            time_base = float(stream.time_base or TIME_BASE)
            start = span.start or 0
            width = height = 0
            if stream.type == "video":
                width, height = stream.codec_context.width, stream.codec_context.height  # type: ignore[attr-defined]
            streams.append(
                StreamInfo(
                    kind=stream.type,
                    codec=stream.codec_context.name if stream.codec_context else "unknown",
                    frames=span.frames,
                    start_s=round(start * time_base, 3),
                    duration_s=round((span.end - start) * time_base, 3) if span.frames else 0.0,
                    width=width,
                    height=height,
                )
            )
    spans_s = [(s.start_s, s.start_s + s.duration_s) for s in streams if s.frames]
    first = min((start for start, _ in spans_s), default=0.0)
    last = max((end for _, end in spans_s), default=0.0)
    started_at = _started_at(metadata.get(TAG_CREATION_TIME), path) + datetime.timedelta(seconds=first)
    directory = path.parent
    return RecordingInfo(
        call_id=metadata.get(TAG_CALL_ID, directory.name),
        participant=metadata.get(TAG_PARTICIPANT, files.stem_of(path).split("-")[0]),
        path=path,
        started_at=started_at,
        duration_s=round(last - first, 3),
        size_bytes=path.stat().st_size,
        sha256=sha256_of(path),
        streams=tuple(streams),
        recovered=recovered,
    )
