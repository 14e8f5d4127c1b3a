"""Property tests of the switch: random kiosks, clerks and their events, with invariants of the call policy.

A hypothesis state machine connects and drops kiosks and clerks, sends every
kind of event (right and wrong), and lets time pass. After every step:

- a call has at most one clerk, and a clerk is in at most one call or ring;
- no message about a call goes to anyone outside it (its kiosk, the clerk rung
  for it or talking in it);
- a transferred case keeps its id;
- a call's records are well ordered: ``requested`` first, nothing after ``ended``;
- every call that ends in conversation owes exactly one wrap-up: it is either still owed
  or filed once, never twice;
- a refused command has no effect at all.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from signaling import messages as m
from signaling.calls import ANSWERED
from signaling.effects import CallEvent, FileWrapUp, OpenCall, Send
from tests.signaling.switch_world import World, clerk, clerk_card, kiosk, kiosk_card

KIOSKS = range(3)
CLERKS = range(3)
CLERK_PROFILES = {0: (("tax",), ("c/d1",)), 1: (("tax", "market"), ("c",)), 2: (("market",), ("c/d1/t1",))}
KIOSK_REGIONS = {0: "c/d1/t1/p1", 1: "c/d1/t1/p2", 2: "c/d2/t1/p1"}
FIELDS = ("tax", "market")


def card(n: int) -> Any:
    fields, regions = CLERK_PROFILES[n]
    return clerk_card(n, fields=fields, regions=regions)


class SwitchMachine(RuleBasedStateMachine):
    @initialize(grace=st.sampled_from([0.0, 30.0]), wrapup=st.sampled_from([0.0, 180.0]))
    def setup(self, grace: float, wrapup: float) -> None:
        self.w = World.make(roster=tuple(card(n) for n in CLERKS), reconnect_grace_s=grace,
                            wrapup_timeout_s=wrapup)
        self.seen = 0  # effects checked so far
        self.participants: dict[str, set[Any]] = defaultdict(set)  # call id -> who may hear of it
        self.cases: dict[str, str] = {}  # call id -> case id, as opened
        self.ended: set[str] = set()
        self.answered: set[str] = set()
        self.filed: Counter[str] = Counter()
        for n in KIOSKS:  # everyone starts connected (and comes and goes from there)
            self.w.connect_kiosk(kiosk_card(n, KIOSK_REGIONS[n]))
        for n in CLERKS:
            self.w.connect_clerk(card(n))

    # -- who comes and goes

    @rule(n=st.sampled_from(KIOSKS))
    def kiosk_connects(self, n: int) -> None:
        self.w.connect_kiosk(kiosk_card(n, KIOSK_REGIONS[n]))

    @rule(n=st.sampled_from(CLERKS), available=st.booleans())
    def clerk_connects(self, n: int, available: bool) -> None:
        self.w.connect_clerk(card(n), available=False)
        if available:
            self.w.send(clerk(n), "set_status", m.SetStatus("available"))

    @rule(n=st.sampled_from(KIOSKS), lost=st.booleans())
    def kiosk_drops(self, n: int, lost: bool) -> None:
        self.w.drop(kiosk(n), lost)

    @rule(n=st.sampled_from(CLERKS), lost=st.booleans())
    def clerk_drops(self, n: int, lost: bool) -> None:
        self.w.drop(clerk(n), lost)

    @rule(seconds=st.sampled_from([1.0, 15.0, 25.0, 130.0, 200.0]))
    def time_passes(self, seconds: float) -> None:
        self.w.advance(seconds)

    # -- what they send (to their own calls, and to others')

    def _some_call(self, data: st.DataObject) -> str:
        known = sorted(self.cases) or ["nope"]
        return str(data.draw(st.sampled_from(known)))

    @rule(field=st.sampled_from(FIELDS), consent=st.sampled_from([None, True, False]), data=st.data())
    def a_connected_kiosk_requests(self, field: str, consent: bool | None, data: st.DataObject) -> None:
        connected = sorted(self.w.switch.kiosks) or ["k0"]
        n = int(data.draw(st.sampled_from(connected))[1:])
        self.w.send(kiosk(n), "request_call", m.RequestCall(field, "zh", consent))

    @rule(data=st.data())
    def a_connected_clerk_becomes_available(self, data: st.DataObject) -> None:
        connected = sorted(self.w.switch.clerks) or ["c0"]
        self.w.send(clerk(int(data.draw(st.sampled_from(connected))[1:])), "set_status", m.SetStatus("available"))

    @rule(n=st.sampled_from(KIOSKS), event=st.sampled_from(["cancel_call", "hangup", "media_connected",
                                                            "media_failed"]), data=st.data())
    def kiosk_acts(self, n: int, event: str, data: st.DataObject) -> None:
        self.w.send(kiosk(n), event, m.CallRef(self._some_call(data)))

    @rule(n=st.sampled_from(CLERKS), event=st.sampled_from(["accept", "decline", "hangup", "media_connected",
                                                            "media_failed"]), data=st.data())
    def clerk_acts(self, n: int, event: str, data: st.DataObject) -> None:
        self.w.send(clerk(n), event, m.CallRef(self._some_call(data)))

    @rule(n=st.sampled_from(CLERKS), status=st.sampled_from(["available", "away"]))
    def clerk_status(self, n: int, status: str) -> None:
        self.w.send(clerk(n), "set_status", m.SetStatus(status))  # type: ignore[arg-type]

    @rule(n=st.sampled_from(CLERKS), from_kiosk=st.booleans(), attempt=st.sampled_from([0, 1]), data=st.data())
    def signal(self, n: int, from_kiosk: bool, attempt: int, data: st.DataObject) -> None:
        sig = m.Signal(self._some_call(data), description=m.SessionDescription("offer", "v=0"), attempt=attempt)
        self.w.send(kiosk(n) if from_kiosk else clerk(n), "signal", sig)

    @rule(n=st.sampled_from(CLERKS), field=st.sampled_from(FIELDS), data=st.data())
    def transfer(self, n: int, field: str, data: st.DataObject) -> None:
        self.w.send(clerk(n), "transfer", m.Transfer(self._some_call(data), field))

    @rule(n=st.sampled_from(CLERKS), data=st.data())
    def wrap_up(self, n: int, data: st.DataObject) -> None:
        call_id = self._some_call(data)
        matter = "consultation" if self.w.switch.ended.get(call_id) is None or \
            self.w.switch.ended.get(call_id).case.field == "tax" else "cancellation"  # type: ignore[union-attr]
        self.w.send(clerk(n), "wrap_up", m.WrapUp(call_id, [m.MatterIn(matter, "completed")]))

    # -- and what they would do in their own calls (so that the random ones reach answered, ended, filed)

    @rule()
    def rung_clerk_accepts(self) -> None:
        for call in list(self.w.switch.engine.calls.values()):
            if call.state.value == "ringing" and call.clerk_id is not None:
                self.w.send(clerk(int(call.clerk_id[1:])), "accept", m.CallRef(call.id))
                return

    @rule(by_clerk=st.booleans(), how=st.sampled_from(["hangup", "transfer", "media_failed"]))
    def a_participant_ends_a_call(self, by_clerk: bool, how: str) -> None:
        for call_id, live in list(self.w.switch.calls.items()):
            if live.clerk is None:
                continue
            who = clerk(int(live.clerk.id[1:])) if by_clerk or how == "transfer" else kiosk(int(live.kiosk.id[1:]))
            other = next(f for f in FIELDS if f != live.case.field)
            msg = m.Transfer(call_id, other) if how == "transfer" else m.CallRef(call_id)
            self.w.send(who, how, msg)
            return

    @rule()
    def a_clerk_files_an_owed_wrap_up(self) -> None:
        for owed in list(self.w.switch.wrapups):
            matter = "consultation" if owed.case.field == "tax" else "cancellation"
            self.w.send(clerk(int(owed.clerk_id[1:])), "wrap_up", m.WrapUp(owed.case.call_id,
                                                                           [m.MatterIn(matter, "completed")]))
            return

    @rule(n=st.sampled_from(KIOSKS), data=st.data())
    def rate(self, n: int, data: st.DataObject) -> None:
        self.w.send(kiosk(n), "rate", m.Rate(self._some_call(data), "satisfied"))

    # -- checks

    @invariant()
    def the_policy_holds(self) -> None:
        """All checks, in order: the new effects first (the others rely on what they tell)."""
        if not hasattr(self, "w"):
            return
        self._new_effects_are_well_formed()
        self._one_clerk_a_call_one_call_a_clerk()
        self._every_ended_answered_call_owes_exactly_one_wrap_up()

    def _new_effects_are_well_formed(self) -> None:
        for e in self.w.effects[self.seen:]:
            if isinstance(e, OpenCall):
                call_id = e.case.call_id
                assert call_id not in self.cases, "a call is opened once"
                self.cases[call_id] = e.case.case_id
                self.participants[call_id].add(kiosk(int(e.kiosk_id[1:])))
                if e.transferred_from is not None:
                    assert e.case.case_id == self.cases[e.transferred_from], "a transferred case keeps its id"
            elif isinstance(e, CallEvent):
                call_id = e.case.call_id
                assert call_id in self.cases, f"{e.kind} before requested"
                assert call_id not in self.ended or e.kind.startswith("recording"), f"{e.kind} after ended"
                if e.kind == "rung":
                    self.participants[call_id].add(clerk(int(e.data["clerk_id"][1:])))
                if e.kind == "accepted":
                    self.answered.add(call_id)
                if e.kind == "ended":
                    self.ended.add(call_id)
                    if e.data["clerk_id"] is None:  # it ended while waiting (its clerk had dropped): nobody answers it
                        self.answered.discard(call_id)
            elif isinstance(e, FileWrapUp):
                self.filed[e.case.call_id] += 1
                assert e.case.call_id in self.answered and e.case.call_id in self.ended
            elif isinstance(e, Send):
                call_id = getattr(e.msg, "call_id", None)
                if call_id is not None and e.event != "welcome":
                    assert e.to in self.participants[call_id], f"{e.event} of {call_id} went to {e.to}"
        self.seen = len(self.w.effects)

    def _one_clerk_a_call_one_call_a_clerk(self) -> None:
        sw = self.w.switch
        holders = Counter(c.clerk_id for c in sw.engine.calls.values() if c.clerk_id is not None)
        assert all(n == 1 for n in holders.values()), holders
        for clerk_id, state in sw.engine.clerks.items():
            if state.call_id is not None:
                assert sw.engine.calls[state.call_id].clerk_id == clerk_id
        for call_id, live in sw.calls.items():
            call = sw.engine.calls[call_id]
            if call.state in ANSWERED:
                assert live.clerk is not None and live.clerk.id == call.clerk_id

    def _every_ended_answered_call_owes_exactly_one_wrap_up(self) -> None:
        for call_id in self.answered & self.ended:
            owed = self.w.switch.wrapups.get(call_id) is not None
            assert self.filed[call_id] + owed == 1, (call_id, self.filed[call_id], owed)


    def teardown(self) -> None:
        if hasattr(self, "w"):
            REACHED.update({"answered": bool(self.answered), "ended": bool(self.answered & self.ended),
                            "filed": bool(self.filed), "transferred": any(k != v for k, v in self.cases.items())})


REACHED: Counter[str] = Counter()  # how many examples reached each kind of state (checked below)

SwitchMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
TestSwitchProperties = SwitchMachine.TestCase


def test_the_machine_reaches_answered_ended_filed_and_transferred_calls() -> None:
    """The random walk does get where the invariants matter (run after the machine in this module)."""
    assert all(REACHED[k] > 0 for k in ("answered", "ended", "filed", "transferred")), REACHED
