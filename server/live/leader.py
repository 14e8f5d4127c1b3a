"""The routing leader: the one node that runs the core, reading the cluster's journal in order.

Taking the lead (:meth:`Leader.run`):

1. take the next fencing token in the records (:func:`server.records.fence.take_lead`), which also
   says the last journal entry whose records were committed;
2. restore the core from the last snapshot in Redis, or, if there is none (the cluster's first start,
   or a Redis that lost its data), build it from the records, as a single node starts;
3. replay the journal after the snapshot: entries whose records are committed change the core only;
   the last committed one is told again (its messages may not have gone out); later ones are applied
   in full, and their senders, if still waiting, get their answer;
4. then apply new entries as they come, one at a time, each committed under the fence before anyone
   is told; snapshot the core every few seconds (and trim the journal behind it), publish the live
   board, and treat the sockets of a node whose liveness key expired as lost connections.

Every command carries the wall-clock time it was submitted at, so a replayed command means what it
meant the first time. Losing the lease (or finding the fence moved) stops the leader at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import msgspec

from server.live.cluster import RENEW, ClusterOutlet, ClusterRecorder, split_conn, stop_tasks
from server.live.liveboard import board_of
from server.live.writer import Answer, Writer
from server.records.fence import DeposedError, Fence, entry_key, take_lead
from signaling import wire
from signaling.commands import CLERK, KIOSK, Command, Disconnected, Party, RosterChanged
from signaling.errors import SignalingError
from signaling.switch import Switch

if TYPE_CHECKING:
    from server.live.cluster import RedisRouter

logger = logging.getLogger(__name__)

SNAPSHOT_EVERY_S = 5.0
BOARD_EVERY_S = 1.0
ROSTER_EVERY_S = 60.0
JOURNAL_BLOCK_MS = 500  # how long the reader waits for the next entry before it looks whether to stop


class LeaseLostError(RuntimeError):
    pass


class Leader:
    def __init__(self, router: RedisRouter) -> None:
        self.router = router
        self.redis = router.redis
        self.keys = router.keys
        self.node = router.node
        self.epoch = 0
        self.last = "0-0"  # the last journal entry applied
        self.last_at = 0.0
        self.outlet = ClusterOutlet(self.redis, self.keys, self._conn_of, self._live_nodes)
        self.writer: Writer | None = None
        self._nodes: set[str] = {router.node}
        self._dead: set[str] = set()
        self._snapshot_at = 0.0
        self._snapshot_applied = -1
        self._stopping = False

    @property
    def switch(self) -> Switch:
        assert self.writer is not None
        return self.writer.switch

    def _conn_of(self, party: Party) -> str | None:
        conns = self.switch.kiosks if party.role == KIOSK else self.switch.clerks
        entry = conns.get(party.id)
        return entry[0] if entry else None

    def _live_nodes(self) -> set[str]:
        return self._nodes

    async def run(self) -> None:
        started = time.monotonic()
        self.epoch, committed = await take_lead(self.router.files.engine, self.node)
        renew = asyncio.create_task(self._renew(), name=f"renew-lease {self.node}")
        try:
            await self._take_over(committed)
            logger.warning("node %s leads the cluster (fencing token %d) after %.2f s", self.node, self.epoch,
                           time.monotonic() - started)
            chores = asyncio.create_task(self._chores(), name=f"leader-chores {self.node}")
            follow = asyncio.create_task(self._follow_journal(), name=f"follow-journal {self.node}")
            closing = asyncio.create_task(self.router.closing.wait(), name=f"closing {self.node}")
            try:
                done, _ = await asyncio.wait([renew, chores, follow, closing], return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # the reason it stopped leading, raised (or None: the node stops)
            finally:
                # the journal's reader stops between entries, never inside one (a command is applied whole)
                self._stopping = True
                await stop_tasks(chores, closing)
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(asyncio.shield(follow), JOURNAL_BLOCK_MS / 1000 + 5)
                await stop_tasks(follow)
        finally:
            await stop_tasks(renew)
            if self.writer is not None:
                await self.writer.close()
            logger.warning("node %s no longer leads", self.node)

    # -- taking over

    async def _take_over(self, committed: str) -> None:
        router = self.router
        raw: Any = await self.redis.get(self.keys.snapshot)
        if raw:
            snap = msgspec.msgpack.decode(raw)
            switch = Switch.restore(router.policy, snap["state"])
            self.last, self.last_at = snap["entry"], snap["at"]
        else:  # nothing to go on but the records: start as a single node would, and have every node announce
            if committed:
                logger.error("the cluster's journal and snapshot are gone (did Redis lose its data?): the live "
                             "state starts afresh from the records; calls in progress are closed")
            pending, ended = await router.files.recover(router.clock.now())
            switch = Switch(router.policy, await router.roster(), pending, ended)
            await self.redis.incr(self.keys.generation)
        self.writer = Writer(switch, router.files, self.outlet, router.clock,
                             queue_update_interval_s=router.policy.queue_update_interval_s,
                             recorder=ClusterRecorder(self.outlet), enqueue=self.append,
                             before_commit=self.outlet.flush)
        self._nodes |= {split_conn(c)[0] for c, _ in (*switch.kiosks.values(), *switch.clerks.values())}
        replayed = 0
        start = _after(self.last)
        while True:
            entries: Any = await self.redis.xrange(self.keys.journal, min=start, count=1000)
            if not entries:
                break
            for entry_id, fields in entries:
                entry = entry_id.decode()
                position = entry_key(entry)
                if position < entry_key(committed):
                    await self._apply(entry, fields, write=False, tell=False)
                elif position == entry_key(committed):
                    await self._apply(entry, fields, write=False, tell=True)
                else:
                    await self._apply(entry, fields)
                replayed += 1
            start = _after(self.last)
        if not raw:
            await self._snapshot()
        logger.info("node %s replayed %d journal entries after the snapshot", self.node, replayed)

    # -- the journal

    async def append(self, cmd: Command) -> None:
        """A command of the leader's own (a tick, position updates) joins the journal like any other."""
        await self.redis.xadd(self.keys.journal, {"cmd": wire.encode(cmd), "node": self.node, "req": "",
                                                  "at": repr(self.router.clock.now())})

    async def _follow_journal(self) -> None:
        while not self._stopping:
            found: Any = await self.redis.xread({self.keys.journal: self.last}, block=JOURNAL_BLOCK_MS, count=200)
            # what a batch of entries tells goes out in one write at its end (Redis fsyncs each write with
            # appendfsync always); a command that commits records first sends what the batch holds so far
            # (Writer.before_commit), so that every entry before the last committed one has been told
            for _, entries in found:
                for entry_id, fields in entries:
                    await self._apply(entry_id.decode(), fields, flush=False)
            await self.outlet.flush()

    async def _apply(self, entry: str, fields: dict[bytes, bytes], write: bool = True, tell: bool = True,
                     flush: bool = True) -> None:
        assert self.writer is not None
        node, req = fields[b"node"].decode(), fields[b"req"].decode()
        self._nodes.add(node)
        at = max(float(fields[b"at"]), self.last_at)  # time never runs backwards for the core
        self.last, self.last_at = entry, at
        try:
            cmd = wire.decode(fields[b"cmd"])
        except SignalingError as exc:
            answer = Answer(None, exc)
        except Exception as exc:  # not a command at all: refuse it, keep going
            logger.error("journal entry %s is not a command (%s); skipped", entry, exc)
            answer = Answer(None, SignalingError("invalid_payload", "the command could not be read"))
        else:
            try:
                answer = await self.writer.apply(cmd, at, fence=Fence(self.epoch, entry), write=write, tell=tell)
            except DeposedError as exc:
                raise LeaseLostError(str(exc)) from exc
        if tell and req:
            self.outlet.reply(node, req, answer)
        if tell and flush:
            await self.outlet.flush()

    # -- keeping the lead, and the chores that come with it

    async def _renew(self) -> None:
        interval = self.router.lease_ms / 3000
        while True:
            await asyncio.sleep(interval)
            try:
                held = await self.redis.eval(RENEW, 1, self.keys.leader, self.node, self.router.lease_ms)
            except Exception as exc:
                raise LeaseLostError(f"the lease could not be renewed: {exc}") from exc
            if not held:
                raise LeaseLostError("another node holds the lease")

    async def _chores(self) -> None:
        board_at = roster_at = 0.0
        while True:
            await asyncio.sleep(BOARD_EVERY_S)
            now = time.monotonic()
            if now - board_at >= BOARD_EVERY_S:
                board_at = now
                board = board_of(self.switch, self.router.clock.now())
                await self.redis.set(self.keys.board, msgspec.json.encode(board), px=10_000)
            await self._bury_dead_nodes()
            if now - self._snapshot_at >= SNAPSHOT_EVERY_S:
                await self._snapshot()
            if now - roster_at >= ROSTER_EVERY_S:
                roster_at = now
                await self.append(RosterChanged(await self.router.roster()))

    async def _snapshot(self) -> None:
        assert self.writer is not None
        if self.writer.applied == self._snapshot_applied:
            self._snapshot_at = time.monotonic()
            return
        data = msgspec.msgpack.encode({"entry": self.last, "at": self.last_at, "epoch": self.epoch,
                                       "state": self.switch.snapshot()})
        stored = await self.redis.eval(SNAPSHOT, 2, self.keys.leader, self.keys.snapshot, self.node, data)
        if not stored:
            raise LeaseLostError("another node holds the lease; the snapshot was not written")
        await self.redis.xtrim(self.keys.journal, minid=self.last, approximate=False)
        self._snapshot_at = time.monotonic()
        self._snapshot_applied = self.writer.applied

    async def _bury_dead_nodes(self) -> None:
        """The sockets of a node that stopped renewing its key are lost connections."""
        conns: dict[str, list[tuple[Party, str]]] = {}
        for role, table in ((KIOSK, self.switch.kiosks), (CLERK, self.switch.clerks)):
            for ident, (conn, _) in table.items():
                conns.setdefault(split_conn(conn)[0], []).append((Party(role, ident), conn))
        candidates = (set(conns) | self._nodes) - {self.node} - self._dead
        if not candidates:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for node in candidates:
                pipe.exists(self.keys.node(node))
            alive = dict(zip(candidates, await pipe.execute(), strict=True))
        for node, exists in alive.items():
            if exists:
                continue
            self._dead.add(node)
            self._nodes.discard(node)
            gone = conns.get(node, [])
            logger.warning("node %s is gone: %d of its sockets count as lost connections", node, len(gone))
            for party, conn in gone:
                await self.append(Disconnected(party, conn, lost=True))
            await self.redis.delete(self.keys.out(node))


def _after(entry: str) -> str:
    """The stream range start just after ``entry`` (exclusive)."""
    return "(" + entry if entry != "0-0" else "-"


SNAPSHOT = """if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('set', KEYS[2], ARGV[2]) return 1
else return 0 end"""
