"""Several nodes on Redis: sockets on any node, one routing leader, commands through one journal.

Every node serves sockets. A command from any of them (an event, a connect,
a disconnect) is appended to the cluster's **journal**, a Redis stream; the
node that holds the **lease** (:mod:`server.live.leader`) reads the journal
in order and applies each command as the single writer does. What the leader
decides for a node (acknowledgements, messages to its sockets, disconnects,
recorder work) goes into that node's own stream, which the node reads and
carries out, in order. Streams rather than pub/sub: a message published while
a node's subscription is down would be lost, a stream entry waits for it.

A node proves it is alive with a key it renews; when the key expires, the
leader treats that node's sockets as lost connections (they keep their calls
for the grace period and come back through another node).

Keys (``prefix`` defaults to ``vw:``): ``leader`` (the lease), ``node:<id>``
(liveness), ``journal`` (commands), ``out:<node>`` (what a node is told),
``snapshot`` (the leader's state and the journal entry it reflects),
``board`` (the live board), ``generation`` (bumped when the state had to start
afresh: nodes then announce their sockets again).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import socket
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import redis.asyncio as aioredis
import socketio

from server.live.presence import namespace_of
from server.live.writer import Answer, Clock, Recorder
from server.records.casework import CaseFiles
from server.records.identities import IdentityStore
from signaling import errors, wire
from signaling.commands import (
    ClerkCard,
    ClerkConnected,
    Command,
    KioskCard,
    KioskConnected,
    Party,
    Revoked,
    RosterChanged,
)
from signaling.errors import SignalingError
from signaling.policy import CallPolicy

logger = logging.getLogger(__name__)

NODE_TTL_MS = 3_000  # a node whose key is this old is gone
HEARTBEAT_S = 1.0
SUBMIT_TIMEOUT_S = 15.0  # longer than a failover, so that a command held up by one is answered after it
OUT_MAXLEN = 10_000


def new_node_id(port: int) -> str:
    return f"{socket.gethostname()}-{port}-{os.getpid()}-{secrets.token_hex(2)}"


def split_conn(conn: str) -> tuple[str, str]:
    """A cluster connection id ``node/sid`` as (node, sid)."""
    node, _, sid = conn.partition("/")
    return node, sid


@dataclass(frozen=True)
class Keys:
    prefix: str = "vw:"

    @property
    def leader(self) -> str:
        return self.prefix + "leader"

    @property
    def journal(self) -> str:
        return self.prefix + "journal"

    @property
    def snapshot(self) -> str:
        return self.prefix + "snapshot"

    @property
    def board(self) -> str:
        return self.prefix + "board"

    @property
    def generation(self) -> str:
        return self.prefix + "generation"

    def node(self, node: str) -> str:
        return f"{self.prefix}node:{node}"

    def out(self, node: str) -> str:
        return f"{self.prefix}out:{node}"


class ClusterOutlet:
    """The leader's outlet: what it tells a socket goes to the stream of the node that holds it."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, conn_of: Callable[[Party], str | None],
                 nodes: Callable[[], set[str]]) -> None:
        self.redis = redis
        self.keys = keys
        self.conn_of = conn_of
        self.nodes = nodes
        self._batch: dict[str, list[bytes]] = defaultdict(list)

    def _put(self, node: str, kind: str, data: dict[str, Any]) -> None:
        self._batch[node].append(msgspec.json.encode({"k": kind, **data}))

    async def send(self, party: Party, event: str, data: Any) -> None:
        conn = self.conn_of(party)
        if conn is not None:
            node, sid = split_conn(conn)
            self._put(node, "send", {"sid": sid, "ns": namespace_of(party), "event": event, "data": data})

    async def drop(self, party: Party, conn: str) -> None:
        node, sid = split_conn(conn)
        self._put(node, "drop", {"sid": sid, "ns": namespace_of(party)})

    def reply(self, node: str, req: str, answer: Answer) -> None:
        self._put(node, "reply", {"req": req, "ack": answer.ack()})

    def broadcast(self, kind: str, data: dict[str, Any]) -> None:
        for node in self.nodes():
            self._put(node, kind, data)

    async def flush(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, defaultdict(list)
        async with self.redis.pipeline(transaction=False) as pipe:
            for node, items in batch.items():
                for item in items:
                    pipe.xadd(self.keys.out(node), {"m": item}, maxlen=OUT_MAXLEN, approximate=True)
            await pipe.execute()


class ClusterRecorder:
    """The leader's view of the recorders: they run on every node; each stops what it holds of a call."""

    def __init__(self, outlet: ClusterOutlet) -> None:
        self.outlet = outlet

    def warm(self) -> None:
        self.outlet.broadcast("warm", {})

    async def finish(self, call_id: str) -> list[int]:
        self.outlet.broadcast("finish", {"call_id": call_id})
        await self.outlet.flush()
        return []


class RedisRouter:
    """This node's side of the cluster: submit commands to the journal, carry out what the leader says."""

    def __init__(self, redis_url: str, node: str, policy: CallPolicy, files: CaseFiles, identities: IdentityStore,
                 clock: Clock, recorder: Recorder | None, sio: socketio.AsyncServer, keys: Keys | None = None,
                 lease_ms: int = 3_000) -> None:
        self.redis: aioredis.Redis = aioredis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5,
                                                       health_check_interval=10)
        self.node = node
        self.policy = policy
        self.files = files
        self.identities = identities
        self.clock = clock
        self.recorder = recorder
        self.sio = sio
        self.keys = keys or Keys()
        self.lease_ms = lease_ms
        self._local: dict[str, tuple[Party, KioskCard | ClerkCard]] = {}  # sid -> who, on this node
        self._pending: dict[str, asyncio.Future[Answer]] = {}
        self._ids = itertools.count()
        self._tasks: list[asyncio.Task[None]] = []
        self._spawned: set[asyncio.Task[Any]] = set()
        self._generation: int | None = None
        self._board: dict[str, Any] = {"queues": [], "clerks": [], "calls": [], "kiosks_online": 0}
        self.leader: Any = None  # the Leader while this node leads (server.live.leader)
        self._closing = False
        self.closing = asyncio.Event()  # set when the node stops: the leader stands down on it even if a cancel is lost

    # -- the router's face

    def attach(self, party: Party, sid: str, card: KioskCard | ClerkCard) -> str:
        self._local[sid] = (party, card)
        return f"{self.node}/{sid}"

    def detach(self, party: Party, sid: str) -> None:
        self._local.pop(sid, None)

    async def submit(self, cmd: Command) -> Answer:
        if self._closing:
            return Answer(None, SignalingError(errors.UNAVAILABLE, "this node is shutting down; nothing was done"))
        req = f"{next(self._ids)}"
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending[req] = future
        try:
            await self.redis.xadd(self.keys.journal, {"cmd": wire.encode(cmd), "node": self.node, "req": req,
                                                      "at": repr(self.clock.now())})
            return await asyncio.wait_for(future, SUBMIT_TIMEOUT_S)
        except (aioredis.RedisError, OSError) as exc:
            return Answer(None, SignalingError(errors.UNAVAILABLE, f"the cluster's journal is unreachable ({exc}); "
                                               "nothing was done; try again in a moment"))
        except TimeoutError:
            return Answer(None, SignalingError(errors.UNAVAILABLE, f"no routing leader answered within "
                                               f"{SUBMIT_TIMEOUT_S:.0f} s; the request may still take effect"))
        finally:
            self._pending.pop(req, None)

    async def tick(self) -> Answer:
        from signaling.commands import Tick

        return await self.submit(Tick())

    async def revoke(self, ident: str) -> None:
        await self.submit(Revoked(ident))

    async def roster_changed(self) -> None:
        await self.submit(RosterChanged(await self.roster()))

    async def roster(self) -> tuple[ClerkCard, ...]:
        return tuple(c.card() for c in await self.identities.clerks() if not c.revoked and c.role == "clerk")

    def board(self) -> dict[str, Any]:
        """The live board as the leader last published it."""
        return self._board

    # -- running

    async def start(self) -> None:
        await self.redis.ping()
        await self._heartbeat_once()
        self._tasks = [asyncio.create_task(self._deliver(), name=f"deliver {self.node}"),
                       asyncio.create_task(self._heartbeat(), name=f"heartbeat {self.node}"),
                       asyncio.create_task(self._elect(), name=f"elect {self.node}")]
        self.identities.on_roster_change(self.roster_changed)
        logger.info("node %s joined the cluster", self.node)

    async def shutting_down(self) -> None:
        """The server is stopping: answer what waits for the leader now, rather than when its wait runs out."""
        self._closing = True
        self.closing.set()
        for future in self._pending.values():
            if not future.done():
                future.set_result(Answer(None, SignalingError(errors.UNAVAILABLE, "this node is shutting down")))

    async def close(self) -> None:
        await self.shutting_down()
        leading = self.leader is not None
        # the leader stands down by itself on `closing` (applying no half command); the loops are then stopped
        if leading:
            await asyncio.wait([t for t in self._tasks if t.get_name().startswith("elect")], timeout=10)
        await stop_tasks(*self._tasks)
        with contextlib.suppress(Exception):
            if leading:  # hand the lead on at once, not when the lease runs out
                await self.redis.eval(RELEASE, 1, self.keys.leader, self.node)
            await self.redis.delete(self.keys.node(self.node))
        await self.redis.aclose()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)

    async def _heartbeat_once(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.node(self.node), "1", px=NODE_TTL_MS)
            pipe.get(self.keys.generation)
            pipe.get(self.keys.board)
            _, generation, board = await pipe.execute()
        gen = int(generation or 0)
        if self._generation is not None and gen != self._generation:
            logger.warning("the cluster's live state started afresh; announcing this node's %d socket(s) again",
                           len(self._local))
            for sid, (_, card) in list(self._local.items()):
                conn = f"{self.node}/{sid}"
                cmd = (KioskConnected(conn, card, again=True) if isinstance(card, KioskCard)
                       else ClerkConnected(conn, card, again=True))
                self._spawn(self.submit(cmd))
        self._generation = gen
        if board:
            self._board = msgspec.json.decode(board)

    async def _heartbeat(self) -> None:
        while not self._closing:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await self._heartbeat_once()
            except (aioredis.RedisError, OSError) as exc:
                logger.warning("node %s: Redis unreachable (%s); retrying", self.node, exc)

    async def _elect(self) -> None:
        from server.live.leader import Leader

        while not self._closing:
            try:
                if await self.redis.set(self.keys.leader, self.node, nx=True, px=self.lease_ms):
                    self.leader = Leader(self)
                    try:
                        await self.leader.run()
                    finally:
                        self.leader = None
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("node %s: leading failed; standing down", self.node)
                with contextlib.suppress(Exception):
                    await self.redis.eval(RELEASE, 1, self.keys.leader, self.node)
            await asyncio.sleep(self.lease_ms / 6000)

    async def _deliver(self) -> None:
        """Carry out what the leader tells this node, in order."""
        last = "$"
        while not self._closing:  # besides the cancel, which a read timing out at that moment can swallow
            try:
                found: Any = await self.redis.xread({self.keys.out(self.node): last}, block=1000, count=500)
            except (aioredis.RedisError, OSError) as exc:
                logger.warning("node %s: cannot read its stream (%s); retrying", self.node, exc)
                await asyncio.sleep(0.5)
                continue
            for _, entries in found:
                for entry_id, fields in entries:
                    last = entry_id
                    try:
                        await self._carry_out(msgspec.json.decode(fields[b"m"]))
                    except Exception:
                        logger.exception("node %s: could not carry out %r", self.node, fields)

    async def _carry_out(self, item: dict[str, Any]) -> None:
        kind = item["k"]
        if kind == "reply":
            future = self._pending.get(item["req"])
            if future is not None and not future.done():
                ack = item["ack"]
                error = ack.get("error")
                future.set_result(Answer(None, SignalingError(error["code"], error["message"])) if error else
                                  Answer({k: v for k, v in ack.items() if k != "ok"}))
        elif kind == "send":
            await self.sio.emit(item["event"], item["data"], to=item["sid"], namespace=item["ns"])
        elif kind == "drop":  # in the background: the socket's disconnect handler submits a command of its own
            self._spawn(self.sio.disconnect(item["sid"], namespace=item["ns"]))
        elif kind == "warm" and self.recorder is not None:
            self.recorder.warm()
        elif kind == "finish" and self.recorder is not None:
            self._spawn(self.recorder.finish(item["call_id"]))


async def stop_tasks(*tasks: asyncio.Task[Any]) -> None:
    """Cancel ``tasks`` and wait until they have ended, cancelling again any that went on: redis-py can swallow a
    cancel that arrives while a command's reply times out, and the task would run on (and its awaiter hang)."""
    left = {t for t in tasks if not t.done()}
    while left:
        for task in left:
            task.cancel()
        _, pending = await asyncio.wait(left, timeout=0.5)
        left = set(pending)
    for task in tasks:
        if not task.cancelled():
            with contextlib.suppress(Exception):
                task.result()  # retrieved: an error on the way out is of no interest any more


RELEASE = """if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"""
RENEW = """if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2])
else return 0 end"""
