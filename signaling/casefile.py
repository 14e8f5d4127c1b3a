"""What happens to a call after it ends: its wrap-up, its rating, and the calls the core still remembers.

Every answered call that ends owes exactly one wrap-up by its clerk
(:class:`WrapUps`); every answered call may be rated once by its kiosk. The
core remembers the calls of the last while (:class:`EndedCalls`, bounded) to
tell "already done" from "no such call". Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from signaling import errors
from signaling.catalog import Catalog
from signaling.creditcode import CreditCodeError, validate_credit_code
from signaling.effects import CaseRef, FiledMatter
from signaling.errors import SignalingError
from signaling.messages import MatterIn
from signaling.policy import CallPolicy

ENDED_KEPT = 20_000  # ended calls remembered for ratings and "already done" answers
CALLBACKS_KEPT = 20  # pending callback requests remembered per kiosk, for merging a repeated one


@dataclass
class EndedCall:
    case: CaseRef
    kiosk_id: str
    clerk_id: str | None  # who answered it; None if nobody did
    ended_at: float
    rated: bool = False
    wrapped_up: bool = False


@dataclass(frozen=True)
class PendingWrapUp:
    """An answered, ended call whose matters its clerk has not logged yet."""

    case: CaseRef
    clerk_id: str
    ended_at: float


class EndedCalls:
    """The most recent ended calls, oldest forgotten first."""

    def __init__(self, calls: Iterable[EndedCall] = (), keep: int = ENDED_KEPT) -> None:
        self.keep = keep
        self._calls: OrderedDict[str, EndedCall] = OrderedDict()
        for c in calls:
            self.add(c)

    def add(self, call: EndedCall) -> None:
        self._calls[call.case.call_id] = call
        self._calls.move_to_end(call.case.call_id)
        while len(self._calls) > self.keep:
            self._calls.popitem(last=False)

    def get(self, call_id: str) -> EndedCall | None:
        return self._calls.get(call_id)

    def __len__(self) -> int:
        return len(self._calls)


class WrapUps:
    """The wrap-ups owed, by call; nothing is forgotten until it is filed."""

    def __init__(self, pending: Iterable[PendingWrapUp] = ()) -> None:
        self._due: dict[str, PendingWrapUp] = {p.case.call_id: p for p in pending}

    def owe(self, pending: PendingWrapUp) -> None:
        self._due[pending.case.call_id] = pending

    def get(self, call_id: str) -> PendingWrapUp | None:
        return self._due.get(call_id)

    def settle(self, call_id: str) -> None:
        del self._due[call_id]

    def of_clerk(self, clerk_id: str, since: float) -> list[PendingWrapUp]:
        return sorted((p for p in self._due.values() if p.clerk_id == clerk_id and p.ended_at >= since),
                      key=lambda p: p.ended_at)

    def __iter__(self) -> Iterator[PendingWrapUp]:
        return iter(self._due.values())

    def __len__(self) -> int:
        return len(self._due)


@dataclass(frozen=True)
class PendingCallback:
    case_id: str  # the follow-up's case: a repeated request updates it
    due: dt.date


class PendingCallbacks:
    """The callback requests each kiosk left that are not yet due: the same one asked again is merged.

    "The same" is the same kiosk, service field and phone number (spaces and dashes aside); a different field
    or number is another visitor's request. A request is pending until the end of its due date, as far as the
    core knows (a follow-up a clerk closed earlier is found closed by the records, which then open a new one).
    At most :data:`CALLBACKS_KEPT` per kiosk are remembered, the oldest forgotten first.
    """

    def __init__(self, keep: int = CALLBACKS_KEPT) -> None:
        self.keep = keep
        self._by_kiosk: dict[str, OrderedDict[tuple[str, str], PendingCallback]] = {}

    @staticmethod
    def key(field_id: str, phone: str) -> tuple[str, str]:
        return field_id, re.sub(r"[ \-]", "", phone)

    def find(self, kiosk_id: str, field_id: str, phone: str, today: dt.date) -> PendingCallback | None:
        mine = self._by_kiosk.get(kiosk_id)
        if mine is None:
            return None
        for k in [k for k, p in mine.items() if p.due < today]:
            del mine[k]
        if not mine:
            del self._by_kiosk[kiosk_id]
            return None
        return mine.get(self.key(field_id, phone))

    def add(self, kiosk_id: str, field_id: str, phone: str, pending: PendingCallback) -> None:
        mine = self._by_kiosk.setdefault(kiosk_id, OrderedDict())
        k = self.key(field_id, phone)
        mine[k] = pending
        mine.move_to_end(k)
        while len(mine) > self.keep:
            mine.popitem(last=False)

    def __len__(self) -> int:
        return sum(len(m) for m in self._by_kiosk.values())


def check_matters(catalog: Catalog, field_id: str, items: Iterable[MatterIn], policy: CallPolicy,
                  at: float) -> tuple[FiledMatter, ...]:
    """Validate every matter of a wrap-up (nothing is filed if one is wrong); credit codes normalized, due dates set."""
    field = catalog.get(field_id)
    known = {m.id for m in field.matters}
    out: list[FiledMatter] = []
    for i, m in enumerate(items):
        if m.matter_type not in known:
            raise SignalingError(errors.UNKNOWN_MATTER_TYPE, f"matters[{i}].matter_type: {m.matter_type!r} is "
                                 f"not a matter of {field_id!r}; known: {', '.join(sorted(known))}")
        code = None
        if m.credit_code:
            try:
                code = validate_credit_code(m.credit_code)
            except CreditCodeError as exc:
                raise SignalingError(errors.INVALID_CREDIT_CODE, f"matters[{i}].credit_code: {exc}") from None
        due = policy.due_date(m.followup, at).isoformat() if m.followup is not None else None
        out.append(FiledMatter(m.matter_type, m.outcome, code, m.entity_name, m.notes, m.followup, due))
    return tuple(out)
