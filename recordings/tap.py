"""Encoded frames straight out of aiortc's RTP receiver: no decoder, no re-encoding.

This is the one module that touches aiortc internals (aiortc is pinned to
1.16.x in ``pyproject.toml``). What aiortc 1.16 does with an incoming RTP
packet, in ``RTCRtpReceiver._handle_rtp_packet``:

1. statistics, RTX unwrapping, NACKs for missing sequence numbers;
2. ``packet._data = depayload(codec, packet.payload)`` (for VP8: the payload
   descriptor stripped, leaving the bitstream);
3. ``pli_flag, encoded_frame = self.__jitter_buffer.add(packet)``: the jitter
   buffer reassembles complete frames (``JitterFrame``: data + RTP timestamp);
4. if ``pli_flag``: ``await self._send_rtcp_pli(packet.ssrc)`` (RTCP PLI);
5. the frame goes to ``self.__decoder_queue`` for the decoder thread, which
   decodes it (libvpx / libopus) for ``RemoteStreamTrack.recv()``.

:func:`tap_receiver` replaces the receiver's private jitter buffer
(``_RTCRtpReceiver__jitter_buffer``) with a :class:`_TapJitterBuffer`, a
subclass of aiortc's own ``JitterBuffer`` that reassembles exactly as aiortc
does but hands each complete frame to a callback and returns ``None`` to the
receiver. So steps 1-4 stay aiortc's (NACK, RTCP receiver reports, REMB,
PLI), nothing ever reaches the decoder queue and no decoder is created (the
decoder thread that ``receive()`` starts sits idle until the receiver stops).
A keyframe request sets the ``pli_flag`` the receiver acts on in step 4: the
PLI goes out through aiortc's own ``_send_rtcp_pli``.

What the tap adds while it reassembles: the arrival time of each frame's
first packet (for timestamps that survive jitter-buffer delay); a ``gap``
flag when the frame does not follow straight on from the previous one
(packets lost for good, the buffer skipped ahead); draining every complete
frame at once (aiortc hands out one per packet, so after a loss a backlog
would never shrink); and :meth:`ReceiverTap.flush` for the last frame, which
aiortc only completes when the next one begins.

:func:`check_aiortc_internals` verifies all of the above (attribute names,
signatures, what the receiver's code calls) and raises :class:`TapError`;
:func:`tap_receiver` calls it, and so does ``tests/recordings/test_tap.py``,
so an aiortc upgrade that changes them fails loudly instead of recording
nothing.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiortc
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket

AIORTC_SERIES = "1.16."

_JITTER_BUFFER_ATTR = "_RTCRtpReceiver__jitter_buffer"
_STARTED_ATTR = "_RTCRtpReceiver__started"
_KIND_ATTR = "_RTCRtpReceiver__kind"
_DATA_ATTR = "_data"  # the depayloaded payload the receiver stores on each RtpPacket

# Audio frames are single RTP packets: the recorder needs no prefetch (aiortc uses 4 for playout).
_AUDIO_PREFETCH = 0
_MAX_PENDING_ARRIVALS = 1024


class TapError(RuntimeError):
    """aiortc does not look the way :mod:`recordings.tap` expects (an upgrade changed its internals)."""


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One complete encoded frame as received: the bitstream, never decoded.

    ``timestamp`` is the frame's RTP timestamp as the sender stamped it (32
    bits, its clock rate: 90 kHz for video, 48 kHz for Opus); ``arrival`` is
    ``time.monotonic()`` when its first packet arrived; ``gap`` is true when
    packets between the previous frame and this one were lost for good.
    """

    data: bytes
    timestamp: int
    ssrc: int
    arrival: float
    gap: bool


FrameSink = Callable[[EncodedFrame], None]


