"""Property tests of the routing engine: random event sequences with a controllable clock.

A hypothesis state machine drives one :class:`RoutingEngine` over a small region
tree with a handful of clerks (random fields, languages and covered regions)
and calls. After every event it checks the engine's indexed decisions against
the plain definition :func:`signaling.routing.eligible`:

(a) a clerk is never in two calls; clerk and call point at each other;
(b) a call is only ever offered to a clerk who serves its field and is eligible
    at the call's current stage, and ``Ring.ring`` is the nearest stage that
    admits the clerk;
(c) after every event no idle clerk is eligible for a waiting call it has not
    declined (nobody idles while somebody waits for them);
(d) first come, first served: when a call X is offered to clerk C, no call Y
    that waited throughout the event, that C could have taken at that moment
    (C eligible at Y's stage then, C has not declined Y), has the same priority
    and was requested earlier. More generally Y never precedes X in queue order
    (priority, then request time): a higher-priority Y would not be skipped either;
(e) nearest ring first, then longest idle: no clerk who idled throughout the
    event and could have taken X was nearer, or equally near and idle longer;
and the bookkeeping around it: stages widen on time, positions are the naive
rank in the (field, district) queue, ``next_deadline`` is the earliest pending
ring timeout or widening.

"The moment of a Ring" is reconstructed from the decisions: stages start from a
snapshot taken before the event and move with each ``StageWidened`` that
precedes the ``Ring`` in the returned list.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from signaling import errors
from signaling.calls import ANSWERED, Call, CallState
from signaling.decisions import (
    CallEnded,
    ClerkStatus,
    ClerkStatusChanged,
    Decision,
    EndReason,
    Matched,
    Ring,
    RingEnded,
    StageWidened,
)
from signaling.regions import RegionTree
from signaling.routing import ClerkProfile, ClerkState, RoutingEngine, Stage, eligible

LEVELS = ("city", "district", "town", "park")
NODES = (
    "c",
    "c/d1", "c/d1/t1", "c/d1/t1/p1", "c/d1/t1/p2", "c/d1/t2", "c/d1/t2/p1",
    "c/d2", "c/d2/t1", "c/d2/t1/p1",
)
TREE = RegionTree.build(LEVELS, {n: {"en": n} for n in NODES})
DISTRICT = 2
# clerks mostly cover towns and districts, kiosks stand mostly in parks: coverage overlaps often
CLERK_REGIONS = ("c", "c/d1", "c/d1", "c/d2", "c/d1/t1", "c/d1/t1", "c/d1/t2", "c/d2/t1", "c/d1/t1/p1", "c/d2/t1/p1")
KIOSK_REGIONS = ("c/d1/t1/p1", "c/d1/t1/p1", "c/d1/t1/p2", "c/d1/t2/p1", "c/d2/t1/p1", "c/d1/t1", "c")

STAGE_SETS = (
    # config/routing.toml
    (Stage("jurisdiction", 0), Stage("district", 120, 2), Stage("city", 300, 1, False)),
    # the language relaxed early, the town before the city
    (Stage("jurisdiction", 0), Stage("town", 60, 3, False), Stage("city", 90, 1, False)),
    # never widens
    (Stage("jurisdiction", 0),),
)
FIELDS = ("tax", "market")
LANGUAGES = ("zh", "en")
CLERK_IDS = tuple(f"k{i}" for i in range(5))
MAX_CALLS = 8

profiles = st.builds(
    lambda fields, languages, regions: (frozenset(fields), frozenset(languages), tuple(regions)),
    st.sampled_from([("tax",), ("tax", "market"), ("market",)]),
    st.sampled_from([("zh",), ("zh", "en"), ("zh", "en"), ("en",)]),
    st.lists(st.sampled_from(CLERK_REGIONS), min_size=1, max_size=2, unique=True),
)
steps = st.one_of(
    st.sampled_from([0.0, 0.5, 1.0, 5.0, 10.0, 19.5, 20.0, 30.0, 60.0, 90.0, 120.0, 300.0]),
    st.floats(min_value=0, max_value=30, allow_nan=False, allow_infinity=False),
)

Profile = tuple[frozenset[str], frozenset[str], tuple[str, ...]]
Snapshot = dict[str, tuple[CallState, int, str | None]]


class RoutingMachine(RuleBasedStateMachine):
    engine: RoutingEngine
    now: float

    @initialize(
        stages=st.sampled_from(STAGE_SETS),
        ring_timeout=st.sampled_from([20.0, 45.0]),
        wrapup=st.sampled_from([0.0, 30.0]),
        first_clerks=st.lists(profiles, min_size=1, max_size=len(CLERK_IDS) - 1),
    )
    def setup(self, stages: tuple[Stage, ...], ring_timeout: float, wrapup: float, first_clerks: list[Profile]) -> None:
        self.engine = RoutingEngine(TREE, stages, ring_timeout_s=ring_timeout, default_handle_s=300.0, wrapup_s=wrapup)
        self.now = 0.0
        self.call_ids = (f"call-{i}" for i in itertools.count())
        self.ring_deadline: dict[str, float] = {}  # call -> deadline of its current ring
        for cid, profile in zip(CLERK_IDS, first_clerks, strict=False):
            assert self.engine.clerk_online(ClerkProfile(cid, *profile), self.now, available=True) == [
                ClerkStatusChanged(cid, ClerkStatus.AVAILABLE)
            ]

    # ------------------------------------------------------------------ helpers

    @property
    def stages(self) -> tuple[Stage, ...]:
        return self.engine.stages

    def eligible(self, clerk: ClerkState, call: Call, stage: int) -> bool:
        return eligible(TREE, self.stages, clerk.profile, call, stage)

    def nearest(self, clerk: ClerkState, call: Call, stage: int) -> int | None:
        return next((k for k in range(stage + 1) if self.eligible(clerk, call, k)), None)

    def clerks_in(self, *statuses: ClerkStatus) -> list[str]:
        return sorted(cid for cid, c in self.engine.clerks.items() if c.status in statuses)

    def calls_in(self, *states: CallState) -> list[str]:
        return sorted(cid for cid, c in self.engine.calls.items() if c.state in states)

    def snapshot(self) -> tuple[Snapshot, dict[str, float]]:
        calls = {cid: (c.state, c.stage, c.clerk_id) for cid, c in self.engine.calls.items()}
        idle = {cid: c.idle_since for cid, c in self.engine.clerks.items() if c.idle}
        return calls, idle

    def run(self, event: Callable[[], list[Decision]]) -> list[Decision]:
        before, idle_before = self.snapshot()
        out = event()
        self.check_decisions(out, before, idle_before)
        return out

    def refused(self, event: Callable[[], list[Decision]], code: str) -> None:
        """The engine refuses ``event`` with ``code`` and nothing moves."""
        before = self.snapshot()
        statuses = {cid: (c.status, c.call_id, c.wrapup_until) for cid, c in self.engine.clerks.items()}
        deadline = self.engine.next_deadline()
        try:
            event()
        except errors.SignalingError as exc:
            assert exc.code == code
        else:
            raise AssertionError("the engine carried out an event it should refuse")
        assert self.snapshot() == before
        assert {cid: (c.status, c.call_id, c.wrapup_until) for cid, c in self.engine.clerks.items()} == statuses
        assert self.engine.next_deadline() == deadline

    def check_decisions(self, out: list[Decision], before: Snapshot, idle_before: dict[str, float]) -> None:
        engine = self.engine
        rung = {d.call_id for d in out if isinstance(d, Ring)}
        # calls that waited from before the event to after it, never offered in between
        waited_throughout = [
            engine.calls[cid] for cid, (state, _, _) in before.items()
            if state is CallState.QUEUED and cid in engine.calls
            and engine.calls[cid].state is CallState.QUEUED and cid not in rung
        ]
        # clerks idle from before the event to after it (a clerk rung in an event stays rung in it)
        idle_throughout = [
            engine.clerks[cid] for cid, since in idle_before.items()
            if cid in engine.clerks and engine.clerks[cid].idle and engine.clerks[cid].idle_since == since
        ]
        stage = {cid: s for cid, (_, s, _) in before.items()}
        ringing = {cid: clerk for cid, (state, _, clerk) in before.items() if state is CallState.RINGING}
        for d in out:
            if isinstance(d, StageWidened):
                assert d.stage == stage.get(d.call_id, 0) + 1, "stages are taken one at a time"
                assert d.name == self.stages[d.stage].name
                stage[d.call_id] = d.stage
            elif isinstance(d, RingEnded):
                assert ringing.pop(d.call_id, None) == d.clerk_id, f"{d} ends a ring that was not on"
            elif isinstance(d, Ring):
                assert d.call_id not in ringing, f"{d}: the call is already ringing"
                self.check_ring(d, stage, waited_throughout, idle_throughout)
                ringing[d.call_id] = d.clerk_id
                self.ring_deadline[d.call_id] = d.deadline
            elif isinstance(d, Matched):
                assert ringing.pop(d.call_id, None) == d.clerk_id
            elif isinstance(d, CallEnded):
                assert d.call_id in before and d.call_id not in engine.calls

    def check_ring(self, d: Ring, stage: dict[str, int], waited: list[Call], idle: list[ClerkState]) -> None:
        call = self.engine.calls[d.call_id]
        clerk = self.engine.clerks[d.clerk_id]
        s = stage.get(call.id, 0)
        # (b) only to a clerk with the field who is eligible at the call's current stage; the nearest ring reported
        assert call.field in clerk.profile.fields
        assert clerk.profile.id not in call.declined_by, f"{d}: {clerk.profile.id} declined {call.id} before"
        assert self.nearest(clerk, call, s) == d.ring, f"{d}: clerk not admitted at stage {d.ring} (call at {s})"
        assert d.deadline == self.now + self.engine.ring_timeout_s
        # (e) nearest ring first, then longest idle
        mine = (d.ring, clerk.idle_since, clerk.seq)
        for other in idle:
            if other is clerk or other.profile.id in call.declined_by:
                continue
            ring = self.nearest(other, call, s)
            if ring is not None:
                assert mine < (ring, other.idle_since, other.seq), f"{d}: {other.profile.id} was nearer or idle longer"
        # (d) first come first served within a priority; more generally queue order
        for other_call in waited:
            if other_call is call or clerk.profile.id in other_call.declined_by:
                continue
            if not self.eligible(clerk, other_call, stage.get(other_call.id, 0)):
                continue
            if other_call.field == call.field and other_call.priority == call.priority:
                assert (call.requested_at, call.seq) < (other_call.requested_at, other_call.seq), (
                    f"{d}: {other_call.id} of the same field and priority was requested earlier"
                )
            assert call.queue_key < other_call.queue_key, f"{d}: {other_call.id} comes first in queue order"

    # ------------------------------------------------------------------ events, one helper each

    def clerk_online(self, cid: str, profile: Profile, available: bool) -> None:
        self.run(lambda: self.engine.clerk_online(ClerkProfile(cid, *profile), self.now, available=available))
        assert (self.engine.clerks[cid].status is ClerkStatus.AWAY) == (not available)

    def clerk_offline(self, cid: str) -> None:
        had = self.engine.clerks[cid].call_id
        self.run(lambda: self.engine.clerk_offline(cid, self.now))
        assert cid not in self.engine.clerks
        if had is not None:
            assert self.engine.calls[had].clerk_id != cid
            assert self.engine.calls[had].state in (CallState.QUEUED, CallState.RINGING)

    def set_available(self, cid: str) -> None:
        if self.engine.clerks[cid].status not in (ClerkStatus.AWAY, ClerkStatus.AVAILABLE):
            self.refused(lambda: self.engine.set_available(cid, self.now), errors.WRONG_STATE)
            return
        self.run(lambda: self.engine.set_available(cid, self.now))
        assert self.engine.clerks[cid].status in (ClerkStatus.AVAILABLE, ClerkStatus.RINGING)

    def finish_wrapup(self, cid: str) -> None:
        was = self.engine.clerks[cid].status
        self.run(lambda: self.engine.finish_wrapup(cid, self.now))
        if was is ClerkStatus.WRAP_UP:
            assert self.engine.clerks[cid].status in (ClerkStatus.AVAILABLE, ClerkStatus.RINGING)
        else:
            assert self.engine.clerks[cid].status is was
        assert self.engine.clerks[cid].wrapup_until is None

    def set_away(self, cid: str) -> None:
        clerk = self.engine.clerks[cid]
        if clerk.status is ClerkStatus.BUSY:
            self.refused(lambda: self.engine.set_away(cid, self.now), errors.WRONG_STATE)
            return
        ringing = clerk.call_id
        self.run(lambda: self.engine.set_away(cid, self.now))
        assert clerk.status is ClerkStatus.AWAY and clerk.call_id is None
        if ringing is not None:
            assert cid in self.engine.calls[ringing].declined_by

    def accept(self, call_id: str) -> None:
        clerk_id = self.engine.calls[call_id].clerk_id
        assert clerk_id is not None
        out = self.run(lambda: self.engine.accept(clerk_id, call_id, self.now))
        assert out[0] == Matched(call_id, clerk_id)
        assert self.engine.clerks[clerk_id].status is ClerkStatus.BUSY

    def decline(self, call_id: str) -> None:
        clerk_id = self.engine.calls[call_id].clerk_id
        assert clerk_id is not None
        self.run(lambda: self.engine.decline(clerk_id, call_id, self.now))
        assert clerk_id in self.engine.calls[call_id].declined_by
        assert self.engine.calls[call_id].clerk_id != clerk_id

    def end_call(self, call_id: str, reason: EndReason, by: str) -> None:
        call = self.engine.calls[call_id]
        clerk_id, answered = call.clerk_id, call.accepted_at is not None
        out = self.run(lambda: self.engine.end_call(call_id, self.now, reason, by))
        assert CallEnded(call_id, clerk_id if answered else None, reason, by) in out
        assert call_id not in self.engine.calls
        if clerk_id is not None:
            after = self.engine.clerks[clerk_id].status
            if answered and self.engine.wrapup_s > 0:
                assert after is ClerkStatus.WRAP_UP
            else:
                assert after in (ClerkStatus.AVAILABLE, ClerkStatus.RINGING)

    # ------------------------------------------------------------------ rules

    @rule(data=st.data(), profile=profiles, available=st.sampled_from([True, True, False]))
    def a_clerk_comes(self, data: st.DataObject, profile: Profile, available: bool) -> None:
        """A new clerk logs in, or one who is away or wrapping up becomes available."""
        options = [f"online {c}" for c in CLERK_IDS if c not in self.engine.clerks]
        options += [f"available {c}" for c in self.clerks_in(ClerkStatus.AWAY)]
        options += [f"finish_wrapup {c}" for c in self.clerks_in(ClerkStatus.WRAP_UP)]
        if not options:
            return
        action, cid = data.draw(st.sampled_from(options)).split()
        if action == "online":
            self.clerk_online(cid, profile, available)
        elif action == "available":
            self.set_available(cid)
        else:
            self.finish_wrapup(cid)

    @precondition(lambda self: bool(self.engine.clerks))
    @rule(data=st.data(), offline=st.booleans())
    def a_clerk_leaves(self, data: st.DataObject, offline: bool) -> None:
        """Any clerk goes away (refused while in a call) or drops offline."""
        cid = data.draw(st.sampled_from(sorted(self.engine.clerks)))
        if offline:
            self.clerk_offline(cid)
        else:
            self.set_away(cid)

    @precondition(lambda self: len(self.engine.calls) < MAX_CALLS)
    @rule(
        field=st.sampled_from(("tax", "tax", "market")),
        language=st.sampled_from(("zh", "zh", "zh", "en")),
        region=st.sampled_from(KIOSK_REGIONS),
        priority=st.sampled_from([0, 0, 0, 1]),
    )
    def a_call_arrives(self, field: str, language: str, region: str, priority: int) -> None:
        call_id = next(self.call_ids)
        self.run(lambda: self.engine.request_call(call_id, field, language, region, self.now, priority=priority))
        assert self.engine.calls[call_id].state in (CallState.QUEUED, CallState.RINGING)

    @precondition(lambda self: bool(self.calls_in(CallState.RINGING)))
    @rule(data=st.data(), how=st.sampled_from(["accept", "accept", "decline", "decline", "away", "offline"]))
    def the_rung_clerk_answers(self, data: st.DataObject, how: str) -> None:
        call_id = data.draw(st.sampled_from(self.calls_in(CallState.RINGING)))
        clerk_id = self.engine.calls[call_id].clerk_id
        assert clerk_id is not None
        if how == "accept":
            self.accept(call_id)
        elif how == "decline":
            self.decline(call_id)
        elif how == "away":
            self.set_away(clerk_id)
        else:
            self.clerk_offline(clerk_id)

    @precondition(lambda self: bool(self.calls_in(CallState.CONNECTING, CallState.ACTIVE)))
    @rule(data=st.data(), how=st.sampled_from(["media", "hangup", "hangup", "transfer", "visitor gone", "clerk gone"]))
    def a_call_goes_on(self, data: st.DataObject, how: str) -> None:
        call_id = data.draw(st.sampled_from(self.calls_in(CallState.CONNECTING, CallState.ACTIVE)))
        call = self.engine.calls[call_id]
        if how == "media":
            assert self.run(lambda: self.engine.media_connected(call_id, self.now)) == []
            assert call.state is CallState.ACTIVE
        elif how == "hangup":
            self.end_call(call_id, EndReason.HANGUP, "clerk")
        elif how == "transfer":
            self.end_call(call_id, EndReason.TRANSFERRED, "clerk")
        elif how == "visitor gone":
            self.end_call(call_id, EndReason.VISITOR_DISCONNECTED, "system")
        else:
            assert call.clerk_id is not None
            self.clerk_offline(call.clerk_id)
            assert call.state is CallState.QUEUED or call.state is CallState.RINGING
            assert call.priority >= 1

    @precondition(lambda self: bool(self.calls_in(CallState.QUEUED, CallState.RINGING, CallState.HELD)))
    @rule(
        data=st.data(),
        how=st.sampled_from(["cancel", "gone", "hold", "hold", "resume"]),
        grace=st.sampled_from([0.5, 10.0, 60.0, 200.0]),
    )
    def a_visitor_acts(self, data: st.DataObject, how: str, grace: float) -> None:
        """A waiting visitor gives up, or the kiosk drops (the call is held) and comes back."""
        if how == "resume":
            held = self.calls_in(CallState.HELD)
            if not held:
                return
            call_id = data.draw(st.sampled_from(held))
            self.run(lambda: self.engine.resume(call_id, self.now))
            assert self.engine.calls[call_id].state in (CallState.QUEUED, CallState.RINGING)
            return
        call_id = data.draw(st.sampled_from(self.calls_in(CallState.QUEUED, CallState.RINGING, CallState.HELD)))
        call = self.engine.calls[call_id]
        if how == "cancel":
            self.end_call(call_id, EndReason.CANCELLED, "visitor")
        elif how == "gone":
            self.end_call(call_id, EndReason.VISITOR_DISCONNECTED, "system")
        elif call.state is CallState.HELD:
            self.refused(lambda: self.engine.hold(call_id, self.now, until=self.now + grace), errors.WRONG_STATE)
        else:
            self.run(lambda: self.engine.hold(call_id, self.now, until=self.now + grace))
            assert call.state is CallState.HELD and call.clerk_id is None

    @precondition(lambda self: bool(self.engine.calls) and bool(self.engine.clerks))
    @rule(data=st.data())
    def someone_acts_on_a_call_not_ringing_for_them(self, data: st.DataObject) -> None:
        call_id = data.draw(st.sampled_from(sorted(self.engine.calls)))
        call = self.engine.calls[call_id]
        others = [c for c in sorted(self.engine.clerks) if not (call.state is CallState.RINGING and call.clerk_id == c)]
        if not others:
            return
        clerk_id = data.draw(st.sampled_from(others))
        action = data.draw(st.sampled_from([self.engine.accept, self.engine.decline]))
        self.refused(lambda: action(clerk_id, call_id, self.now), errors.WRONG_STATE)

    @rule(dt=steps)
    def time_passes(self, dt: float) -> None:
        self.now += dt
        self.run(lambda: self.engine.tick(self.now))

    @precondition(lambda self: self.engine.next_deadline() is not None)
    @rule()
    def time_passes_to_the_next_deadline(self) -> None:
        deadline = self.engine.next_deadline()
        assert deadline is not None
        self.now = max(self.now, deadline)
        out = self.run(lambda: self.engine.tick(self.now))
        assert out, "a due deadline produces a decision"

    # ------------------------------------------------------------------ invariants

    @invariant()
    def a_clerk_is_never_in_two_calls(self) -> None:
        engine = self.engine
        taken = [c.clerk_id for c in engine.calls.values() if c.clerk_id is not None]
        assert len(taken) == len(set(taken)), f"a clerk in two calls: {taken}"
        for call in engine.calls.values():
            assert call.live
            if call.state in (CallState.QUEUED, CallState.HELD):
                assert call.clerk_id is None
            else:
                assert call.clerk_id is not None and engine.clerks[call.clerk_id].call_id == call.id
        for cid, clerk in engine.clerks.items():
            assert (clerk.status is ClerkStatus.WRAP_UP) == (clerk.wrapup_until is not None)
            if clerk.call_id is None:
                assert clerk.status in (ClerkStatus.AVAILABLE, ClerkStatus.AWAY, ClerkStatus.WRAP_UP)
                continue
            call = engine.calls[clerk.call_id]
            assert call.clerk_id == cid
            if call.state is CallState.RINGING:
                assert clerk.status is ClerkStatus.RINGING
            else:
                assert call.state in (CallState.CONNECTING, CallState.ACTIVE)
                assert clerk.status is ClerkStatus.BUSY

    @invariant()
    def nobody_idles_while_a_call_waits_for_them(self) -> None:
        engine = self.engine
        idle = [c for c in engine.clerks.values() if c.status is ClerkStatus.AVAILABLE and c.call_id is None]
        for call in engine.calls.values():
            if call.state is not CallState.QUEUED:
                continue
            for clerk in idle:
                if clerk.profile.id not in call.declined_by:
                    assert not self.eligible(clerk, call, call.stage), (
                        f"{clerk.profile.id} idles while {call.id} (stage {call.stage}) waits for them"
                    )

    @invariant()
    def stages_widen_on_time(self) -> None:
        for call in self.engine.calls.values():
            due = max(k for k, st_ in enumerate(self.stages) if call.requested_at + st_.after_s <= self.now)
            if call.state in ANSWERED:  # widens no further while in conversation
                assert call.stage <= due, f"{call.id} widened past its time"
                continue
            assert call.stage == due, f"{call.id} from {call.requested_at} is at stage {call.stage} at {self.now}"

    @invariant()
    def positions_are_the_rank_in_the_field_and_district_queue(self) -> None:
        waiting = [c for c in self.engine.calls.values() if c.state is CallState.QUEUED]
        for call in waiting:
            group = (call.field, TREE.ancestor_at(call.region, DISTRICT))
            ahead = sum(
                1 for o in waiting
                if (o.field, TREE.ancestor_at(o.region, DISTRICT)) == group and o.queue_key < call.queue_key
            )
            assert self.engine.position(call.id)[0] == ahead + 1

    @invariant()
    def next_deadline_is_the_earliest_pending_timer(self) -> None:
        pending: list[float] = []
        for call in self.engine.calls.values():
            # a call in conversation widens no further (its stage is recomputed if it goes back to the queue)
            if call.state not in ANSWERED and call.stage + 1 < len(self.stages):
                pending.append(call.requested_at + self.stages[call.stage + 1].after_s)
            if call.state is CallState.RINGING:
                pending.append(self.ring_deadline[call.id])
            if call.state is CallState.HELD:
                assert call.held_until is not None
                pending.append(call.held_until)
        pending.extend(c.wrapup_until for c in self.engine.clerks.values() if c.wrapup_until is not None)
        assert all(t > self.now for t in pending), "a due timer was not carried out"
        assert self.engine.next_deadline() == (min(pending) if pending else None)


RoutingMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
TestRoutingProperties = RoutingMachine.TestCase
