"""Recorder worker processes, and the pool that spreads recorder peers over them.

One event loop saturates after a handful of media streams, so recorder peers
run in worker processes (``python -m recordings.worker``, see
:mod:`recordings.worker`), spoken to with JSON lines over their stdin and
stdout (:mod:`recordings.protocol`).

:class:`RecorderPool` is what the server uses::

    pool = RecorderPool(settings.recordings_dir, workers=2)
    recovered = await pool.start()                 # also finalizes what a crash left behind
    answer_sdp = await pool.answer(call_id, "visitor", offer_sdp)
    ...
    infos = await pool.stop_call(call_id)          # list[RecordingInfo], one per recording
    await pool.close()

Each participant's recorder peer goes to the worker with the fewest open
peers (a participant that offers again goes back to the same worker). When a
worker dies, its pending requests fail with :class:`WorkerDiedError`, the
recordings of its calls are finalized from their part files (as
``finalize_pending`` would), ``on_worker_died`` is called with a
:class:`WorkerDied`, and a new worker takes its place. The recovered
recordings are returned by the next ``stop_call`` of their call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import msgspec

import recordings
from recordings import protocol
from recordings.finalize import finalize_pending
from recordings.info import RecordingInfo

logger = logging.getLogger(__name__)

_ReplyT = TypeVar("_ReplyT", bound=protocol.Reply)

START_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 120.0
SHUTDOWN_TIMEOUT_S = 120.0
RESPAWN_DELAY_S = 1.0
REPLY_LINE_LIMIT = 16 * 1024 * 1024  # a stop_call reply lists every recording of a call
_PROJECT_ROOT = Path(recordings.__file__).resolve().parent.parent


class RecorderError(RuntimeError):
    """A worker could not do what was asked (e.g. an offer without VP8 or Opus); the message says why."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type


class WorkerDiedError(RuntimeError):
    """The worker handling the request died (or no worker is running)."""


@dataclass(frozen=True)
class WorkerDied:
    """A worker process ended without being asked to: the peers it recorded are gone.

    ``participants`` are the ``(call_id, participant)`` whose recording
    stopped; their files so far are finalized (and returned by the next
    ``stop_call`` of each call). To keep recording them, the participants
    must offer to the recorder again.
    """

    worker: int
    pid: int
    returncode: int | None
    participants: tuple[tuple[str, str], ...]


@dataclass(eq=False)
class _Worker:
    index: int
    process: asyncio.subprocess.Process
    ready: asyncio.Future[int]
    pending: dict[int, asyncio.Future[protocol.Reply]] = field(default_factory=dict)
    participants: set[tuple[str, str]] = field(default_factory=set)
    alive: bool = True
    expected_exit: bool = False  # killed or shut down by the pool
    shut_down: bool = False  # replied to a shutdown request: it finalized everything itself
    reader: asyncio.Task[None] | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def load(self) -> int:
        return len(self.participants)


