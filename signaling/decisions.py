"""What the routing engine decides, as values. The server turns them into emits."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ClerkStatus(enum.StrEnum):
    AWAY = "away"
    AVAILABLE = "available"
    RINGING = "ringing"
    BUSY = "busy"
    WRAP_UP = "wrap_up"  # logging the matters of the call just ended; not offered calls


class EndReason(enum.StrEnum):
    HANGUP = "hangup"
    CANCELLED = "cancelled"  # the visitor gave up while waiting
    VISITOR_DISCONNECTED = "visitor_disconnected"
    CLERK_DISCONNECTED = "clerk_disconnected"
    TRANSFERRED = "transferred"  # handed on to another service field within the same case
    MEDIA_FAILED = "media_failed"  # the peer connection failed and so did its one restart (or none came)


class RingEndReason(enum.StrEnum):
    TIMEOUT = "timeout"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    VISITOR_DISCONNECTED = "visitor_disconnected"
    CLERK_DISCONNECTED = "clerk_disconnected"


@dataclass(frozen=True)
class Ring:
    """Offer ``call_id`` to ``clerk_id`` until ``deadline``."""

    call_id: str
    clerk_id: str
    deadline: float
    ring: int  # the stage whose circle admitted this clerk (0 = jurisdiction)


@dataclass(frozen=True)
class RingEnded:
    """The offer of ``call_id`` to ``clerk_id`` is withdrawn (not accepted)."""

    call_id: str
    clerk_id: str
    reason: RingEndReason


@dataclass(frozen=True)
class ClerkStatusChanged:
    clerk_id: str
    status: ClerkStatus
    reason: str = ""


@dataclass(frozen=True)
class Queued:
    """``call_id`` is (back) in the queue; ``reason`` says why it came back."""

    call_id: str
    position: int
    estimated_wait_s: float | None  # None while no clerk who could take it is online
    stage: int
    reason: str = ""


@dataclass(frozen=True)
class StageWidened:
    call_id: str
    stage: int
    name: str


@dataclass(frozen=True)
class Matched:
    call_id: str
    clerk_id: str


@dataclass(frozen=True)
class CallEnded:
    call_id: str
    clerk_id: str | None
    reason: EndReason
    by: str  # "visitor", "clerk" or "system"


@dataclass(frozen=True)
class QueueChanged:
    """Positions in the queue of ``field`` in ``district`` may have moved."""

    field: str
    district: str


Decision = Ring | RingEnded | ClerkStatusChanged | Queued | StageWidened | Matched | CallEnded | QueueChanged
