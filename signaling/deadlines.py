"""The routing engine's timers: ring timeouts, stage widenings, wrap-up ends and held calls' grace, in time order.

Each kind of deadline is a heap that is pruned lazily: a deadline is never
removed when it stops mattering (the call was answered, the clerk went away,
the call was resumed), only skipped when it reaches the head of its heap and
the state of its call or clerk shows it is stale. That keeps setting and
dropping a deadline logarithmic, and :meth:`Deadlines.next` amortised constant.

Deadlines due at the same instant are carried out in a fixed order: ring
timeouts, then widenings, then wrap-up ends, then held calls; within a kind by
call (or clerk) id.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from signaling.calls import ANSWERED, Call, CallState
from signaling.decisions import ClerkStatus

if TYPE_CHECKING:
    from signaling.routing import ClerkState


@dataclass(frozen=True)
class RingDue:
    """The ring of ``call_id`` for ``clerk_id`` went unanswered."""

    call_id: str
    clerk_id: str


@dataclass(frozen=True)
class WidenDue:
    """``call_id`` has waited long enough for ``stage``."""

    call_id: str
    stage: int


@dataclass(frozen=True)
class WrapUpDue:
    """``clerk_id``'s time to wrap up is over."""

    clerk_id: str


@dataclass(frozen=True)
class HoldDue:
    """The kiosk of held ``call_id`` did not come back in time."""

    call_id: str


Due = RingDue | WidenDue | WrapUpDue | HoldDue


@dataclass
class Deadlines:
    rings: list[tuple[float, str, str]] = field(default_factory=list)  # (deadline, call, clerk)
    ring_deadline: dict[str, float] = field(default_factory=dict)  # call -> deadline of its current ring
    widen: list[tuple[float, str, int]] = field(default_factory=list)  # (when, call, stage)
    wrapups: list[tuple[float, str]] = field(default_factory=list)  # (deadline, clerk)
    holds: list[tuple[float, str]] = field(default_factory=list)  # (deadline, call)

    # ------------------------------------------------------------------ setting and dropping

    def ring(self, call_id: str, clerk_id: str, deadline: float) -> None:
        self.ring_deadline[call_id] = deadline
        heapq.heappush(self.rings, (deadline, call_id, clerk_id))

    def ring_over(self, call_id: str) -> None:
        """The call's ring was answered, declined or withdrawn: its timeout no longer counts."""
        self.ring_deadline.pop(call_id, None)

    def widen_at(self, when: float, call_id: str, stage: int) -> None:
        heapq.heappush(self.widen, (when, call_id, stage))

    def wrapup_until(self, clerk_id: str, until: float) -> None:
        heapq.heappush(self.wrapups, (until, clerk_id))

    def hold_until(self, call_id: str, until: float) -> None:
        heapq.heappush(self.holds, (until, call_id))

    # ------------------------------------------------------------------ what is due

    def next(self, calls: Mapping[str, Call], clerks: Mapping[str, ClerkState]) -> float | None:
        """The earliest deadline still pending."""
        self.prune(calls, clerks)
        heads = [h[0][0] for h in (self.rings, self.widen, self.wrapups, self.holds) if h]
        return min(heads) if heads else None

    def pop_due(self, calls: Mapping[str, Call], clerks: Mapping[str, ClerkState], now: float) -> Due | None:
        """Take the earliest deadline due by ``now`` off its heap (None: nothing is due)."""
        self.prune(calls, clerks)
        ring_at = self.rings[0][0] if self.rings else math.inf
        widen_at = self.widen[0][0] if self.widen else math.inf
        wrapup_at = self.wrapups[0][0] if self.wrapups else math.inf
        hold_at = self.holds[0][0] if self.holds else math.inf
        if min(ring_at, widen_at, wrapup_at, hold_at) > now:
            return None
        if hold_at < min(ring_at, widen_at, wrapup_at):
            _, call_id = heapq.heappop(self.holds)
            return HoldDue(call_id)
        if wrapup_at < min(ring_at, widen_at):
            _, clerk_id = heapq.heappop(self.wrapups)
            return WrapUpDue(clerk_id)
        if ring_at <= widen_at:
            _, call_id, clerk_id = heapq.heappop(self.rings)
            return RingDue(call_id, clerk_id)
        _, call_id, stage = heapq.heappop(self.widen)
        return WidenDue(call_id, stage)

    def prune(self, calls: Mapping[str, Call], clerks: Mapping[str, ClerkState]) -> None:
        """Drop stale deadlines from the heads of the heaps."""
        rings, widen = self.rings, self.widen
        while rings:
            deadline, call_id, clerk_id = rings[0]
            call = calls.get(call_id)
            if (
                call is not None and call.state is CallState.RINGING and call.clerk_id == clerk_id
                and self.ring_deadline.get(call_id) == deadline
            ):
                break
            heapq.heappop(rings)
        while widen:
            _, call_id, stage = widen[0]
            call = calls.get(call_id)
            # an answered call widens no further; if it goes back to the queue its stage is recomputed
            if call is not None and call.stage < stage and call.state not in ANSWERED:
                break
            heapq.heappop(widen)
        holds = self.holds
        while holds:
            deadline, call_id = holds[0]
            call = calls.get(call_id)
            if call is not None and call.state is CallState.HELD and call.held_until == deadline:
                break
            heapq.heappop(holds)
        wrapups = self.wrapups
        while wrapups:
            deadline, clerk_id = wrapups[0]
            clerk = clerks.get(clerk_id)
            if clerk is not None and clerk.status is ClerkStatus.WRAP_UP and clerk.wrapup_until == deadline:
                break
            heapq.heappop(wrapups)
