"""A small world around one :class:`~signaling.switch.Switch`: kiosks and clerks, a clock, and what they were told.

The tests drive the core with commands exactly as the server's writer does and
keep every effect, so they can ask who was sent what and which records were
written, in order.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import msgspec

from signaling import messages as m
from signaling.catalog import Catalog, MatterType, RecordingPolicy, ServiceField
from signaling.commands import (
    CLERK,
    KIOSK,
    ClerkCard,
    ClerkConnected,
    Command,
    Disconnected,
    KioskCard,
    KioskConnected,
    Party,
    Received,
    Tick,
)
from signaling.effects import CallEvent, Effect, OpenCall, Send
from signaling.policy import CallPolicy
from signaling.regions import RegionTree
from signaling.routing import Stage
from signaling.switch import Outcome, Switch
from signaling.workdays import WorkCalendar

LEVELS = ("city", "district", "town", "park")
NODES = ("c", "c/d1", "c/d1/t1", "c/d1/t1/p1", "c/d1/t1/p2", "c/d2", "c/d2/t1", "c/d2/t1/p1")
TREE = RegionTree.build(LEVELS, {n: {"en": n.upper(), "zh": n} for n in NODES})
STAGES = (Stage("jurisdiction", 0), Stage("district", 120, 2), Stage("city", 300, 1, False))
CATALOG = Catalog([
    ServiceField("tax", {"en": "Tax"}, (MatterType("consultation", {"en": "Consultation"}),)),
    ServiceField("market", {"en": "Market"}, (MatterType("cancellation", {"en": "Cancellation"}),),
                 recording=RecordingPolicy.ASK),
])
CALENDAR = WorkCalendar.from_toml_dict({"years": {"2026": {"holidays": [], "workdays": []},
                                                  "2027": {"holidays": [], "workdays": []}}})
START = 1_790_000_000.0  # 2026-09-21, a Monday


def policy(**overrides: Any) -> CallPolicy:
    base: dict[str, Any] = dict(regions=TREE, stages=STAGES, catalog=CATALOG, languages=("zh", "en"),
                                calendar=CALENDAR, ring_timeout_s=20.0, wrapup_timeout_s=180.0,
                                reconnect_grace_s=30.0)
    base.update(overrides)
    return CallPolicy(**base)


def kiosk_card(n: int, region: str = "c/d1/t1/p1") -> KioskCard:
    return KioskCard(f"k{n}", f"Kiosk {n}", region)


def clerk_card(n: int, fields: tuple[str, ...] = ("tax", "market"), regions: tuple[str, ...] = ("c/d1",),
               languages: tuple[str, ...] = ("zh", "en")) -> ClerkCard:
    return ClerkCard(f"c{n}", f"Clerk {n}", "Center", fields, regions, languages)


@dataclass
class World:
    switch: Switch
    now: float = START
    effects: list[Effect] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=itertools.count)
    conns: dict[Party, str] = field(default_factory=dict)

    @classmethod
    def make(cls, roster: tuple[ClerkCard, ...] = (), **overrides: Any) -> World:
        return cls(Switch(policy(**overrides), roster))

    def apply(self, cmd: Command) -> Outcome:
        outcome = self.switch.apply(cmd, self.now)
        if outcome.error is not None:
            assert outcome.effects == (), "a refused command has no effects"
        self.effects.extend(outcome.effects)
        return outcome

    def conn(self, party: Party) -> str:
        return self.conns.get(party, "none")

    def connect_kiosk(self, card: KioskCard) -> Outcome:
        party = Party(KIOSK, card.id)
        self.conns[party] = f"s{next(self.ids)}"
        return self.apply(KioskConnected(self.conns[party], card))

    def connect_clerk(self, card: ClerkCard, available: bool = True) -> Outcome:
        party = Party(CLERK, card.id)
        self.conns[party] = f"s{next(self.ids)}"
        out = self.apply(ClerkConnected(self.conns[party], card))
        if available:
            self.ok(party, "set_status", m.SetStatus("available"))
        return out

    def drop(self, party: Party, lost: bool = True) -> Outcome:
        return self.apply(Disconnected(party, self.conn(party), lost))

    def send(self, party: Party, event: str, msg: msgspec.Struct) -> Outcome:
        return self.apply(Received(party, self.conn(party), event, msg, f"id{next(self.ids)}"))

    def ok(self, party: Party, event: str, msg: msgspec.Struct) -> dict[str, Any]:
        outcome = self.send(party, event, msg)
        assert outcome.error is None, outcome.error.as_dict()
        assert outcome.reply is not None
        reply: dict[str, Any] = msgspec.to_builtins(outcome.reply)
        return reply

    def refused(self, party: Party, event: str, msg: msgspec.Struct) -> str:
        outcome = self.send(party, event, msg)
        assert outcome.error is not None, f"{event} was not refused"
        return outcome.error.code

    def advance(self, seconds: float) -> Outcome:
        self.now += seconds
        return self.apply(Tick())

    # -- what happened

    def told(self, party: Party, event: str | None = None) -> list[dict[str, Any]]:
        return [msgspec.to_builtins(e.msg) for e in self.effects
                if isinstance(e, Send) and e.to == party and (event is None or e.event == event)]

    def last(self, party: Party, event: str) -> dict[str, Any]:
        found = self.told(party, event)
        assert found, f"{party} was told no {event}"
        return found[-1]

    def kinds(self, call_id: str) -> list[str]:
        out = []
        for e in self.effects:
            if isinstance(e, OpenCall) and e.case.call_id == call_id:
                out.append("requested")
            elif isinstance(e, CallEvent) and e.case.call_id == call_id:
                out.append(e.kind)
        return out

    def clear(self) -> None:
        self.effects.clear()


def kiosk(n: int) -> Party:
    return Party(KIOSK, f"k{n}")


def clerk(n: int) -> Party:
    return Party(CLERK, f"c{n}")
