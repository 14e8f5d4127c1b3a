"""Headless kiosk and clerk bots: docs/protocol.md over Socket.IO, media over aiortc.

:class:`KioskBot` requests one call, sends the offer with a captioned test
pattern and a tone, checks that the clerk's video and audio arrive, keeps the
call for a while and hangs up. :class:`ClerkBot` goes available, accepts
rung calls, answers with its own synthetic media and counts what it receives.
They are meant for demos, tests and load; the browser pages speak the same
protocol.

Every incoming Socket.IO event, and every peer-connection event the bots care
about, goes through one queue and is handled in order by the bot's own loop,
so there is no interleaving between, say, a ``matched`` and the ``signal``
that follows it. Waiting is always on that queue, with deadlines. Server
events arrive decoded with their structs (:mod:`signaling.messages`), and the
bots send theirs as structs too; a server message that does not match its
struct stops the bot with a :class:`ProtocolError` ``bad_message``.

A bot that connects while its kiosk or clerk still has a call (``welcome.call``,
say after the bot's process was restarted within the server's grace period)
takes it up: a waiting call goes on waiting; for a call in progress, whose
peer connection went with the old process, the kiosk opens the one media
restart and the clerk waits for it.

Local ICE candidates are not trickled: aiortc gathers them all before
``setLocalDescription`` returns, so the SDP carries them. Candidates trickled
by a browser peer are accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from aiortc import RTCIceTransportPolicy

from client.channel import (
    CLERK_NAMESPACE,
    KIOSK_NAMESPACE,
    BotError,
    Channel,
    Incoming,
    ProtocolError,
    call_of,
    connect_error_code,
)
from client.media import MediaCounter
from client.peerlink import (
    CallLink,
    PeerLink,
    RestartTiming,
    candidate_from_json,
    description_to_message,
    ice_servers_from,
)
from client.recorderlink import RecorderSide, SenderHook
from signaling import messages as m

logger = logging.getLogger(__name__)

__all__ = [
    "BotError", "CallStats", "ClerkBot", "KioskBot", "KioskResult", "ProtocolError", "candidate_from_json",
    "connect_error_code", "description_to_message", "ice_servers_from",
]


def log_peer_connection(who: str, other: str, msg: m.PeerConnection) -> None:
    """``peer_connection``: the other side of the call lost its connection (the call waits for it), or is back."""
    if msg.connected:
        logger.info("%s: the %s of call %s is connected again", who, other, msg.call_id)
    else:
        logger.warning("%s: the %s of call %s lost its connection; the call waits up to %g s for it",
                       who, other, msg.call_id, msg.grace_s)

# -- kiosk ------------------------------------------------------------------------------------------------------------


@dataclass
class KioskResult:
    """What one kiosk call came to."""

    ok: bool
    reason: str
    call_id: str | None
    queue_wait_s: float | None  # from the request_call ack to `matched`
    time_to_media_s: float | None  # from `matched` to the first frame of both the clerk's video and audio
    video_frames: int
    audio_frames: int
    video_size: tuple[int, int] | None
    clerk_name: str | None
    video_packets: int = 0  # RTP packets received, from getStats
    audio_packets: int = 0
    restarts: int = 0  # peer connections replaced after the first was lost (frames count on the last one)
    ended_reason: str | None = None  # from `call_ended`, when the server ended the call

    def summary(self) -> str:
        def secs(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f} s"

        size = f"{self.video_size[0]}x{self.video_size[1]}" if self.video_size else "no video"
        head = "OK" if self.ok else "FAILED"
        return (
            f"{head} ({self.reason}): call {self.call_id or '-'} with clerk {self.clerk_name or '-'}; "
            f"waited {secs(self.queue_wait_s)}, media after {secs(self.time_to_media_s)}; "
            f"received {self.video_frames} video frames ({size}) in {self.video_packets} packets and "
            f"{self.audio_frames} audio frames in {self.audio_packets} packets"
            + (f"; media restarted {self.restarts} time(s)" if self.restarts else "")
        )


class KioskBot:
    """A kiosk that requests one call in ``field`` and checks that the clerk's media arrives."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        field: str,
        language: str = "en",
        caption: str = "Visitor",
        request_timeout_s: float = 10.0,
        recording_consent: bool | None = None,
        on_recorder_created: SenderHook | None = None,
        timing: RestartTiming | None = None,
        reconnect_timeout_s: float = 20.0,
    ) -> None:
        self.url = url  # one server, or several (a list or comma-separated: the nodes of a cluster)
        self.token = token
        self.reconnect_timeout_s = reconnect_timeout_s  # a lost connection: how long to try the servers again
        self.field = field
        self.language = language
        self.caption = caption
        self.request_timeout_s = request_timeout_s
        self.recording_consent = recording_consent  # the answer to the recording notice, sent with request_call
        #: The kiosk's connection to the server's recorder, for calls that are recorded.
        self.recorder = RecorderSide(on_recorder_created)
        self.timing = timing
        self._reset()

    def _reset(self) -> None:
        self.welcome: m.KioskWelcome | None = None
        self.call_id: str | None = None
        self._link: CallLink | None = None
        self._restarts = 0
        self._requested_at: float | None = None
        self._matched_at: float | None = None
        self._queue_wait_s: float | None = None
        self._time_to_media_s: float | None = None
        self._clerk_name: str | None = None
        self._ended: tuple[str, str] | None = None  # (reason, by)
        self._counts: tuple[int, int, tuple[int, int] | None] = (0, 0, None)
        self._packets: tuple[int, int] = (0, 0)

    async def run(self, seconds: float, timeout_s: float = 60.0) -> KioskResult:
        """Connect, request a call, wait (at most ``timeout_s``) until the clerk's video and audio arrive,
        keep the call ``seconds`` longer, hang up and disconnect. Never raises for a failed call: the
        result says why (``ok`` is true only if the clerk's video and audio were received)."""
        self._reset()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        channel = Channel(self.url, self.token, KIOSK_NAMESPACE, request_timeout_s=self.request_timeout_s)
        ok, reason = False, ""
        try:
            welcome = await channel.connect(timeout_s)
            assert isinstance(welcome, m.KioskWelcome)  # the struct of /kiosk's welcome
            self.welcome = welcome
            if welcome.call is not None:
                await self._resume(channel, welcome.call)
            else:
                request = m.RequestCall(self.field, self.language, self.recording_consent)
                ack = await channel.call("request_call", request)
                assert isinstance(ack, m.CallRequested)  # the ack struct of request_call
                self.call_id = ack.call_id
                self._requested_at = time.monotonic()
                logger.info("kiosk: call %s %s, position %s", self.call_id, ack.state, ack.position)
            await self._pump(channel, deadline, lambda: self._peer is not None and self._peer.media_received)
            assert self._peer is not None and self._matched_at is not None
            assert self._peer.video is not None and self._peer.audio is not None
            first = max(self._peer.video.first_frame_at or 0.0, self._peer.audio.first_frame_at or 0.0)
            self._time_to_media_s = first - self._matched_at
            logger.info("kiosk: call %s media received after %.2f s", self.call_id, self._time_to_media_s)
            ok, reason = True, "completed"
            with contextlib.suppress(TimeoutError):
                await self._pump(channel, loop.time() + seconds, lambda: self._ended is not None)
            if self._ended is not None:
                reason = f"ended early: {self._ended[0]} by {self._ended[1]}"
        except TimeoutError:
            reason = "timeout waiting for " + ("media" if self._matched_at is not None else "a clerk")
        except BotError as exc:
            reason = f"ended early: {exc}" if ok else str(exc)
        finally:
            await self._finish(channel)
        video_frames, audio_frames, video_size = self._counts
        video_packets, audio_packets = self._packets
        ok = ok and video_frames > 0 and audio_frames > 0
        result = KioskResult(
            ok=ok,
            reason=reason,
            call_id=self.call_id,
            queue_wait_s=self._queue_wait_s,
            time_to_media_s=self._time_to_media_s,
            video_frames=video_frames,
            audio_frames=audio_frames,
            video_size=video_size,
            clerk_name=self._clerk_name,
            video_packets=video_packets,
            audio_packets=audio_packets,
            restarts=self._restarts,
            ended_reason=self._ended[0] if self._ended else None,
        )
        logger.info("kiosk: %s", result.summary())
        return result

    @property
    def _peer(self) -> PeerLink | None:
        """The peer connection of the current attempt."""
        return self._link.peer if self._link is not None else None

    async def _pump(self, channel: Channel, deadline: float, done: Callable[[], bool]) -> None:
        while not done():
            await self._handle(channel, await channel.get(deadline))

    async def _handle(self, channel: Channel, item: Incoming) -> None:
        if item.source is not None and item.source is not self._peer:
            return  # an event of a peer connection already closed
        msg = item.message
        if msg is None:
            await self._internal(channel, item)
            return
        if call_of(msg) != self.call_id:
            logger.debug("kiosk: %s for another call, ignored", item.event)
            return
        match msg:
            case m.QueuedMsg():
                logger.info("kiosk: queued at %s (%s)", msg.position, msg.reason or "waiting")
                if msg.reason == "clerk_disconnected" and self._link is not None:
                    await self._close_link()
                    self._matched_at = None
            case m.Ringing():
                logger.info("kiosk: a clerk is being rung")
            case m.KioskMatched():
                await self._on_matched(channel, msg)
            case m.Signal():
                if self._link is None:
                    logger.warning("kiosk: signal before matched, ignored")
                else:
                    await self._link.on_signal(msg)
            case m.RecorderLost():
                await self.recorder.begin(msg.call_id, channel.call)
            case m.PeerConnection():
                log_peer_connection("kiosk", "clerk", msg)
            case m.KioskCallEnded():
                await self.recorder.end()
                self._ended = (msg.reason, msg.by)
                logger.info("kiosk: call %s ended: %s by %s", self.call_id, *self._ended)
                if self._peer is None or not self._peer.media_received:
                    raise BotError(f"call ended before media: {self._ended[0]} by {self._ended[1]}")
            case _:
                logger.debug("kiosk: %s ignored", item.event)

    async def _internal(self, channel: Channel, item: Incoming) -> None:
        if item.event == "_pc_state" and self._link is not None:
            await self._link.on_state(str(item.payload.get("state")))
        elif item.event == "_media_timer" and self._link is not None:
            await self._link.on_timer(item.payload)
        elif item.event == "_disconnected":
            if item.payload.get("replaced"):
                raise BotError(f"disconnected by the server: {item.payload.get('reason')}")
            await self._reconnect(channel, str(item.payload.get("reason")))

    async def _reconnect(self, channel: Channel, reason: str) -> None:
        """The connection was lost (its server may be gone): connect again, another node first, and take up the
        call the server held for this kiosk; its media, peer to peer, went on meanwhile."""
        logger.warning("kiosk: connection lost (%s); connecting again", reason)
        try:
            welcome = await channel.reconnect(self.reconnect_timeout_s)
        except BotError as exc:
            raise BotError(f"connection lost ({reason}) and not restored: {exc}") from exc
        assert isinstance(welcome, m.KioskWelcome)
        held = welcome.call
        logger.info("kiosk: connected again to %s; call held: %s", channel.url, held and held.call_id)
        if self.call_id is None:
            return
        if held is None or held.call_id != self.call_id:
            raise BotError(f"connection lost ({reason}); the server no longer holds call {self.call_id}")
        if held.matched is not None and self._link is None:
            await self._on_matched(channel, held.matched, resumed=True)

    async def _resume(self, channel: Channel, call: m.KioskCall) -> None:
        """``welcome.call``: this kiosk's call outlived its connection; take it up instead of requesting one."""
        self.call_id = call.call_id
        self._requested_at = time.monotonic()
        if call.matched is None:
            logger.info("kiosk: back to call %s, waiting in %s", call.call_id, call.field)
            return  # its queue position follows
        logger.info("kiosk: back to call %s (%s); its media went with the old connection: restarting it",
                    call.call_id, call.state)
        await self._on_matched(channel, call.matched, resumed=True)

    async def _on_matched(self, channel: Channel, msg: m.KioskMatched, resumed: bool = False) -> None:
        assert self.call_id is not None
        now = time.monotonic()
        if self._queue_wait_s is None and self._requested_at is not None:
            self._queue_wait_s = now - self._requested_at
        self._matched_at = now
        self._clerk_name = msg.peer.name or None
        logger.info("kiosk: matched with clerk %s", self._clerk_name)
        await self._close_link()
        caption = [self.caption, msg.field or self.field]
        self._link = CallLink(
            self.call_id, "offerer", ice_servers_from(msg.ice_servers), caption,
            channel.queue.put_nowait, channel.call, timing=self.timing,
            ice_transport_policy=RTCIceTransportPolicy(msg.ice_transport_policy),
        )
        if resumed:
            await self._link.lost("the connection of an earlier run is gone")
        else:
            await self._link.start()
        if msg.recording:
            await self.recorder.begin(self.call_id, channel.call, caption)

    async def _close_link(self) -> None:
        if self._link is not None:
            self._restarts += self._link.restarts
            await self._link.close()
            self._link = None

    async def _finish(self, channel: Channel) -> None:
        if self.call_id and self._ended is None and channel.connected:
            try:
                await channel.call("hangup", m.CallRef(self.call_id))
            except BotError as exc:
                logger.warning("kiosk: hangup failed: %s", exc)
        await self.recorder.end()
        peer = self._peer
        if peer is not None:
            packets = {"video": 0, "audio": 0}
            for stat in (await peer.pc.getStats()).values():
                if getattr(stat, "type", "") == "inbound-rtp" and getattr(stat, "kind", "") in packets:
                    packets[stat.kind] += int(getattr(stat, "packetsReceived", 0) or 0)
            self._packets = (packets["video"], packets["audio"])
            await self._close_link()
            video, audio = peer.video, peer.audio
            self._counts = (
                video.frames if video else 0,
                audio.frames if audio else 0,
                video.frame_size if video else None,
            )
        await channel.close()


