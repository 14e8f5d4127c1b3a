"""The routing engine: matches waiting calls with available clerks.

Pure and synchronous: every public method takes the current time, updates the
engine's state and returns the decisions (:mod:`signaling.decisions`) the
server must carry out. It never sleeps, never emits and reads no clock; the
caller asks :meth:`RoutingEngine.next_deadline` when to call :meth:`tick`.

Who may take a call at which stage is defined in :mod:`signaling.stages`.

Indices keep every decision logarithmic in the number of waiting calls and
available clerks: idle clerks are filed under (field, covered node, language)
and (field, each ancestor of a covered node, language), ordered by how long
they have been idle; waiting calls under (field, each ancestor of their
region, language) and (field, their ancestor at the stage's level, language),
ordered by priority then arrival.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field

from sortedcontainers import SortedList

from signaling import errors
from signaling.calls import PRIORITY_RETURNED, Call, CallState
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
from signaling.index import BucketIndex, Item
from signaling.regions import RegionTree
from signaling.stages import ClerkProfile, Stage, eligible, validate_stages

__all__ = ["ANY_LANGUAGE", "ClerkProfile", "ClerkState", "RoutingEngine", "Stage", "eligible", "validate_stages"]

ANY_LANGUAGE = "*"
_ANSWERED = frozenset({CallState.CONNECTING, CallState.ACTIVE})  # calls that widen no further
HANDLE_TIME_WEIGHT = 0.2  # weight of the newest call in the moving average


@dataclass
class ClerkState:
    profile: ClerkProfile
    status: ClerkStatus
    seq: int
    idle_since: float = 0.0
    call_id: str | None = None  # the call ringing or in progress
    wrapup_until: float | None = None

    @property
    def idle(self) -> bool:
        return self.status is ClerkStatus.AVAILABLE and self.call_id is None


@dataclass
class RoutingEngine:
    regions: RegionTree
    stages: tuple[Stage, ...]
    ring_timeout_s: float = 20.0
    default_handle_s: float = 300.0
    wrapup_s: float = 0.0  # after an answered call the clerk wraps up this long at most (0: no wrap-up)
    calls: dict[str, Call] = field(default_factory=dict)
    clerks: dict[str, ClerkState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stages = validate_stages(self.stages)
        self._seq = 0  # a plain counter, so that the engine's state pickles and copies
        self._idle = BucketIndex()
        self._waiting = BucketIndex()
        self._queues: dict[tuple[str, str], SortedList] = {}
        self._call_keys: dict[str, list[Hashable]] = {}
        self._clerk_keys: dict[str, list[Hashable]] = {}
        self._rings: list[tuple[float, str, str]] = []  # (deadline, call, clerk), lazily pruned
        self._ring_deadline: dict[str, float] = {}
        self._widen: list[tuple[float, str, int]] = []  # (when, call, stage), lazily pruned
        self._wrapups: list[tuple[float, str]] = []  # (deadline, clerk), lazily pruned
        self._holds: list[tuple[float, str]] = []  # (deadline, call), lazily pruned
        self._handle_s: dict[str, float] = {}
        self._online: Counter[tuple[str, str, str]] = Counter()
        self._profile_keys: dict[ClerkProfile, tuple[list[Hashable], list[Hashable]]] = {}  # (idle, lookup) keys
        self._district_depth = min(2, len(self.regions.levels))

    # ------------------------------------------------------------------ clerks

    def clerk_online(self, profile: ClerkProfile, now: float, available: bool = False) -> list[Decision]:
        if profile.id in self.clerks:
            raise errors.SignalingError(errors.WRONG_STATE, f"clerk {profile.id} is already online")
        for r in profile.regions:
            self.regions.get(r)
        clerk = ClerkState(profile=profile, status=ClerkStatus.AWAY, seq=self._next_seq())
        self.clerks[profile.id] = clerk
        self._count_online(profile, +1)
        out: list[Decision] = []
        if available:
            self._make_available(clerk, now, out)
        return out

    def clerk_offline(self, clerk_id: str, now: float) -> list[Decision]:
        clerk = self._clerk(clerk_id)
        out: list[Decision] = []
        call = self.calls.get(clerk.call_id) if clerk.call_id else None
        self._unidle(clerk)
        clerk.call_id = None
        del self.clerks[clerk_id]
        self._count_online(clerk.profile, -1)
        if call is not None:
            if call.state is CallState.RINGING:
                out.append(RingEnded(call.id, clerk_id, RingEndReason.CLERK_DISCONNECTED))
                self._requeue(call, now, out, reason="")
            else:  # connecting or active: the visitor goes back with priority, at the stage its wait has reached
                call.priority = max(call.priority, PRIORITY_RETURNED)
                call.accepted_at = None
                self._restage(call, now, out)
                self._requeue(call, now, out, reason=EndReason.CLERK_DISCONNECTED)
        return out

    def set_available(self, clerk_id: str, now: float) -> list[Decision]:
        clerk = self._clerk(clerk_id)
        out: list[Decision] = []
        if clerk.status is ClerkStatus.AWAY:
            self._make_available(clerk, now, out)
        elif clerk.status is ClerkStatus.WRAP_UP:
            raise errors.SignalingError(errors.WRONG_STATE, "finish the wrap-up of your last call first")
        elif clerk.status is not ClerkStatus.AVAILABLE:
            raise errors.SignalingError(errors.WRONG_STATE, f"clerk is {clerk.status}, not away")
        return out

    def finish_wrapup(self, clerk_id: str, now: float) -> list[Decision]:
        """The clerk has logged the last call's matters: offer calls again (no-op if not wrapping up)."""
        clerk = self._clerk(clerk_id)
        out: list[Decision] = []
        if clerk.status is ClerkStatus.WRAP_UP:
            clerk.wrapup_until = None
            self._make_available(clerk, now, out)
        return out

    def set_away(self, clerk_id: str, now: float) -> list[Decision]:
        clerk = self._clerk(clerk_id)
        out: list[Decision] = []
        if clerk.status is ClerkStatus.RINGING and clerk.call_id:
            # going away while rung is a decline that also stops further offers
            call = self.calls[clerk.call_id]
            call.declined_by.add(clerk_id)
            clerk.call_id = None
            self._set_status(clerk, ClerkStatus.AWAY, out, "")
            out.append(RingEnded(call.id, clerk_id, RingEndReason.DECLINED))
            self._requeue(call, now, out, reason="")
        elif clerk.status is ClerkStatus.AVAILABLE:
            self._unidle(clerk)
            self._set_status(clerk, ClerkStatus.AWAY, out, "")
        elif clerk.status is ClerkStatus.WRAP_UP:
            clerk.wrapup_until = None
            self._set_status(clerk, ClerkStatus.AWAY, out, "")
        elif clerk.status is ClerkStatus.BUSY:
            raise errors.SignalingError(errors.WRONG_STATE, "finish the call in progress first")
        return out

    # ------------------------------------------------------------------ calls

    def request_call(
        self, call_id: str, field: str, language: str, region: str, now: float, priority: int = 0
    ) -> list[Decision]:
        if call_id in self.calls:
            raise errors.SignalingError(errors.WRONG_STATE, f"call {call_id} already exists")
        self.regions.get(region)
        call = Call(
            id=call_id, field=field, language=language, region=region,
            requested_at=now, seq=self._next_seq(), priority=priority,
        )
        self.calls[call_id] = call
        for k, st in enumerate(self.stages[1:], start=1):
            heapq.heappush(self._widen, (now + st.after_s, call_id, k))
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
        self._ring_deadline.pop(call_id, None)
        out: list[Decision] = [Matched(call_id, clerk_id)]
        self._set_status(clerk, ClerkStatus.BUSY, out, "")
        return out

    def decline(self, clerk_id: str, call_id: str, now: float) -> list[Decision]:
        call, clerk = self._ringing(clerk_id, call_id)
        call.declined_by.add(clerk_id)
        clerk.call_id = None
        out: list[Decision] = [RingEnded(call_id, clerk_id, RingEndReason.DECLINED)]
        self._requeue(call, now, out, reason="")
        self._make_available(clerk, now, out)
        return out

    def hold(self, call_id: str, now: float, until: float) -> list[Decision]:
        """The visitor's kiosk dropped while waiting: keep the call's place until ``until``, offer it to nobody."""
        call = self._call(call_id)
        out: list[Decision] = []
        if call.state is CallState.QUEUED:
            self._dequeue(call, out)
        elif call.state is CallState.RINGING and call.clerk_id is not None:
            clerk = self.clerks.get(call.clerk_id)
            self._ring_deadline.pop(call_id, None)
            call.clerk_id = None
            if clerk is not None:
                clerk.call_id = None
                out.append(RingEnded(call_id, clerk.profile.id, RingEndReason.VISITOR_DISCONNECTED))
                self._make_available(clerk, now, out)
        else:
            raise errors.SignalingError(errors.WRONG_STATE, f"a {call.state} call cannot be held")
        call.transition(CallState.HELD, now)
        call.held_until = until
        heapq.heappush(self._holds, (until, call_id))
        return out

    def resume(self, call_id: str, now: float) -> list[Decision]:
        """The kiosk is back: the call returns to its old place in the queue."""
        call = self._call(call_id)
        if call.state is not CallState.HELD:
            raise errors.SignalingError(errors.WRONG_STATE, f"the call is {call.state}, not held")
        call.held_until = None
        out: list[Decision] = []
        self._requeue(call, now, out, reason="")
        return out

    def media_connected(self, call_id: str, now: float) -> list[Decision]:
        call = self._call(call_id)
        if call.state is CallState.CONNECTING:
            call.transition(CallState.ACTIVE, now)
        return []

    def end_call(self, call_id: str, now: float, reason: EndReason, by: str) -> list[Decision]:
        """End a call in any live state (cancel, hang-up, a side gone)."""
        call = self._call(call_id)
        out: list[Decision] = []
        clerk = self.clerks.get(call.clerk_id) if call.clerk_id else None
        was = call.state
        if was is CallState.QUEUED:
            self._dequeue(call, out)
        call.transition(CallState.ENDED, now)
        self._ring_deadline.pop(call_id, None)
        del self.calls[call_id]
        if was is CallState.RINGING and clerk is not None:
            ring_reason = (
                RingEndReason.VISITOR_DISCONNECTED if reason is EndReason.VISITOR_DISCONNECTED
                else RingEndReason.CANCELLED
            )
            out.append(RingEnded(call_id, clerk.profile.id, ring_reason))
        if call.accepted_at is not None:
            old = self._handle_s.get(call.field, self.default_handle_s)
            took = max(0.0, now - call.accepted_at)
            self._handle_s[call.field] = (1 - HANDLE_TIME_WEIGHT) * old + HANDLE_TIME_WEIGHT * took
        answered_by = call.clerk_id if call.accepted_at is not None else None  # a ring is not a call
        out.append(CallEnded(call_id, answered_by, reason, by))
        if clerk is not None:
            clerk.call_id = None
            if call.accepted_at is not None and self.wrapup_s > 0:
                clerk.wrapup_until = now + self.wrapup_s
                heapq.heappush(self._wrapups, (clerk.wrapup_until, clerk.profile.id))
                self._set_status(clerk, ClerkStatus.WRAP_UP, out, "")
            else:
                self._make_available(clerk, now, out)
        return out

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        self._prune()
        heads = [h[0][0] for h in (self._rings, self._widen, self._wrapups, self._holds) if h]
        return min(heads) if heads else None

    def tick(self, now: float) -> list[Decision]:
        """Carry out ring timeouts and stage widenings due by ``now``, in time order."""
        out: list[Decision] = []
        while True:
            self._prune()
            ring_at = self._rings[0][0] if self._rings else math.inf
            widen_at = self._widen[0][0] if self._widen else math.inf
            wrapup_at = self._wrapups[0][0] if self._wrapups else math.inf
            hold_at = self._holds[0][0] if self._holds else math.inf
            if min(ring_at, widen_at, wrapup_at, hold_at) > now:
                return out
            if hold_at < min(ring_at, widen_at, wrapup_at):
                _, call_id = heapq.heappop(self._holds)
                out.extend(self.end_call(call_id, now, EndReason.VISITOR_DISCONNECTED, "visitor"))
            elif wrapup_at < min(ring_at, widen_at):
                _, clerk_id = heapq.heappop(self._wrapups)
                clerk = self.clerks[clerk_id]
                clerk.wrapup_until = None
                self._make_available(clerk, now, out, reason="wrapup_timeout")
            elif ring_at <= widen_at:
                _, call_id, clerk_id = heapq.heappop(self._rings)
                self._ring_timeout(self.calls[call_id], self.clerks[clerk_id], now, out)
            else:
                _, call_id, stage = heapq.heappop(self._widen)
                self._widen_call(self.calls[call_id], stage, now, out)

    # ------------------------------------------------------------------ queries

    def position(self, call_id: str) -> tuple[int, float | None]:
        """1-based position among waiting calls of the same field and district, and the estimated wait."""
        call = self._call(call_id)
        if call.state is not CallState.QUEUED:
            return 0, 0.0
        queue = self._queues[self._group(call)]
        pos = queue.index((*call.queue_key, call.id)) + 1
        return pos, self._estimate(call, pos)

    def waiting_in(self, field: str, district: str) -> list[tuple[str, int, float | None]]:
        """Every waiting call of a queue with its position and estimated wait."""
        queue = self._queues.get((field, district), [])
        out = []
        for pos, item in enumerate(queue, start=1):
            call = self.calls[item[-1]]
            out.append((call.id, pos, self._estimate(call, pos)))
        return out

    def waiting_calls(self) -> list[Call]:
        return [c for c in self.calls.values() if c.state is CallState.QUEUED]

    def district_of(self, region: str) -> str:
        return self.regions.ancestor_at(region, self._district_depth)

    def handle_time(self, field: str) -> float:
        return self._handle_s.get(field, self.default_handle_s)

    # ------------------------------------------------------------------ internals

    def _clerk(self, clerk_id: str) -> ClerkState:
        try:
            return self.clerks[clerk_id]
        except KeyError:
            raise errors.SignalingError(errors.WRONG_STATE, f"clerk {clerk_id} is not online") from None

    def _call(self, call_id: str) -> Call:
        try:
            return self.calls[call_id]
        except KeyError:
            raise errors.SignalingError(errors.NO_SUCH_CALL, f"no call {call_id} in progress") from None

    def _ringing(self, clerk_id: str, call_id: str) -> tuple[Call, ClerkState]:
        call = self._call(call_id)
        clerk = self._clerk(clerk_id)
        if call.state is not CallState.RINGING or call.clerk_id != clerk_id:
            raise errors.SignalingError(errors.WRONG_STATE, f"call {call_id} is not ringing for you")
        return call, clerk

    def _group(self, call: Call) -> tuple[str, str]:
        return (call.field, self.district_of(call.region))

    def _estimate(self, call: Call, position: int) -> float | None:
        chain = self.regions.ancestors(call.region)
        district = self.district_of(call.region)
        servers = sum(self._online[(call.field, "cover", a)] for a in chain[: self._district_depth - 1])
        servers += self._online[(call.field, "inside", district)]
        if servers == 0:
            return None
        return self.handle_time(call.field) * math.ceil(position / servers)

    def _count_online(self, profile: ClerkProfile, delta: int) -> None:
        seen: set[tuple[str, str, str]] = set()
        for f in profile.fields:
            for c in profile.regions:
                seen.add((f, "cover", c))
                seen.update((f, "inside", a) for a in self.regions.ancestors(c))
        for key in seen:
            self._online[key] += delta
            if self._online[key] <= 0:
                del self._online[key]

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _restage(self, call: Call, now: float, out: list[Decision]) -> None:
        """A call back from a conversation: the stage its whole wait has reached, and deadlines for the later ones.

        An answered call gets no widening (its deadlines are dropped when they come due); if the clerk drops
        and the call is queued again, it continues at the stage it would have reached by waiting all along.
        """
        waited = now - call.requested_at
        reached = call.stage
        for k, st in enumerate(self.stages):
            if k > call.stage and st.after_s <= waited:
                reached = k
        if reached != call.stage:
            call.stage = reached
            out.append(StageWidened(call.id, reached, self.stages[reached].name))
        for k, st in enumerate(self.stages[reached + 1:], start=reached + 1):
            heapq.heappush(self._widen, (call.requested_at + st.after_s, call.id, k))

    def _set_status(self, clerk: ClerkState, status: ClerkStatus, out: list[Decision], reason: str) -> None:
        if clerk.status is not status:
            clerk.status = status
            out.append(ClerkStatusChanged(clerk.profile.id, status, reason))

    def _clerk_item(self, clerk: ClerkState) -> Item:
        return (clerk.idle_since, clerk.seq, clerk.profile.id)

    def _clerk_index_keys(self, profile: ClerkProfile) -> list[Hashable]:
        return self._keys_of(profile)[0]

    def _keys_of(self, profile: ClerkProfile) -> tuple[list[Hashable], list[Hashable]]:
        """The keys a clerk is filed under while idle, and the keys of the waiting calls they may take (cached)."""
        cached = self._profile_keys.get(profile)
        if cached is not None:
            return cached
        keys: set[Hashable] = set()
        lookup: set[Hashable] = set()
        for f in profile.fields:
            for lang in (*profile.languages, ANY_LANGUAGE):
                for c in profile.regions:
                    keys.add(("cover", f, c, lang))
                    keys.update(("inside", f, a, lang) for a in self.regions.ancestors(c))
                    lookup.add(("reach", f, c, lang))
                    lookup.update(("wide", f, a, lang) for a in self.regions.ancestors(c))
        cached = self._profile_keys[profile] = (list(keys), list(lookup))
        return cached

    def _make_available(self, clerk: ClerkState, now: float, out: list[Decision], reason: str = "") -> None:
        self._set_status(clerk, ClerkStatus.AVAILABLE, out, reason)
        clerk.idle_since = now
        self._match_clerk(clerk, now, out)
        if clerk.idle:  # nothing waits for this clerk: file them as idle
            keys = self._clerk_index_keys(clerk.profile)
            self._clerk_keys[clerk.profile.id] = keys
            self._idle.add(keys, self._clerk_item(clerk))

    def _unidle(self, clerk: ClerkState) -> None:
        keys = self._clerk_keys.pop(clerk.profile.id, None)
        if keys is not None:
            self._idle.discard(keys, self._clerk_item(clerk))

    def _call_item(self, call: Call) -> Item:
        return (*call.queue_key, call.id)

    def _call_index_keys(self, call: Call) -> list[Hashable]:
        st = self.stages[call.stage]
        lang = call.language if st.require_language else ANY_LANGUAGE
        keys: list[Hashable] = [("reach", call.field, a, lang) for a in self.regions.ancestors(call.region)]
        if st.level is not None:
            keys.append(("wide", call.field, self.regions.ancestor_at(call.region, st.level), lang))
        return keys

    def _enqueue(self, call: Call, out: list[Decision]) -> None:
        keys = self._call_index_keys(call)
        self._call_keys[call.id] = keys
        item = self._call_item(call)
        self._waiting.add(keys, item)
        group = self._group(call)
        queue = self._queues.get(group)
        if queue is None:
            queue = self._queues[group] = SortedList()
        queue.add(item)
        out.append(QueueChanged(*group))

    def _dequeue(self, call: Call, out: list[Decision]) -> None:
        keys = self._call_keys.pop(call.id, None)
        if keys is None:
            return
        item = self._call_item(call)
        self._waiting.discard(keys, item)
        group = self._group(call)
        queue = self._queues[group]
        queue.discard(item)
        if not queue:
            del self._queues[group]
        out.append(QueueChanged(*group))

    def _queued(self, call: Call, reason: str) -> Queued:
        pos, est = self.position(call.id)
        return Queued(call.id, pos, est, call.stage, reason)

    def _requeue(self, call: Call, now: float, out: list[Decision], reason: str) -> None:
        """Put a call back at its place in the queue and look for a clerk."""
        call.transition(CallState.QUEUED, now)
        call.clerk_id = None
        self._ring_deadline.pop(call.id, None)
        self._enqueue(call, out)
        self._match_call(call, now, out)
        if call.state is CallState.QUEUED:
            out.append(self._queued(call, reason))

    def _best_clerk_for(self, call: Call) -> tuple[ClerkState, int] | None:
        chain = self.regions.ancestors(call.region)
        declined = call.declined_by
        skip = declined.__contains__ if declined else None
        for ring in range(call.stage + 1):
            st = self.stages[ring]
            lang = call.language if st.require_language else ANY_LANGUAGE
            best: Item | None = None
            keys: list[Hashable] = [("cover", call.field, a, lang) for a in chain]
            if st.level is not None:
                keys.append(("inside", call.field, self.regions.ancestor_at(call.region, st.level), lang))
            for key in keys:
                item = self._idle.first(key, skip)
                if item is not None and (best is None or item < best):
                    best = item
            if best is not None:
                return self.clerks[best[-1]], ring
        return None

    def _best_call_for(self, clerk: ClerkState) -> Call | None:
        clerk_id = clerk.profile.id
        calls = self.calls

        def skip(call_id: str) -> bool:
            return clerk_id in calls[call_id].declined_by

        best: Item | None = None
        for key in self._keys_of(clerk.profile)[1]:
            item = self._waiting.first(key, skip)
            if item is not None and (best is None or item < best):
                best = item
        return calls[best[-1]] if best is not None else None

    def _ring_index(self, clerk: ClerkState, call: Call) -> int:
        for k in range(call.stage + 1):
            if eligible(self.regions, self.stages, clerk.profile, call, k):
                return k
        raise AssertionError(f"clerk {clerk.profile.id} is not eligible for call {call.id}")

    def _ring(self, call: Call, clerk: ClerkState, ring: int, now: float, out: list[Decision]) -> None:
        self._dequeue(call, out)
        self._unidle(clerk)
        call.transition(CallState.RINGING, now)
        call.clerk_id = clerk.profile.id
        clerk.call_id = call.id
        deadline = now + self.ring_timeout_s
        self._ring_deadline[call.id] = deadline
        heapq.heappush(self._rings, (deadline, call.id, clerk.profile.id))
        self._set_status(clerk, ClerkStatus.RINGING, out, "")
        out.append(Ring(call.id, clerk.profile.id, deadline, ring))

    def _match_call(self, call: Call, now: float, out: list[Decision]) -> None:
        if call.state is not CallState.QUEUED:
            return
        found = self._best_clerk_for(call)
        if found is not None:
            self._ring(call, found[0], found[1], now, out)

    def _match_clerk(self, clerk: ClerkState, now: float, out: list[Decision]) -> None:
        if not clerk.idle:
            return
        call = self._best_call_for(clerk)
        if call is not None:
            self._ring(call, clerk, self._ring_index(clerk, call), now, out)

    def _ring_timeout(self, call: Call, clerk: ClerkState, now: float, out: list[Decision]) -> None:
        clerk.call_id = None
        self._set_status(clerk, ClerkStatus.AWAY, out, "ring_timeout")
        out.append(RingEnded(call.id, clerk.profile.id, RingEndReason.TIMEOUT))
        self._requeue(call, now, out, reason="")

    def _widen_call(self, call: Call, stage: int, now: float, out: list[Decision]) -> None:
        queued = call.state is CallState.QUEUED
        if queued:
            self._dequeue(call, out)
        call.stage = stage
        out.append(StageWidened(call.id, stage, self.stages[stage].name))
        if queued:
            self._enqueue(call, out)
            self._match_call(call, now, out)

    def _prune(self) -> None:
        rings, widen = self._rings, self._widen
        while rings:
            deadline, call_id, clerk_id = rings[0]
            call = self.calls.get(call_id)
            if (
                call is not None and call.state is CallState.RINGING and call.clerk_id == clerk_id
                and self._ring_deadline.get(call_id) == deadline
            ):
                break
            heapq.heappop(rings)
        while widen:
            _, call_id, stage = widen[0]
            call = self.calls.get(call_id)
            if call is not None and call.stage < stage and call.state not in _ANSWERED:
                break
            heapq.heappop(widen)
        holds = self._holds
        while holds:
            deadline, call_id = holds[0]
            call = self.calls.get(call_id)
            if call is not None and call.state is CallState.HELD and call.held_until == deadline:
                break
            heapq.heappop(holds)
        wrapups = self._wrapups
        while wrapups:
            deadline, clerk_id = wrapups[0]
            clerk = self.clerks.get(clerk_id)
            if clerk is not None and clerk.status is ClerkStatus.WRAP_UP and clerk.wrapup_until == deadline:
                break
            heapq.heappop(wrapups)