class RecorderPool:
    """Recorder peers spread over ``workers`` worker processes, files under ``root``.

    ``command`` replaces the worker command line (default:
    ``python -m recordings.worker --root ROOT``; the benchmark runs a
    baseline worker this way). ``allow_loopback`` makes the workers gather
    127.0.0.1 ICE candidates too (hosts with only loopback).
    """

    def __init__(
        self,
        root: Path,
        workers: int,
        *,
        command: Sequence[str] | None = None,
        allow_loopback: bool = False,
        on_worker_died: Callable[[WorkerDied], None] | None = None,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        if workers < 1:
            raise ValueError(f"a pool needs at least one worker, not {workers}")
        self.root = root
        self.size = workers
        self.on_worker_died = on_worker_died
        self.request_timeout_s = request_timeout_s
        self._command = list(command) if command is not None else [sys.executable, "-m", "recordings.worker"]
        self._command += ["--root", str(root)]
        if allow_loopback:
            self._command.append("--allow-loopback")
        self._workers: list[_Worker | None] = [None] * workers
        self._assigned: dict[tuple[str, str], _Worker] = {}
        self._recovered: dict[str, list[RecordingInfo]] = {}
        self._recovering: set[asyncio.Task[None]] = set()
        self._replacing: set[asyncio.Task[None]] = set()
        self._next_id = 1
        self._closing = False
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------------------------------------

    async def start(self) -> list[RecordingInfo]:
        """Finalize recordings a previous run left unfinished, then start the workers.

        Returns the recordings finalized now (``recovered`` set): the server
        should record them as it would those of ``stop_call``.
        """
        if self._started:
            raise RuntimeError("the pool is already started")
        self._started = True
        self.root.mkdir(parents=True, exist_ok=True)
        recovered = await asyncio.to_thread(finalize_pending, self.root)
        workers = await asyncio.gather(*(self._spawn(index) for index in range(self.size)))
        for worker in workers:
            self._workers[worker.index] = worker
        return recovered

    async def close(self) -> list[RecordingInfo]:
        """Stop every call (finalizing its recordings), shut the workers down; every recording not yet returned."""
        self._closing = True
        workers = [worker for worker in self._workers if worker is not None and worker.alive]
        results = await asyncio.gather(*(self._shutdown(worker) for worker in workers), return_exceptions=True)
        while self._recovering or self._replacing:
            await asyncio.gather(*self._recovering, *self._replacing, return_exceptions=True)
        infos: list[RecordingInfo] = []
        for result in results:
            if isinstance(result, BaseException):
                logger.error("recorder pool: shutting a worker down failed: %r", result)
            else:
                infos += result
        for recovered in self._recovered.values():
            infos += recovered
        self._recovered.clear()
        self._assigned.clear()
        return infos

    async def __aenter__(self) -> RecorderPool:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- what the server calls -----------------------------------------------------------------------------------------

    async def answer(self, call_id: str, participant: str, offer_sdp: str) -> str:
        """The SDP answer (with candidates) of a new recorder peer for ``participant`` in ``call_id``."""
        key = (call_id, participant)
        worker = self._assigned.get(key)
        if worker is None or not worker.alive:
            worker = self._least_loaded()
        known = key in worker.participants
        worker.participants.add(key)  # counted as load at once, and recovered if the worker dies meanwhile
        self._assigned[key] = worker
        try:
            reply = await self._request(
                worker,
                protocol.AnswerRequest(id=0, call_id=call_id, participant=participant, offer_sdp=offer_sdp),
                protocol.Answered,
            )
        except RecorderError:
            if not known:
                worker.participants.discard(key)
                if self._assigned.get(key) is worker:
                    del self._assigned[key]
            raise
        return reply.answer_sdp

    async def stop_call(self, call_id: str) -> list[RecordingInfo]:
        """Close the call's recorder peers, finalize the files; every recording of the call."""
        workers = {worker for (call, _), worker in self._assigned.items() if call == call_id}
        for key in [key for key in self._assigned if key[0] == call_id]:
            del self._assigned[key]
        results = await asyncio.gather(*(self._stop_on(worker, call_id) for worker in workers), return_exceptions=True)
        if self._recovering:  # a worker of this call may have just died: wait for its files
            await asyncio.gather(*self._recovering, return_exceptions=True)
        infos = []
        for result in results:
            if isinstance(result, BaseException):  # its files stay as parts, for finalize_pending
                logger.error("recorder pool: stopping %s on a worker failed: %r", call_id, result)
            else:
                infos += result
        infos += self._recovered.pop(call_id, [])
        return infos

    async def wait_workers(self) -> None:
        """Wait until every worker slot has a running worker again (after a death, its replacement)."""
        while self._replacing:
            await asyncio.gather(*self._replacing, return_exceptions=True)

    def loads(self) -> list[int]:
        """Open recorder peers per worker (0 for a worker being replaced)."""
        return [worker.load if worker is not None and worker.alive else 0 for worker in self._workers]

    def pids(self) -> list[int]:
        """Process ids of the running workers."""
        return [worker.pid for worker in self._workers if worker is not None and worker.alive]

    async def stats(self) -> list[protocol.WorkerStats]:
        """Each running worker's own account of its load and CPU time."""
        workers = [worker for worker in self._workers if worker is not None and worker.alive]
        return list(
            await asyncio.gather(
                *(self._request(worker, protocol.StatsRequest(id=0), protocol.WorkerStats) for worker in workers)
            )
        )

    # -- internals -----------------------------------------------------------------------------------------------------

    def _least_loaded(self) -> _Worker:
        alive = [worker for worker in self._workers if worker is not None and worker.alive]
        if not alive:
            raise WorkerDiedError("no recorder worker is running")
        return min(alive, key=lambda worker: (worker.load, worker.index))

    async def _stop_on(self, worker: _Worker, call_id: str) -> list[RecordingInfo]:
        try:
            reply = await self._request(worker, protocol.StopCallRequest(id=0, call_id=call_id), protocol.Stopped)
        except WorkerDiedError:
            await worker.ended.wait()
            return []  # the recovery finalized them: they are in self._recovered
        for key in [key for key in worker.participants if key[0] == call_id]:
            worker.participants.discard(key)
        return [RecordingInfo.from_dict(item) for item in reply.recordings]

    async def _request(self, worker: _Worker, request: protocol.Request, expected: type[_ReplyT]) -> _ReplyT:
        if not worker.alive:
            raise WorkerDiedError(f"recorder worker {worker.index} (pid {worker.pid}) is not running")
        request.id = self._next_id
        self._next_id += 1
        future: asyncio.Future[protocol.Reply] = asyncio.get_running_loop().create_future()
        worker.pending[request.id] = future
        try:
            stdin = worker.process.stdin
            assert stdin is not None
            stdin.write(protocol.encode(request))
            try:
                await stdin.drain()
            except (ConnectionError, BrokenPipeError) as exc:
                raise WorkerDiedError(f"recorder worker {worker.index} (pid {worker.pid}) is gone") from exc
            reply = await asyncio.wait_for(future, self.request_timeout_s)
        finally:
            worker.pending.pop(request.id, None)
        if isinstance(reply, protocol.Failed):
            raise RecorderError(reply.error_type, reply.error)
        if not isinstance(reply, expected):
            raise RecorderError("ProtocolError", f"expected {expected.__name__}, got {type(reply).__name__}")
        return reply

    async def _spawn(self, index: int) -> _Worker:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), env.get("PYTHONPATH")]))
        process = await asyncio.create_subprocess_exec(
            *self._command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            limit=REPLY_LINE_LIMIT,
        )
        worker = _Worker(index=index, process=process, ready=asyncio.get_running_loop().create_future())
        worker.reader = asyncio.create_task(self._read(worker), name=f"recorder-worker-{index}")
        try:
            await asyncio.wait_for(asyncio.shield(worker.ready), START_TIMEOUT_S)
        except BaseException:
            worker.expected_exit = True
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            raise
        logger.info("recorder worker %d started (pid %d)", index, process.pid)
        return worker

    async def _read(self, worker: _Worker) -> None:
        stdout = worker.process.stdout
        assert stdout is not None
        try:
            while True:
                try:
                    line = await stdout.readline()
                except ValueError:
                    logger.error("recorder worker %d: reply line too long; dropped", worker.index)
                    continue
                if not line:
                    break
                try:
                    reply = protocol.decode_reply(line)
                except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                    logger.error("recorder worker %d: bad reply line: %s", worker.index, exc)
                    continue
                if isinstance(reply, protocol.Ready):
                    if not worker.ready.done():
                        worker.ready.set_result(reply.pid)
                    continue
                future = worker.pending.get(reply.id)
                if future is not None and not future.done():
                    future.set_result(reply)
        finally:
            returncode = await worker.process.wait()
            await self._ended(worker, returncode)

    async def _ended(self, worker: _Worker, returncode: int | None) -> None:
        worker.alive = False
        error = WorkerDiedError(f"recorder worker {worker.index} (pid {worker.pid}) exited with {returncode}")
        if not worker.ready.done():
            worker.ready.set_exception(error)
            worker.ready.exception()  # retrieved here: _spawn reports it
        for future in worker.pending.values():
            if not future.done():
                future.set_exception(error)
        if worker.shut_down or not worker.participants:
            worker.ended.set()
        else:
            participants = tuple(sorted(worker.participants))
            logger.error("%s; the recording of %d participant(s) stopped", error, len(participants))
            task = asyncio.create_task(self._recover(worker, returncode, participants))
            self._recovering.add(task)
            task.add_done_callback(self._recovering.discard)
        if not (worker.expected_exit or self._closing):
            task = asyncio.create_task(self._replace(worker))
            self._replacing.add(task)
            task.add_done_callback(self._replacing.discard)

    async def _recover(
        self, worker: _Worker, returncode: int | None, participants: tuple[tuple[str, str], ...]
    ) -> None:
        """Finalize what the dead worker was writing (its locks died with it), then report the death."""
        try:
            for call_id in sorted({call for call, _ in participants}):
                try:
                    infos = await asyncio.to_thread(finalize_pending, self.root, call_id=call_id)
                except Exception:
                    logger.exception("recorder pool: recovering the recordings of %s failed", call_id)
                    continue
                self._recovered.setdefault(call_id, []).extend(infos)
            for key in participants:
                if self._assigned.get(key) is worker:
                    del self._assigned[key]
            worker.participants.clear()
        finally:
            worker.ended.set()
        if self.on_worker_died is not None:
            try:
                self.on_worker_died(WorkerDied(worker.index, worker.pid, returncode, participants))
            except Exception:
                logger.exception("recorder pool: on_worker_died failed")

    async def _replace(self, dead: _Worker) -> None:
        started = time.monotonic()
        while not self._closing:
            try:
                worker = await self._spawn(dead.index)
            except Exception:
                logger.exception("recorder pool: restarting worker %d failed; retrying", dead.index)
                await asyncio.sleep(max(0.0, RESPAWN_DELAY_S - (time.monotonic() - started)))
                started = time.monotonic()
                continue
            if self._closing:
                await self._shutdown(worker)
                return
            self._workers[dead.index] = worker
            return

    async def _shutdown(self, worker: _Worker) -> list[RecordingInfo]:
        worker.expected_exit = True
        infos: list[RecordingInfo] = []
        try:
            reply = await self._request(worker, protocol.ShutdownRequest(id=0), protocol.Stopped)
            worker.shut_down = True
            infos = [RecordingInfo.from_dict(item) for item in reply.recordings]
        except (WorkerDiedError, RecorderError, TimeoutError) as exc:
            logger.error("recorder worker %d: shutdown request failed: %s", worker.index, exc)
        stdin = worker.process.stdin
        if stdin is not None:
            stdin.close()
        try:
            await asyncio.wait_for(worker.process.wait(), SHUTDOWN_TIMEOUT_S)
        except TimeoutError:
            logger.error("recorder worker %d did not exit; killing it", worker.index)
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
            await worker.process.wait()
        if worker.reader is not None:
            await worker.reader
        return infos
