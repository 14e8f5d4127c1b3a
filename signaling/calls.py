"""The state machine of a call.

A call's state is computed in one place (:meth:`Call.transition`), which
checks the move against :data:`TRANSITIONS`, records ``old -> new`` and reports
whether anything changed, so callers emit only on a real transition.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)


PRIORITY_NORMAL = 0
PRIORITY_RETURNED = 1  # the clerk dropped out of the conversation: the visitor goes back ahead of the queue
PRIORITY_TRANSFERRED = 2  # handed on to another field within the same case: ahead of everyone there


class CallState(enum.StrEnum):
    QUEUED = "queued"  # waiting for a clerk
    RINGING = "ringing"  # offered to one clerk
    CONNECTING = "connecting"  # accepted, media being negotiated
    ACTIVE = "active"  # media flowing
    HELD = "held"  # the kiosk lost its connection while waiting; its place is kept for a grace period
    ENDED = "ended"


ANSWERED = (CallState.CONNECTING, CallState.ACTIVE)  # a conversation: accepted, media being set up or flowing
WAITING = (CallState.QUEUED, CallState.RINGING)  # waiting for a clerk, with the kiosk connected

TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    CallState.QUEUED: frozenset({CallState.RINGING, CallState.HELD, CallState.ENDED}),
    CallState.RINGING: frozenset({CallState.QUEUED, CallState.CONNECTING, CallState.HELD, CallState.ENDED}),
    CallState.HELD: frozenset({CallState.QUEUED, CallState.ENDED}),
    # a clerk who drops mid-call sends the visitor back to the queue
    CallState.CONNECTING: frozenset({CallState.ACTIVE, CallState.QUEUED, CallState.ENDED}),
    CallState.ACTIVE: frozenset({CallState.QUEUED, CallState.ENDED}),
    CallState.ENDED: frozenset(),
}


class IllegalTransitionError(RuntimeError):
    def __init__(self, call_id: str, old: CallState, new: CallState) -> None:
        super().__init__(f"call {call_id}: {old} -> {new} is not allowed")
        self.old = old
        self.new = new


@dataclass
class Call:
    id: str
    field: str
    language: str
    region: str
    requested_at: float
    seq: int
    priority: int = 0
    state: CallState = CallState.QUEUED
    stage: int = 0
    clerk_id: str | None = None
    accepted_at: float | None = None
    held_until: float | None = None
    declined_by: set[str] = dataclasses.field(default_factory=set)
    history: list[tuple[float, CallState, CallState]] = dataclasses.field(default_factory=list)

    @property
    def queue_key(self) -> tuple[int, float, int]:
        """Order among waiting calls: priority first, then first come first served."""
        return (-self.priority, self.requested_at, self.seq)

    @property
    def live(self) -> bool:
        return self.state is not CallState.ENDED

    def transition(self, new: CallState, now: float) -> bool:
        """Move to ``new``; return False (and do nothing) if already there."""
        old = self.state
        if old is new:
            return False
        if new not in TRANSITIONS[old]:
            raise IllegalTransitionError(self.id, old, new)
        self.state = new
        self.history.append((now, old, new))
        logger.debug("call %s: %s -> %s", self.id, old, new)
        return True
