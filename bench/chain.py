"""Benchmark: appending to the hash-chained event log with concurrent writers, against the same inserts unchained.

Run: ``.venv/bin/python -m bench.chain [--quick] [--seconds S]`` (about 4 minutes; 2 with ``--quick``).

Each step starts W writer *processes* (as W server nodes would write to one database), each with its own engine
(one connection), and lets them append for a fixed time after a common start. A writer appends events one per
transaction, the way the server logs most events today:

* **chained**: ``Records.log`` (``server/records/chain.py``): lock the ``chain_head`` row, read it, insert the
  event with its hash, update the head, commit;
* **unchained** (the baseline): the same event row, hashed the same way but against a fixed predecessor, inserted
  and committed with no ``chain_head`` access, so writers never wait for each other's commits.

Measured per step: appended events/s over the whole run, the p50/p99 latency of one append from its
transaction's start to its commit's return, and for chained appends how long each held the head row (from
its first ``UPDATE chain_head`` returning to its commit returning): one lock passes at most 1 / (mean hold)
events a second however many writers wait for it, which is the chain's ceiling on this machine. After every
chained step the log is verified (``Records.verify``): the chain must be intact with one event per append.

PostgreSQL: a throwaway server (``tests/pg.py``) with the production defaults that matter here (``fsync``,
``synchronous_commit`` on), so a commit waits for its WAL flush. SQLite: a file in WAL mode with
``synchronous=FULL``, as ``server/records/db.py`` opens it. Every step starts on a fresh, migrated database.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.synchronize import Event as EventT
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.pg (the throwaway PostgreSQL server) is not an installed package

import sqlalchemy as sa  # noqa: E402

from server.records import db  # noqa: E402
from server.records.chain import GENESIS, Records, _content, event_hash  # noqa: E402
from tests.pg import PostgresServer  # noqa: E402

WRITERS = (1, 4, 16)
MODES = ("chained", "unchained")
SECONDS = 6.0
QUICK_SECONDS = 2.0


@dataclass(frozen=True)
class Step:
    database: str  # sqlite | postgresql
    mode: str  # chained | unchained
    writers: int
    events: int
    seconds: float
    latencies_s: tuple[float, ...]
    holds_s: tuple[float, ...]  # chained: how long each append held the chain head
    chain_ok: bool | None  # None: not a chained step

    @property
    def hold_ms(self) -> float:
        return 1000 * statistics.fmean(self.holds_s) if self.holds_s else float("nan")

    @property
    def per_s(self) -> float:
        return self.events / self.seconds

    def latency_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --------------------------------------------------------------------------- one writer process


def sample_event(writer: int, i: int) -> dict[str, Any]:
    """An event the size of a typical one (an accepted call)."""
    return {"call_id": f"bench-{writer}-{i // 15}", "case_id": f"bench-{writer}-{i // 15}", "kind": "accepted",
            "actor": f"clerk:c{writer:04d}", "field": "tax", "region": "sh/jiading/xincheng/park-3",
            "data": {"clerk_id": f"c{writer:04d}", "attempt": 0, "stage": "jurisdiction", "i": i}}


async def _append_for(url: str, mode: str, writer: int, ready: EventT, go: EventT, seconds: float,
                      out: Any) -> None:
    engine = db.make_engine(url)
    records = Records(engine)
    locked_at: list[float] = []

    @sa.event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _head_locked(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # Records.append's first statement (UPDATE chain_head SET count=chain_head.count ...) takes the row lock
        if not locked_at and statement.startswith("UPDATE chain_head") and "last_hash" not in statement:
            locked_at.append(time.perf_counter())

    try:
        async with engine.connect() as conn:  # connect before the clock starts
            await conn.execute(sa.select(1))
        ready.set()
        await asyncio.to_thread(go.wait)
        end = time.monotonic() + seconds
        latencies: list[float] = []
        holds: list[float] = []
        i = 0
        while time.monotonic() < end:
            ev = sample_event(writer, i)
            t0 = time.perf_counter()
            if mode == "chained":
                await records.log(ev.pop("kind"), **ev)
            else:
                row = {**ev, "at": time.time()}
                digest = event_hash(GENESIS, _content(row))
                async with engine.begin() as conn:
                    await conn.execute(db.events.insert().values(**row, prev_hash=GENESIS, hash=digest))
            done = time.perf_counter()
            latencies.append(done - t0)
            if locked_at:
                holds.append(done - locked_at.pop())
            i += 1
        out.put((writer, latencies, holds))
    finally:
        await engine.dispose()


def writer_main(url: str, mode: str, writer: int, ready: EventT, go: EventT, seconds: float, out: Any) -> None:
    asyncio.run(_append_for(url, mode, writer, ready, go, seconds, out))


# --------------------------------------------------------------------------- one step


def run_step(database: str, url: str, mode: str, writers: int, seconds: float) -> Step:
    db.upgrade(url)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    go = ctx.Event()
    readies = [ctx.Event() for _ in range(writers)]
    procs = [ctx.Process(target=writer_main, args=(url, mode, w, readies[w], go, seconds, out), daemon=True)
             for w in range(writers)]
    for p in procs:
        p.start()
    for r in readies:
        if not r.wait(120):
            raise RuntimeError("a writer process did not start within 2 minutes")
    go.set()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(30)
    latencies = tuple(lat for _, lats, _ in results for lat in lats)
    holds = tuple(h for _, _, hs in results for h in hs)
    chain_ok = None
    if mode == "chained":
        status = asyncio.run(_verify(url))
        chain_ok = status[0] and status[1] == len(latencies)
    # each writer appends for ``seconds`` from the common start
    return Step(database, mode, writers, len(latencies), seconds, latencies, holds, chain_ok)


async def _verify(url: str) -> tuple[bool, int]:
    engine = db.make_engine(url)
    try:
        status = await Records(engine).verify()
    finally:
        await engine.dispose()
    return status.ok, status.checked


# --------------------------------------------------------------------------- the run


def run(seconds: float, writers: Sequence[int], databases: Sequence[str],
        log: Callable[[str], None]) -> list[Step]:
    steps: list[Step] = []
    server: PostgresServer | None = None
    tmp = Path(tempfile.mkdtemp(prefix="vwindow-chain-bench-"))
    try:
        if "postgresql" in databases:
            server = PostgresServer(fsync=True)
            server.start()
        for database in databases:
            for w in writers:
                for mode in MODES:
                    if database == "postgresql":
                        assert server is not None
                        url = server.url(server.create_database())
                    else:
                        url = db.sqlite_url(tmp / f"{mode}-{w}-{secrets.token_hex(4)}.sqlite3")
                    step = run_step(database, url, mode, w, seconds)
                    log(f"{database:10} {mode:9} {w:2} writers: {step.per_s:8.0f} events/s, "
                        f"p50 {step.latency_ms(0.5):.2f} ms, p99 {step.latency_ms(0.99):.2f} ms"
                        + ("" if step.chain_ok is None else f", head held {step.hold_ms:.2f} ms, "
                           f"chain {'intact' if step.chain_ok else 'BROKEN'}"))
                    steps.append(step)
    finally:
        if server is not None:
            server.stop()
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    return steps


def report(steps: Sequence[Step]) -> str:
    by = {(s.database, s.mode, s.writers): s for s in steps}
    lines = ["| database | writers | chained events/s | chained p50 ms | chained p99 ms | head held ms (mean) "
             "| head ceiling events/s | unchained events/s | unchained p50 ms | unchained p99 ms "
             "| chained / unchained |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in steps:
        if s.mode != "chained":
            continue
        base = by[(s.database, "unchained", s.writers)]
        name = "PostgreSQL" if s.database == "postgresql" else "SQLite"
        lines.append(f"| {name} | {s.writers} | {s.per_s:,.0f} | {s.latency_ms(0.5):.2f} | {s.latency_ms(0.99):.2f} "
                     f"| {s.hold_ms:.2f} | {1000 / s.hold_ms:,.0f} | {base.per_s:,.0f} "
                     f"| {base.latency_ms(0.5):.2f} | {base.latency_ms(0.99):.2f} | {s.per_s / base.per_s:.2f} |")
    return "\n".join(lines)


def fsync_probe_ms(directory: Path, n: int = 50) -> float:
    """Median time of a small write + fsync in ``directory`` (what one commit must wait for at least)."""
    path = directory / "fsync-probe"
    times = []
    with path.open("wb") as fh:
        for _ in range(n):
            fh.write(os.urandom(512))
            fh.flush()
            t0 = time.perf_counter()
            os.fsync(fh.fileno())
            times.append(time.perf_counter() - t0)
    path.unlink()
    return 1000 * statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SECONDS:g} s per step instead of {SECONDS:g}")
    parser.add_argument("--seconds", type=float, default=None, help="seconds each step appends for")
    parser.add_argument("--writers", type=int, nargs="+", default=list(WRITERS))
    parser.add_argument("--databases", nargs="+", choices=("postgresql", "sqlite"), default=["postgresql", "sqlite"])
    args = parser.parse_args(argv)
    seconds = args.seconds or (QUICK_SECONDS if args.quick else SECONDS)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    probe = fsync_probe_ms(Path(tempfile.gettempdir()))
    steps = run(seconds, args.writers, args.databases, log)
    print(report(steps))
    print()
    load = os.getloadavg()[0]
    print(f"{seconds:g} s per step, one event per transaction, writers in separate processes on "
          f"{os.cpu_count()} cores (load average {load:.1f} at the end); a small write + fsync in "
          f"{tempfile.gettempdir()} takes {probe:.2f} ms (median).")
    broken = [s for s in steps if s.chain_ok is False]
    if broken:
        print("ERROR: the chain did not verify after: "
              + ", ".join(f"{s.database} {s.writers} writers" for s in broken))
        return 1
    print("After every chained step the chain verified intact, with exactly one event per append.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
