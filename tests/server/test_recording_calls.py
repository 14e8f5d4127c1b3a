"""Recorded calls through the running server: consent, the participants' recorder connections, the records.

Bot kiosk and bot clerk (aiortc) call each other peer to peer and, when the call
is recorded, each also sends to the server's recorder workers. The encoders of
their recorder connections keep a copy of every frame (tests/recordings/senders.py),
so the files can be compared with what was sent, byte for byte.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from pathlib import Path
from typing import Any

import av
import sqlalchemy as sa
from aiortc import RTCPeerConnection

from client.bot import ClerkBot, KioskBot, KioskResult
from recordings.bitstream import is_vp8_keyframe
from server.keys import EVIDENCE, RECORDS
from server.live.recording_desk import RecordingDesk
from server.records.db import events
from tests.recordings.senders import Sent, capture_encoder, find_run, packets_of
from tests.server.conftest import Harness, HarnessFactory

TIMEOUT = 60.0
FPS = 15
PARK = "sh/jiading/xincheng/park-3"


def capture(into: dict[str, Sent]) -> Any:
    """A recorder-connection hook that keeps a copy of every frame its encoders make."""
    def hook(pc: RTCPeerConnection) -> None:
        for transceiver in pc.getTransceivers():
            into[transceiver.kind] = capture_encoder(transceiver.sender, transceiver.kind)
    return hook


def refused(ack: dict[str, Any], code: str) -> str:
    """The message of an error ack with ``code``."""
    assert ack["ok"] is False and ack["error"]["code"] == code, ack
    assert ack["error"]["message"]
    return str(ack["error"]["message"])


def desk_of(harness: Harness) -> RecordingDesk:
    desk = harness.desk
    assert desk is not None, "the test configuration records calls, so the server must have a recording desk"
    return desk


async def kinds_of(harness: Harness, call_id: str) -> list[tuple[str, dict[str, Any]]]:
    async with harness.server.app[RECORDS].engine.connect() as conn:
        rows = await conn.execute(sa.select(events.c.kind, events.c.data).where(events.c.call_id == call_id)
                                  .order_by(events.c.id))
        return [(r.kind, r.data) for r in rows]


async def bot_call(harness: Harness, *, consent: bool | None, seconds: float, field: str = "tax",
                   sent: dict[str, dict[str, Sent]] | None = None) -> tuple[KioskResult, ClerkBot]:
    sent = sent if sent is not None else {}
    sent.setdefault("visitor", {})
    sent.setdefault("clerk", {})
    _, kiosk_token = await harness.identities.add_kiosk("Park kiosk", PARK)
    _, clerk_token = await harness.identities.add_clerk("Recorded clerk", [field], ["sh/jiading"], ["en"],
                                                       center="Jiading center")
    clerk = ClerkBot(harness.url, clerk_token, on_recorder_created=capture(sent["clerk"]))
    stop = asyncio.Event()
    clerk_task = asyncio.create_task(clerk.run(stop=stop))
    try:
        await asyncio.wait_for(clerk.ready.wait(), 10)
        kiosk = KioskBot(harness.url, kiosk_token, field=field, recording_consent=consent,
                         on_recorder_created=capture(sent["visitor"]))
        result = await kiosk.run(seconds, timeout_s=30)
        assert result.ok, result.summary()
        assert result.call_id is not None
        await clerk.wait_ended(result.call_id, timeout_s=10)
        assert kiosk.recorder.error is None and clerk.recorder.error is None, (kiosk.recorder.error,
                                                                               clerk.recorder.error)
        return result, clerk
    finally:
        stop.set()
        await asyncio.wait_for(clerk_task, 10)


def check_file(path: Path, sent: dict[str, Sent]) -> tuple[int, int, float]:
    """The file holds VP8 and Opus, the sender's encoded frames byte for byte, and every picture decodes."""
    with av.open(str(path)) as container:
        assert [s.codec_context.name for s in container.streams.video] == ["vp8"]
        assert [s.codec_context.name for s in container.streams.audio] == ["opus"]
        decoded = sum(1 for _ in container.decode(video=0))
    video = packets_of(path, "video")
    audio = packets_of(path, "audio")
    assert decoded == len(video)
    assert is_vp8_keyframe(video[0][1]), "the file must start with a decodable picture"
    for kind, packets in (("video", video), ("audio", audio)):
        frames = sent[kind].frames
        # all but the last frame (still in the jitter buffer) and possibly the first before the recorder's receiver ran
        assert len(frames) - 8 <= len(packets) <= len(frames), (kind, len(packets), len(frames))
        assert find_run([data for _, data in packets], frames) >= 0, f"{kind}: not the sent frames (re-encoded?)"
    return len(video), len(audio), (video[-1][0] - video[0][0]) / 1000


