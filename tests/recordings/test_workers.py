"""Recording through worker processes: the pool, a worker killed mid-call, and the restart that recovers its files."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest

from recordings import files, protocol
from recordings.finalize import finalize_pending
from recordings.info import RecordingInfo
from recordings.workers import RecorderError, RecorderPool, WorkerDied
from tests.recordings.senders import (
    SEND_S,
    TIMEOUT,
    VIDEO_FPS,
    Participant,
    SentFrame,
    check_recording,
    find_run,
    packets_of,
)

VIDEO_CLOCK = 90_000
CRASH_LOSS_S = 1.0  # what a SIGKILL may cost: the open cluster (0.5 s) and frames in flight


@contextlib.asynccontextmanager
async def participants(*names: str) -> AsyncIterator[list[Participant]]:
    people = [Participant(name) for name in names]
    try:
        yield people
    finally:
        for person in people:
            await person.close()


async def test_a_call_recorded_by_worker_processes(tmp_path: Path) -> None:
    async with RecorderPool(tmp_path, 2, allow_loopback=True) as pool, participants("visitor", "clerk") as people:
        assert len(pool.pids()) == 2
        for person in people:
            await person.accept(await pool.answer("call-1", person.name, await person.offer()))
        assert pool.loads() == [1, 1]  # spread over the workers
        await asyncio.wait_for(asyncio.gather(*(p.connected.wait() for p in people)), TIMEOUT)
        for person in people:
            await person.sent["video"].wait(int(SEND_S * VIDEO_FPS))
        stats = await pool.stats()
        assert sorted(s.participants for s in stats) == [1, 1] and all(s.cpu_s > 0 for s in stats)
        for person in people:
            await person.close()
        infos = await pool.stop_call("call-1")
        assert pool.loads() == [0, 0]
        assert sorted(info.participant for info in infos) == ["clerk", "visitor"]
        for info in infos:
            check_recording(info, next(p for p in people if p.name == info.participant), tmp_path, "call-1")
        assert await pool.stop_call("call-1") == []


async def test_a_bad_offer_is_refused_and_the_worker_carries_on(tmp_path: Path) -> None:
    async with RecorderPool(tmp_path, 1, allow_loopback=True) as pool:
        pid = pool.pids()
        with pytest.raises(RecorderError, match="participant"):
            await pool.answer("call-2", "not/a/name", "v=0\r\n")
        with pytest.raises(RecorderError):
            await pool.answer("call-2", "visitor", "this is not SDP")
        assert pool.pids() == pid and pool.loads() == [0]


async def test_a_dead_worker_is_reported_replaced_and_its_files_finalized(tmp_path: Path) -> None:
    died: list[WorkerDied] = []
    reported = asyncio.Event()

    def on_worker_died(event: WorkerDied) -> None:
        died.append(event)
        reported.set()

    async with RecorderPool(tmp_path, 2, allow_loopback=True, on_worker_died=on_worker_died) as pool:
        async with participants("visitor", "clerk") as people:
            for person in people:
                await person.accept(await pool.answer("call-3", person.name, await person.offer()))
            await asyncio.wait_for(asyncio.gather(*(p.connected.wait() for p in people)), TIMEOUT)
            for person in people:
                await person.sent["video"].wait(2 * VIDEO_FPS)
            victim = pool.pids()[0]
            os.kill(victim, signal.SIGKILL)
            await asyncio.wait_for(reported.wait(), TIMEOUT)
            await pool.wait_workers()
            assert len(died) == 1 and died[0].pid == victim and died[0].returncode == -signal.SIGKILL
            assert died[0].participants == (("call-3", "visitor"),)
            assert len(pool.pids()) == 2 and victim not in pool.pids()
        infos = await pool.stop_call("call-3")
        by_name = {info.participant: info for info in infos}
        assert set(by_name) == {"visitor", "clerk"}
        assert by_name["visitor"].recovered and not by_name["clerk"].recovered
        assert by_name["visitor"].frames["video"] >= VIDEO_FPS
        assert sorted(p.name for p in (tmp_path / "call-3").iterdir()) == ["clerk.webm", "visitor.webm"]


# -- a worker killed, then the next start ---------------------------------------------------------------------------


class RawWorker:
    """``python -m recordings.worker`` spoken to directly, as the pool would."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.next_id = 1

    @classmethod
    async def start(cls, root: Path) -> RawWorker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "recordings.worker",
            "--root",
            str(root),
            "--allow-loopback",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        worker = cls(process)
        ready = await worker.read()
        assert isinstance(ready, protocol.Ready) and ready.pid == process.pid
        return worker

    async def read(self) -> protocol.Reply:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), TIMEOUT)
        return protocol.decode_reply(line)

    async def request(self, request: protocol.Request) -> protocol.Reply:
        assert self.process.stdin is not None
        request.id = self.next_id
        self.next_id += 1
        self.process.stdin.write(protocol.encode(request))
        await self.process.stdin.drain()
        reply = await self.read()
        assert reply.id == request.id
        return reply

    async def answer(self, call_id: str, person: Participant) -> None:
        offer = await person.offer()
        reply = await self.request(
            protocol.AnswerRequest(id=0, call_id=call_id, participant=person.name, offer_sdp=offer)
        )
        assert isinstance(reply, protocol.Answered), reply
        await person.accept(reply.answer_sdp)


