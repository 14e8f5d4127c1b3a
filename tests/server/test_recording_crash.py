"""The server and its recorder workers killed with SIGKILL mid-recording: after restart the files are
finalized, stored in the records and play to within about a second of the kill."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
from aiortc import RTCPeerConnection

from client.bot import ClerkBot, KioskBot
from tests.recordings.senders import AUDIO_FPS, VIDEO_FPS, Sent, packets_of
from tests.server.test_durability import REPO, cli, free_port, serving
from tests.server.test_recording_calls import capture

VIDEO_FRAMES_BEFORE_KILL = 45  # 3 s at 15 fps


async def test_recordings_survive_sigkill_of_server_and_workers(tmp_path: Path) -> None:
    kiosk_token = cli(tmp_path, "kiosk", "add", "--name", "K", "--region", "sh/jiading/xincheng/park-3")
    clerk_token = cli(tmp_path, "clerk", "add", "--name", "C", "--fields", "market", "--regions", "sh/jiading",
                      "--languages", "en")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sent: dict[str, dict[str, Sent]] = {"visitor": {}, "clerk": {}}
    created = {"visitor": asyncio.Event(), "clerk": asyncio.Event()}
    async with serving(tmp_path, port) as proc:
        clerk = ClerkBot(url, clerk_token, on_recorder_created=capture_and_tell(sent["clerk"], created["clerk"]))
        kiosk = KioskBot(url, kiosk_token, field="market", recording_consent=True,
                         on_recorder_created=capture_and_tell(sent["visitor"], created["visitor"]))
        clerk_task = asyncio.create_task(clerk.run())
        await asyncio.wait_for(clerk.ready.wait(), 30)
        kiosk_task = asyncio.create_task(kiosk.run(600, timeout_s=60))
        # both recorder connections carry media: wait for seconds of video through each
        for who in ("visitor", "clerk"):
            await asyncio.wait_for(created[who].wait(), 60)
            await sent[who]["video"].wait(VIDEO_FRAMES_BEFORE_KILL, 60)
        killed_at = time.monotonic()
        os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)
        call_id = kiosk.call_id
        for task in (kiosk_task, clerk_task):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 30)
    assert call_id is not None
    call_dir = tmp_path / "recordings" / call_id
    assert sorted(p.name for p in call_dir.glob("*.part")), "the kill should leave part files behind"

    async with serving(tmp_path, port):  # the restart finalizes and stores them before it serves
        pass
    assert not list(call_dir.glob("*.part"))
    with sqlite3.connect(tmp_path / "records.sqlite3") as conn:
        rows = conn.execute("SELECT participant, path, duration_s, recovered, sha256 FROM recordings "
                            "WHERE call_id = ? ORDER BY participant", (call_id,)).fetchall()
        recorded = conn.execute("SELECT count(*) FROM events WHERE call_id = ? AND kind = 'recorded'",
                                (call_id,)).fetchone()[0]
    assert [r[0] for r in rows] == ["clerk", "visitor"] and recorded == 2
    for participant, rel, duration, recovered, _sha in rows:
        assert recovered == 1
        path = tmp_path / "recordings" / rel
        with av.open(str(path)) as container:  # it plays: every picture decodes, and it has a duration
            pictures = sum(1 for _ in container.decode(video=0))
            assert container.duration is not None
        assert pictures >= VIDEO_FRAMES_BEFORE_KILL - 20 and duration >= 1.0
        # all but about the last second before the kill: per stream, the frames written against the frames the
        # sender had encoded when the kill came (a second's worth, plus the few the recorder may miss at the start)
        for kind, per_second in (("video", VIDEO_FPS), ("audio", AUDIO_FPS)):
            sent_before_kill = sum(1 for frame in sent[participant][kind].frames if frame.at <= killed_at)
            written = len(packets_of(path, kind))
            assert sent_before_kill - 1.2 * per_second - 8 <= written <= sent_before_kill, (
                participant, kind, written, sent_before_kill)
    verify = subprocess.run([sys.executable, "-m", "server.cli.main", "--data-dir", str(tmp_path), "records", "verify"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def capture_and_tell(into: dict[str, Sent], created: asyncio.Event) -> Any:
    keep = capture(into)

    def hook(pc: RTCPeerConnection) -> None:
        keep(pc)
        created.set()
    return hook
