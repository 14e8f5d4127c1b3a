"""The routing engine against its model: the same random events, the same decisions, step by step.

A hypothesis state machine builds a :class:`RoutingEngine` over the small
tree of ``test_routing_properties.py``: clerks log in away, calls arrive over
some seconds (stages widen as they wait), then some clerks become available
and accept what they are rung for, as ``bench/routing.py`` sets up its
engine. A :class:`~tests.signaling.model.NaiveEngine` starts from a copy of
that state. Then both get every event the engine takes: clerks logging in and
out, becoming available, going away, finishing a wrap-up; calls arriving,
rung clerks accepting or declining, hang-ups and cancellations, kiosks
dropping (held) and coming back, media connecting; time passing, by a step or
to the next deadline. Events that one of them refuses must be refused by the
other with the same error code.

After every event: the same decisions in the same order (or the same
refusal); the same next deadline; the same state, stage and clerk of every
call; the same status and call of every clerk; the same position and
estimated wait of every call.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from signaling.calls import CallState
from signaling.decisions import ClerkStatus, Decision, EndReason, Ring
from signaling.errors import SignalingError
from signaling.routing import ClerkProfile, RoutingEngine, Stage

from .model import NaiveEngine
from .test_routing_properties import KIOSK_REGIONS, STAGE_SETS, TREE, Profile, profiles

CLERK_IDS = tuple(f"k{i}" for i in range(6))
MAX_CALLS = 8
FIELDS = ("tax", "tax", "market")
LANGUAGES = ("zh", "zh", "zh", "en")

Engine = RoutingEngine | NaiveEngine
Outcome = list[Decision] | str  # the decisions, or the code of the refusal

calls = st.tuples(
    st.sampled_from(FIELDS), st.sampled_from(LANGUAGES), st.sampled_from(KIOSK_REGIONS),
    st.sampled_from([0, 0, 0, 1]), st.sampled_from([0.0, 10.0, 20.0, 30.0, 100.0, 150.0]),
)
# mostly round steps, so that deadlines of different kinds and calls often fall on the same instant
steps = st.one_of(
    st.sampled_from([0.0, 5.0, 10.0, 20.0, 20.0, 40.0, 45.0, 60.0, 100.0, 120.0, 300.0]),
    st.floats(min_value=0, max_value=30, allow_nan=False, allow_infinity=False),
)
ENDINGS = (
    (EndReason.HANGUP, "clerk"), (EndReason.HANGUP, "visitor"), (EndReason.CANCELLED, "visitor"),
    (EndReason.VISITOR_DISCONNECTED, "system"), (EndReason.TRANSFERRED, "clerk"), (EndReason.MEDIA_FAILED, "visitor"),
)


def outcome(event: Callable[[Engine], list[Decision]], engine: Engine) -> Outcome:
    try:
        return event(engine)
    except SignalingError as exc:
        return exc.code


class ModelMachine(RuleBasedStateMachine):
    engine: RoutingEngine
    model: NaiveEngine
    now: float

    @initialize(
        stages=st.sampled_from(STAGE_SETS),
        ring_timeout=st.sampled_from([20.0, 45.0]),
        wrapup=st.sampled_from([0.0, 30.0]),
        clerks=st.lists(profiles, min_size=1, max_size=4),
        first_calls=st.lists(calls, max_size=6),
        available=st.integers(min_value=0, max_value=4),
    )
    def setup(
        self, stages: tuple[Stage, ...], ring_timeout: float, wrapup: float, clerks: list[Profile],
        first_calls: list[tuple[str, str, str, int, float]], available: int,
    ) -> None:
        engine = RoutingEngine(TREE, stages, ring_timeout_s=ring_timeout, default_handle_s=300.0, wrapup_s=wrapup)
        now = 0.0
        for cid, profile in zip(CLERK_IDS, clerks, strict=False):
            engine.clerk_online(ClerkProfile(cid, *profile), now)
        self.call_ids = (f"call-{i}" for i in itertools.count())
        for f, lang, region, priority, dt in first_calls:
            now += dt
            engine.tick(now)
            engine.request_call(next(self.call_ids), f, lang, region, now, priority=priority)
        engine.tick(now)
        for cid in sorted(engine.clerks)[:available]:
            for d in engine.set_available(cid, now):
                if isinstance(d, Ring):
                    engine.accept(d.clerk_id, d.call_id, now)
        used = len(engine.clerks) + len(first_calls)  # sequence numbers the engine has given out
        self.engine, self.model, self.now = engine, NaiveEngine(engine, used + 1), now

    # ------------------------------------------------------------------ helpers

    def both(self, event: Callable[[Engine], list[Decision]]) -> Outcome:
        """Apply ``event`` to the engine and the model; they must decide the same."""
        got = outcome(event, self.engine)
        want = outcome(event, self.model)
        assert got == want, f"engine {got}\n model  {want}"
        return got

    def calls_in(self, *states: CallState) -> list[str]:
        return sorted(cid for cid, c in self.engine.calls.items() if c.state in states)

    # ------------------------------------------------------------------ clerks

    @rule(cid=st.sampled_from(CLERK_IDS), profile=profiles, available=st.booleans())
    def a_clerk_logs_in(self, cid: str, profile: Profile, available: bool) -> None:
        """A clerk logs in (refused if already online)."""
        self.both(lambda e: e.clerk_online(ClerkProfile(cid, *profile), self.now, available=available))

    @rule(cid=st.sampled_from(CLERK_IDS), action=st.sampled_from(["available", "available", "away", "wrapped up",
                                                                  "offline"]))
    def a_clerk_changes_status(self, cid: str, action: str) -> None:
        """Any clerk, online or not, in any status (refused where the engine refuses)."""
        if action == "available":
            self.both(lambda e: e.set_available(cid, self.now))
        elif action == "away":
            self.both(lambda e: e.set_away(cid, self.now))
        elif action == "wrapped up":
            self.both(lambda e: e.finish_wrapup(cid, self.now))
        else:
            self.both(lambda e: e.clerk_offline(cid, self.now))

    # ------------------------------------------------------------------ calls

    @precondition(lambda self: len(self.engine.calls) < MAX_CALLS)
    @rule(spec=calls)
    def a_call_arrives(self, spec: tuple[str, str, str, int, float]) -> None:
        f, lang, region, priority, _ = spec
        call_id = next(self.call_ids)
        self.both(lambda e: e.request_call(call_id, f, lang, region, self.now, priority=priority))

    @precondition(lambda self: bool(self.calls_in(CallState.RINGING)))
    @rule(data=st.data(), accept=st.booleans())
    def the_rung_clerk_answers(self, data: st.DataObject, accept: bool) -> None:
        call_id = data.draw(st.sampled_from(self.calls_in(CallState.RINGING)))
        clerk_id = self.engine.calls[call_id].clerk_id
        assert clerk_id is not None
        if accept:
            self.both(lambda e: e.accept(clerk_id, call_id, self.now))
        else:
            self.both(lambda e: e.decline(clerk_id, call_id, self.now))

    @rule(call_id=st.sampled_from([f"call-{i}" for i in range(10)]), clerk_id=st.sampled_from(CLERK_IDS),
          accept=st.booleans())
    def anyone_answers_any_call(self, call_id: str, clerk_id: str, accept: bool) -> None:
        """Mostly refused: the call is not ringing for that clerk, has ended or never was."""
        if accept:
            self.both(lambda e: e.accept(clerk_id, call_id, self.now))
        else:
            self.both(lambda e: e.decline(clerk_id, call_id, self.now))

    @precondition(lambda self: bool(self.engine.calls))
    @rule(data=st.data(), ending=st.sampled_from(ENDINGS))
    def a_call_ends(self, data: st.DataObject, ending: tuple[EndReason, str]) -> None:
        call_id = data.draw(st.sampled_from(sorted(self.engine.calls)))
        self.both(lambda e: e.end_call(call_id, self.now, *ending))

    @precondition(lambda self: bool(self.calls_in(CallState.CONNECTING, CallState.ACTIVE)))
    @rule(data=st.data(), how=st.sampled_from(["media", "media", "clerk gone"]),
          dt=st.sampled_from([0.0, 150.0, 400.0]))
    def a_conversation_goes_on(self, data: st.DataObject, how: str, dt: float) -> None:
        """Media connects, or after a while the clerk drops and the visitor goes back to the queue."""
        call_id = data.draw(st.sampled_from(self.calls_in(CallState.CONNECTING, CallState.ACTIVE)))
        if how == "media":
            self.both(lambda e: e.media_connected(call_id, self.now))
            return
        self.now += dt
        self.both(lambda e: e.tick(self.now))
        clerk_id = self.engine.calls[call_id].clerk_id
        assert clerk_id is not None
        self.both(lambda e: e.clerk_offline(clerk_id, self.now))

    @precondition(lambda self: bool(self.engine.calls))
    @rule(data=st.data(), grace=st.sampled_from([0.5, 10.0, 60.0, 200.0]))
    def a_kiosk_drops_or_comes_back(self, data: st.DataObject, grace: float) -> None:
        """Held while waiting, resumed when back (either refused in the wrong state)."""
        call_id = data.draw(st.sampled_from(sorted(self.engine.calls)))
        if data.draw(st.booleans()):
            self.both(lambda e: e.hold(call_id, self.now, until=self.now + grace))
        else:
            self.both(lambda e: e.resume(call_id, self.now))

    # ------------------------------------------------------------------ time

    @rule(dt=steps)
    def time_passes(self, dt: float) -> None:
        self.now += dt
        self.both(lambda e: e.tick(self.now))

    @precondition(lambda self: self.engine.next_deadline() is not None)
    @rule()
    def time_passes_to_the_next_deadline(self) -> None:
        deadline = self.engine.next_deadline()
        assert deadline is not None
        self.now = max(self.now, deadline)
        assert self.both(lambda e: e.tick(self.now)), "a due deadline produces a decision"

    # ------------------------------------------------------------------ the same state

    @invariant()
    def the_same_next_deadline(self) -> None:
        assert self.engine.next_deadline() == self.model.next_deadline()

    @invariant()
    def the_same_calls_and_clerks(self) -> None:
        def calls(e: Engine) -> dict[str, tuple[CallState, int, str | None, int, float | None]]:
            return {cid: (c.state, c.stage, c.clerk_id, c.priority, c.accepted_at) for cid, c in e.calls.items()}

        def clerks(e: Engine) -> dict[str, tuple[ClerkStatus, str | None, float, float | None]]:
            return {cid: (c.status, c.call_id, c.idle_since, c.wrapup_until) for cid, c in e.clerks.items()}

        assert calls(self.engine) == calls(self.model)
        assert clerks(self.engine) == clerks(self.model)

    @invariant()
    def the_same_positions_and_waits(self) -> None:
        for call_id in self.engine.calls:
            assert self.engine.position(call_id) == self.model.position(call_id), call_id
        for f in ("tax", "market"):
            assert self.engine.handle_time(f) == self.model.handle_time(f)


# a fixed budget: about 10 s on the 2-core development machine
ModelMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
TestRoutingAgainstModel = ModelMachine.TestCase
