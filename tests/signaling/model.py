"""A model of the routing engine: its rules by brute force, for property tests and the benchmark's baseline.

:class:`NaiveEngine` has the public interface of
:class:`signaling.routing.RoutingEngine` and decides the same things in the
plainest way: no index and no heap, every decision scans. The best clerk for
a call is the minimum over every idle clerk of (nearest stage, idle since,
seq), by :func:`signaling.stages.eligible`; the best call for a clerk the
minimum over every waiting call of its queue order; a position counts the
waiting calls ahead; an estimate counts the clerks online; the next deadline
is the minimum over every live call and clerk. ``tests/signaling/
test_routing_model.py`` drives both with the same events and compares their
decisions; ``bench/routing.py`` uses it as its baseline.

The timers follow the engine's rules: a ringing call times out
``ring_timeout_s`` after it was rung; a call that is not in conversation
(connecting or active) reaches stage ``k`` at ``requested_at + after_s``; a
call back from a conversation continues at the stage its whole wait has
reached, announcing each stage on the way; held calls end when their grace is
over, and wrap-ups when their time is. Deadlines due at the same instant go
ring timeouts first, then widenings, then wrap-ups, then held calls, each kind
by id.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

from signaling import errors
from signaling.calls import ANSWERED, PRIORITY_RETURNED, Call, CallState
from signaling.decisions import (
    CallEnded,
    ClerkStatus,
    ClerkStatusChanged,
    Decision,
    EndReason,
    Matched,
    QueueChanged,
    Queued,
    Ring,
    RingEnded,
    RingEndReason,
    StageWidened,
)
from signaling.estimates import HANDLE_TIME_WEIGHT
from signaling.routing import ClerkProfile, ClerkState, RoutingEngine, eligible

# kinds of deadline, in the order the engine carries out those due at the same instant
RING_TIMEOUT, WIDENING, WRAPUP_END, HOLD_END = range(4)

Due = tuple[float, int, str, str | int]  # (when, kind, call or clerk, ringing clerk | stage | "")


def copy_call(call: Call) -> Call:
    return dataclasses.replace(call, declined_by=set(call.declined_by), history=list(call.history))


def copy_clerk(clerk: ClerkState) -> ClerkState:
    return dataclasses.replace(clerk)


class NaiveEngine:
    """The routing rules of :class:`RoutingEngine` by brute force: no index, every decision scans."""

    def __init__(self, engine: RoutingEngine, next_seq: int) -> None:
        """Start from a copy of ``engine``'s state; ``next_seq`` is the sequence number its next clerk or call gets.

        The engine must have no call ringing: when a ring times out is the engine's own bookkeeping.
        """
        if any(c.state is CallState.RINGING for c in engine.calls.values()):
            raise ValueError("the naive engine copies an engine with no call ringing")
        self.regions = engine.regions
        self.stages = engine.stages
        self.ring_timeout_s = engine.ring_timeout_s
        self.default_handle_s = engine.default_handle_s
        self.wrapup_s = engine.wrapup_s
        self.calls = {cid: copy_call(c) for cid, c in engine.calls.items()}
        self.clerks = {cid: copy_clerk(c) for cid, c in engine.clerks.items()}
        self.handle_s = dict(engine._estimates.handle_s)
        self.seq = itertools.count(next_seq)
        self.ring_deadline: dict[str, float] = {}
        self.district_depth = min(2, len(self.regions.levels))
        # plain sets (insertion-ordered dicts) of what the scans run over
        self.waiting = {cid: c for cid, c in self.calls.items() if c.state is CallState.QUEUED}
        self.idle = {cid: c for cid, c in self.clerks.items() if c.idle}

    # ------------------------------------------------------------------ clerks

    def clerk_online(self, profile: ClerkProfile, now: float, available: bool = False) -> list[Decision]:
        if profile.id in self.clerks:
            raise errors.SignalingError(errors.WRONG_STATE, f"clerk {profile.id} is already online")
        for r in profile.regions:
            self.regions.get(r)
        clerk = ClerkState(profile=profile, status=ClerkStatus.AWAY, seq=next(self.seq))
        self.clerks[profile.id] = clerk
        out: list[Decision] = []
        if available:
            self._make_available(clerk, now, out)
        return out

    def clerk_offline(self, clerk_id: str, now: float) -> list[Decision]:
        clerk = self._clerk(clerk_id)
        call = self.calls.get(clerk.call_id) if clerk.call_id else None
        self.idle.pop(clerk_id, None)
        clerk.call_id = None
        del self.clerks[clerk_id]
        out: list[Decision] = []
        if call is not None:
            if call.state is CallState.RINGING:
                out.append(RingEnded(call.id, clerk_id, RingEndReason.CLERK_DISCONNECTED))
                self._requeue(call, now, out, "")
            else:  # in conversation: back to the queue ahead of others, at the stage its whole wait has reached
                call.priority = max(call.priority, PRIORITY_RETURNED)
                call.accepted_at = None
                while call.stage + 1 < len(self.stages) and self._widens_at(call, call.stage + 1) <= now:
                    call.stage += 1
                    out.append(StageWidened(call.id, call.stage, self.stages[call.stage].name))
                self._requeue(call, now, out, EndReason.CLERK_DISCONNECTED)
        return out

    def set_available(self, clerk_id: str, now: float) -> list[Decision]:
        clerk = self._clerk(clerk_id)
        out: list[Decision] = []
        if clerk.status is ClerkStatus.AWAY:
            self._make_available(clerk, now, out)
        elif clerk.status is not ClerkStatus.AVAILABLE:
            raise errors.SignalingError(errors.WRONG_STATE, f"clerk is {clerk.status}, not away")
        return out

    def finish_wrapup(self, clerk_id: str, now: float) -> list[Decision]:
        clerk = self._clerk(clerk_id)
        out: list[Decision] = []
        if clerk.status is ClerkStatus.WRAP_UP:
            clerk.wrapup_until = None
            self._make_available(clerk, now, out)
        return out

    def set_away(self, clerk_id: str, now: float) -> list[Decision]:
        clerk = self._clerk(clerk_id)
        out: list[Decision] = []
        if clerk.status is ClerkStatus.BUSY:
            raise errors.SignalingError(errors.WRONG_STATE, "finish the call in progress first")
        if clerk.status is ClerkStatus.RINGING and clerk.call_id:  # a decline that also stops further offers
            call = self.calls[clerk.call_id]
            call.declined_by.add(clerk_id)
            clerk.call_id = None
            self._set_status(clerk, ClerkStatus.AWAY, out, "")
            out.append(RingEnded(call.id, clerk_id, RingEndReason.DECLINED))
            self._requeue(call, now, out, "")
        elif clerk.status in (ClerkStatus.AVAILABLE, ClerkStatus.WRAP_UP):
            self.idle.pop(clerk_id, None)
            clerk.wrapup_until = None
            self._set_status(clerk, ClerkStatus.AWAY, out, "")
        return out

    # ------------------------------------------------------------------ calls

    def request_call(
        self, call_id: str, field: str, language: str, region: str, now: float, priority: int = 0
    ) -> list[Decision]:
        if call_id in self.calls:
            raise errors.SignalingError(errors.WRONG_STATE, f"call {call_id} already exists")
        self.regions.get(region)
        call = Call(id=call_id, field=field, language=language, region=region, requested_at=now,
                    seq=next(self.seq), priority=priority)
        self.calls[call_id] = call
        out: list[Decision] = []
        self._enqueue(call, out)
        self._match_call(call, now, out)
        if call.state is CallState.QUEUED:
            out.append(self._queued(call, ""))
        return out

    def accept(self, clerk_id: str, call_id: str, now: float) -> list[Decision]:
        call, clerk = self._ringing(clerk_id, call_id)
        call.transition(CallState.CONNECTING, now)
        call.accepted_at = now
        del self.ring_deadline[call_id]
        out: list[Decision] = [Matched(call_id, clerk_id)]
        self._set_status(clerk, ClerkStatus.BUSY, out, "")
        return out

    def decline(self, clerk_id: str, call_id: str, now: float) -> list[Decision]:
        call, clerk = self._ringing(clerk_id, call_id)
        call.declined_by.add(clerk_id)
        clerk.call_id = None
        out: list[Decision] = [RingEnded(call_id, clerk_id, RingEndReason.DECLINED)]
        self._requeue(call, now, out, "")
        self._make_available(clerk, now, out)
        return out

    def hold(self, call_id: str, now: float, until: float) -> list[Decision]:
        call = self._call(call_id)
        out: list[Decision] = []
        if call.state is CallState.QUEUED:
            self._dequeue(call, out)
        elif call.state is CallState.RINGING and call.clerk_id is not None:
            clerk = self.clerks.get(call.clerk_id)
            del self.ring_deadline[call_id]
            call.clerk_id = None
            if clerk is not None:
                clerk.call_id = None
                out.append(RingEnded(call_id, clerk.profile.id, RingEndReason.VISITOR_DISCONNECTED))
                self._make_available(clerk, now, out)
        else:
            raise errors.SignalingError(errors.WRONG_STATE, f"a {call.state} call cannot be held")
        call.transition(CallState.HELD, now)
        call.held_until = until
        return out

    def resume(self, call_id: str, now: float) -> list[Decision]:
        call = self._call(call_id)
        if call.state is not CallState.HELD:
            raise errors.SignalingError(errors.WRONG_STATE, f"the call is {call.state}, not held")
        call.held_until = None
        out: list[Decision] = []
        self._requeue(call, now, out, "")
        return out

    def media_connected(self, call_id: str, now: float) -> list[Decision]:
        call = self._call(call_id)
        if call.state is CallState.CONNECTING:
            call.transition(CallState.ACTIVE, now)
        return []

    def end_call(self, call_id: str, now: float, reason: EndReason, by: str) -> list[Decision]:
        call = self._call(call_id)
        out: list[Decision] = []
        clerk = self.clerks.get(call.clerk_id) if call.clerk_id else None
        was = call.state
        if was is CallState.QUEUED:
            self._dequeue(call, out)
        call.transition(CallState.ENDED, now)
        self.ring_deadline.pop(call_id, None)
        del self.calls[call_id]
        if was is CallState.RINGING and clerk is not None:
            ring_reason = (RingEndReason.VISITOR_DISCONNECTED if reason is EndReason.VISITOR_DISCONNECTED
                           else RingEndReason.CANCELLED)
            out.append(RingEnded(call_id, clerk.profile.id, ring_reason))
        answered = call.accepted_at is not None
        if call.accepted_at is not None:
            old = self.handle_s.get(call.field, self.default_handle_s)
            took = max(0.0, now - call.accepted_at)
            self.handle_s[call.field] = (1 - HANDLE_TIME_WEIGHT) * old + HANDLE_TIME_WEIGHT * took
        out.append(CallEnded(call_id, call.clerk_id if answered else None, reason, by))
        if clerk is not None:
            clerk.call_id = None
            if answered and self.wrapup_s > 0:
                clerk.wrapup_until = now + self.wrapup_s
                self._set_status(clerk, ClerkStatus.WRAP_UP, out, "")
            else:
                self._make_available(clerk, now, out)
        return out

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        due = self._next_due()
        return due[0] if due is not None else None

    def tick(self, now: float) -> list[Decision]:
        out: list[Decision] = []
        while (due := self._next_due()) is not None and due[0] <= now:
            _, kind, ident, arg = due
            if kind == HOLD_END:
                out.extend(self.end_call(ident, now, EndReason.VISITOR_DISCONNECTED, "visitor"))
            elif kind == WRAPUP_END:
                clerk = self.clerks[ident]
                clerk.wrapup_until = None
                self._make_available(clerk, now, out, "wrapup_timeout")
            elif kind == RING_TIMEOUT:
                call = self.calls[ident]
                clerk = self.clerks[str(arg)]
                clerk.call_id = None
                self._set_status(clerk, ClerkStatus.AWAY, out, "ring_timeout")
                out.append(RingEnded(call.id, clerk.profile.id, RingEndReason.TIMEOUT))
                self._requeue(call, now, out, "")
            else:  # the call reaches stage ``arg``
                call = self.calls[ident]
                queued = call.state is CallState.QUEUED
                if queued:
                    self._dequeue(call, out)
                call.stage = int(arg)
                out.append(StageWidened(call.id, call.stage, self.stages[call.stage].name))
                if queued:
                    self._enqueue(call, out)
                    self._match_call(call, now, out)
        return out

    # ------------------------------------------------------------------ queries

    def position(self, call_id: str) -> tuple[int, float | None]:
        call = self._call(call_id)
        if call.state is not CallState.QUEUED:
            return 0, 0.0
        pos = self._position(call)
        return pos, self._estimate(call, pos)

    def handle_time(self, field: str) -> float:
        return self.handle_s.get(field, self.default_handle_s)

    # ------------------------------------------------------------------ scans

    def _next_due(self) -> Due | None:
        """The earliest pending deadline, by a scan of every live call (and clerk, if clerks wrap up)."""
        best: Due | None = None
        stages = self.stages
        for call in self.calls.values():
            state = call.state
            if state is CallState.RINGING:
                assert call.clerk_id is not None
                due: Due = (self.ring_deadline[call.id], RING_TIMEOUT, call.id, call.clerk_id)
                if best is None or due < best:
                    best = due
            elif state is CallState.HELD:
                assert call.held_until is not None
                due = (call.held_until, HOLD_END, call.id, "")
                if best is None or due < best:
                    best = due
            k = call.stage + 1
            if k < len(stages) and state not in ANSWERED:  # a call in conversation widens no further
                due = (self._widens_at(call, k), WIDENING, call.id, k)
                if best is None or due < best:
                    best = due
        if self.wrapup_s > 0:  # without wrap-up no clerk is ever wrapping up
            for clerk in self.clerks.values():
                if clerk.wrapup_until is not None:
                    due = (clerk.wrapup_until, WRAPUP_END, clerk.profile.id, "")
                    if best is None or due < best:
                        best = due
        return best

    def _widens_at(self, call: Call, stage: int) -> float:
        return call.requested_at + self.stages[stage].after_s

    def _best_clerk_for(self, call: Call) -> tuple[ClerkState, int] | None:
        best: tuple[int, float, int, str] | None = None
        for clerk in self.idle.values():
            if clerk.profile.id in call.declined_by:
                continue
            ring = self._ring_index(clerk, call)
            if ring is not None:
                key = (ring, clerk.idle_since, clerk.seq, clerk.profile.id)
                if best is None or key < best:
                    best = key
        return (self.clerks[best[3]], best[0]) if best is not None else None

    def _best_call_for(self, clerk: ClerkState) -> Call | None:
        best: Call | None = None
        for call in self.waiting.values():
            if clerk.profile.id in call.declined_by:
                continue
            if eligible(self.regions, self.stages, clerk.profile, call, call.stage) and (
                best is None or (*call.queue_key, call.id) < (*best.queue_key, best.id)
            ):
                best = call
        return best

    def _ring_index(self, clerk: ClerkState, call: Call) -> int | None:
        for k in range(call.stage + 1):
            if eligible(self.regions, self.stages, clerk.profile, call, k):
                return k
        return None

    def _position(self, call: Call) -> int:
        group = self._group(call)
        key = (*call.queue_key, call.id)
        return 1 + sum(1 for c in self.waiting.values() if self._group(c) == group and (*c.queue_key, c.id) < key)

    def _estimate(self, call: Call, position: int) -> float | None:
        chain = self.regions.ancestors(call.region)
        above = chain[: self.district_depth - 1]
        district = self.regions.ancestor_at(call.region, self.district_depth)
        servers = 0
        for clerk in self.clerks.values():
            p = clerk.profile
            if call.field not in p.fields:
                continue
            servers += sum(1 for a in above if a in p.regions)
            servers += any(district in self.regions.ancestors(c) for c in p.regions)
        if servers == 0:
            return None
        return self.handle_s.get(call.field, self.default_handle_s) * math.ceil(position / servers)

    # ------------------------------------------------------------------ bookkeeping

    def _clerk(self, clerk_id: str) -> ClerkState:
        clerk = self.clerks.get(clerk_id)
        if clerk is None:
            raise errors.SignalingError(errors.WRONG_STATE, f"clerk {clerk_id} is not online")
        return clerk

    def _call(self, call_id: str) -> Call:
        call = self.calls.get(call_id)
        if call is None:
            raise errors.SignalingError(errors.NO_SUCH_CALL, f"no call {call_id} in progress")
        return call

    def _group(self, call: Call) -> tuple[str, str]:
        return call.field, self.regions.ancestor_at(call.region, self.district_depth)

    def _ringing(self, clerk_id: str, call_id: str) -> tuple[Call, ClerkState]:
        call = self._call(call_id)
        clerk = self._clerk(clerk_id)
        if call.state is not CallState.RINGING or call.clerk_id != clerk_id:
            raise errors.SignalingError(errors.WRONG_STATE, f"call {call_id} is not ringing for you")
        return call, clerk

    def _set_status(self, clerk: ClerkState, status: ClerkStatus, out: list[Decision], reason: str) -> None:
        if clerk.status is not status:
            clerk.status = status
            out.append(ClerkStatusChanged(clerk.profile.id, status, reason))

    def _enqueue(self, call: Call, out: list[Decision]) -> None:
        self.waiting[call.id] = call
        out.append(QueueChanged(*self._group(call)))

    def _dequeue(self, call: Call, out: list[Decision]) -> None:
        del self.waiting[call.id]
        out.append(QueueChanged(*self._group(call)))

    def _queued(self, call: Call, reason: str) -> Queued:
        pos = self._position(call)
        return Queued(call.id, pos, self._estimate(call, pos), call.stage, reason)

    def _make_available(self, clerk: ClerkState, now: float, out: list[Decision], reason: str = "") -> None:
        self._set_status(clerk, ClerkStatus.AVAILABLE, out, reason)
        clerk.idle_since = now
        self.idle[clerk.profile.id] = clerk
        call = self._best_call_for(clerk)
        if call is not None:
            ring = self._ring_index(clerk, call)
            assert ring is not None
            self._ring(call, clerk, ring, now, out)

    def _requeue(self, call: Call, now: float, out: list[Decision], reason: str) -> None:
        call.transition(CallState.QUEUED, now)
        call.clerk_id = None
        self.ring_deadline.pop(call.id, None)
        self._enqueue(call, out)
        self._match_call(call, now, out)
        if call.state is CallState.QUEUED:
            out.append(self._queued(call, reason))

    def _match_call(self, call: Call, now: float, out: list[Decision]) -> None:
        found = self._best_clerk_for(call)
        if found is not None:
            self._ring(call, found[0], found[1], now, out)

    def _ring(self, call: Call, clerk: ClerkState, ring: int, now: float, out: list[Decision]) -> None:
        self._dequeue(call, out)
        self.idle.pop(clerk.profile.id, None)
        call.transition(CallState.RINGING, now)
        call.clerk_id = clerk.profile.id
        clerk.call_id = call.id
        deadline = now + self.ring_timeout_s
        self.ring_deadline[call.id] = deadline
        self._set_status(clerk, ClerkStatus.RINGING, out, "")
        out.append(Ring(call.id, clerk.profile.id, deadline, ring))
