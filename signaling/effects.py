"""What the core decides, as values: records to write, messages to send, connections to close, recorder work.

The server's one writer carries them out in this order: every record of a
command in one transaction, then (only once it is committed) the messages and
the rest. Records are the durable facts; a message is only ever sent about a
fact that is on record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from signaling.commands import Party


@dataclass(frozen=True)
class CaseRef:
    """Where a call's events are filed: the call, its case, field and region."""

    call_id: str
    case_id: str
    field: str
    region: str
    district: str


# -- records ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenCall:
    """A new call's row and its ``requested`` event."""

    case: CaseRef
    kiosk_id: str
    language: str
    at: float
    actor: str
    data: Mapping[str, Any]
    transferred_from: str | None = None


@dataclass(frozen=True)
class CallEvent:
    """One event of a call in the log, optionally with changes to its row."""

    case: CaseRef
    kind: str
    actor: str
    at: float
    data: Mapping[str, Any] = field(default_factory=dict)
    update: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class FiledMatter:
    matter_type: str
    outcome: str
    credit_code: str | None
    entity_name: str
    notes: str
    followup: str | None  # simple | general | complex, for a yet-to-do matter
    due_date: str | None  # ISO date of the follow-up


@dataclass(frozen=True)
class FileWrapUp:
    """A clerk's wrap-up: the matters, their follow-ups, the ``wrapped_up`` event; the records give the ids."""

    case: CaseRef
    clerk_id: str
    at: float
    matters: tuple[FiledMatter, ...]


@dataclass(frozen=True)
class FileRating:
    case: CaseRef
    kiosk_id: str
    at: float
    score: str
    reason: str


@dataclass(frozen=True)
class FileCallback:
    """A callback request becomes a follow-up; ``merge``: the same kiosk asked for it already (same field and
    phone), and the open follow-up of ``case_id`` is updated instead (a new one if it was closed meanwhile)."""

    case_id: str
    kiosk_id: str
    field: str
    language: str
    region: str
    district: str
    phone: str
    description: str
    due_date: str
    at: float
    merge: bool = False


Record = OpenCall | CallEvent | FileWrapUp | FileRating | FileCallback


# -- the rest -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    to: Party
    msg: msgspec.Struct  # a struct of signaling.messages; its EVENT names the event

    @property
    def event(self) -> str:
        return str(getattr(self.msg, "EVENT", ""))


@dataclass(frozen=True)
class Drop:
    """Close one connection (replaced by a newer one, or its identity revoked)."""

    party: Party
    conn: str


@dataclass(frozen=True)
class QueueMoved:
    """Positions in the queue of ``field`` in ``district`` may have moved (the server batches the updates)."""

    field: str
    district: str


@dataclass(frozen=True)
class WarmRecorder:
    """A recorded call was answered: have a recorder worker ready for its participants."""


@dataclass(frozen=True)
class FinishRecording:
    """The recorded call ended: close its recorder connections and store the files."""

    call_id: str


Effect = Record | Send | Drop | QueueMoved | WarmRecorder | FinishRecording
RECORDS = (OpenCall, CallEvent, FileWrapUp, FileRating, FileCallback)
