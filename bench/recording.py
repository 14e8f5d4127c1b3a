"""Benchmark: recording calls without transcoding, against aiortc's MediaRecorder.

Run: ``.venv/bin/python -m bench.recording [--quick]`` (about 3 minutes; 1 with ``--quick``).

Senders: aiortc peers in two processes (visitors, clerks), each participant sending 640x480 VP8 at 15 fps
(``client.media``'s moving pattern plus a little noise: about 450 kbit/s, a keyframe every 2 s) and 20 ms Opus.
They replay a clip encoded once (aiortc sends pre-encoded packets as they are), so the cores go to the recorders,
which run in :class:`recordings.workers.RecorderPool` workers: ``recorder`` is this package; ``MediaRecorder`` is
the same peer with its tracks given to aiortc's ``MediaRecorder`` (decode, re-encode to VP8/Opus WebM), through the
same pool (``--baseline-worker`` runs that worker).

A step records N two-party calls (4 streams each): all streams start at once; after a second, the CPU time of each
recorder process (``/proc/<pid>/stat``), of the senders and of the whole machine (``/proc/stat``) is taken over a
window; then the senders stop and every file's frames are counted. A step *sustains* its load when no stream is
short of more than 0.25 s of frames half a second after the senders stop (what is left in a recorder's pipeline at the
stop: MediaRecorder drops its queue), and no recorder process was above 90% of a core.
Each recorder is ramped from 1 call towards its predicted limit (then bisected). A recorded second is one
participant's file (audio + video) for a second. Last, the crash loss: a worker recording a call is killed with
SIGKILL mid-call, the pool finalizes its files, and what they hold is compared with what was sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import functools
import json
import math
import os
import pickle
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRecorder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.packet import Packet

from recordings import files
from recordings.finalize import describe
from recordings.info import RecordingInfo
from recordings.recorder import codec_preferences, default_configuration, media_kinds
from recordings.workers import RecorderPool

FPS = 15
CLIP_SECONDS = 4
KEYFRAME_EVERY = 2 * FPS
NOISE = 8  # +- grey levels of noise, so the encoder spends a realistic bitrate
VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000
TOLERANCE_S = 0.25  # what a stream may be short of: the frames still in the recorder's pipeline at the stop
BUSY_LIMIT = 0.90
CONNECT_TIMEOUT_S = 60.0
SETTLE_S = 0.5  # after the senders stop, for packets still in flight
CLK_TCK = os.sysconf("SC_CLK_TCK")
BENCH = Path(__file__).resolve()


# -- the clip -------------------------------------------------------------------------------------------------------


@dataclass
class Clip:
    video: list[bytes]  # VP8 frames, FPS a second, a keyframe every KEYFRAME_EVERY
    audio: list[bytes]  # 20 ms Opus packets

    @property
    def kbps(self) -> float:
        return sum(len(frame) for frame in self.video) * 8 / CLIP_SECONDS / 1000

    def save(self, path: Path) -> None:
        path.write_bytes(pickle.dumps((self.video, self.audio)))  # for the sender processes

    @classmethod
    def load(cls, path: Path) -> Clip:
        video, audio = pickle.loads(path.read_bytes())  # our own file, from save()
        return cls(video, audio)


def make_clip() -> Clip:
    """Encode the clip once, with aiortc's own encoders (as a participant's aiortc would)."""
    from aiortc.codecs.opus import OpusEncoder
    from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload

    from client.media import CaptionVideoTrack, ToneAudioTrack

    rng = np.random.default_rng(7)
    source = CaptionVideoTrack(["bench", "tax", "park 3"])
    encoder = Vp8Encoder()
    video = []
    for index in range(CLIP_SECONDS * FPS):
        pixels = source.render(index).astype(np.int16)
        pixels += rng.integers(-NOISE, NOISE + 1, pixels.shape[:2], dtype=np.int16)[:, :, np.newaxis]
        frame = av.VideoFrame.from_ndarray(np.clip(pixels, 0, 255).astype(np.uint8), format="rgb24")
        frame.pts = index * VIDEO_CLOCK // FPS
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        payloads, _ = encoder.encode(frame, force_keyframe=index % KEYFRAME_EVERY == 0)
        video.append(b"".join(vp8_depayload(payload) for payload in payloads))
    opus = OpusEncoder()
    tone = ToneAudioTrack()
    audio: list[bytes] = []
    for index in range(CLIP_SECONDS * 50):
        samples = np.ascontiguousarray(tone.samples(index * 960).reshape(1, -1))
        sound = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        sound.sample_rate = AUDIO_CLOCK
        sound.pts = index * 960
        sound.time_base = fractions.Fraction(1, AUDIO_CLOCK)
        audio += opus.encode(sound)[0]
    return Clip(video, audio)


class ReplayTrack(MediaStreamTrack):
    """A clip's encoded frames in a loop, in real time, from when ``start`` is set; ``sent`` counts them."""

    def __init__(self, kind: str, frames: list[bytes], start: asyncio.Event) -> None:
        super().__init__()
        self.kind, self.frames, self.start, self.sent = kind, frames, start, 0
        self.rate = FPS if kind == "video" else 50  # frames a second
        self.time_base = fractions.Fraction(1, VIDEO_CLOCK if kind == "video" else AUDIO_CLOCK)
        self.started_at = 0.0

    async def recv(self) -> Packet[Any]:
        await self.start.wait()
        self.started_at = self.started_at or time.monotonic()
        if (wait := self.started_at + self.sent / self.rate - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        if self.readyState != "live":
            raise MediaStreamError
        packet = av.Packet(self.frames[self.sent % len(self.frames)])
        packet.pts = self.sent * self.time_base.denominator // self.rate
        packet.time_base = self.time_base
        self.sent += 1
        return packet


# -- the sender process ---------------------------------------------------------------------------------------------


async def sender_main(clip: Clip, participants: int) -> None:
    """``--sender``: JSON lines with the bench on stdin/stdout (offers out, answers in, go, count, stop)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    start = asyncio.Event()
    peers: list[tuple[RTCPeerConnection, ReplayTrack, ReplayTrack]] = []
    connected = [asyncio.Event() for _ in range(participants)]
    for index in range(participants):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        video = ReplayTrack("video", clip.video, start)
        audio = ReplayTrack("audio", clip.audio, start)
        pc.addTransceiver(video, direction="sendonly")
        pc.addTransceiver(audio, direction="sendonly")
        pc.on("connectionstatechange", functools.partial(_on_state, pc, connected[index]))
        peers.append((pc, video, audio))

    def say(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    async def offer(pc: RTCPeerConnection) -> str:
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp) if pc.localDescription else ""

    say({"offers": await asyncio.gather(*(offer(pc) for pc, _, _ in peers))})
    while line := await reader.readline():
        message = json.loads(line)
        if "answers" in message:
            for (pc, _, _), answer in zip(peers, message["answers"], strict=True):
                await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            await asyncio.wait_for(asyncio.gather(*(event.wait() for event in connected)), CONNECT_TIMEOUT_S)
            say({"connected": True})
        elif "go" in message:
            start.set()
            say({"going": True})
        else:  # "count", or "stop": the frames sent so far
            for track in [track for _, *tracks in peers for track in tracks] if "stop" in message else []:
                track.stop()
            say({"sent": [[video.sent, audio.sent] for _, video, audio in peers]})
            if "stop" in message:
                break
    for pc, _, _ in peers:
        await pc.close()


def _on_state(pc: RTCPeerConnection, connected: asyncio.Event) -> None:
    if pc.connectionState == "connected":
        connected.set()


class SenderProcess:
    """A ``--sender`` child process and its JSON-lines conversation."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, clip_path: Path, participants: int) -> SenderProcess:
        command = [sys.executable, str(BENCH), "--sender", str(clip_path), str(participants)]
        pipe = asyncio.subprocess.PIPE
        return cls(await asyncio.create_subprocess_exec(*command, stdin=pipe, stdout=pipe, limit=1 << 26))

    async def read(self, timeout_s: float = CONNECT_TIMEOUT_S) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout_s)
        if not line:
            raise RuntimeError(f"sender {self.process.pid} exited ({await self.process.wait()})")
        message: dict[str, Any] = json.loads(line)
        return message

    async def say(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        await self.process.stdin.drain()
        return await self.read()

    async def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await self.process.wait()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# -- the baseline: aiortc's MediaRecorder ---------------------------------------------------------------------------


class BaselineRecorder:
    """The same recorder peer, its tracks written by aiortc's MediaRecorder (decoded and re-encoded)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls_: dict[str, list[tuple[RTCPeerConnection, MediaRecorder, Path]]] = {}

    @property
    def load(self) -> int:
        return sum(len(peers) for peers in self.calls_.values())

    def calls(self) -> list[str]:
        return sorted(self.calls_)

    async def answer(self, call_id: str, participant: str, offer_sdp: str) -> str:
        directory = files.call_dir(self.root, call_id)
        directory.mkdir(parents=True, exist_ok=True)
        path = files.final_path(directory, files.check_name(participant, "participant"))
        pc = RTCPeerConnection(default_configuration())
        recorder = MediaRecorder(str(path), format="webm")
        for kind in media_kinds(offer_sdp):
            if kind in ("audio", "video"):
                pc.addTransceiver(kind, direction="recvonly").setCodecPreferences(codec_preferences(kind))
        pc.on("track", recorder.addTrack)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await recorder.start()
        self.calls_.setdefault(call_id, []).append((pc, recorder, path))
        assert pc.localDescription is not None
        return str(pc.localDescription.sdp)

    async def stop_call(self, call_id: str) -> list[RecordingInfo]:
        infos = []
        for pc, recorder, path in self.calls_.pop(call_id, []):
            await recorder.stop()
            await pc.close()
            infos.append(describe(path))
        return infos

    async def close(self) -> list[RecordingInfo]:
        return [info for call_id in self.calls() for info in await self.stop_call(call_id)]


# -- one step: N calls for a window -----------------------------------------------------------------------------------


Snapshot = tuple[float, list[float], float, int, int]


def _snapshot(recorders: list[int], senders: list[SenderProcess]) -> Snapshot:
    """(now, CPU-s of each recorder process, CPU-s of the senders, busy and all clock ticks of the machine)."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    recorder_cpu, sender_cpu = [_cpu_s(pid) for pid in recorders], sum(_cpu_s(s.process.pid) for s in senders)
    return time.monotonic(), recorder_cpu, sender_cpu, sum(ticks) - ticks[3] - ticks[4], sum(ticks)


@dataclass
class Step:
    engine: str
    workers: int
    calls: int
    window_s: float
    recorder_cpu_s: list[float]  # per worker process, in the window
    sender_cpu_s: float
    machine_cores: float  # cores busy on the whole machine, on average over the window
    worst_loss_s: float  # the stream short of the most media
    lost_streams: int  # streams short of more than TOLERANCE_S
    frames_sent: int
    frames_recorded: int
    video_frames_sent: int
    video_frames_recorded: int

    @property
    def cores(self) -> float:
        """Cores the recorder processes used together, on average."""
        return sum(self.recorder_cpu_s) / self.window_s

    @property
    def busiest(self) -> float:
        """The busiest recorder process's share of one core."""
        return max(self.recorder_cpu_s) / self.window_s

    @property
    def cpu_per_recorded_s(self) -> float:
        """Recorder CPU-s per second of one participant's file (all participants, less the video frames lost)."""
        recorded = 2 * self.calls * self.video_frames_recorded / max(1, self.video_frames_sent)
        return self.cores / max(recorded, 1e-9)

    @property
    def other_cores(self) -> float:
        """Cores busy with everything but the recorders and the senders (the bench, the kernel, other work)."""
        return max(0.0, self.machine_cores - self.cores - self.sender_cpu_s / self.window_s)

    @property
    def sustained(self) -> bool:
        return self.lost_streams == 0 and self.busiest <= BUSY_LIMIT

    def busy(self) -> str:
        return " + ".join(f"{cpu / self.window_s:.0%}" for cpu in self.recorder_cpu_s)

    def line(self) -> str:
        return (
            f"  {self.engine:13} workers={self.workers} calls={self.calls:3}: recorder {self.busy()} of a core, "
            f"{self.cpu_per_recorded_s:.4f} CPU-s/recorded s; senders {self.sender_cpu_s / self.window_s:.0%}, "
            f"machine {self.machine_cores:.2f} cores busy (other {self.other_cores:.2f}); "
            f"frames {self.frames_recorded}/{self.frames_sent}, worst stream -{self.worst_loss_s:.2f} s: "
            + ("ok" if self.sustained else "NOT sustained")
        )


async def start_senders(clip_path: Path, calls: int) -> list[SenderProcess]:
    senders = await asyncio.gather(SenderProcess.start(clip_path, calls), SenderProcess.start(clip_path, calls))
    return list(senders)


async def connect(pool: RecorderPool, senders: list[SenderProcess], roles: Sequence[str]) -> None:
    """Each sender's participants offer, the pool answers (role by sender: visitors, clerks), all connect."""
    offers = await asyncio.gather(*(sender.read() for sender in senders))
    limit = asyncio.Semaphore(16)

    async def answer(call: int, role: str, offer: str) -> str:
        async with limit:
            return await pool.answer(f"call-{call}", role, offer)

    for sender, role, message in zip(senders, roles, offers, strict=True):
        answers = await asyncio.gather(*(answer(i, role, offer) for i, offer in enumerate(message["offers"])))
        assert sender.process.stdin is not None
        sender.process.stdin.write((json.dumps({"answers": answers}) + "\n").encode())
    for sender in senders:
        assert (await sender.read())["connected"]


async def run_step(engine: str, workers: int, calls: int, window_s: float, clip_path: Path, root: Path) -> Step:
    directory = root / f"{engine}-{workers}w-{calls}"
    baseline = [sys.executable, str(BENCH), "--baseline-worker"]
    pool = RecorderPool(directory, workers, command=None if engine == "recorder" else baseline)
    await pool.start()
    senders = await start_senders(clip_path, calls)
    try:
        await connect(pool, senders, ("visitor", "clerk"))
        pids = pool.pids()
        await asyncio.gather(*(sender.say({"go": True}) for sender in senders))
        await asyncio.sleep(1.0)  # past the start (every stream's first keyframe at once)
        start, recorders_before, senders_before, busy_before, total_before = _snapshot(pids, senders)
        await asyncio.sleep(window_s)
        end, recorders_after, senders_after, busy_after, total_after = _snapshot(pids, senders)
        stopped = await asyncio.gather(*(sender.say({"stop": True}) for sender in senders))
        await asyncio.sleep(SETTLE_S)
        infos = await asyncio.gather(*(pool.stop_call(f"call-{call}") for call in range(calls)))
    finally:
        await pool.close()
        for sender in senders:
            await sender.close()
    recorded = {(info.call_id, info.participant): info.frames for result in infos for info in result}
    losses = []
    sent_total = video_sent = 0
    for role, message in zip(("visitor", "clerk"), stopped, strict=True):
        for call, (video, audio) in enumerate(message["sent"]):
            frames = recorded.get((f"call-{call}", role), {})
            losses += [(video - frames.get("video", 0)) / FPS, (audio - frames.get("audio", 0)) * 0.02]
            sent_total += video + audio
            video_sent += video
    shutil.rmtree(directory, ignore_errors=True)
    return Step(
        engine=engine,
        workers=workers,
        calls=calls,
        window_s=end - start,
        recorder_cpu_s=[b - a for a, b in zip(recorders_before, recorders_after, strict=True)],
        sender_cpu_s=senders_after - senders_before,
        machine_cores=(busy_after - busy_before) / max(1, total_after - total_before) * (os.cpu_count() or 1),
        worst_loss_s=max(losses),
        lost_streams=sum(1 for loss in losses if loss > TOLERANCE_S),
        frames_sent=sent_total,
        frames_recorded=sum(sum(frames.values()) for frames in recorded.values()),
        video_frames_sent=video_sent,
        video_frames_recorded=sum(frames.get("video", 0) for frames in recorded.values()),
    )


@dataclass
class Ramp:
    engine: str
    workers: int
    steps: list[Step] = field(default_factory=list)

    @property
    def best(self) -> Step | None:
        sustained = [step for step in self.steps if step.sustained]
        return max(sustained, key=lambda step: step.calls) if sustained else None

    @property
    def first_failure(self) -> Step | None:
        failed = [step for step in self.steps if not step.sustained]
        return min(failed, key=lambda step: step.calls) if failed else None

    def at(self, calls: int) -> Step | None:
        return next((step for step in self.steps if step.calls == calls), None)


async def ramp(
    engine: str, workers: int, first: int, limit: int, tries: int, window_s: float, clip_path: Path, root: Path
) -> Ramp:
    """Measure at ``first`` calls, jump towards the predicted limit, then bisect between sustained and not."""
    result = Ramp(engine, workers)
    calls = first
    for _ in range(tries):
        step = await run_step(engine, workers, calls, window_s, clip_path, root)
        result.steps.append(step)
        print(step.line(), flush=True)
        good = result.best.calls if result.best else 0
        failure = result.first_failure
        if failure is None:
            if calls >= limit:
                break
            # Where the busiest recorder would reach BUSY_LIMIT, and where the machine would run out of cores.
            per_call = step.busiest / math.ceil(calls / workers)
            by_recorder = int(BUSY_LIMIT * 0.9 / per_call) * workers if per_call > 0 else limit
            per_call_all = (step.cores + step.sender_cpu_s / step.window_s) / calls
            free = (os.cpu_count() or 1) - step.other_cores
            by_machine = int(0.85 * free / per_call_all) if per_call_all > 0 else limit
            target = min(by_recorder, by_machine) if len(result.steps) == 1 else math.ceil(calls * 1.4)
            calls = min(limit, max(calls + 1, target))
        else:
            if failure.calls - good <= max(1, good // 10):
                break
            calls = (good + failure.calls) // 2
    return result


# -- the crash loss -------------------------------------------------------------------------------------------------


async def crash_loss(clip_path: Path, root: Path, runs: int) -> list[float]:
    """Seconds of media lost when a worker recording one call is killed (SIGKILL) mid-call, per stream."""
    losses: list[float] = []
    for run in range(runs):
        pool = RecorderPool(root / f"crash-{run}", 1)
        await pool.start()
        senders = await start_senders(clip_path, 1)
        try:
            await connect(pool, senders, ("visitor", "clerk"))
            await asyncio.gather(*(sender.say({"go": True}) for sender in senders))
            await asyncio.sleep(3.0 + 0.37 * run)  # kill at a different phase of the clusters each run
            os.kill(pool.pids()[0], signal.SIGKILL)
            counted = await asyncio.gather(*(sender.say({"count": True}) for sender in senders))
            await pool.wait_workers()
            infos = await pool.stop_call("call-0")
            await asyncio.gather(*(sender.say({"stop": True}) for sender in senders))
        finally:
            await pool.close()
            for sender in senders:
                await sender.close()
        frames = {info.participant: info.frames for info in infos}
        for role, message in zip(("visitor", "clerk"), counted, strict=True):
            video, audio = message["sent"][0]
            losses.append((video - frames[role].get("video", 0)) / FPS)
            losses.append((audio - frames[role].get("audio", 0)) * 0.02)
        shutil.rmtree(root / f"crash-{run}", ignore_errors=True)
    return losses


# -- the report -----------------------------------------------------------------------------------------------------


def _failure(ramp: Ramp) -> str:
    step = ramp.first_failure
    if step is None:
        return "none (end of the ramp)"
    return (
        f"{step.calls}: {step.frames_recorded / max(1, step.frames_sent):.0%} of frames in time, recorder {step.busy()}"
    )


def table(ours: Ramp, two: Ramp, baseline: Ramp, losses: list[float], clip: Clip, quick: bool) -> str:
    rows = [
        "| recorder | worker processes | CPU-s per recorded second: 1 call / largest load | two-party calls "
        "sustained | recorder CPU at that load | senders' CPU | machine busy (other work) | first load not sustained |",
        "|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for name, ramp in (("recordings", ours), ("recordings", two), ("aiortc MediaRecorder", baseline)):
        one, best = ramp.at(1), ramp.best
        step = best or ramp.steps[0]
        cpu = f"{one.cpu_per_recorded_s:.4f}" if one else "-"
        cpu += f" / {best.cpu_per_recorded_s:.4f}" if best else ""
        rows.append(
            f"| {name} | {ramp.workers} | {cpu} | {best.calls if best else 0} | {step.busy()} of a core | "
            f"{step.sender_cpu_s / step.window_s:.2f} cores | {step.machine_cores:.2f} ({step.other_cores:.2f}) "
            f"cores | {_failure(ramp)} |"
        )
    ours_one, base_one, top = ours.at(1), baseline.at(1), ours.best or ours.steps[0]
    if ours_one and base_one:
        base = base_one.cpu_per_recorded_s
        rows.append(
            f"\nMediaRecorder's CPU per recorded second over recordings': {base / ours_one.cpu_per_recorded_s:.0f}x "
            f"at 1 call each; {base / top.cpu_per_recorded_s:.0f}x against recordings at {top.calls} calls (at low "
            f"load every packet wakes an idle event loop, which both pay; the rest of MediaRecorder's cost is "
            f"decoding and encoding)."
        )
        base_two = baseline.at(2)
        if top.calls > 1 and base_two:  # what one more recorded participant costs
            ours_extra = (top.cores - ours_one.cores) / (2 * (top.calls - 1))
            base_extra = (base_two.cores - base_one.cores) / 2
            rows.append(
                f"One more recorded participant costs recordings {ours_extra:.4f} CPU-s a second, MediaRecorder "
                f"{base_extra:.3f}: {base_extra / ours_extra:.0f}x."
            )
    rows += [
        f"A recorder process with a core to itself: about {BUSY_LIMIT / (top.busiest / top.calls):.0f} two-party "
        f"calls ({top.busiest / top.calls:.2%} of a core a call at {top.calls} calls).",
        f"Crash (SIGKILL of a worker mid-call, files finalized by the pool): media lost per stream "
        f"mean {sum(losses) / len(losses):.2f} s, worst {max(losses):.2f} s ({len(losses)} streams).",
        f"A recorded second: one participant's file for a second (VP8 640x480 {FPS} fps at {clip.kbps:.0f} kbit/s "
        f"+ Opus 20 ms). Sustained: no stream short of more than {TOLERANCE_S} s of frames {SETTLE_S} s after "
        f"the senders stop, no recorder process above {BUSY_LIMIT:.0%} of a core. Senders (aiortc, 2 processes), "
        f"recorders and any other work share the machine's {os.cpu_count()} CPUs{'; --quick' if quick else ''}.",
    ]
    return "\n".join(rows)


async def bench(quick: bool) -> None:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="vw-bench-recording-"))
    try:
        clip = make_clip()
        clip_path = work / "clip.bin"
        clip.save(clip_path)
        window = 3.0 if quick else 6.0
        print(f"clip: {clip.kbps:.0f} kbit/s of video, {len(clip.video)} frames; window {window:.0f} s", flush=True)
        ours = await ramp("recorder", 1, 1, 96, 3 if quick else 7, window, clip_path, work)
        baseline = await ramp("MediaRecorder", 1, 1, 8, 1 if quick else 3, window, clip_path, work)
        first_two = ours.best.calls if ours.best else 2
        two = await ramp("recorder", 2, first_two, 128, 2 if quick else 5, window, clip_path, work)
        losses = await crash_loss(clip_path, work, 1 if quick else 3)
        print()
        print(table(ours, two, baseline, losses, clip, quick))
        print(f"\n(bench took {time.monotonic() - started:.0f} s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--sender"]:
        asyncio.run(sender_main(Clip.load(Path(argv[1])), int(argv[2])))
        return 0
    if argv[:1] == ["--baseline-worker"]:
        from recordings.worker import main as worker_main

        return worker_main(argv[1:], service=BaselineRecorder)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter windows, fewer steps")
    args = parser.parse_args(argv)
    asyncio.run(bench(args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