# -- clerk ------------------------------------------------------------------------------------------------------------


@dataclass
class CallStats:
    """One call a :class:`ClerkBot` took: what it received and how it ended."""

    call_id: str
    field: str = ""
    peer_name: str = ""
    video_frames: int = 0
    audio_frames: int = 0
    video_size: tuple[int, int] | None = None
    media_connected: bool = False
    restarts: int = 0  # peer connections replaced after the first was lost (frames count on the last one)
    wrapped_up: bool = False
    ended_reason: str | None = None
    ended_by: str | None = None
    media_received: asyncio.Event = dataclasses.field(default_factory=asyncio.Event, repr=False, compare=False)
    ended: asyncio.Event = dataclasses.field(default_factory=asyncio.Event, repr=False, compare=False)


class ClerkBot:
    """A clerk that goes available and (with ``auto_accept``) accepts every call it is rung for.

    When the server puts the clerk into wrap-up after a call (``call_ended`` with ``wrap_up: true``),
    the bot logs one matter at once (the first matter type of the call's field, outcome
    ``completed``), so that it is offered the next call; ``wrap_up=False`` leaves that to the caller.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        auto_accept: bool = True,
        center: str = "",
        wrap_up: bool = True,
        request_timeout_s: float = 10.0,
        connect_timeout_s: float = 30.0,
        on_recorder_created: SenderHook | None = None,
        timing: RestartTiming | None = None,
    ) -> None:
        self.url = url  # one server, or several (a list or comma-separated: the nodes of a cluster)
        self.token = token
        self.auto_accept = auto_accept
        self.wrap_up = wrap_up
        self.center = center
        self.request_timeout_s = request_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.timing = timing
        self.name = ""
        self.status = ""
        self.welcome: m.ClerkWelcome | None = None
        self.calls: list[CallStats] = []
        self.rings: list[m.RingMsg] = []
        #: Set once connected, welcomed and available (or back in its call in progress).
        self.ready = asyncio.Event()
        self._channel: Channel | None = None
        self._link: CallLink | None = None
        self._current: CallStats | None = None
        self._want_available = True
        self._stopping = False
        self._changed = asyncio.Event()
        #: The clerk's connection to the server's recorder, for calls that are recorded.
        self.recorder = RecorderSide(on_recorder_created)

    # -- for tests and callers ---------------------------------------------------------------------------------------

    def call(self, call_id: str) -> CallStats | None:
        return next((c for c in self.calls if c.call_id == call_id), None)

    async def wait_for(self, predicate: Callable[[], CallStats | None], timeout_s: float) -> CallStats:
        """Wait until ``predicate()`` returns a call (re-checked whenever the bot's state changes)."""
        async with asyncio.timeout(timeout_s):
            while True:
                changed = self._changed
                found = predicate()
                if found is not None:
                    return found
                await changed.wait()

    async def wait_media(self, call_id: str | None = None, timeout_s: float = 30.0) -> CallStats:
        """Wait until video and audio were received on ``call_id`` (or on any call)."""

        def received() -> CallStats | None:
            return next(
                (c for c in self.calls if c.media_received.is_set() and call_id in (None, c.call_id)),
                None,
            )

        return await self.wait_for(received, timeout_s)

    async def wait_ended(self, call_id: str | None = None, timeout_s: float = 30.0) -> CallStats:
        """Wait until ``call_id`` (or any call) has ended."""

        def ended() -> CallStats | None:
            return next((c for c in self.calls if c.ended.is_set() and call_id in (None, c.call_id)), None)

        return await self.wait_for(ended, timeout_s)

    async def accept(self, call_id: str) -> None:
        await self._require_channel().call("accept", m.CallRef(call_id))

    async def decline(self, call_id: str) -> None:
        await self._require_channel().call("decline", m.CallRef(call_id))

    async def hangup(self, call_id: str | None = None) -> None:
        call_id = call_id or (self._current.call_id if self._current else None)
        if call_id is None:
            raise BotError("hangup: no call in progress")
        await self._require_channel().call("hangup", m.CallRef(call_id))

    async def set_status(self, status: Literal["available", "away"]) -> None:
        """Ask for ``status``; :attr:`status` becomes what the server answers (``ringing`` at once, say)."""
        self._want_available = status == "available"
        self.status = await self._ask_status(self._require_channel(), status)
        self._notify()

    @staticmethod
    async def _ask_status(channel: Channel, status: Literal["available", "away"]) -> str:
        ack = await channel.call("set_status", m.SetStatus(status))
        assert isinstance(ack, m.StatusNow)  # the ack struct of set_status
        return ack.status

    # -- the loop ----------------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None, max_calls: int | None = None) -> None:
        """Serve calls until ``stop`` is set or ``max_calls`` calls have ended; raises :class:`BotError`
        if the connection is refused or lost."""
        channel = Channel(self.url, self.token, CLERK_NAMESPACE, request_timeout_s=self.request_timeout_s)
        self._channel = channel
        watcher: asyncio.Task[None] | None = None
        try:
            welcome = await channel.connect(self.connect_timeout_s)
            assert isinstance(welcome, m.ClerkWelcome)  # the struct of /clerk's welcome
            self.welcome = welcome
            self.name = welcome.clerk.name
            self.center = self.center or welcome.clerk.center
            self.status = welcome.status
            logger.info("clerk %s: connected, %s", self.name, self.status)
            if welcome.call is not None:
                await self._resume(channel, welcome.call)
            elif welcome.status == "away":  # else back within the grace period: available, or rung already
                await self.set_status("available")
            self.ready.set()
            self._notify()
            if stop is not None:
                watcher = asyncio.create_task(self._watch(stop, channel))
            while not self._stopping:
                if max_calls is not None and sum(c.ended.is_set() for c in self.calls) >= max_calls:
                    break
                await self._handle(channel, await channel.get(None))
        finally:
            self._stopping = True
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await self._finish(channel)

    @staticmethod
    async def _watch(stop: asyncio.Event, channel: Channel) -> None:
        await stop.wait()
        channel.queue.put_nowait(Incoming("_stop", {}))

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    @property
    def _peer(self) -> PeerLink | None:
        """The peer connection of the current attempt."""
        return self._link.peer if self._link is not None else None

    def _require_channel(self) -> Channel:
        if self._channel is None or not self._channel.connected:
            raise BotError("the clerk bot is not connected")
        return self._channel

    async def _handle(self, channel: Channel, item: Incoming) -> None:
        if item.source is not None and item.source is not self._peer:
            return
        match item.message:
            case None:
                await self._internal(item)
            case m.StatusMsg() as msg:
                await self._on_status(channel, msg)
            case m.RingMsg() as msg:
                await self._on_ring(channel, msg)
            case m.RingEndedMsg() as msg:
                logger.info("clerk %s: ring for %s ended: %s", self.name, msg.call_id, msg.reason)
            case m.ClerkMatched() as msg:
                await self._on_matched(channel, msg)
            case m.RecorderLost() as msg:
                await self.recorder.begin(msg.call_id, channel.call)
            case m.Signal() as msg:
                await self._on_signal(msg)
            case m.PeerConnection() as msg:
                log_peer_connection(f"clerk {self.name}", "kiosk", msg)
            case m.ClerkCallEnded() as msg:
                await self._on_call_ended(channel, msg)
            case _:
                logger.debug("clerk %s: %s ignored", self.name, item.event)
        self._notify()

    async def _internal(self, item: Incoming) -> None:
        event, payload = item.event, item.payload
        if event == "_pc_state" and self._link is not None and self._current is not None:
            if await self._link.on_state(str(payload.get("state"))):
                self._current.media_connected = True
        elif event == "_media_timer" and self._link is not None:
            await self._link.on_timer(payload)
        elif event == "_media":
            if self._peer is not None and self._current is not None and self._peer.media_received:
                self._current.media_received.set()
                logger.info("clerk %s: call %s media received", self.name, self._current.call_id)
        elif event == "_stop":
            self._stopping = True
        elif event == "_disconnected":
            if payload.get("replaced") or self._stopping or self._channel is None:
                raise BotError(f"clerk {self.name}: disconnected by the server: {payload.get('reason')}")
            await self._reconnect(self._channel, str(payload.get("reason")))

    async def _reconnect(self, channel: Channel, reason: str) -> None:
        """The connection was lost (its server may be gone): connect again, another node first. A call in
        progress that the server held goes on (its media is peer to peer); one it gave back to the queue is
        over for this clerk."""
        logger.warning("clerk %s: connection lost (%s); connecting again", self.name, reason)
        self.ready.clear()
        try:
            welcome = await channel.reconnect(self.connect_timeout_s)
        except BotError as exc:
            raise BotError(f"clerk {self.name}: connection lost ({reason}) and not restored: {exc}") from exc
        assert isinstance(welcome, m.ClerkWelcome)
        self.welcome = welcome
        self.status = welcome.status
        held, current = welcome.call, self._current
        logger.info("clerk %s: connected again to %s, %s; call held: %s", self.name, channel.url, self.status,
                    held and held.call_id)
        if held is not None and current is not None and current.call_id == held.call_id and self._link:
            pass  # back within the grace period: the call goes on
        elif held is not None:
            await self._resume(channel, held)
        else:
            if current is not None:  # the server gave the visitor back to the queue
                await self._close_link()
                current.ended_reason = current.ended_reason or "clerk_disconnected"
                current.ended.set()
                self._current = None
            for pending in welcome.pending_wrapups:  # a wrap-up the lost connection did not carry
                stats = self.call(pending.call_id)
                if self.wrap_up and stats is not None and not stats.wrapped_up:
                    await self._wrap_up(channel, stats)
            if self.status == "away" and self._want_available:
                self.status = await self._ask_status(channel, "available")
        self.ready.set()

    async def _on_status(self, channel: Channel, msg: m.StatusMsg) -> None:
        self.status = msg.status
        logger.info("clerk %s: status %s %s", self.name, self.status, msg.reason)
        if self.status == "away" and self._want_available and self._current is None and not self._stopping:
            try:
                self.status = await self._ask_status(channel, "available")
            except ProtocolError as exc:
                logger.warning("clerk %s: cannot go available again: %s", self.name, exc)

    async def _on_ring(self, channel: Channel, msg: m.RingMsg) -> None:
        self.rings.append(msg)
        logger.info("clerk %s: rung for %s (%s)", self.name, msg.call_id, msg.field)
        if self.auto_accept and self._current is None and not self._stopping:
            try:
                await channel.call("accept", m.CallRef(msg.call_id))
            except ProtocolError as exc:  # the ring may have ended meanwhile
                logger.warning("clerk %s: accept failed: %s", self.name, exc)

    async def _resume(self, channel: Channel, call: m.ClerkCall) -> None:
        """``welcome.call``: this clerk's call in progress outlived its connection. Its media went with the old
        connection, so the bot takes the call up and waits for the kiosk's media restart (``media_failed`` if none
        comes); once the call has ended and is wrapped up, the server offers calls again."""
        logger.info("clerk %s: back to call %s (%s); waiting for the kiosk to restart its media", self.name,
                    call.call_id, call.state)
        await self._on_matched(channel, call.matched, resumed=True)

    async def _on_matched(self, channel: Channel, msg: m.ClerkMatched, resumed: bool = False) -> None:
        await self._close_link()
        stats = CallStats(call_id=msg.call_id, field=msg.field, peer_name=msg.peer.name)
        self.calls.append(stats)
        self._current = stats
        caption = [line for line in (self.name or "Clerk", msg.field, self.center) if line]
        self._link = CallLink(
            msg.call_id, "answerer", ice_servers_from(msg.ice_servers), caption,
            channel.queue.put_nowait, channel.call,
            on_frame=lambda counter: self._count(stats, counter), timing=self.timing,
            ice_transport_policy=RTCIceTransportPolicy(msg.ice_transport_policy),
        )
        logger.info("clerk %s: matched on %s with %s", self.name, msg.call_id, stats.peer_name)
        if resumed:
            await self._link.lost("the connection of an earlier run is gone")
        if msg.recording:
            await self.recorder.begin(msg.call_id, channel.call, caption)

    @staticmethod
    def _count(stats: CallStats, counter: MediaCounter) -> None:
        if counter.kind == "video":
            stats.video_frames = counter.frames
            stats.video_size = counter.frame_size
        else:
            stats.audio_frames = counter.frames

    async def _on_signal(self, msg: m.Signal) -> None:
        link = self._link
        if link is None or link.call_id != msg.call_id:
            logger.warning("clerk %s: signal for %s without a matching call, ignored", self.name, msg.call_id)
            return
        await link.on_signal(msg)

    async def _close_link(self) -> None:
        if self._link is not None:
            stats = self.call(self._link.call_id)
            if stats is not None:
                stats.restarts = self._link.restarts
            await self._link.close()
            self._link = None

    async def _on_call_ended(self, channel: Channel, msg: m.ClerkCallEnded) -> None:
        stats = self.call(msg.call_id)
        if stats is None:
            return
        if self.recorder.link is not None and self.recorder.link.call_id == stats.call_id:
            await self.recorder.end()
        stats.ended_reason = msg.reason
        stats.ended_by = msg.by
        logger.info("clerk %s: call %s ended: %s by %s", self.name, stats.call_id, stats.ended_reason, stats.ended_by)
        if self._link is not None and self._link.call_id == stats.call_id:
            await self._close_link()
        if self._current is stats:
            self._current = None
        if msg.wrap_up and self.wrap_up:
            await self._wrap_up(channel, stats)
        stats.ended.set()

    def matter_type_for(self, field: str) -> str | None:
        """The first matter type of ``field`` in the catalog from ``welcome``."""
        for entry in self.welcome.fields if self.welcome is not None else []:
            if entry.id == field and entry.matters:
                return entry.matters[0].id
        return None

    async def _wrap_up(self, channel: Channel, stats: CallStats) -> None:
        matter_type = self.matter_type_for(stats.field)
        if matter_type is None:
            logger.warning("clerk %s: no matter type for field %r, cannot wrap up", self.name, stats.field)
            return
        matter = m.MatterIn(matter_type, "completed", notes="logged by a headless bot clerk")
        try:
            await channel.call("wrap_up", m.WrapUp(stats.call_id, [matter]))
        except BotError as exc:
            logger.warning("clerk %s: wrap-up of %s failed: %s", self.name, stats.call_id, exc)
            return
        stats.wrapped_up = True

    async def _finish(self, channel: Channel) -> None:
        if self._current is not None and channel.connected:
            try:
                await channel.call("hangup", m.CallRef(self._current.call_id))
            except BotError as exc:
                logger.warning("clerk %s: hangup failed: %s", self.name, exc)
        await self.recorder.end()
        await self._close_link()
        if self._current is not None:
            self._current.ended_reason = self._current.ended_reason or "bot_stopped"
            self._current.ended.set()
            self._current = None
        self.ready.clear()
        await channel.close()
        self._notify()
