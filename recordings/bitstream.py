"""What the recorder needs to know from inside VP8 and Opus frames, read from their first bytes.

Pure functions on ``bytes``: no decoding, no aiortc, no PyAV.

- :func:`vp8_keyframe_size`: is this VP8 frame a keyframe (a picture decodable
  on its own), and what size is it (RFC 6386 section 9.1);
- :func:`opus_packet_samples`: how long is this Opus packet, in 48 kHz samples
  (RFC 6716 section 3.1, the TOC byte and the frame count);
- :func:`opus_head`: the ``OpusHead`` identification header that Matroska
  stores as the Opus track's CodecPrivate (RFC 7845 section 5.1).
"""

from __future__ import annotations

import struct

VP8_START_CODE = b"\x9d\x01\x2a"
OPUS_SAMPLE_RATE = 48_000

# Frame length in 48 kHz samples by TOC configuration number (RFC 6716, table 2).
_SILK_SAMPLES = (480, 960, 1920, 2880)  # 10, 20, 40, 60 ms; configurations 0-11
_HYBRID_SAMPLES = (480, 960)  # 10, 20 ms; configurations 12-15
_CELT_SAMPLES = (120, 240, 480, 960)  # 2.5, 5, 10, 20 ms; configurations 16-31
_OPUS_MAX_SAMPLES = 5760  # 120 ms, the longest packet RFC 6716 allows


def vp8_keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """``(width, height)`` if ``frame`` is a complete-looking VP8 keyframe, else ``None``.

    A keyframe has the inverse key-frame bit of the 3-byte frame tag clear and
    the start code ``9d 01 2a`` right after it, then 14-bit width and height.
    A frame that starts in the middle (its first RTP packets were lost) does
    not pass, which is the point: the recorder starts a file only on a
    picture that decodes on its own.
    """
    if len(frame) < 10 or frame[0] & 0x01:
        return None
    if frame[3:6] != VP8_START_CODE:
        return None
    width, height = struct.unpack_from("<HH", frame, 6)
    width &= 0x3FFF
    height &= 0x3FFF
    if width == 0 or height == 0:
        return None
    first_partition_size = (frame[0] | frame[1] << 8 | frame[2] << 16) >> 5
    if first_partition_size > len(frame) - 10:
        return None
    return width, height


def is_vp8_keyframe(frame: bytes) -> bool:
    """Whether ``frame`` is a VP8 keyframe (see :func:`vp8_keyframe_size`)."""
    return vp8_keyframe_size(frame) is not None


def opus_frame_samples(toc: int) -> int:
    """Samples (at 48 kHz) in one frame of a packet with this TOC byte."""
    config = toc >> 3
    if config < 12:
        return _SILK_SAMPLES[config % 4]
    if config < 16:
        return _HYBRID_SAMPLES[config % 2]
    return _CELT_SAMPLES[config % 4]


def opus_packet_samples(packet: bytes) -> int:
    """Samples (at 48 kHz) an Opus packet decodes to; 0 for an empty or malformed packet."""
    if not packet:
        return 0
    toc = packet[0]
    code = toc & 0x03
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        if len(packet) < 2:
            return 0
        frames = packet[1] & 0x3F
    samples = frames * opus_frame_samples(toc)
    return samples if 0 < samples <= _OPUS_MAX_SAMPLES else 0


def opus_head(channels: int = 2, *, pre_skip: int = 0, input_sample_rate: int = OPUS_SAMPLE_RATE) -> bytes:
    """An ``OpusHead`` for channel mapping family 0 (mono or stereo), as Matroska's CodecPrivate.

    WebRTC negotiates Opus as ``opus/48000/2`` whatever the sender captures;
    a decoder set up for two channels plays mono packets too. ``pre_skip`` is
    0: the RTP stream has no encoder delay to trim that the recorder knows of.
    """
    if channels not in (1, 2):
        raise ValueError(f"channel mapping family 0 has 1 or 2 channels, not {channels}")
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, input_sample_rate, 0, 0)
