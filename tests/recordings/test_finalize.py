"""Part files and their finalization: what a crash leaves is playable; finalized files have a duration and Cues."""

from __future__ import annotations

import fractions
import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload

from client.media import CaptionVideoTrack, ToneAudioTrack
from recordings import files
from recordings.bitstream import vp8_keyframe_size
from recordings.finalize import RecordingBusyError, describe, finalize, finalize_pending
from recordings.writer import CLUSTER_TIME_LIMIT_MS, TrackWriter
from tests.recordings.senders import packets_of

SECONDS = 4
FPS = 15
KEYFRAME_EVERY = 15
CUES_ID = b"\x1c\x53\xbb\x6b"  # Matroska element ids
CLUSTER_ID = b"\x1f\x43\xb6\x75"
METADATA = {"creation_time": "2030-01-02T03:04:05.000000Z", "CALL_ID": "call-9", "PARTICIPANT": "clerk"}


@dataclass(frozen=True)
class Media:
    video: list[bytes]  # VP8 frames, a keyframe every second
    audio: list[bytes]  # 20 ms Opus packets


@pytest.fixture(scope="module")
def media() -> Media:
    encoder = Vp8Encoder()
    source = CaptionVideoTrack(["finalize"])
    video = []
    for index in range(SECONDS * FPS):
        frame = av.VideoFrame.from_ndarray(source.render(index), format="rgb24")
        frame.pts = index * 6000
        frame.time_base = fractions.Fraction(1, 90000)
        payloads, _ = encoder.encode(frame, force_keyframe=index % KEYFRAME_EVERY == 0)
        video.append(b"".join(vp8_depayload(p) for p in payloads))
    opus = OpusEncoder()
    tone = ToneAudioTrack()
    audio = []
    for index in range(SECONDS * 50):
        samples = np.ascontiguousarray(tone.samples(index * 960).reshape(1, -1))
        sound = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        sound.sample_rate = 48000
        sound.pts = index * 960
        sound.time_base = fractions.Fraction(1, 48000)
        audio += opus.encode(sound)[0]
    return Media(video, audio)


def write_parts(directory: Path, media: Media, stem: str = "clerk", *, close: bool = True) -> list[TrackWriter]:
    """Both tracks as a recorder writes them: audio from 0 ms, video from 100 ms."""
    directory.mkdir(parents=True, exist_ok=True)
    audio = TrackWriter(files.part_path(directory, stem, 1, "audio"), "opus", metadata=METADATA)
    video = TrackWriter(files.part_path(directory, stem, 0, "video"), "vp8", metadata=METADATA, width=640, height=480)
    for index, data in enumerate(media.audio):
        audio.write(data, index * 20, duration_ms=20)
    for index, data in enumerate(media.video):
        video.write(data, 100 + round(index * 1000 / FPS), keyframe=vp8_keyframe_size(data) is not None)
    if close:
        audio.close()
        video.close()
    return [audio, video]


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_finalize_merges_the_parts_with_duration_and_cues(tmp_path: Path, media: Media) -> None:
    write_parts(tmp_path / "call-9", media)
    final = tmp_path / "call-9" / "clerk.webm"
    info = finalize(final)
    assert info is not None
    assert sorted(p.name for p in final.parent.iterdir()) == ["clerk.webm"]  # parts, lock and tmp are gone

    assert info.call_id == "call-9" and info.participant == "clerk"
    assert info.started_at.isoformat() == "2030-01-02T03:04:05+00:00"
    assert info.sha256 == hashlib.sha256(final.read_bytes()).hexdigest()
    assert info.size_bytes == final.stat().st_size
    assert info.codecs == ("vp8", "opus")  # in m-line order
    assert info.frames == {"video": len(media.video), "audio": len(media.audio)}
    assert info.duration_s == pytest.approx(SECONDS + 0.1, abs=0.01)  # video from 0.1 s to the end of its last frame
    video_info = info.streams[0]
    assert (video_info.width, video_info.height) == (640, 480)
    assert video_info.start_s == pytest.approx(0.1)

    # Stream copy: the same bytes, at the same times.
    assert [data for _, data in packets_of(final, "video")] == media.video
    assert [data for _, data in packets_of(final, "audio")] == media.audio
    assert [pts for pts, _ in packets_of(final, "audio")][:3] == [0, 20, 40]

    header = final.read_bytes()
    assert -1 < header.find(CUES_ID) < header.find(CLUSTER_ID)  # the index, moved in front of the media
    with av.open(str(final)) as container:
        assert container.duration is not None
        assert container.duration / 1_000_000 == pytest.approx(info.duration_s, abs=0.01)
        stream = container.streams.video[0]
        assert len(stream.index_entries) >= SECONDS * FPS // KEYFRAME_EVERY  # Cues: one per keyframe (at least)
        # Seeking goes to the keyframe before the target and decodes from there.
        container.seek(2_500_000, backward=True, any_frame=False)
        frame = next(container.decode(stream))
        assert frame.time is not None and 1.9 <= frame.time <= 2.6
    assert decoded_frames(final) == len(media.video)

    again = finalize(final)  # nothing left to merge: describes the same file
    assert again == info


