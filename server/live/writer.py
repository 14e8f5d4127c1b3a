"""The one writer of live state: every command through one queue, applied whole, committed once, then told.

A command (an event from a kiosk or clerk, a connect or disconnect, a timer
tick) is handed to the pure core (:class:`signaling.switch.Switch`) with the
time. All the records it returns are committed in **one** transaction; only
then are its messages sent, its connections dropped and its recorder work
started. Commands run strictly one after another, so no other command can act
between a decision and its effects; a command that finds the writer idle runs
inline, without a task switch (most signals relay this way).

If the records cannot be written, the command has had no effect: the core is
rebuilt as it was before it, from its last snapshot and the commands applied
since (the core is deterministic in its commands and their times), and the
sender is told ``records_unavailable``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from server.records.fence import DeposedError, Fence
from signaling import errors
from signaling.commands import Command, Party, Received, SendPositions, Tick
from signaling.effects import RECORDS, Drop, FinishRecording, QueueMoved, Send, WarmRecorder
from signaling.errors import SignalingError
from signaling.switch import Outcome, Switch

logger = logging.getLogger(__name__)

SNAPSHOT_EVERY = 2_000  # commands in the journal before the core's state is snapshot again


class Clock(Protocol):
    def now(self) -> float: ...


class SystemClock:
    """Wall-clock time: deadlines mean the same on every node."""

    def now(self) -> float:
        return time.time()


class Filer(Protocol):
    async def commit(self, records: list[Any], fence: Fence | None = None) -> dict[str, Any]: ...


class Outlet(Protocol):
    """Where messages and disconnects go: this node's sockets, or every node's (several nodes)."""

    async def send(self, party: Party, event: str, data: Any) -> None: ...

    async def drop(self, party: Party, conn: str) -> None: ...

    async def flush(self) -> None: ...


class Recorder(Protocol):
    def warm(self) -> None: ...

    async def finish(self, call_id: str) -> list[int]: ...


@dataclass(frozen=True)
class Answer:
    """What the sender of a command is told: ``ok`` with the reply's fields, or the error."""

    reply: dict[str, Any] | None
    error: SignalingError | None = None

    def ack(self) -> dict[str, Any]:
        if self.error is not None:
            return {"ok": False, "error": self.error.as_dict()}
        return {"ok": True, **(self.reply or {})}


