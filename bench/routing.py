"""Benchmark of the routing engine against a naive scan-everything matcher, and of the whole core beside it.

Run from the repository root::

    .venv/bin/python -m bench.routing            # N = 100, 1,000, 10,000, 100,000
    .venv/bin/python -m bench.routing --quick    # stops at 10,000

For each N the Shanghai sample tree of ``config/regions.toml`` is populated with
N clerks (covering a district, a town or the whole city; 1-2 of the fields
market/tax/social/housing; Chinese plus sometimes English and Arabic) and N
waiting calls from the kiosks in its parks, with the stages of
``config/routing.toml``. Set-up (not measured): every clerk logs in away, N + N/2
calls arrive over 400 s of simulated time (stages widen as they wait), then half
of the clerks become available and accept what they are rung for, which leaves
about N calls waiting, N/2 clerks busy and N/2 away.

Measured: a mix of events in the proportions a busy day would show, each one
engine call timed with ``time.perf_counter_ns``: ``request_call`` (a kiosk calls;
kept while fewer than N calls wait), ``set_available`` (an away clerk comes back and
is rung for the best waiting call), ``accept``, ``decline`` (the call goes on to the
next clerk, the decliner takes another), ``end_call`` (hang-up: the freed clerk
takes the next waiting call), a visitor cancelling, and ``tick`` (the clock jumps
to ``next_deadline()`` and due ring timeouts and stage widenings are carried out;
the ``next_deadline`` query is timed with it). Other events are 1 ms of simulated
time apart. "Decisions/s" counts these engine calls per second of engine time.

Shared machines preempt: the engine runs the same event sequence three times
(``--repeat``) on copies of the set-up state and each event counts with its
fastest run; the slowest single-run p99 goes to stderr for comparison.

The naive baseline is the engine's model, ``NaiveEngine`` of
``tests/signaling/model.py`` (the property test ``test_routing_model.py`` holds
it to the engine on random events): the same semantics by scanning, every idle
clerk for a call, every waiting call for a freed clerk, every waiting call for a
position, every clerk for an estimate, every live call for the next deadline. It
starts from a copy of the engine's state after set-up and gets the very same
event sequence, so its decisions are compared with the engine's one by one (the
run stops with an error if they ever differ). At large N it is given only the
first events of the sequence (the table says how many); the speed-up compares the
two over exactly those events.

The whole core (routing plus call policy, :class:`signaling.switch.Switch`) gets
its own row beside the engine's: the same N on the server's call policy, driven
by commands (connects, the clients' events, ticks), ``Switch.apply`` timed per
command; see ``routing_core.py`` for its set-up and mix.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import itertools
import math
import os
import pickle
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from server.settings import load_settings
from signaling.calls import CallState
from signaling.decisions import (
    CallEnded,
    ClerkStatus,
    ClerkStatusChanged,
    Decision,
    EndReason,
    Matched,
    Queued,
    Ring,
    RingEnded,
    RingEndReason,
    StageWidened,
)
from signaling.policy import CallPolicy
from signaling.regions import RegionTree
from signaling.routing import RoutingEngine, Stage

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
if str(ROOT) not in sys.path:  # run as a script: its siblings and the tests' naive model are not installed
    sys.path.insert(0, str(ROOT))

from bench.routing_core import CORE_EVENTS, CORE_WEIGHTS, CoreResult, run_core  # noqa: E402
from bench.routing_workload import Pool, Population, percentile  # noqa: E402
from tests.signaling.model import NaiveEngine  # noqa: E402

RING_TIMEOUT_S = 20.0
DEFAULT_HANDLE_S = 300.0
FILL_SECONDS = 400.0  # calls of the set-up arrive over this much simulated time
EVENT_SPACING_S = 0.001  # simulated time between two measured events (so deadlines do not pile up on one instant)
REPEAT = 3
ENGINE_EVENTS = 20_000
NAIVE_EVENTS = {100: 20_000, 1_000: 5_000, 10_000: 600, 100_000: 60}
SIZES = (100, 1_000, 10_000, 100_000)
QUICK_SIZES = (100, 1_000, 10_000)
EVENT_WEIGHTS = {
    "request_call": 25,
    "set_available": 12,
    "accept": 20,
    "decline": 6,
    "end_call": 20,
    "cancel": 3,
    "tick": 10,
}


# --------------------------------------------------------------------------- configuration


def load_config() -> tuple[RegionTree, tuple[Stage, ...], CallPolicy]:
    """The region tree, routing stages and call policy of ``config/``, read as the server reads them."""
    settings = load_settings(CONFIG)
    return settings.regions, settings.stages, settings.policy()


# --------------------------------------------------------------------------- what the workload drives


class Engine(Protocol):
    def request_call(
        self, call_id: str, field: str, language: str, region: str, now: float, priority: int = 0
    ) -> list[Decision]: ...
    def set_available(self, clerk_id: str, now: float) -> list[Decision]: ...
    def accept(self, clerk_id: str, call_id: str, now: float) -> list[Decision]: ...
    def decline(self, clerk_id: str, call_id: str, now: float) -> list[Decision]: ...
    def end_call(self, call_id: str, now: float, reason: EndReason, by: str) -> list[Decision]: ...
    def next_deadline(self) -> float | None: ...
    def tick(self, now: float) -> list[Decision]: ...


# --------------------------------------------------------------------------- the workload


@dataclass
class World:
    """What the driver knows from the decisions: who is away, what rings, what is connected, what waits."""

    away: Pool
    waiting: Pool
    ringing: dict[str, str] = field(default_factory=dict)  # call -> clerk
    ringing_pool: Pool = field(default_factory=Pool)
    connected: dict[str, str] = field(default_factory=dict)
    connected_pool: Pool = field(default_factory=Pool)

    def apply(self, out: list[Decision]) -> None:
        for d in out:
            if isinstance(d, ClerkStatusChanged):
                if d.status is ClerkStatus.AWAY:
                    self.away.add(d.clerk_id)
                else:
                    self.away.discard(d.clerk_id)
            elif isinstance(d, Ring):
                self.waiting.discard(d.call_id)
                self.ringing[d.call_id] = d.clerk_id
                self.ringing_pool.add(d.call_id)
            elif isinstance(d, RingEnded):
                del self.ringing[d.call_id]
                self.ringing_pool.discard(d.call_id)
            elif isinstance(d, Queued):
                self.waiting.add(d.call_id)
            elif isinstance(d, Matched):
                del self.ringing[d.call_id]
                self.ringing_pool.discard(d.call_id)
                self.connected[d.call_id] = d.clerk_id
                self.connected_pool.add(d.call_id)
            elif isinstance(d, CallEnded):
                self.waiting.discard(d.call_id)
                self.connected.pop(d.call_id, None)
                self.connected_pool.discard(d.call_id)


@dataclass
class Sample:
    kind: str
    ns: int = field(compare=False)
    out: list[Decision]
    deadlines: int = field(default=0, compare=False)  # ring timeouts and widenings a tick carried out


def drive(
    engine: Engine, world: World, population: Population, rng: random.Random, n_waiting: int, start: float,
    events: int, call_ids: Iterator[str], keep: int = 0,
) -> list[Sample]:
    """Feed ``events`` events to ``engine``; return per-event samples (decisions kept for the first ``keep``)."""
    kinds = list(EVENT_WEIGHTS)
    weights = list(EVENT_WEIGHTS.values())
    now = start
    samples: list[Sample] = []
    clock = time.perf_counter_ns
    for i in range(events):
        kind = rng.choices(kinds, weights)[0]
        if kind == "request_call" and len(world.waiting) >= n_waiting:
            kind = "tick"
        if kind in ("accept", "decline") and not world.ringing_pool:
            kind = "set_available"
        if kind == "end_call" and not world.connected_pool:
            kind = "set_available"
        if kind == "set_available" and not world.away:
            kind = "request_call"
        if kind == "cancel" and not world.waiting:
            kind = "request_call"
        if kind == "request_call":
            spec = population.call()
            call_id = next(call_ids)
            t0 = clock()
            out = engine.request_call(call_id, spec.field, spec.language, spec.region, now)
            ns = clock() - t0
        elif kind == "set_available":
            clerk_id = world.away.choice(rng)
            t0 = clock()
            out = engine.set_available(clerk_id, now)
            ns = clock() - t0
        elif kind == "accept":
            call_id = world.ringing_pool.choice(rng)
            clerk_id = world.ringing[call_id]
            t0 = clock()
            out = engine.accept(clerk_id, call_id, now)
            ns = clock() - t0
        elif kind == "decline":
            call_id = world.ringing_pool.choice(rng)
            clerk_id = world.ringing[call_id]
            t0 = clock()
            out = engine.decline(clerk_id, call_id, now)
            ns = clock() - t0
        elif kind == "end_call":
            call_id = world.connected_pool.choice(rng)
            t0 = clock()
            out = engine.end_call(call_id, now, EndReason.HANGUP, "clerk")
            ns = clock() - t0
        elif kind == "cancel":
            call_id = world.waiting.choice(rng)
            t0 = clock()
            out = engine.end_call(call_id, now, EndReason.CANCELLED, "visitor")
            ns = clock() - t0
        else:  # tick: the server wakes up at the next deadline (or now, if one is overdue)
            t0 = clock()
            deadline = engine.next_deadline()
            now = max(now, deadline if deadline is not None else now + 1.0)
            out = engine.tick(now)
            ns = clock() - t0
        world.apply(out)
        due = sum(1 for d in out if isinstance(d, StageWidened) or (
            isinstance(d, RingEnded) and d.reason is RingEndReason.TIMEOUT)) if kind == "tick" else 0
        samples.append(Sample(kind, ns, out if i < keep else [], due))
        now += EVENT_SPACING_S
    return samples


# --------------------------------------------------------------------------- one size


@dataclass
class Result:
    n: int
    waiting: int
    engine_ns: list[int]
    naive_ns: list[int]
    per_kind: dict[str, list[int]]
    identical: bool
    deadlines_per_tick: float
    core: CoreResult


def setup(n: int, tree: RegionTree, stages: tuple[Stage, ...], seed: int) -> tuple[RoutingEngine, int, float]:
    """N clerks, about N waiting calls, N/2 clerks busy; return the engine, the sequence numbers used, the clock."""
    rng = random.Random(seed)
    population = Population(tree, rng)
    engine = RoutingEngine(tree, stages, ring_timeout_s=RING_TIMEOUT_S, default_handle_s=DEFAULT_HANDLE_S)
    used = 0
    for i in range(n):
        engine.clerk_online(population.clerk(f"clerk-{i}"), 0.0, available=False)
        used += 1
    fill = n + n // 2
    step = FILL_SECONDS / fill
    next_tick = 1.0
    for i in range(fill):
        now = i * step
        if now >= next_tick:
            engine.tick(now)
            next_tick = now + 1.0
        spec = population.call()
        engine.request_call(f"fill-{i}", spec.field, spec.language, spec.region, now)
        used += 1
    now = FILL_SECONDS
    engine.tick(now)
    order = list(engine.clerks)
    rng.shuffle(order)
    for clerk_id in order[: n // 2]:
        for d in engine.set_available(clerk_id, now):
            if isinstance(d, Ring):
                engine.accept(d.clerk_id, d.call_id, now)
    return engine, used, now


def world_of(engine: RoutingEngine | NaiveEngine) -> World:
    world = World(
        away=Pool([cid for cid, c in engine.clerks.items() if c.status is ClerkStatus.AWAY]),
        waiting=Pool([cid for cid, c in engine.calls.items() if c.state is CallState.QUEUED]),
    )
    for cid, c in engine.calls.items():
        if c.state in (CallState.CONNECTING, CallState.ACTIVE) and c.clerk_id is not None:
            world.connected[cid] = c.clerk_id
            world.connected_pool.add(cid)
    return world


def run_size(
    n: int, tree: RegionTree, stages: tuple[Stage, ...], policy: CallPolicy, seed: int, repeat: int,
    log: Callable[[str], None],
) -> Result:
    t_setup = time.perf_counter()
    engine, used, now = setup(n, tree, stages, seed)
    waiting = sum(1 for c in engine.calls.values() if c.state is CallState.QUEUED)
    busy = sum(1 for c in engine.clerks.values() if c.status is ClerkStatus.BUSY)
    snapshot = pickle.dumps(engine, protocol=pickle.HIGHEST_PROTOCOL)
    del engine
    log(f"N={n:,}: set-up {time.perf_counter() - t_setup:.1f} s, {waiting:,} calls waiting, {busy:,} clerks busy")
    naive_events = min(NAIVE_EVENTS[n], ENGINE_EVENTS)
    workload_seed = seed * 7919 + n

    def run(engine: RoutingEngine | NaiveEngine, events: int) -> list[Sample]:
        gc.collect()
        gc.freeze()  # the set-up heap is long-lived, as in a server that has been running for a while
        try:
            return drive(engine, world_of(engine), Population(tree, random.Random(workload_seed)),
                         random.Random(workload_seed + 1), n, now, events,
                         (f"call-{i}" for i in itertools.count()), keep=naive_events)
        finally:
            gc.unfreeze()

    # the same events on fresh copies of the set-up state; each event's latency is its fastest run,
    # which filters out preemption by other processes (the decisions are the same in every run)
    runs: list[list[Sample]] = []
    for r in range(repeat):
        t0 = time.perf_counter()
        runs.append(run(pickle.loads(snapshot), ENGINE_EVENTS))
        log(f"  engine run {r + 1}/{repeat}: {ENGINE_EVENTS:,} events in {time.perf_counter() - t0:.1f} s, "
            f"p99 of this run {us(percentile([x.ns for x in runs[-1]], 99))} µs")
        if runs[-1][:naive_events] != runs[0][:naive_events]:
            raise AssertionError("the engine decided differently on the same events")
    samples = [dataclasses.replace(first, ns=min(run[i].ns for run in runs)) for i, first in enumerate(runs[0])]

    t0 = time.perf_counter()
    naive_samples = run(NaiveEngine(pickle.loads(snapshot), used + 1), naive_events)
    log(f"  naive: {naive_events:,} events in {time.perf_counter() - t0:.1f} s")

    identical = all(a.kind == b.kind and a.out == b.out for a, b in zip(samples, naive_samples, strict=False))
    if not identical:
        first = next(i for i, (a, b) in enumerate(zip(samples, naive_samples, strict=False))
                     if a.kind != b.kind or a.out != b.out)
        log(f"  MISMATCH at event {first}: engine {samples[first].kind} {samples[first].out}\n"
            f"                        naive  {naive_samples[first].kind} {naive_samples[first].out}")
    per_kind: dict[str, list[int]] = {}
    for x in samples:
        per_kind.setdefault(x.kind, []).append(x.ns)
    ticks = [x for x in samples if x.kind == "tick"]
    per_tick = sum(x.deadlines for x in ticks) / max(1, len(ticks))
    core = run_core(n, policy, seed, repeat, log)
    return Result(n, waiting, [x.ns for x in samples], [x.ns for x in naive_samples], per_kind, identical, per_tick,
                  core)


# --------------------------------------------------------------------------- report


def us(ns: float) -> str:
    v = ns / 1000
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def report(results: Sequence[Result]) -> str:
    lines = [
        "| N clerks | N waiting calls | engine decisions/s | engine p50 µs | engine p99 µs "
        "| core commands/s | core p50 µs | core p99 µs | naive p50 µs | naive p99 µs | speed-up |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        k = len(r.naive_ns)
        mark = "" if k == len(r.engine_ns) else f" ({k:,} ev.)"
        speed_up = percentile(r.naive_ns, 50) / percentile(r.engine_ns[:k], 50)
        rate = len(r.engine_ns) / (sum(r.engine_ns) / 1e9)
        core_rate = len(r.core.ns) / (sum(r.core.ns) / 1e9)
        lines.append(
            f"| {r.n:,} | {r.waiting:,} | {rate:,.0f} | {us(percentile(r.engine_ns, 50))} "
            f"| {us(percentile(r.engine_ns, 99))} | {core_rate:,.0f} | {us(percentile(r.core.ns, 50))} "
            f"| {us(percentile(r.core.ns, 99))} | {us(percentile(r.naive_ns, 50))}{mark} "
            f"| {us(percentile(r.naive_ns, 99))}{mark} | {speed_up:,.0f}× |"
        )
    return "\n".join(lines)


def breakdown(results: Sequence[Result]) -> str:
    kinds = list(EVENT_WEIGHTS)
    lines = ["engine p50 / p99 µs by event (count):", "N".rjust(8) + "".join(k.rjust(24) for k in kinds)]
    for r in results:
        row = f"{r.n:>8,}"
        for k in kinds:
            v = r.per_kind.get(k, [])
            cell = f"{us(percentile(v, 50))}/{us(percentile(v, 99))} ({len(v)})" if v else "-"
            row += cell.rjust(24)
        lines.append(f"{row}   deadlines per tick: {r.deadlines_per_tick:.1f}")
    kinds = list(CORE_WEIGHTS)
    lines += ["core p50 / p99 µs by command (count):", "N".rjust(8) + "".join(k.rjust(22) for k in kinds)]
    for r in results:
        row = f"{r.n:>8,}"
        for k in kinds:
            v = r.core.per_kind.get(k, [])
            cell = f"{us(percentile(v, 50))}/{us(percentile(v, 99))} ({len(v)})" if v else "-"
            row += cell.rjust(22)
        lines.append(row)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="stop at 10,000 clerks and calls")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=REPEAT, help="engine runs per size (fastest run of each event)")
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    tree, stages, policy = load_config()
    started = time.perf_counter()
    results = [run_size(n, tree, stages, policy, args.seed, args.repeat, log)
               for n in (QUICK_SIZES if args.quick else SIZES)]
    log(breakdown(results))
    log(f"total {time.perf_counter() - started:.0f} s")

    print(report(results))
    print()
    print(f"{ENGINE_EVENTS:,} engine events and {CORE_EVENTS:,} core commands per size, each one's latency the "
          f"fastest of {args.repeat} runs on copies of the same state; the naive matcher ran once, on the first "
          "events only where the cell says (same events, same decisions); speed-up = naive p50 / engine p50 over "
          f"those events. Load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.")
    if not all(r.identical for r in results):
        print("ERROR: the naive matcher and the engine disagreed (see stderr)")
        return 1
    print("The naive matcher's decisions were identical to the engine's on every event both ran.")
    by_n = {r.n: r for r in results}
    if 10_000 in by_n:
        p99 = percentile(by_n[10_000].engine_ns, 99) / 1000
        core_p99 = percentile(by_n[10_000].core.ns, 99) / 1000
        print(f"Target p99 < 100 µs at 10,000 clerks / 10,000 waiting calls: engine {p99:.1f} µs, "
              f"{'met' if p99 < 100 else 'MISSED'}; the whole core (routing and call policy) {core_p99:.1f} µs "
              f"per command, {'within' if core_p99 < 100 else 'over'} the engine's target.")
    for r in results:
        print(f"A position push to every waiting visitor at N = {r.n:,} (SendPositions of every queue, "
              f"{r.core.positions_sent:,} messages): {r.core.positions_ns / 1e6:,.1f} ms; the server sends it at "
              "most once a second, for the queues that moved.")
    lo, hi = results[0], results[-1]
    growth = percentile(hi.engine_ns, 50) / percentile(lo.engine_ns, 50)
    log_growth = math.log(hi.waiting) / math.log(lo.waiting)
    print(f"p50 grew {growth:.2f}× from {lo.waiting:,} to {hi.waiting:,} waiting calls "
          f"(log ratio {log_growth:.2f}×, linear {hi.waiting / lo.waiting:,.0f}×).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
