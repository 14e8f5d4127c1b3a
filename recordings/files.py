"""Where a recording lives on disk, and the lock that tells a live recording from a crashed one.

One folder per call under the recordings root, one recording per participant::

    <root>/<call_id>/visitor.webm                   finished: both tracks, duration, Cues
    <root>/<call_id>/visitor.0-audio.webm.part      being written (or left by a crash): one track each,
    <root>/<call_id>/visitor.1-video.webm.part      numbered by the track's m-line in the offer
    <root>/<call_id>/visitor.lock                   held (flock) by the process writing the parts
    <root>/<call_id>/visitor.webm.tmp               being finalized

A participant that offers again in the same call (a reconnect) gets a new
recording ``visitor-2``, ``visitor-3``... next to the first.

The ``.part`` files are the unfinalized ones: :func:`recordings.finalize.finalize_pending`
finds them. The lock is an ``flock`` on ``<stem>.lock``, held from the
first part file until the recording is finalized; the kernel drops it when
the holder dies (even by SIGKILL), which is how a crashed recording is told
from one another process is still writing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
from dataclasses import dataclass
from pathlib import Path

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
FINAL_SUFFIX = ".webm"
PART_SUFFIX = ".webm.part"
TMP_SUFFIX = ".webm.tmp"
LOCK_SUFFIX = ".lock"
_PART_NAME = re.compile(r"^(?P<stem>[A-Za-z0-9_-]+)\.(?P<index>\d+)-(?P<kind>audio|video)\.webm\.part$")


def check_name(value: str, what: str) -> str:
    """``value`` if it is a safe file-name component (letters, digits, ``_``, ``-``), else ``ValueError``."""
    if not NAME_PATTERN.match(value):
        raise ValueError(f"{what} must be 1-128 letters, digits, '_' or '-', got {value!r}")
    return value


def call_dir(root: Path, call_id: str) -> Path:
    return root / check_name(call_id, "call_id")


def final_path(directory: Path, stem: str) -> Path:
    return directory / f"{stem}{FINAL_SUFFIX}"


def part_path(directory: Path, stem: str, index: int, kind: str) -> Path:
    return directory / f"{stem}.{index}-{kind}{PART_SUFFIX}"


def tmp_path(final: Path) -> Path:
    return final.with_name(final.name[: -len(FINAL_SUFFIX)] + TMP_SUFFIX)


def lock_path(final: Path) -> Path:
    return final.with_name(final.name[: -len(FINAL_SUFFIX)] + LOCK_SUFFIX)


def stem_of(final: Path) -> str:
    if not final.name.endswith(FINAL_SUFFIX):
        raise ValueError(f"a recording's path ends in {FINAL_SUFFIX}: {final}")
    return final.name[: -len(FINAL_SUFFIX)]


@dataclass(frozen=True, order=True)
class PartFile:
    """One track's part file, parsed from its name."""

    index: int
    kind: str
    path: Path


def parts_of(final: Path) -> list[PartFile]:
    """The part files of the recording whose finished file is ``final``, in m-line order."""
    stem = stem_of(final)
    found = []
    for path in final.parent.glob(f"{stem}.*{PART_SUFFIX}"):
        match = _PART_NAME.match(path.name)
        if match and match["stem"] == stem:
            found.append(PartFile(int(match["index"]), match["kind"], path))
    return sorted(found)


def pending_recordings(directory: Path) -> list[Path]:
    """Final paths of the recordings in ``directory`` that have part files left."""
    stems = set()
    for path in directory.glob(f"*{PART_SUFFIX}"):
        match = _PART_NAME.match(path.name)
        if match:
            stems.add(match["stem"])
    return [final_path(directory, stem) for stem in sorted(stems)]


def free_stem(directory: Path, participant: str, taken: set[str]) -> str:
    """``participant``, or ``participant-2``, ``-3``... : the first stem with no files and not in ``taken``."""
    check_name(participant, "participant")
    n = 1
    while True:
        stem = participant if n == 1 else f"{participant}-{n}"
        final = final_path(directory, stem)
        if stem not in taken and not final.exists() and not lock_path(final).exists() and not parts_of(final):
            return stem
        n += 1


class RecordingLock:
    """An exclusive ``flock`` on a recording's ``<stem>.lock`` file.

    :meth:`acquire` returns ``False`` when another process (or another lock
    object in this one) holds it. :meth:`release` drops it and, with
    ``delete``, removes the file first so the folder ends up clean.
    """

    def __init__(self, final: Path) -> None:
        self.path = lock_path(final)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    return False
                raise
            # The holder may have deleted the file between our open and our flock: lock the file that is there now.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.write(fd, f"{os.getpid()}\n".encode())
                self._fd = fd
                return True
            os.close(fd)

    def release(self, *, delete: bool = False) -> None:
        if self._fd is None:
            return
        if delete:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        os.close(self._fd)
        self._fd = None


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