async def test_sigkill_mid_recording_then_the_next_start_finalizes(tmp_path: Path) -> None:
    worker = await RawWorker.start(tmp_path)
    async with participants("visitor", "clerk") as people:
        for person in people:
            await worker.answer("call-4", person)
        await asyncio.wait_for(asyncio.gather(*(p.connected.wait() for p in people)), TIMEOUT)
        await people[0].sent["video"].wait(int(SEND_S * VIDEO_FPS))
        sent_at_kill = {
            person.name: {kind: list(sent.frames) for kind, sent in person.sent.items()} for person in people
        }
        worker.process.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(worker.process.wait(), TIMEOUT) == -signal.SIGKILL

    # What the crash left: part files, each playable as it is.
    directory = tmp_path / "call-4"
    for name in ("visitor", "clerk"):
        parts = files.parts_of(directory / f"{name}.webm")
        assert [(part.index, part.kind) for part in parts] == [(0, "video"), (1, "audio")]
        with av.open(str(parts[0].path)) as container:
            assert container.duration is None
            assert sum(1 for _ in container.decode(video=0)) > 0

    # The next start: the pool finalizes them before it starts its workers.
    pool = RecorderPool(tmp_path, 1, allow_loopback=True)
    try:
        recovered = await pool.start()
    finally:
        await pool.close()
    assert sorted(info.participant for info in recovered) == ["clerk", "visitor"]
    assert sorted(p.name for p in directory.iterdir()) == ["clerk.webm", "visitor.webm"]
    for info in recovered:
        check_crash_recording(info, sent_at_kill[info.participant])
    assert finalize_pending(tmp_path) == []


def check_crash_recording(info: RecordingInfo, sent: dict[str, list[SentFrame]]) -> None:
    """Finalized after the kill: a duration, decodable, and it ends within CRASH_LOSS_S of what was sent."""
    assert info.recovered
    with av.open(str(info.path)) as container:
        assert container.duration is not None
        decoded = sum(1 for _ in container.decode(video=0))
    video = packets_of(info.path, "video")
    audio = packets_of(info.path, "audio")
    assert decoded == len(video) > 0
    # The recorded video is a run of the sent frames: its last one says how far the file goes.
    start = find_run([data for _, data in video], sent["video"])
    assert start >= 0
    last_recorded = sent["video"][start + len(video) - 1]
    lost_s = ((sent["video"][-1].timestamp - last_recorded.timestamp) & 0xFFFFFFFF) / VIDEO_CLOCK
    assert 0 <= lost_s <= CRASH_LOSS_S, f"{info.participant}: lost {lost_s:.2f} s of video"
    start = find_run([data for _, data in audio], sent["audio"])
    lost_audio_s = (len(sent["audio"]) - start - len(audio)) * 0.02
    assert 0 <= lost_audio_s <= CRASH_LOSS_S, f"{info.participant}: lost {lost_audio_s:.2f} s of audio"
    # And the file's own clock agrees: it plays up to (about) the kill.
    end_s = max((video[-1][0] + 1000 / VIDEO_FPS) / 1000, (audio[-1][0] + 20) / 1000)
    assert info.duration_s == pytest.approx(end_s, abs=0.1)


async def test_a_worker_whose_input_closes_finalizes_and_exits(tmp_path: Path) -> None:
    worker = await RawWorker.start(tmp_path)
    async with participants("clerk") as people:
        await worker.answer("call-5", people[0])
        await asyncio.wait_for(people[0].connected.wait(), TIMEOUT)
        await people[0].sent["video"].wait(VIDEO_FPS)
        assert worker.process.stdin is not None
        worker.process.stdin.close()  # the server went away
        assert await asyncio.wait_for(worker.process.wait(), TIMEOUT) == 0
    assert sorted(p.name for p in (tmp_path / "call-5").iterdir()) == ["clerk.webm"]