class _TapJitterBuffer(JitterBuffer):
    """aiortc's ``JitterBuffer`` that gives complete frames to a sink instead of to the decoder."""

    def __init__(self, *, capacity: int, prefetch: int, is_video: bool, sink: FrameSink) -> None:
        super().__init__(capacity=capacity, prefetch=prefetch, is_video=is_video)
        self.sink = sink
        self.keyframe_requested = False
        self.frames = 0
        self.gaps = 0
        self._arrivals: dict[int, float] = {}
        self._next_sequence: int | None = None
        self._gap = False
        self._ssrc = 0

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        arrivals = self._arrivals
        if packet.timestamp not in arrivals:
            if len(arrivals) >= _MAX_PENDING_ARRIVALS:
                del arrivals[next(iter(arrivals))]
            arrivals[packet.timestamp] = time.monotonic()
        self._ssrc = packet.ssrc
        pli_flag, frame = super().add(packet)
        # aiortc hands out one frame per packet; after a loss several may be complete at once: drain them all, or
        # the backlog never shrinks (for audio, one packet a frame) and every later frame comes out late.
        while frame is not None:
            self._emit(frame)
            frame = self._remove_frame(packet.sequence_number)
        if self.keyframe_requested:
            self.keyframe_requested = False
            pli_flag = True
        # The receiver gets no frame: nothing is queued to its decoder.
        return pli_flag, None

    def _emit(self, frame: JitterFrame) -> None:
        self.frames += 1
        arrival = self._arrivals.pop(frame.timestamp, None)
        self.sink(
            EncodedFrame(
                data=frame.data,
                timestamp=frame.timestamp,
                ssrc=self._ssrc,
                arrival=time.monotonic() if arrival is None else arrival,
                gap=self._gap,
            )
        )

    def _starts(self, first: int | None) -> None:
        """A frame starting at sequence number ``first`` comes out: a gap unless it follows the previous one."""
        self._gap = self._next_sequence is not None and first != self._next_sequence
        if self._gap:
            self.gaps += 1

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        first = self._origin
        frame: JitterFrame | None = super()._remove_frame(sequence_number)
        if frame is not None:  # it spans [first, self._origin)
            self._starts(first)
            self._next_sequence = self._origin
        return frame

    def flush(self) -> None:
        """Hand out the last frame too, if it is complete (aiortc only knows a frame ended when the next begins).

        Audio frames are single packets; a video frame is complete when its
        packets are contiguous up to one with the RTP marker bit.
        """
        if self._origin is None:
            return
        packets: list[RtpPacket] = []
        for count in range(self._capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None or (packets and packet.timestamp != packets[0].timestamp):
                break
            packets.append(packet)
        if not packets or (self._is_video and not packets[-1].marker):
            return
        first = self._origin
        self.remove(len(packets))
        self._starts(first)
        self._next_sequence = self._origin
        data = b"".join(getattr(packet, _DATA_ATTR) for packet in packets)
        self._emit(JitterFrame(data=data, timestamp=packets[0].timestamp))


class ReceiverTap:
    """A receiver whose complete encoded frames go to a sink (see :func:`tap_receiver`)."""

    def __init__(self, receiver: RTCRtpReceiver, buffer: _TapJitterBuffer, kind: str) -> None:
        self.receiver = receiver
        self.kind = kind
        self._buffer = buffer

    def request_keyframe(self) -> None:
        """Send an RTCP PLI with the next packet that arrives (aiortc's ``_send_rtcp_pli``)."""
        self._buffer.keyframe_requested = True

    def flush(self) -> None:
        """Hand the last frame to the sink if it is complete; call it once the receiver has stopped."""
        self._buffer.flush()

    @property
    def frames(self) -> int:
        """Complete frames handed to the sink so far."""
        return self._buffer.frames

    @property
    def gaps(self) -> int:
        """Frames that did not follow straight on from the previous one (packets lost for good)."""
        return self._buffer.gaps


def tap_receiver(receiver: RTCRtpReceiver, sink: FrameSink) -> ReceiverTap:
    """Route ``receiver``'s complete encoded frames to ``sink`` instead of its decoder.

    Call it before the receiver starts (before the answer is set as local
    description is safe: aiortc starts receivers once DTLS connects). ``sink``
    runs on the event loop, synchronously, once per frame: keep it short.
    """
    check_aiortc_internals()
    if getattr(receiver, _STARTED_ATTR):
        raise TapError("the receiver has already started: tap it before the connection is established")
    kind = getattr(receiver, _KIND_ATTR)
    original = getattr(receiver, _JITTER_BUFFER_ATTR)
    if not isinstance(original, JitterBuffer):
        raise TapError(f"RTCRtpReceiver's jitter buffer is a {type(original).__name__}, not a JitterBuffer")
    is_video = kind == "video"
    buffer = _TapJitterBuffer(
        capacity=original.capacity,
        prefetch=original._prefetch if is_video else _AUDIO_PREFETCH,
        is_video=is_video,
        sink=sink,
    )
    setattr(receiver, _JITTER_BUFFER_ATTR, buffer)
    return ReceiverTap(receiver, buffer, kind)


# -- guarding the internals --------------------------------------------------------------------------------------------


def _parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise TapError(f"aiortc {aiortc.__version__}: {message}; recordings/tap.py must be updated")


_checked = False


def check_aiortc_internals() -> None:
    """Raise :class:`TapError` unless aiortc's receiver still works the way the tap relies on.

    Checked: the aiortc series; ``RTCRtpReceiver`` sets the private
    ``__jitter_buffer``, ``__started`` and ``__kind`` attributes in its
    constructor; ``_handle_rtp_packet(packet, arrival_time_ms)`` depayloads,
    calls ``__jitter_buffer.add`` and ``_send_rtcp_pli`` (with the media
    SSRC); ``JitterBuffer`` has the constructor, ``add``, ``_remove_frame``,
    ``remove`` and the ``_origin`` / ``_prefetch`` / ``capacity`` the subclass
    uses; ``JitterFrame`` has ``data`` and ``timestamp``.
    """
    global _checked
    if _checked:
        return
    _expect(aiortc.__version__.startswith(AIORTC_SERIES), f"the tap is written for aiortc {AIORTC_SERIES}x")

    init_names = RTCRtpReceiver.__init__.__code__.co_names
    for attr in (_JITTER_BUFFER_ATTR, _STARTED_ATTR, _KIND_ATTR):
        _expect(attr in init_names, f"RTCRtpReceiver.__init__ no longer sets {attr}")

    handle = RTCRtpReceiver._handle_rtp_packet
    _expect(_parameters(handle)[:3] == ["self", "packet", "arrival_time_ms"], "_handle_rtp_packet's signature changed")
    handle_names = handle.__code__.co_names
    for name in (_JITTER_BUFFER_ATTR, "add", "depayload", _DATA_ATTR, "_send_rtcp_pli"):
        _expect(name in handle_names, f"RTCRtpReceiver._handle_rtp_packet no longer uses {name}")
    _expect(_parameters(RTCRtpReceiver._send_rtcp_pli) == ["self", "media_ssrc"], "_send_rtcp_pli's signature changed")

    _expect(
        _parameters(JitterBuffer.__init__) == ["self", "capacity", "prefetch", "is_video"],
        "JitterBuffer's constructor changed",
    )
    _expect(_parameters(JitterBuffer.add) == ["self", "packet"], "JitterBuffer.add's signature changed")
    _expect(
        _parameters(JitterBuffer._remove_frame) == ["self", "sequence_number"],
        "JitterBuffer._remove_frame's signature changed",
    )
    _expect("_remove_frame" in JitterBuffer.add.__code__.co_names, "JitterBuffer.add no longer calls _remove_frame")
    remove_names = JitterBuffer._remove_frame.__code__.co_names
    for name in ("_origin", "_packets", "_capacity", "remove", "JitterFrame"):
        _expect(name in remove_names, f"JitterBuffer._remove_frame no longer uses {name}")
    _expect(isinstance(getattr(JitterBuffer, "capacity", None), property), "JitterBuffer.capacity is gone")
    probe = JitterBuffer(capacity=4, prefetch=2, is_video=True)
    fields = {"_prefetch": 2, "_capacity": 4, "_is_video": True, "_origin": None, "_packets": [None] * 4}
    for name, value in fields.items():
        _expect(getattr(probe, name, "missing") == value, f"JitterBuffer.{name} changed")
    _expect(_parameters(JitterBuffer.remove) == ["self", "count"], "JitterBuffer.remove's signature changed")
    _expect(_parameters(JitterFrame.__init__) == ["self", "data", "timestamp"], "JitterFrame changed")
    _checked = True