def test_a_live_part_holds_all_but_the_open_cluster(tmp_path: Path, media: Media) -> None:
    """What SIGKILL leaves: the file as it is while still being written is playable up to the last cluster."""
    writers = write_parts(tmp_path / "call-9", media, close=False)
    copy = tmp_path / "copy"
    copy.mkdir()
    for writer in writers:
        shutil.copy(writer.path, copy / writer.path.name)
    for writer in writers:
        writer.close()
    crashed_video = copy / files.part_path(copy, "clerk", 0, "video").name
    with av.open(str(crashed_video)) as container:
        assert container.duration is None  # live: no duration, no index until finalized
    data = crashed_video.read_bytes()
    assert CUES_ID not in data[: data.find(CLUSTER_ID)]
    video = packets_of(crashed_video, "video")
    lost_ms = SECONDS * 1000 - (video[-1][0] + 1000 / FPS)
    assert 0 <= lost_ms <= CLUSTER_TIME_LIMIT_MS + 1000 / FPS + 100
    assert decoded_frames(crashed_video) == len(video)
    audio = packets_of(copy / files.part_path(copy, "clerk", 1, "audio").name, "audio")
    assert SECONDS * 1000 - (audio[-1][0] + 20) <= CLUSTER_TIME_LIMIT_MS + 100

    info = finalize(copy / "clerk.webm")
    assert info is not None
    assert info.frames == {"video": len(video), "audio": len(audio)}
    assert decoded_frames(copy / "clerk.webm") == len(video)


@pytest.mark.parametrize("keep", [0.3, 0.55, 0.8])
def test_a_part_cut_anywhere_still_finalizes(tmp_path: Path, media: Media, keep: float) -> None:
    write_parts(tmp_path, media)
    video_part = files.part_path(tmp_path, "clerk", 0, "video")
    data = video_part.read_bytes()
    video_part.write_bytes(data[: int(len(data) * keep)])
    info = finalize(tmp_path / "clerk.webm")
    assert info is not None
    assert 0 < info.frames["video"] < len(media.video)
    assert info.frames["audio"] == len(media.audio)
    assert decoded_frames(tmp_path / "clerk.webm") == info.frames["video"]


def test_parts_without_frames_finalize_to_nothing(tmp_path: Path) -> None:
    path = files.part_path(tmp_path, "visitor", 0, "video")
    TrackWriter(path, "vp8", metadata=METADATA, width=640, height=480).close()
    truncated = files.part_path(tmp_path, "visitor", 1, "audio")
    truncated.write_bytes(b"\x1a\x45\xdf\xa3")  # died inside the header
    assert finalize(tmp_path / "visitor.webm") is None
    assert list(tmp_path.iterdir()) == []


def test_finalize_pending_leaves_recordings_in_use_alone(tmp_path: Path, media: Media) -> None:
    write_parts(tmp_path / "call-9", media, stem="clerk")
    write_parts(tmp_path / "call-8", media, stem="visitor")
    (tmp_path / "call-7").mkdir()
    (tmp_path / "call-7" / "visitor.webm.tmp").write_bytes(b"half a file")  # a finalization cut short, long ago
    live = files.RecordingLock(tmp_path / "call-9" / "clerk.webm")
    assert live.acquire()  # a recorder is still writing this one
    try:
        with pytest.raises(RecordingBusyError):
            finalize(tmp_path / "call-9" / "clerk.webm")
        infos = finalize_pending(tmp_path)
        assert [(info.call_id, info.path.name, info.recovered) for info in infos] == [
            ("call-9", "visitor.webm", True)  # METADATA says call-9; the folder is call-8
        ]
        assert files.parts_of(tmp_path / "call-9" / "clerk.webm")
        assert list((tmp_path / "call-7").iterdir()) == []
    finally:
        live.release()
    infos = finalize_pending(tmp_path, call_id="call-9")
    assert [info.path.name for info in infos] == ["clerk.webm"]
    assert finalize_pending(tmp_path) == []


def test_describe_reads_a_finished_file(tmp_path: Path, media: Media) -> None:
    write_parts(tmp_path, media, stem="visitor")
    info = finalize(tmp_path / "visitor.webm")
    assert info is not None
    assert describe(tmp_path / "visitor.webm") == info
    assert describe(tmp_path / "visitor.webm", recovered=True).recovered


def test_free_stem_skips_what_is_on_disk(tmp_path: Path) -> None:
    (tmp_path / "visitor.webm").write_bytes(b"")
    files.part_path(tmp_path, "visitor-2", 0, "audio").write_bytes(b"")
    assert files.free_stem(tmp_path, "visitor", set()) == "visitor-3"
    assert files.free_stem(tmp_path, "visitor", {"visitor-3"}) == "visitor-4"
    assert files.free_stem(tmp_path, "clerk", set()) == "clerk"
    with pytest.raises(ValueError):
        files.free_stem(tmp_path, "a.b", set())