async def test_a_recorded_call_yields_both_participants_files_as_sent(harness_factory: HarnessFactory) -> None:
    harness = await harness_factory(recording_workers=1)
    desk = desk_of(harness)
    await desk.start()  # so the recorder does not miss the first seconds while its worker starts
    sent: dict[str, dict[str, Sent]] = {}
    result, _ = await bot_call(harness, consent=True, seconds=4.0, sent=sent)
    assert result.call_id is not None
    stored = await desk.wait_finished(result.call_id, TIMEOUT)
    assert len(stored) == 2

    rows = await harness.server.app[EVIDENCE].for_call(result.call_id)
    assert sorted(r["participant"] for r in rows) == ["clerk", "visitor"]
    log = await kinds_of(harness, result.call_id)
    requested = log[0][1]
    assert requested["recording"] == {"policy": "ask", "consent": True, "recorded": True}
    assert sorted(d["participant"] for k, d in log if k == "recording_started") == ["clerk", "visitor"]
    recorded = {d["participant"]: d for k, d in log if k == "recorded"}
    for row in rows:
        path = harness.settings.recordings_root / row["path"]
        assert path.parent.name == result.call_id
        video_frames, audio_frames, span_s = check_file(path, sent[row["participant"]])
        assert video_frames >= 2 * FPS and audio_frames >= 2 * 50  # seconds of media, not a stub
        assert row["actor"].startswith("kiosk:" if row["participant"] == "visitor" else "clerk:")
        # the logged duration is the file's own time span (a busy sender may send fewer than FPS frames a second)
        assert abs(row["duration_s"] - span_s) < 1.0, (row["duration_s"], span_s, video_frames)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        event = recorded[row["participant"]]
        assert digest == row["sha256"] == event["sha256"]  # the checksum joins the hash chain
        assert event["size_bytes"] == path.stat().st_size == row["size_bytes"]
        assert event["frames"] == {"video": video_frames, "audio": audio_frames}
        assert not row["recovered"]
    status = await harness.server.app[RECORDS].verify()
    assert status.ok, status.describe()
    # personal data: the folder is the server user's alone, and so are the files
    root = harness.settings.recordings_root
    assert root.stat().st_mode & 0o777 == 0o700
    for path in (root / result.call_id).iterdir():
        assert path.stat().st_mode & 0o077 == 0, (path, oct(path.stat().st_mode))


async def test_declined_consent_records_nothing_and_the_call_goes_on(harness_factory: HarnessFactory) -> None:
    harness = await harness_factory(recording_workers=1)
    result, clerk = await bot_call(harness, consent=False, seconds=1.0)
    assert result.call_id is not None
    assert result.video_frames > 5 and result.audio_frames > 20  # the call itself went on
    assert clerk.recorder.offers == 0
    log = await kinds_of(harness, result.call_id)
    assert log[0][1]["recording"] == {"policy": "ask", "consent": False, "recorded": False}
    assert not any(k.startswith("record") for k, _ in log)
    assert await harness.server.app[EVIDENCE].for_call(result.call_id) == []
    assert not (harness.settings.recordings_root / result.call_id).exists()
    assert not desk_of(harness).recording(result.call_id)  # the recorder never heard of the call


