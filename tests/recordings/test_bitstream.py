"""The VP8 and Opus header readers the recorder uses."""

from __future__ import annotations

import struct

import pytest

from recordings.bitstream import is_vp8_keyframe, opus_head, opus_packet_samples, vp8_keyframe_size
from tests.recordings.test_track import vp8_delta, vp8_key


def test_vp8_keyframe_size() -> None:
    assert vp8_keyframe_size(vp8_key(1280, 720)) == (1280, 720)
    assert vp8_keyframe_size(vp8_delta()) is None and not is_vp8_keyframe(vp8_delta())
    assert vp8_keyframe_size(vp8_key()[5:]) is None  # a keyframe whose first packet was lost
    assert vp8_keyframe_size(b"") is None
    assert vp8_keyframe_size(vp8_key()[:12]) is None  # shorter than its first partition says


@pytest.mark.parametrize(
    ("packet", "samples"),
    [
        (b"\xf8\xff\xfe", 960),  # CELT 20 ms, code 0
        (bytes([0x78 | 1]), 1920),  # hybrid 20 ms (config 15), code 1: two frames
        (bytes([0x08 | 3, 3]), 2880),  # SILK 20 ms, code 3, three frames
        (bytes([(3 << 3) | 0]), 2880),  # SILK 60 ms
        (bytes([(16 << 3) | 0]), 120),  # CELT 2.5 ms
        (b"", 0),
        (bytes([3]), 0),  # code 3 without its count byte
        (bytes([(3 << 3) | 3, 0x3F]), 0),  # 63 frames of 60 ms: longer than Opus allows
    ],
)
def test_opus_packet_samples(packet: bytes, samples: int) -> None:
    assert opus_packet_samples(packet) == samples


def test_opus_head() -> None:
    head = opus_head(2)
    assert head[:8] == b"OpusHead" and len(head) == 19
    assert struct.unpack("<BBHIhB", head[8:]) == (1, 2, 0, 48000, 0, 0)
    with pytest.raises(ValueError):
        opus_head(6)