class Writer:
    def __init__(self, switch: Switch, files: Filer, presence: Outlet, clock: Clock, *,
                 queue_update_interval_s: float, recorder: Recorder | None = None,
                 enqueue: Callable[[Command], Coroutine[Any, Any, Any]] | None = None,
                 before_commit: Callable[[], Coroutine[Any, Any, Any]] | None = None) -> None:
        self.switch = switch
        self.files = files
        self.presence = presence
        self.clock = clock
        self.recorder = recorder
        self.queue_update_interval_s = queue_update_interval_s
        self._busy = False
        self._waiting: collections.deque[tuple[Command, asyncio.Future[Answer]]] = collections.deque()
        self._snapshot = switch.snapshot()
        self._journal: list[tuple[Command, float]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._dirty: set[tuple[str, str]] = set()
        self._flush: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.applied = 0  # commands applied (for the benchmarks and the live board)
        # how the writer's own commands (timer ticks, batched position updates) join the order of commands:
        # this node's queue, or (several nodes) the cluster's journal
        self.enqueue: Callable[[Command], Coroutine[Any, Any, Any]] = enqueue or self.submit
        # called before a command's records are committed: what earlier commands still hold back goes out first
        # (the cluster's leader sends in batches; a commit marks everything before it as told)
        self.before_commit = before_commit

    # ------------------------------------------------------------------ the queue

    @property
    def waiting(self) -> int:
        """Commands waiting behind the one being applied."""
        return len(self._waiting)

    async def submit(self, cmd: Command) -> Answer:
        """Apply ``cmd`` after every command submitted before it; its answer once its effects are carried out."""
        if self._busy:
            future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
            self._waiting.append((cmd, future))
            return await future
        self._busy = True
        try:
            return await self._process(cmd)
        finally:
            self._next()

    def _next(self) -> None:
        if self._waiting:
            self._spawn(self._drain())
        else:
            self._busy = False

    async def _drain(self) -> None:
        while self._waiting:
            cmd, future = self._waiting.popleft()
            try:
                answer = await self._process(cmd)
            except BaseException as exc:  # never leave a sender waiting
                if not future.done():
                    future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            if not future.done():
                future.set_result(answer)
        self._busy = False

    async def _process(self, cmd: Command) -> Answer:
        answer = await self.apply(cmd, self.clock.now())
        await self.presence.flush()
        return answer

    async def apply(self, cmd: Command, now: float, *, fence: Fence | None = None, write: bool = True,
                    tell: bool = True) -> Answer:
        """Apply ``cmd`` at ``now``: commit its records (unless ``write`` is off: they are on record already),
        then carry out the rest (unless ``tell`` is off). Only the caller that owns the order calls this."""
        try:
            outcome = self.switch.apply(cmd, now)
        except Exception:
            logger.exception("the core failed on %s; rebuilding it as it was before", type(cmd).__name__)
            self._rebuild()
            return Answer(None, SignalingError(errors.INTERNAL, "the server failed to handle this; it had no effect"))
        if outcome.error is not None:
            return Answer(None, outcome.error)
        records = [e for e in outcome.effects if isinstance(e, RECORDS)]
        extra: dict[str, Any] = {}
        if records and write:
            if self.before_commit is not None:
                await self.before_commit()
            try:
                extra = await self.files.commit(records, fence)
            except DeposedError:
                self._rebuild()
                raise
            except Exception:
                logger.exception("records could not be written for %s; the command is undone", type(cmd).__name__)
                self._rebuild()
                return Answer(None, SignalingError(errors.RECORDS_UNAVAILABLE, "the records could not be saved, so "
                                                   "nothing was done; try again in a moment"))
        self.applied += 1
        self._remember(cmd, now, outcome)
        if tell:
            await self._carry_out(outcome)
        self._reschedule()
        reply = msgspec.to_builtins(outcome.reply) if outcome.reply is not None else None
        if extra and reply is not None:
            reply.update(extra)
        return Answer(reply)

    async def _carry_out(self, outcome: Outcome) -> None:
        for e in outcome.effects:
            match e:
                case Send(to=to, msg=msg):
                    await self.presence.send(to, e.event, msgspec.to_builtins(msg))
                case Drop(party=party, conn=conn):
                    # in the background: closing the socket runs its disconnect handler, a command of its own
                    self._spawn(self.presence.drop(party, conn))
                case QueueMoved(field=f, district=district):
                    self._dirty.add((f, district))
                    if self._flush is None:
                        self._flush = asyncio.get_running_loop().call_later(self.queue_update_interval_s,
                                                                            self._on_flush)
                case WarmRecorder():
                    if self.recorder is not None:
                        self.recorder.warm()
                case FinishRecording(call_id=call_id):
                    if self.recorder is not None:
                        self._spawn(self._finish_recording(self.recorder, call_id))

    # ------------------------------------------------------------------ undo

    def _remember(self, cmd: Command, now: float, outcome: Outcome) -> None:
        """Journal every command that may have changed the core (a plain relay of a signal does not)."""
        if isinstance(cmd, Received) and cmd.event == "signal" and all(isinstance(e, Send) for e in outcome.effects):
            return
        self._journal.append((cmd, now))
        if len(self._journal) >= SNAPSHOT_EVERY:
            self._snapshot = self.switch.snapshot()
            self._journal.clear()

    def _rebuild(self) -> None:
        switch = Switch.restore(self.switch.policy, self._snapshot)
        for cmd, at in self._journal:
            switch.apply(cmd, at)
        self.switch = switch
        logger.warning("live state rebuilt from its snapshot and %d command(s) since", len(self._journal))

    # ------------------------------------------------------------------ time

    async def tick(self) -> Answer:
        return await self.submit(Tick())

    def _reschedule(self) -> None:
        deadline = self.switch.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            delay = max(0.0, deadline - self.clock.now())
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._spawn(self.enqueue(Tick()))

    def _on_flush(self) -> None:
        self._flush = None
        groups, self._dirty = tuple(sorted(self._dirty)), set()
        self._spawn(self.enqueue(SendPositions(groups)))

    # ------------------------------------------------------------------ background work

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background step failed", exc_info=task.exception())

    @staticmethod
    async def _finish_recording(recorder: Recorder, call_id: str) -> None:
        stored = await recorder.finish(call_id)
        logger.info("call %s: %d recording(s) stored", call_id, len(stored))

    def run_soon(self, work: Callable[[], Awaitable[Any]]) -> None:
        """Run ``work`` in the background (its failure is logged); it ends with the writer."""
        self._spawn(_call(work))

    async def close(self) -> None:
        for handle in (self._timer, self._flush):
            if handle is not None:
                handle.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _call(work: Callable[[], Awaitable[Any]]) -> Any:
    return await work()
