"""Benchmark of several nodes: one node against three, in one run.

Run from the repository root (redis-server and PostgreSQL's initdb/pg_ctl are needed, as for the tests)::

    .venv/bin/python -m bench.cluster            # about 3 minutes
    .venv/bin/python -m bench.cluster --quick    # about 1 minute

Three set-ups, each ``vwindow serve`` processes started here (tests/cluster/nodes.py) with kiosks and clerks
as real identities and python-socketio clients (WebSocket) in this process:

- **embedded**: the single-node default, live state in memory and records in SQLite (no Redis);
- **1 node**: one node on Redis and PostgreSQL (the cluster's code path, one node leading itself);
- **3 nodes**: three nodes on the same Redis and PostgreSQL; kiosks and clerks spread over them, so most calls
  have their kiosk, their clerk and the routing leader on different nodes.

What is measured:

- **calls routed/s**: 10 kiosk/clerk pairs place whole calls back to back for the window (``request_call``,
  ``ring``, ``accept``, ``matched``, ``hangup``, ``call_ended``, ``wrap_up`` with one matter): completed
  calls per second; with p50 of a call's ``request_call`` -> ``matched`` in ms.
- **relay p50/p99**: 5 calls in progress, each kiosk sends ``signal`` with a 1.8 KB offer and the clerk
  answers with one; a round trip ends when the kiosk has the answer (ms).
- **failover** (3 nodes): the leader is killed with SIGKILL; the time until a ``request_call`` sent to a
  surviving node is acknowledged (the next routing decision), in s.
- **KiB per idle client**: the RSS growth of one node while N idle kiosks connect to it, divided by N.

The generator shares the machine's two cores with the nodes, Redis and PostgreSQL: compare the columns of one
run rather than figures of different runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from server.records import db
from server.records.identities import IdentityStore
from tests.cluster.nodes import Cluster, Node, free_port
from tests.pg import PostgresServer
from tests.redis_server import RedisServer
from tests.server.conftest import Peer

PARK = "sh/jiading/xincheng/park-3"
SDP = "v=0\r\n" + "a=x-padding:" + "x" * 1780 + "\r\n"  # about 1.8 KB, like a real offer
WRAP = {"matters": [{"matter_type": "tax-consultation", "outcome": "completed"}]}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def about(call_id: str) -> Callable[[Any], bool]:
    """A test for the events of one call."""
    return lambda msg: isinstance(msg, dict) and msg.get("call_id") == call_id


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def start_nodes(base: Path, n: int, redis_url: str | None, database_url: str) -> Cluster:
    env = {**os.environ, "VWINDOW_DATABASE_URL": database_url, "VWINDOW_RECORDING_WORKERS": "0"}
    if redis_url:
        env["VWINDOW_REDIS_URL"] = redis_url
    else:
        env.pop("VWINDOW_REDIS_URL", None)
    nodes = [Node(free_port(), base, env, base / f"node{i}.log") for i in range(n)]
    for node in nodes:
        await node.start()
    return Cluster(nodes, redis_url or "redis://127.0.0.1:1/0", database_url, base)


async def connect(url: str, namespace: str, token: str) -> Peer:
    peer = Peer(url, namespace, token)
    await peer.connect()
    await peer.next("welcome")
    return peer


async def pairs(store: IdentityStore, urls: list[str], n: int, tag: str) -> list[tuple[Peer, Peer]]:
    """``n`` kiosks and ``n`` available clerks; kiosk i on node i, clerk i on the next node."""
    out = []
    for i in range(n):
        _, kt = await store.add_kiosk(f"{tag} kiosk {i}", PARK)
        _, ct = await store.add_clerk(f"{tag} clerk {i}", ["tax"], ["sh/jiading"], ["zh", "en"])
        kiosk = await connect(urls[i % len(urls)], "/kiosk", kt)
        clerk = await connect(urls[(i + 1) % len(urls)], "/clerk", ct)
        await clerk.ok("set_status", {"status": "available"})
        out.append((kiosk, clerk))
    return out


async def clerk_loop(clerk: Peer, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            ring = await clerk.next("ring", timeout=1)
        except TimeoutError:
            continue
        ack = await clerk.call("accept", {"call_id": ring["call_id"]})
        if not ack.get("ok"):
            continue  # the ring ended meanwhile
        ended = await clerk.next("call_ended")
        await clerk.ok("wrap_up", {"call_id": ended["call_id"], **WRAP})


async def kiosk_loop(kiosk: Peer, stop: asyncio.Event, done: list[float]) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        call_id = (await kiosk.ok("request_call", {"field": "tax", "language": "en"}))["call_id"]
        await kiosk.next_where("matched", about(call_id))
        done.append(time.perf_counter() - t0)
        await kiosk.ok("hangup", {"call_id": call_id})
        await kiosk.next_where("call_ended", about(call_id))


async def calls_per_second(ps: list[tuple[Peer, Peer]], seconds: float) -> tuple[float, float]:
    stop, clerks_stop = asyncio.Event(), asyncio.Event()
    done: list[float] = []
    clerks = [asyncio.create_task(clerk_loop(c, clerks_stop)) for _, c in ps]
    kiosks = [asyncio.create_task(kiosk_loop(k, stop, done)) for k, _ in ps]
    await asyncio.sleep(seconds)  # the measuring window itself, not a wait for an event
    stop.set()
    count = len(done)
    await asyncio.wait_for(asyncio.gather(*kiosks), 60)  # the calls under way finish, answered
    clerks_stop.set()
    await asyncio.wait_for(asyncio.gather(*clerks), 60)
    return count / seconds, statistics.median(done) * 1000 if done else float("nan")


async def relay(ps: list[tuple[Peer, Peer]], calls_n: int, rounds: int) -> tuple[float, float]:
    """Put ``calls_n`` kiosks in a call (with whichever clerk is rung), then ``rounds`` offer/answer round trips
    per call, all calls at once."""
    calls: list[tuple[Peer, Peer, str]] = []
    free = [clerk for _, clerk in ps]
    for clerk in free:
        clerk.pending("ring")  # what the calls before left behind
    for kiosk, _ in ps[:calls_n]:  # one call at a time, so that each ring is for the call just placed
        call_id = (await kiosk.ok("request_call", {"field": "tax", "language": "en"}))["call_id"]
        waits = {asyncio.create_task(c.next_where("ring", about(call_id))): c for c in free}
        done, pending = await asyncio.wait(waits, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        assert done, f"nobody was rung for {call_id}"
        clerk = waits[done.pop()]
        free.remove(clerk)
        await clerk.ok("accept", {"call_id": call_id})
        await kiosk.next_where("matched", about(call_id))
        calls.append((kiosk, clerk, call_id))
    times: list[float] = []

    async def answerer(clerk: Peer, call_id: str) -> None:
        for _ in range(rounds):
            await clerk.next("signal")
            await clerk.ok("signal", {"call_id": call_id, "description": {"type": "answer", "sdp": SDP}})

    async def offerer(kiosk: Peer, call_id: str) -> None:
        for _ in range(rounds):
            t0 = time.perf_counter()
            await kiosk.ok("signal", {"call_id": call_id, "description": {"type": "offer", "sdp": SDP}})
            await kiosk.next("signal")
            times.append((time.perf_counter() - t0) * 1000)

    await asyncio.gather(*(answerer(c, cid) for _, c, cid in calls), *(offerer(k, cid) for k, _, cid in calls))
    for kiosk, clerk, call_id in calls:
        await kiosk.ok("hangup", {"call_id": call_id})
        await clerk.next("call_ended")
        await clerk.ok("wrap_up", {"call_id": call_id, **WRAP})
    return pct(times, 0.5), pct(times, 0.99)


async def idle_memory(store: IdentityStore, node: Node, n: int) -> float:
    tokens = [(await store.add_kiosk(f"idle {i}", PARK))[1] for i in range(n)]
    assert node.proc is not None
    before = rss_kib(node.proc.pid)
    peers = []
    for i in range(0, n, 50):
        peers += await asyncio.gather(*(connect(node.url, "/kiosk", t) for t in tokens[i:i + 50]))
    await asyncio.sleep(1)  # let the node settle before reading its RSS
    grown = rss_kib(node.proc.pid) - before
    await asyncio.gather(*(p.close() for p in peers))
    return grown / n


async def failover(cluster: Cluster, store: IdentityStore) -> float:
    """SIGKILL the lease holder; the time until a request sent to a survivor is acknowledged. The kill is only
    counted if the lease then passes to another node (under load a lease can change hands before the kill)."""
    _, kt = await store.add_kiosk("failover kiosk", PARK)
    _, ct = await store.add_clerk("failover clerk", ["tax"], ["sh/jiading"], ["zh", "en"])
    for _ in range(5):  # a loaded leader can miss its renewals and hand the lease on: start from a settled one
        leader = await cluster.leader()
        survivor = (await cluster.followers())[0]
        clerk = await connect(survivor.url, "/clerk", ct)
        await clerk.ok("set_status", {"status": "available"})
        kiosk = await connect(survivor.url, "/kiosk", kt)
        holder = await cluster.redis.get("vw:leader")
        if leader is await cluster.leader():
            break
        await kiosk.close()
        await clerk.close()
    else:
        raise RuntimeError("the lease kept changing hands")
    leader.kill()
    killed = time.perf_counter()
    ack = await kiosk.call("request_call", {"field": "tax", "language": "en"})
    routed = time.perf_counter() - killed
    assert ack.get("ok"), ack
    await clerk.next("ring")
    after = await cluster.leader()
    assert after is not leader and holder is not None, "the lease did not pass on"
    await kiosk.close()
    await clerk.close()
    return routed


async def measure(name: str, n: int, redis: RedisServer | None, database_url: str, base: Path,
                  args: argparse.Namespace) -> dict[str, Any]:
    if redis is not None:
        client = aioredis.from_url(redis.url)
        await client.flushall()
        await client.aclose()
    await asyncio.to_thread(db.upgrade, database_url)
    cluster = await start_nodes(base, n, redis.url if redis else None, database_url)
    engine = db.make_engine(database_url)
    store = IdentityStore(engine)
    urls = [node.url for node in cluster.nodes]
    result: dict[str, Any] = {"name": name}
    try:
        ps = await pairs(store, urls, 10, name)
        await calls_per_second(ps, 2)  # warm up
        result["calls_s"], result["setup_ms"] = await calls_per_second(ps, args.seconds)
        result["relay_p50"], result["relay_p99"] = await relay(ps, 5, args.rounds)
        for kiosk, clerk in ps:
            await kiosk.close()
            await clerk.close()
        result["kib_idle"] = await idle_memory(store, cluster.nodes[0], args.idle)
        result["failover_s"] = await failover(cluster, store) if n > 1 else None
    finally:
        await engine.dispose()
        await cluster.close()
    print(f"  {name}: done", file=sys.stderr, flush=True)
    return result


def table(results: list[dict[str, Any]]) -> str:
    def fmt(value: Any, spec: str) -> str:
        return "–" if value is None else format(value, spec)

    rows = [
        ("calls routed/s (10 pairs, whole calls)", "calls_s", ".1f"),
        ("request_call -> matched p50 (ms)", "setup_ms", ".1f"),
        ("signal round trip p50 (ms, 5 calls)", "relay_p50", ".1f"),
        ("signal round trip p99 (ms, 5 calls)", "relay_p99", ".1f"),
        ("failover: leader SIGKILL -> next routing (s)", "failover_s", ".2f"),
        ("KiB per idle client on a node", "kib_idle", ".1f"),
    ]
    head = "| | " + " | ".join(r["name"] for r in results) + " |"
    lines = [head, "|---|" + "---:|" * len(results)]
    for label, key, spec in rows:
        lines.append(f"| {label} | " + " | ".join(fmt(r.get(key), spec) for r in results) + " |")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--idle", type=int, default=None)
    parser.add_argument("--only", default="embedded,1,3", help="set-ups to run: embedded, 1 (node), 3 (nodes)")
    args = parser.parse_args()
    args.seconds = args.seconds or (5.0 if args.quick else 15.0)
    args.rounds = args.rounds or (50 if args.quick else 200)
    args.idle = args.idle or (200 if args.quick else 1000)
    redis = RedisServer().start()
    postgres = PostgresServer()
    postgres.start()
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="vw-bench-cluster-") as tmp:
            base = Path(tmp)
            setups: list[tuple[str, int, RedisServer | None, str]] = [
                ("embedded (memory, SQLite)", 1, None, f"sqlite+aiosqlite:///{base / 'records.sqlite3'}"),
                ("1 node (Redis, PostgreSQL)", 1, redis, postgres.url(postgres.create_database())),
                ("3 nodes (Redis, PostgreSQL)", 3, redis, postgres.url(postgres.create_database())),
            ]
            wanted = set(args.only.split(","))
            setups = [s for s in setups if ("embedded" if s[2] is None else str(s[1])) in wanted]
            for i, (name, n, r, url) in enumerate(setups):
                (base / str(i)).mkdir()
                results.append(await measure(name, n, r, url, base / str(i), args))
    finally:
        postgres.stop()
        redis.close()
    print(f"bench/cluster.py: {args.seconds:.0f} s of calls, {args.rounds} round trips per call, "
          f"{args.idle} idle clients; {os.cpu_count()} cores")
    print(table(results))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())

