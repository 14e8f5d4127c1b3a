"""A bot's send-only connection to the server's recorder, beside the peer-to-peer call.

When ``matched`` says ``recording: true`` a participant also sends its camera
and microphone to the recorder: it offers a send-only connection (VP8 video,
Opus audio, every ICE candidate in the SDP: the recorder does not trickle)
with ``recorder_offer {call_id, sdp}`` and applies the answer from the ack.
The peer-to-peer call is untouched. Bots send a second copy of their synthetic
picture and tone (a browser sends the same camera tracks twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import msgspec
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from client.channel import BAD_MESSAGE, BotError, Message, ProtocolError
from client.media import CaptionVideoTrack, ToneAudioTrack
from signaling.messages import RecorderAnswer, RecorderOffer

logger = logging.getLogger(__name__)

PREFERRED = {"video": "video/vp8", "audio": "audio/opus"}

Call = Callable[[str, msgspec.Struct], Awaitable[Message]]  # Channel.call
SenderHook = Callable[[RTCPeerConnection], None]


class RecorderLink:
    """The recorder connection of one participant of one call."""

    def __init__(self, call_id: str, caption: list[str], *, on_created: SenderHook | None = None) -> None:
        self.call_id = call_id
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tracks: list[MediaStreamTrack] = [CaptionVideoTrack(caption), ToneAudioTrack()]
        for track in self.tracks:
            transceiver = self.pc.addTransceiver(track, direction="sendonly")
            wanted = PREFERRED[track.kind]
            codecs = [c for c in RTCRtpSender.getCapabilities(track.kind).codecs if c.mimeType.lower() == wanted]
            transceiver.setCodecPreferences(codecs)
        if on_created is not None:
            on_created(self.pc)
        self.closed = False

    async def start(self, call: Call) -> None:
        """Offer to the recorder through ``call`` (the bot's channel) and apply its answer."""
        await self.pc.setLocalDescription(await self.pc.createOffer())  # aiortc gathers every candidate first
        local = self.pc.localDescription
        assert local is not None
        ack = await call("recorder_offer", RecorderOffer(self.call_id, local.sdp))
        if self.closed:
            return
        if not isinstance(ack, RecorderAnswer):
            raise ProtocolError("recorder_offer", BAD_MESSAGE, f"acknowledged with {type(ack).__name__}")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=ack.sdp, type="answer"))
        logger.info("call %s: sending to the recorder", self.call_id)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self.pc.close()
        for track in self.tracks:
            track.stop()


class RecorderSide:
    """One participant's recorder connection across the calls of a bot (at most one at a time).

    ``begin`` on ``matched`` (it does nothing unless ``recording: true``); ``begin``
    again on ``recorder_lost`` (the recorder worker died: offer anew); ``end`` when
    the call ends. The offer runs in the background so the call's own signalling
    is not held up; ``answers`` counts the recorder answers applied (see ``wait_answers``).
    """

    def __init__(self, on_created: SenderHook | None = None) -> None:
        self.on_created = on_created
        self.link: RecorderLink | None = None
        self.error: str | None = None
        self.offers = 0
        self.answers = 0
        self._answer_seen = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._caption: list[str] = []

    async def begin(self, call_id: str, call: Call, caption: list[str] | None = None) -> None:
        await self.end()
        self._caption = caption if caption is not None else self._caption
        self.error = None
        self.link = RecorderLink(call_id, self._caption, on_created=self.on_created)
        self.offers += 1
        self._task = asyncio.get_running_loop().create_task(self._start(self.link, call))

    async def _start(self, link: RecorderLink, call: Call) -> None:
        try:
            await link.start(call)
        except BotError as exc:
            self.error = str(exc)
            logger.warning("call %s: the recorder connection failed: %s", link.call_id, exc)
            return
        if not link.closed:
            self.answers += 1
            async with self._answer_seen:
                self._answer_seen.notify_all()

    async def wait_answers(self, count: int, timeout_s: float) -> None:
        """Wait until the recorder has answered ``count`` offers in all (a re-offer after ``recorder_lost``
        makes two)."""
        async with asyncio.timeout(timeout_s), self._answer_seen:
            await self._answer_seen.wait_for(lambda: self.answers >= count)

    async def end(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        link, self.link = self.link, None
        if link is not None:
            await link.close()