async def test_recording_consent_and_recorder_offers_are_checked(harness_factory: HarnessFactory) -> None:
    harness = await harness_factory(recording_workers=1)
    await desk_of(harness).start()
    kiosk = await harness.kiosk(region=PARK)
    clerk = await harness.clerk(fields="market,tax", languages="en")
    # a field that records every call takes no call without the visitor's consent
    for request in ({"field": "market", "language": "en"},
                    {"field": "market", "language": "en", "recording_consent": False}):
        assert "recording_consent" in refused(await kiosk.call("request_call", request), "consent_required")
    ack = await kiosk.call("request_call", {"field": "tax", "language": "en", "recording_consent": "yes"})
    assert "recording_consent" in refused(ack, "invalid_payload")

    # a call the visitor declined to have recorded: no recorder connection from either side
    declined = {"field": "tax", "language": "en", "recording_consent": False}
    call_id = (await kiosk.ok("request_call", declined))["call_id"]
    ack = await kiosk.call("recorder_offer", {"call_id": call_id, "sdp": "v=0"})
    refused(ack, "wrong_state")  # not answered yet
    await clerk.next("ring")
    await clerk.ok("accept", {"call_id": call_id})
    assert (await kiosk.next("matched"))["recording"] is False
    assert (await clerk.next("matched"))["recording"] is False
    for peer in (kiosk, clerk):
        ack = await peer.call("recorder_offer", {"call_id": call_id, "sdp": "v=0"})
        refused(ack, "not_recorded")
    ack = await kiosk.call("recorder_offer", {"call_id": call_id})
    assert "sdp" in refused(ack, "invalid_payload")
    await clerk.ok("hangup", {"call_id": call_id})

    # market with consent: recorded, and only the call's own participants may send to its recorder
    other_kiosk = await harness.kiosk(region=PARK, name="Other")
    call_id = (await kiosk.ok("request_call", {"field": "market", "language": "en",
                                               "recording_consent": True}))["call_id"]
    await clerk.ok("wrap_up", {"call_id": (await clerk.next("call_ended"))["call_id"], "matters": [
        {"matter_type": "tax-consultation", "outcome": "completed"}]})
    await clerk.next("ring")
    await clerk.ok("accept", {"call_id": call_id})
    assert (await kiosk.next("matched"))["recording"] is True
    ack = await other_kiosk.call("recorder_offer", {"call_id": call_id, "sdp": "v=0"})
    refused(ack, "not_participant")
    # a recorder that cannot use the offer says why, the failure is logged, and the call goes on
    message = refused(await kiosk.call("recorder_offer", {"call_id": call_id, "sdp": "v=0"}), "recorder_unavailable")
    log = await kinds_of(harness, call_id)
    assert ("recording_failed", {"participant": "visitor", "error": message}) in log
    await kiosk.ok("media_connected", {"call_id": call_id})
    await kiosk.ok("hangup", {"call_id": call_id})
    assert (await clerk.next("call_ended"))["reason"] == "hangup"


async def test_a_dead_recorder_worker_is_replaced_and_both_sides_send_again(
    harness_factory: HarnessFactory,
) -> None:
    harness = await harness_factory(recording_workers=1)
    desk = desk_of(harness)
    await desk.start()
    _, kiosk_token = await harness.identities.add_kiosk("Park kiosk", PARK)
    _, clerk_token = await harness.identities.add_clerk("Clerk", ["tax"], ["sh/jiading"], ["en"])
    links: dict[str, list[dict[str, Sent]]] = {"visitor": [], "clerk": []}  # each recorder connection's frames

    def keep(who: str) -> Any:
        def hook(pc: RTCPeerConnection) -> None:
            links[who].append({})
            capture(links[who][-1])(pc)
        return hook

    async def sending(count: int) -> None:
        """Until the ``count``-th recorder connection of each side has sent a second of video."""
        for side, who in ((kiosk.recorder, "visitor"), (clerk.recorder, "clerk")):
            await side.wait_answers(count, TIMEOUT)
            await links[who][count - 1]["video"].wait(FPS, TIMEOUT)

    clerk = ClerkBot(harness.url, clerk_token, on_recorder_created=keep("clerk"))
    stop = asyncio.Event()
    clerk_task = asyncio.create_task(clerk.run(stop=stop))
    await asyncio.wait_for(clerk.ready.wait(), 10)
    kiosk = KioskBot(harness.url, kiosk_token, field="tax", recording_consent=True, on_recorder_created=keep("visitor"))
    kiosk_task = asyncio.create_task(kiosk.run(120, timeout_s=30))
    try:
        await sending(1)
        pool = await desk.pool()
        [pid] = pool.pids()
        os.kill(pid, signal.SIGKILL)  # the worker recording this call dies
        # the pool finalizes what it wrote, starts a new worker, and both participants offer to it again
        await sending(2)
        assert pool.pids() != [pid]
        call_id = kiosk.call_id
        assert call_id is not None
        await clerk.hangup(call_id)
        result = await asyncio.wait_for(kiosk_task, 30)
        assert result.ok, result.summary()  # the call itself never noticed
    finally:
        kiosk_task.cancel()
        stop.set()
        await asyncio.wait_for(clerk_task, 10)
    stored = await desk.wait_finished(call_id, TIMEOUT)
    rows = await harness.server.app[EVIDENCE].for_call(call_id)
    assert len(stored) == len(rows) == 4, rows
    by_name = {Path(r["path"]).name: r for r in rows}
    assert set(by_name) == {"visitor.webm", "clerk.webm", "visitor-2.webm", "clerk-2.webm"}
    assert by_name["visitor.webm"]["recovered"] and by_name["clerk.webm"]["recovered"]
    assert not by_name["visitor-2.webm"]["recovered"] and not by_name["clerk-2.webm"]["recovered"]
    log = await kinds_of(harness, call_id)
    assert sorted(d["participant"] for k, d in log if k == "recording_interrupted") == ["clerk", "visitor"]
    assert sorted(d["participant"] for k, d in log if k == "recording_started") == ["clerk", "clerk", "visitor",
                                                                                   "visitor"]
    status = await harness.server.app[RECORDS].verify()
    assert status.ok, status.describe()
