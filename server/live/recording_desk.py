"""The server's side of recording: the recorder worker pool, and turning its files into records.

The pool (:class:`recordings.workers.RecorderPool`) starts on the first
recorded call, so a server whose calls are never recorded spawns no worker.
Whatever a crash left unfinished is finalized and stored when the server starts
(:meth:`RecordingDesk.recover`); recordings a dead worker leaves behind come
back from the next ``stop_call`` of their call.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from recordings import files
from recordings.finalize import describe, finalize_pending
from recordings.info import RecordingInfo
from recordings.workers import RecorderError, RecorderPool, WorkerDied, WorkerDiedError
from server.records.evidence import RecordingStore

logger = logging.getLogger(__name__)

RECENT_CALLS = 256
RECOVER_RETRY_S = 5.0
RECOVER_RETRIES = 60


class RecorderUnavailableError(RuntimeError):
    """No recorder could take the participant's connection; the message says why."""


class RecordingDesk:
    def __init__(
        self,
        store: RecordingStore,
        workers: int,
        *,
        on_interrupted: Callable[[str, str], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self.store = store
        self.root = store.root
        self.workers = workers
        self.on_interrupted = on_interrupted  # (call_id, participant) whose recorder died
        self._starting: asyncio.Task[RecorderPool] | None = None
        self._active: set[str] = set()  # calls with recorder peers, to stop at their end
        self._tasks: set[asyncio.Task[None]] = set()
        self._finished: dict[str, asyncio.Future[list[int]]] = {}  # waiters of wait_finished
        self._recent: OrderedDict[str, list[int]] = OrderedDict()  # call id -> recordings stored at its end

    async def recover(self) -> list[int]:
        """Finalize and store what a previous run left behind (before any worker starts).

        That is part files of recordings whose writer died (finalized now), and
        finished files no record lists: when only the server was killed, its
        workers see their input close and finish their recordings themselves.
        Files still being finished by such a worker are stored once it is done.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)  # recordings are personal data: only the server's user may enter
        infos = await asyncio.to_thread(finalize_pending, self.root)
        if infos:
            logger.warning("finalized %d recording(s) left unfinished by the previous run", len(infos))
        stored = await self.store.add_all(infos)
        unlisted, busy = await asyncio.to_thread(_unlisted, self.root, await self.store.known_paths(), self.store)
        stored += await self.store.add_all(unlisted)
        if busy:
            logger.warning("%d recording(s) are still being finished by a recorder of the previous run; "
                           "they are stored once it is done", busy)
            task = asyncio.get_running_loop().create_task(self._recover_later())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return stored

    async def _recover_later(self) -> None:
        for _ in range(RECOVER_RETRIES):
            await asyncio.sleep(RECOVER_RETRY_S)
            unlisted, busy = await asyncio.to_thread(_unlisted, self.root, await self.store.known_paths(),
                                                     self.store)
            await self.store.add_all(unlisted)
            if not busy:
                return
        logger.error("recordings under %s are still locked after %.0f s; run the server again to store them",
                     self.root, RECOVER_RETRIES * RECOVER_RETRY_S)

    def warm(self) -> None:
        """Start the pool in the background, so the first recorder offer does not wait for it."""
        if self.workers > 0 and self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(self._start_pool())
            self._starting.add_done_callback(_log_start_failure)

    async def start(self) -> None:
        """Start the pool now (and wait for it), rather than on the first recorded call."""
        await self.pool()

    @property
    def started(self) -> bool:
        return self._starting is not None

    async def _start_pool(self) -> RecorderPool:
        # loopback candidates too: a recorder on the same host as a participant (or a loopback-only host)
        pool = RecorderPool(self.root, self.workers, allow_loopback=True, on_worker_died=self._worker_died)
        recovered = await pool.start()
        await self.store.add_all(recovered)
        logger.info("recorder pool started: %d worker(s), files under %s", self.workers, self.root)
        return pool

    async def pool(self) -> RecorderPool:
        if self.workers <= 0:
            raise RecorderUnavailableError("recording is switched off on this server (recording_workers = 0)")
        self.warm()
        assert self._starting is not None
        try:
            return await asyncio.shield(self._starting)
        except Exception as exc:
            self._starting = None  # try again on the next call
            raise RecorderUnavailableError(f"the recorder could not start: {exc}") from exc

    async def answer(self, call_id: str, participant: str, offer_sdp: str) -> str:
        """The recorder's SDP answer to ``participant``'s send-only offer in ``call_id``."""
        pool = await self.pool()
        self._active.add(call_id)
        try:
            answer = await pool.answer(call_id, participant, offer_sdp)
        except RecorderError as exc:
            raise RecorderUnavailableError(f"the recorder refused the offer: {exc}") from exc
        except WorkerDiedError as exc:
            raise RecorderUnavailableError(f"the recorder stopped while answering: {exc}") from exc
        self._active.add(call_id)  # again: a finish() that ran meanwhile must not leave this peer open
        return answer

    def recording(self, call_id: str) -> bool:
        return call_id in self._active

    async def finish(self, call_id: str) -> list[int]:
        """Stop the call's recorder peers and store their files; the ids of the stored recordings."""
        if call_id not in self._active:
            return []
        self._active.discard(call_id)
        pool = await self.pool()
        infos = await pool.stop_call(call_id)
        stored = await self.store.add_all(infos)
        self._recent[call_id] = stored
        while len(self._recent) > RECENT_CALLS:
            self._recent.popitem(last=False)
        waiter = self._finished.pop(call_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(stored)
        return stored

    async def wait_finished(self, call_id: str, timeout_s: float) -> list[int]:
        """Wait until the recordings of ``call_id`` (a recent call) are stored after its end; their ids."""
        if call_id in self._recent:
            return self._recent[call_id]
        waiter = self._finished.setdefault(call_id, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(asyncio.shield(waiter), timeout_s)

    async def close(self) -> list[int]:
        """Finalize every recording still open and stop the workers (on a clean shutdown)."""
        for task in list(self._tasks):
            await asyncio.gather(task, return_exceptions=True)
        starting, self._starting = self._starting, None
        if starting is None:
            return []
        try:
            pool = await starting
        except Exception:  # already logged by _log_start_failure
            return []
        self._active.clear()
        return await self.store.add_all(await pool.close())

    def _worker_died(self, died: WorkerDied) -> None:
        logger.error("recorder worker %d (pid %d) died with %s; %d recording(s) interrupted",
                     died.worker, died.pid, died.returncode, len(died.participants))
        if self.on_interrupted is None:
            return
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(self._interrupted(died))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _interrupted(self, died: WorkerDied) -> None:
        """Once a new worker runs, tell each interrupted participant (through the switchboard) to offer again."""
        assert self.on_interrupted is not None
        if self._starting is not None:
            pool = await self._starting
            await pool.wait_workers()
        for call_id, participant in died.participants:
            try:
                await self.on_interrupted(call_id, participant)
            except Exception:
                logger.exception("telling %s of call %s that its recording stopped failed", participant, call_id)


def _unlisted(root: Path, known: set[str], store: RecordingStore) -> tuple[list[RecordingInfo], int]:
    """Finished recordings under ``root`` that are not in ``known``, and how many are still being written."""
    found: list[RecordingInfo] = []
    busy = 0
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        for final in sorted(directory.glob(f"*{files.FINAL_SUFFIX}")):
            if store.relative(final) in known:
                continue
            lock = files.RecordingLock(final)
            if not lock.acquire():
                busy += 1
                continue
            try:
                if files.parts_of(final):
                    continue  # finalize_pending could not finish it; its parts stay for the next attempt
                found.append(describe(final, recovered=True))
            except Exception:
                logger.exception("could not read %s; left for the next start", final)
            finally:
                lock.release(delete=True)
    return found, busy


def _log_start_failure(task: asyncio.Task[RecorderPool]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("the recorder pool failed to start", exc_info=task.exception())
