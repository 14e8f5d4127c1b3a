"""The whole core's row of ``bench/routing.py``: routing plus call policy, one :class:`Switch` command at a time.

Not run by itself: ``routing.py`` calls :func:`run_core` for each N and puts
its figures beside the engine's.

Set-up (not measured), on the policy the server builds from ``config/``
(``load_settings().policy()``: catalog, recording policies, wrap-up time, grace
periods) at a working-day morning: N clerks connect (``ClerkConnected``, away),
2N + 50 kiosks connect (``KioskConnected``, one park each), N + N/2 visitors
ask for a call (``request_call``) over 400 s of simulated time with a ``Tick``
every second, then half of the clerks set themselves available and accept what
they are rung for: about N calls wait, N/2 clerks are in a call, N/2 are away.

Measured: each command's :meth:`Switch.apply`, timed with
``time.perf_counter_ns``, in a busy day's mix: ``request_call`` (with the
recording consent its field asks for), ``set_status available``, ``accept``,
``decline``, ``signal`` (an ICE candidate or, one time in five, an SDP offer or
answer, relayed to the other side), ``media_connected``, ``hangup`` (mostly by
the clerk, who then wraps up), ``wrap_up`` (a matter filed; one in five
yet-to-do with its follow-up's due date on the working-day calendar, one in
three with a credit code to check), ``rate``, ``cancel_call`` and ``Tick``
(the clock jumps to ``Switch.next_deadline()``, timed with it). Every command
the core answers with an error stops the run: the driver only sends what a
well-behaved client would. The same three-runs-fastest-of rule as the engine's
applies (runs start from ``Switch.snapshot()``).

Not in the mix: ``SendPositions``, the batch the server sends at most once a
``queue_update_interval_s`` with the position of every waiting visitor of the
queues that moved. It is timed once per size, for every queue with a visitor
waiting, and reported apart.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import msgspec

from bench.routing_workload import Pool, Population, percentile
from signaling import messages as m
from signaling.calls import ANSWERED, CallState
from signaling.commands import (
    CLERK,
    KIOSK,
    ClerkCard,
    ClerkConnected,
    Command,
    KioskCard,
    KioskConnected,
    Party,
    Received,
    SendPositions,
    Tick,
)
from signaling.decisions import ClerkStatus
from signaling.effects import Send
from signaling.policy import CallPolicy
from signaling.routing import ClerkProfile
from signaling.switch import Outcome, Switch

CORE_EVENTS = 20_000
FILL_SECONDS = 400.0
EVENT_SPACING_S = 0.001
START = dt.datetime(2026, 3, 3, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()  # a Tuesday, 09:00
CORE_WEIGHTS = {
    "request_call": 20,
    "set_available": 10,
    "accept": 16,
    "decline": 5,
    "signal": 24,
    "media_connected": 8,
    "hangup": 16,
    "wrap_up": 14,
    "rate": 5,
    "cancel": 3,
    "tick": 10,
}
CREDIT_CODE = "91350100M000100Y43"
CANDIDATE = m.IceCandidate("candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.0.0.5 "
                           "rport 46154 generation 0 ufrag 8hKq network-cost 999", "0", 0)
SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" + "a=x-filler:0\r\n" * 120


def conn(party: Party) -> str:
    return f"conn-{party.role}-{party.id}"


def card_of(profile: ClerkProfile) -> ClerkCard:
    return ClerkCard(profile.id, f"Clerk {profile.id}", "Service center", tuple(sorted(profile.fields)),
                     profile.regions, tuple(sorted(profile.languages)))


@dataclass
class CoreWorld:
    """What the driver knows from the messages the core sends, and the calls it opened."""

    free_kiosks: Pool  # kiosks with no call
    away: Pool
    waiting: Pool  # calls queued (not ringing)
    call_kiosk: dict[str, str] = field(default_factory=dict)
    call_field: dict[str, str] = field(default_factory=dict)
    ringing: dict[str, str] = field(default_factory=dict)  # call -> clerk
    ringing_pool: Pool = field(default_factory=Pool)
    connected: dict[str, str] = field(default_factory=dict)  # call -> clerk
    connected_pool: Pool = field(default_factory=Pool)
    owed: dict[str, str] = field(default_factory=dict)  # call -> clerk who owes its wrap-up
    owed_pool: Pool = field(default_factory=Pool)
    rateable: Pool = field(default_factory=Pool)  # answered calls that ended, not rated yet

    def apply(self, outcome: Outcome) -> None:
        for e in outcome.effects:
            if not isinstance(e, Send):
                continue
            msg = e.msg
            if isinstance(msg, m.RingMsg):
                self.waiting.discard(msg.call_id)
                self.ringing[msg.call_id] = e.to.id
                self.ringing_pool.add(msg.call_id)
            elif isinstance(msg, m.RingEndedMsg):
                del self.ringing[msg.call_id]
                self.ringing_pool.discard(msg.call_id)
            elif isinstance(msg, m.ClerkMatched):
                del self.ringing[msg.call_id]
                self.ringing_pool.discard(msg.call_id)
                self.connected[msg.call_id] = e.to.id
                self.connected_pool.add(msg.call_id)
            elif isinstance(msg, m.ClerkCallEnded):
                self.owed[msg.call_id] = e.to.id
                self.owed_pool.add(msg.call_id)
                self.rateable.add(msg.call_id)
            elif isinstance(msg, m.KioskCallEnded):
                self.waiting.discard(msg.call_id)
                self.connected.pop(msg.call_id, None)
                self.connected_pool.discard(msg.call_id)
                self.free_kiosks.add(e.to.id)
            elif isinstance(msg, m.QueuedMsg):
                self.waiting.add(msg.call_id)
            elif isinstance(msg, m.StatusMsg):
                if msg.status == "away":
                    self.away.add(e.to.id)
                else:
                    self.away.discard(e.to.id)


def world_of(switch: Switch) -> CoreWorld:
    engine = switch.engine
    world = CoreWorld(
        free_kiosks=Pool([k for k in switch.kiosks if k not in switch.kiosk_calls]),
        away=Pool([cid for cid, c in engine.clerks.items() if c.status is ClerkStatus.AWAY]),
        waiting=Pool([cid for cid, c in engine.calls.items() if c.state is CallState.QUEUED]),
    )
    for cid, live in switch.calls.items():
        world.call_kiosk[cid] = live.kiosk.id
        world.call_field[cid] = live.case.field
        call = engine.calls[cid]
        if call.state in ANSWERED and call.clerk_id is not None:
            world.connected[cid] = call.clerk_id
            world.connected_pool.add(cid)
        elif call.state is CallState.RINGING and call.clerk_id is not None:
            world.ringing[cid] = call.clerk_id
            world.ringing_pool.add(cid)
    return world


def received(party: Party, event: str, msg: msgspec.Struct, fresh: str = "") -> Received:
    return Received(party, conn(party), event, msg, fresh)


def consent(policy: CallPolicy, field_id: str, rng: random.Random) -> bool | None:
    """The visitor's answer to the recording notice, as the kiosk page would send it."""
    recording = policy.catalog.get(field_id).recording.value
    if recording == "always":
        return True
    if recording == "ask":
        return rng.random() < 0.5
    return None


# --------------------------------------------------------------------------- set-up


def setup_core(n: int, policy: CallPolicy, seed: int) -> tuple[Switch, float]:
    """N clerks, 2N + 50 kiosks, about N waiting calls and N/2 clerks in a call; return the switch and the clock."""
    rng = random.Random(seed)
    population = Population(policy.regions, rng)
    cards = [card_of(population.clerk(f"clerk-{i}")) for i in range(n)]
    switch = Switch(policy, roster=cards)
    now = START

    def apply(cmd: Command) -> Outcome:
        outcome = switch.apply(cmd, now)
        if outcome.error is not None:
            raise AssertionError(f"set-up: {cmd} refused: {outcome.error}")
        return outcome

    for card in cards:
        apply(ClerkConnected(conn(Party(CLERK, card.id)), card))
    kiosks = [KioskCard(f"kiosk-{i}", f"Window {i}", population.call().region) for i in range(2 * n + 50)]
    for kiosk in kiosks:
        apply(KioskConnected(conn(Party(KIOSK, kiosk.id)), kiosk))
    fill = n + n // 2
    step = FILL_SECONDS / fill
    next_tick = START + 1.0
    for i in range(fill):
        now = START + i * step
        if now >= next_tick:
            apply(Tick())
            next_tick = now + 1.0
        spec = population.call()
        apply(received(Party(KIOSK, kiosks[i].id), "request_call",
                       m.RequestCall(spec.field, spec.language, consent(policy, spec.field, rng)), f"fill-{i}"))
    now = START + FILL_SECONDS
    apply(Tick())
    order = [c.id for c in cards]
    rng.shuffle(order)
    for clerk_id in order[: n // 2]:
        clerk = Party(CLERK, clerk_id)
        for e in apply(received(clerk, "set_status", m.SetStatus("available"))).effects:
            if isinstance(e, Send) and isinstance(e.msg, m.RingMsg):
                apply(received(clerk, "accept", m.CallRef(e.msg.call_id)))
    return switch, now


# --------------------------------------------------------------------------- the workload


@dataclass
class CoreSample:
    kind: str
    ns: int = field(compare=False)
    effects: int  # how many effects the command had (the runs must agree)


def drive_core(switch: Switch, policy: CallPolicy, world: CoreWorld, rng: random.Random, n_waiting: int,
               start: float, events: int) -> list[CoreSample]:
    kinds = list(CORE_WEIGHTS)
    weights = list(CORE_WEIGHTS.values())
    population = Population(policy.regions, rng)
    matter_of = {f.id: f.matters[0].id for f in policy.catalog}
    now = start
    samples: list[CoreSample] = []
    clock = time.perf_counter_ns
    for i in range(events):
        kind = rng.choices(kinds, weights)[0]
        if kind in ("accept", "decline") and not world.ringing_pool:
            kind = "set_available"
        if kind in ("signal", "media_connected", "hangup") and not world.connected_pool:
            kind = "set_available"
        if kind == "wrap_up" and not world.owed_pool:
            kind = "set_available"
        if kind == "set_available" and not world.away:
            kind = "request_call"
        if kind in ("cancel", "rate") and not (world.waiting if kind == "cancel" else world.rateable):
            kind = "request_call"
        if kind == "request_call" and (len(world.waiting) >= n_waiting or not world.free_kiosks):
            kind = "tick"
        after: Callable[[], None] | None = None
        cmd: Command
        if kind == "request_call":
            kiosk = world.free_kiosks.choice(rng)
            spec = population.call()
            call_id = f"call-{i}"
            world.free_kiosks.discard(kiosk)
            world.call_kiosk[call_id] = kiosk
            world.call_field[call_id] = spec.field
            cmd = received(Party(KIOSK, kiosk), "request_call",
                           m.RequestCall(spec.field, spec.language, consent(policy, spec.field, rng)), call_id)
        elif kind == "set_available":
            cmd = received(Party(CLERK, world.away.choice(rng)), "set_status", m.SetStatus("available"))
        elif kind in ("accept", "decline"):
            call_id = world.ringing_pool.choice(rng)
            cmd = received(Party(CLERK, world.ringing[call_id]), kind, m.CallRef(call_id))
        elif kind == "signal":
            call_id = world.connected_pool.choice(rng)
            from_kiosk = rng.random() < 0.5
            party = Party(KIOSK, world.call_kiosk[call_id]) if from_kiosk else Party(CLERK, world.connected[call_id])
            if rng.random() < 0.2:
                signal = m.Signal(call_id, description=m.SessionDescription("offer" if from_kiosk else "answer", SDP))
            else:
                signal = m.Signal(call_id, candidate=CANDIDATE)
            cmd = received(party, "signal", signal)
        elif kind == "media_connected":
            call_id = world.connected_pool.choice(rng)
            party = Party(KIOSK, world.call_kiosk[call_id]) if rng.random() < 0.5 else Party(
                CLERK, world.connected[call_id])
            cmd = received(party, "media_connected", m.CallRef(call_id))
        elif kind == "hangup":
            call_id = world.connected_pool.choice(rng)
            party = Party(CLERK, world.connected[call_id]) if rng.random() < 0.8 else Party(
                KIOSK, world.call_kiosk[call_id])
            cmd = received(party, "hangup", m.CallRef(call_id))
        elif kind == "wrap_up":
            call_id = world.owed_pool.choice(rng)
            x = rng.random()
            matter = m.MatterIn(matter_of[world.call_field[call_id]], "yet_to_do" if x < 0.2 else "completed",
                                CREDIT_CODE if rng.random() < 1 / 3 else None, followup="general" if x < 0.2 else None)
            cmd = received(Party(CLERK, world.owed[call_id]), "wrap_up", m.WrapUp(call_id, [matter]))

            def after(call_id: str = call_id) -> None:
                del world.owed[call_id]
                world.owed_pool.discard(call_id)
        elif kind == "rate":
            call_id = world.rateable.choice(rng)
            cmd = received(Party(KIOSK, world.call_kiosk[call_id]), "rate", m.Rate(call_id, "satisfied"))

            def after(call_id: str = call_id) -> None:
                world.rateable.discard(call_id)
        elif kind == "cancel":
            call_id = world.waiting.choice(rng)
            cmd = received(Party(KIOSK, world.call_kiosk[call_id]), "cancel_call", m.CallRef(call_id))
        else:  # tick: the writer wakes up at the next deadline (or now, if one is overdue)
            t0 = clock()
            deadline = switch.next_deadline()
            now = max(now, deadline if deadline is not None else now + 1.0)
            outcome = switch.apply(Tick(), now)
            ns = clock() - t0
        if kind != "tick":
            t0 = clock()
            outcome = switch.apply(cmd, now)
            ns = clock() - t0
        if outcome.error is not None:
            raise AssertionError(f"event {i}: {kind} refused: {outcome.error}")
        world.apply(outcome)
        if after is not None:
            after()
        samples.append(CoreSample(kind, ns, len(outcome.effects)))
        now += EVENT_SPACING_S
    return samples


# --------------------------------------------------------------------------- one size


@dataclass
class CoreResult:
    ns: list[int]
    per_kind: dict[str, list[int]]
    positions_ns: int  # one SendPositions for every queue with a visitor waiting
    positions_sent: int  # how many visitors it told


def run_core(n: int, policy: CallPolicy, seed: int, repeat: int, log: Callable[[str], None]) -> CoreResult:
    t_setup = time.perf_counter()
    switch, now = setup_core(n, policy, seed)
    waiting = sum(1 for c in switch.engine.calls.values() if c.state is CallState.QUEUED)
    snapshot = switch.snapshot()
    del switch
    log(f"  core set-up {time.perf_counter() - t_setup:.1f} s, {waiting:,} calls waiting")
    workload_seed = seed * 7919 + n + 1

    def run() -> tuple[Switch, list[CoreSample]]:
        switch = Switch.restore(policy, snapshot)
        gc.collect()
        gc.freeze()
        try:
            return switch, drive_core(switch, policy, world_of(switch), random.Random(workload_seed), n, now,
                                      CORE_EVENTS)
        finally:
            gc.unfreeze()

    runs: list[list[CoreSample]] = []
    for r in range(repeat):
        t0 = time.perf_counter()
        switch, samples = run()
        runs.append(samples)
        log(f"  core run {r + 1}/{repeat}: {CORE_EVENTS:,} commands in {time.perf_counter() - t0:.1f} s, "
            f"p99 of this run {percentile([x.ns for x in samples], 99) / 1000:.1f} µs")
        if samples != runs[0]:
            raise AssertionError("the core decided differently on the same commands")
    best = [dataclasses.replace(first, ns=min(run[i].ns for run in runs)) for i, first in enumerate(runs[0])]
    per_kind: dict[str, list[int]] = {}
    for x in best:
        per_kind.setdefault(x.kind, []).append(x.ns)

    groups = tuple(sorted({(c.field, switch.engine.district_of(c.region)) for c in switch.engine.waiting_calls()}))
    t0 = time.perf_counter_ns()
    outcome = switch.apply(SendPositions(groups), now)
    positions_ns = time.perf_counter_ns() - t0
    return CoreResult([x.ns for x in best], per_kind, positions_ns, len(outcome.effects))

