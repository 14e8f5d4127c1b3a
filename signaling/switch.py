"""The switch: the whole call policy, over the routing engine, as a pure function of commands and time.

:meth:`Switch.apply` takes one :mod:`command <signaling.commands>` and the
wall-clock time and returns an :class:`Outcome`: the answer for the sender and
the :mod:`effects <signaling.effects>` (records, messages, disconnects,
recorder work). It owns everything a call is beyond routing: who is connected,
the participants, transfers within a case, media attempts, recording policy
and consent, the grace a dropped connection gets, wrap-ups and ratings. It
never awaits, never emits and does no I/O; the server's one writer carries the
effects out.

A command that is refused changes nothing: every check comes before the first
change of state.
"""

from __future__ import annotations

import heapq
import pickle
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from signaling import errors, events
from signaling import messages as m
from signaling.calls import ANSWERED, WAITING, Call, CallState
from signaling.casefile import EndedCall, EndedCalls, PendingCallbacks, PendingWrapUp, WrapUps
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
    RecorderAnswered,
    RecorderLost,
    Revoked,
    RosterChanged,
    SendPositions,
    Tick,
)
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
    StageWidened,
)
from signaling.effects import (
    CallEvent,
    CaseRef,
    Drop,
    Effect,
    FinishRecording,
    OpenCall,
    QueueMoved,
    Send,
    WarmRecorder,
)
from signaling.errors import SignalingError
from signaling.events import seconds
from signaling.policy import CallPolicy
from signaling.regions import RegionError
from signaling.routing import RoutingEngine, eligible
from signaling.turn import ice_servers_for_call, transport_policy

WRAPUPS_LISTED_S = 86_400.0  # welcome lists the clerk's wrap-ups owed from the last day


@dataclass
class LiveCall:
    """A call from its request to its end, beyond what routing knows."""

    case: CaseRef
    kiosk: KioskCard
    language: str
    consent: bool | None  # the visitor's answer to the recording notice (None: not asked)
    record: bool  # whether the participants also send their media to the recorder
    clerk: ClerkCard | None = None  # who answered
    ice: list[dict[str, Any]] = field(default_factory=list)  # minted when answered, for both participants
    media_attempt: int = 0  # the peer connection in use: 0 the first, 1 after the one restart
    media_reported: set[str] = field(default_factory=set)
    transferred_to: m.TransferredTo | None = None

    @property
    def id(self) -> str:
        return self.case.call_id


@dataclass(frozen=True)
class Outcome:
    reply: msgspec.Struct | None  # what the sender's acknowledgement carries (None: the command has no sender)
    error: SignalingError | None = None
    effects: tuple[Effect, ...] = ()


class Switch:
    def __init__(self, policy: CallPolicy, roster: Iterable[ClerkCard] = (),
                 wrapups: Iterable[PendingWrapUp] = (), ended: Iterable[EndedCall] = ()) -> None:
        self.policy = policy
        self.engine = RoutingEngine(policy.regions, policy.stages, policy.ring_timeout_s, policy.default_handle_s,
                                    policy.wrapup_timeout_s)
        self.kiosks: dict[str, tuple[str, KioskCard]] = {}  # connected kiosks: id -> (connection, card)
        self.clerks: dict[str, tuple[str, ClerkCard]] = {}  # connected clerks
        self.calls: dict[str, LiveCall] = {}
        self.kiosk_calls: dict[str, str] = {}  # kiosk id -> its live call
        self.wrapups = WrapUps(wrapups)
        self.wrapping: dict[str, str] = {}  # clerk id -> the call whose wrap-up holds them (status wrap_up)
        self.ended = EndedCalls(ended)
        self.callbacks = PendingCallbacks()  # callback requests not yet due, by kiosk: a repeated one is merged
        self.roster: dict[str, ClerkCard] = {c.id: c for c in roster}
        self.absent: dict[Party, float] = {}  # dropped participants of calls in progress -> until when they may return
        self.returning: dict[str, tuple[bool, float]] = {}  # clerk id -> (was available, until) after a lost connection
        self._absences: list[tuple[float, str, str]] = []  # (until, role, id), lazily pruned
        self._served: dict[tuple[str, str, str], bool] = {}
        self._fields = [m.FieldInfo(f.id, f.icon, f.recording.value, dict(f.names),
                                    [m.MatterInfo(x.id, dict(x.names)) for x in f.matters])
                        for f in policy.catalog]

    # ------------------------------------------------------------------ the one entry

    def apply(self, cmd: Command, now: float) -> Outcome:
        """Apply one command at wall-clock time ``now``."""
        out: list[Effect] = []
        try:
            reply = self._dispatch(cmd, now, out)
        except SignalingError as exc:
            return Outcome(None, exc)
        except RegionError as exc:  # a kiosk or clerk placed in a region the configuration no longer has
            return Outcome(None, SignalingError(errors.UNKNOWN_REGION, str(exc)))
        return Outcome(reply, None, tuple(out))

    def next_deadline(self) -> float | None:
        """When :class:`Tick` has something to do next."""
        heads = [d for d in (self.engine.next_deadline(), self._next_absence()) if d is not None]
        return min(heads) if heads else None

    def _dispatch(self, cmd: Command, now: float, out: list[Effect]) -> msgspec.Struct | None:
        match cmd:
            case Received(party=party, conn=conn, event=event, msg=msg, fresh=fresh):
                self._require_connection(party, conn)
                handler = (events.KIOSK_EVENTS if party.role == KIOSK else events.CLERK_EVENTS).get(event)
                if handler is None:
                    raise SignalingError(errors.UNKNOWN_EVENT, f"unknown event {event!r}")
                return handler(self, party, msg, fresh, now, out)
            case Tick():
                self._tick(now, out)
            case KioskConnected(conn=conn, kiosk=kiosk, again=again):
                if not (again and kiosk.id in self.kiosks):  # an announcement never replaces a connection
                    self._kiosk_connected(conn, kiosk, now, out)
            case ClerkConnected(conn=conn, clerk=clerk, again=again):
                if not (again and clerk.id in self.clerks):
                    self._clerk_connected(conn, clerk, now, out)
            case Disconnected(party=party, conn=conn, lost=lost):
                self._disconnected(party, conn, lost, now, out)
            case RecorderAnswered(call_id=call_id, participant=who, error=error):
                self._recorder_answered(call_id, who, error, now, out)
            case RecorderLost(call_id=call_id, participant=who):
                self._recorder_lost(call_id, who, now, out)
            case Revoked(id=ident):
                self._revoked(ident, out)
            case SendPositions(groups=groups):
                out.extend(self.queue_positions(groups))
            case RosterChanged(clerks=clerks):
                self.roster = {c.id: c for c in clerks}
                self._served.clear()
            case _:
                raise SignalingError(errors.UNKNOWN_EVENT, f"unknown command {type(cmd).__name__}")
        return None

    def told_wait(self, call_id: str, wait: float | None) -> float | None:
        """The estimate a waiting visitor is told: the engine's (which counts every online clerk who could take
        the call), or None when each of those clerks is away, so that the kiosk never promises a wait that
        nobody is there to keep (it says so and offers a call back)."""
        if wait is None:
            return None
        call = self.engine.calls[call_id]
        regions = self.engine.regions
        depth = min(2, len(regions.levels))
        above = set(regions.ancestors(call.region)[: depth - 1])
        district = regions.ancestor_at(call.region, depth)
        for clerk in self.engine.clerks.values():
            p = clerk.profile
            if clerk.status is ClerkStatus.AWAY or call.field not in p.fields:
                continue
            if any(r in above or district in regions.ancestors(r) for r in p.regions):
                return wait
        return None

    def _groups_served_by(self, clerk_id: str) -> set[tuple[str, str]]:
        clerk = self.engine.clerks.get(clerk_id)
        if clerk is None:
            return set()
        fields = set(clerk.profile.fields)
        return {(c.field, self.engine.district_of(c.region)) for c in self.engine.waiting_calls() if c.field in fields}

    def queue_positions(self, groups: Iterable[tuple[str, str]]) -> list[Send]:
        """Position updates for every waiting call of the given queues (field, district)."""
        sends = []
        for f, district in groups:
            for call_id, position, engine_wait in self.engine.waiting_in(f, district):
                wait = self.told_wait(call_id, engine_wait)
                live = self.calls[call_id]
                if live.kiosk.id in self.kiosks:
                    stage = self.engine.calls[call_id].stage
                    sends.append(Send(Party(KIOSK, live.kiosk.id),
                                      m.QueuedMsg(call_id, position, seconds(wait), stage, "")))
        return sends

    # ------------------------------------------------------------------ snapshots

    def snapshot(self) -> bytes:
        """The whole live state (not the policy) as bytes; :meth:`restore` rebuilds it."""
        state = dict(self.__dict__)
        del state["policy"]
        engine = dict(self.engine.__dict__)
        del engine["regions"], engine["stages"]
        state["engine"] = engine
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, policy: CallPolicy, data: bytes) -> Switch:
        state = pickle.loads(data)
        switch = cls(policy)
        engine = state.pop("engine")
        switch.__dict__.update(state)
        switch.engine.__dict__.update(engine)
        return switch

    # ------------------------------------------------------------------ who is connected

    def _require_connection(self, party: Party, conn: str) -> None:
        live = (self.kiosks if party.role == KIOSK else self.clerks).get(party.id)
        if live is None or live[0] != conn:
            raise SignalingError(errors.REPLACED, "this connection is no longer the kiosk's or clerk's current one "
                                 "(a newer connection replaced it, or it is closing); connect again")

    def connected(self, party: Party) -> bool:
        return party.id in (self.kiosks if party.role == KIOSK else self.clerks)

    def send(self, out: list[Effect], party: Party, msg: msgspec.Struct) -> None:
        if self.connected(party):
            out.append(Send(party, msg))

    def _kiosk_connected(self, conn: str, kiosk: KioskCard, now: float, out: list[Effect]) -> None:
        party = Party(KIOSK, kiosk.id)
        old = self.kiosks.get(kiosk.id)
        if old is not None and old[0] != conn:
            out.append(Drop(party, old[0]))  # the newer connection wins; the older one counts as lost
            self._kiosk_gone(kiosk.id, True, now, out)
        self.kiosks[kiosk.id] = (conn, kiosk)
        self.absent.pop(party, None)
        live = self.calls.get(self.kiosk_calls.get(kiosk.id, ""))
        call = self.engine.calls.get(live.id) if live else None
        back: m.KioskCall | None = None
        if live is not None and call is not None:
            if call.state in ANSWERED:
                back = m.KioskCall(live.id, live.case.field, live.language, call.state.value,  # type: ignore[arg-type]
                                   self._kiosk_matched(live))
            else:
                back = m.KioskCall(live.id, live.case.field, live.language)
        names = self.policy.regions.regions.get(kiosk.region)
        out.append(Send(party, m.KioskWelcome(
            m.KioskInfo(kiosk.id, kiosk.name, kiosk.region, dict(names.names) if names else {}),
            self._fields, list(self.policy.languages), self.policy.recording_retention_days, back)))
        if live is not None and call is not None:
            if call.state is CallState.HELD:
                out.append(self.event(live, "resumed", str(party), now))
                self.carry(self.engine.resume(live.id, now), now, out)
            elif call.state in ANSWERED:
                out.append(self.event(live, "reconnected", str(party), now, {"side": "visitor"}))
                if call.clerk_id is not None:
                    self.send(out, Party(CLERK, call.clerk_id), m.PeerConnection(live.id, True, 0.0))

    def _clerk_connected(self, conn: str, clerk: ClerkCard, now: float, out: list[Effect]) -> None:
        party = Party(CLERK, clerk.id)
        for r in clerk.regions:
            self.policy.regions.get(r)
        old = self.clerks.get(clerk.id)
        in_call = self._clerk_in_call(clerk.id)
        if old is not None and old[0] != conn:
            out.append(Drop(party, old[0]))  # a second console takes over; its calls in progress go with it
            if in_call is None:
                self._clerk_offline(clerk.id, now, out)
        self.clerks[clerk.id] = (conn, clerk)
        if self.roster.get(clerk.id) != clerk:
            self.roster[clerk.id] = clerk
            self._served.clear()
        self.absent.pop(party, None)
        was_available, until = self.returning.pop(clerk.id, (False, 0.0))
        decisions: list[Decision] = []
        if clerk.id not in self.engine.clerks:
            decisions = self.engine.clerk_online(clerk.profile(), now, available=was_available and until >= now)
        state = self.engine.clerks[clerk.id]
        back: m.ClerkCall | None = None
        if in_call is not None:
            call = self.engine.calls[in_call.id]
            back = m.ClerkCall(in_call.id, call.state.value, self._clerk_matched(in_call))  # type: ignore[arg-type]
        pending = [m.PendingWrapUp(p.case.call_id, p.case.field, p.ended_at)
                   for p in self.wrapups.of_clerk(clerk.id, now - WRAPUPS_LISTED_S)]
        regions = {r: dict(self.policy.regions.get(r).names) for r in clerk.regions}
        out.append(Send(party, m.ClerkWelcome(
            m.ClerkInfo(clerk.id, clerk.name, clerk.center, list(clerk.fields), list(clerk.regions), regions,
                        list(clerk.languages)),
            state.status.value, self.policy.ring_timeout_s, self.policy.wrapup_timeout_s, self._fields,
            pending, back)))
        if in_call is not None:
            out.append(self.event(in_call, "reconnected", str(party), now, {"side": "clerk"}))
            self.send(out, Party(KIOSK, in_call.kiosk.id), m.PeerConnection(in_call.id, True, 0.0))
        self.carry(decisions, now, out)

    def _disconnected(self, party: Party, conn: str, lost: bool, now: float, out: list[Effect]) -> None:
        conns = self.kiosks if party.role == KIOSK else self.clerks
        current = conns.get(party.id)
        if current is None or current[0] != conn:
            return  # an older connection, already replaced
        del conns[party.id]
        if party.role == KIOSK:
            self._kiosk_gone(party.id, lost, now, out)
            return
        in_call = self._clerk_in_call(party.id)
        grace = self.policy.reconnect_grace_s
        if in_call is not None and lost and grace > 0:
            self._absent(party, now + grace)
            out.append(self.event(in_call, "connection_lost", str(party), now, {"side": "clerk", "grace_s": grace}))
            self.send(out, Party(KIOSK, in_call.kiosk.id), m.PeerConnection(in_call.id, False, grace))
            return
        state = self.engine.clerks.get(party.id)
        if lost and grace > 0 and state is not None:
            self.returning[party.id] = (state.status is ClerkStatus.AVAILABLE, now + grace)
            self._absent(party, now + grace)
        self._clerk_offline(party.id, now, out)

    def _kiosk_gone(self, kiosk_id: str, lost: bool, now: float, out: list[Effect]) -> None:
        """A kiosk's connection ended: a waiting call keeps its place for the grace period; a conversation, if lost."""
        live = self.calls.get(self.kiosk_calls.get(kiosk_id, ""))
        if live is None:
            return
        call = self.engine.calls[live.id]
        grace = self.policy.reconnect_grace_s
        party = Party(KIOSK, kiosk_id)
        if grace > 0 and call.state in WAITING:
            decisions = self.engine.hold(live.id, now, now + grace)
            out.append(self.event(live, "held", "system", now, {"grace_s": grace}))
            self.carry(decisions, now, out)
        elif grace > 0 and lost and call.state in ANSWERED:
            self._absent(party, now + grace)
            out.append(self.event(live, "connection_lost", str(party), now, {"side": "visitor", "grace_s": grace}))
            if call.clerk_id is not None:
                self.send(out, Party(CLERK, call.clerk_id), m.PeerConnection(live.id, False, grace))
        elif call.state is not CallState.HELD:
            self.carry(self.engine.end_call(live.id, now, EndReason.VISITOR_DISCONNECTED, "visitor"), now, out)

    def _clerk_offline(self, clerk_id: str, now: float, out: list[Effect]) -> None:
        if clerk_id in self.engine.clerks:
            self.wrapping.pop(clerk_id, None)
            self.carry(self.engine.clerk_offline(clerk_id, now), now, out)

    def _clerk_in_call(self, clerk_id: str) -> LiveCall | None:
        state = self.engine.clerks.get(clerk_id)
        if state is None or state.call_id is None:
            return None
        call = self.engine.calls.get(state.call_id)
        return self.calls[state.call_id] if call is not None and call.state in ANSWERED else None

    def _revoked(self, ident: str, out: list[Effect]) -> None:
        for role, conns in ((KIOSK, self.kiosks), (CLERK, self.clerks)):
            if ident in conns:
                out.append(Drop(Party(role, ident), conns[ident][0]))
        if self.roster.pop(ident, None) is not None:
            self._served.clear()

    # ------------------------------------------------------------------ time

    def _absent(self, party: Party, until: float) -> None:
        self.absent[party] = until
        heapq.heappush(self._absences, (until, party.role, party.id))

    def _next_absence(self) -> float | None:
        heap = self._absences
        while heap:
            until, role, ident = heap[0]
            if self.absent.get(Party(role, ident)) == until:  # type: ignore[arg-type]
                return until
            heapq.heappop(heap)
        return None

    def _tick(self, now: float, out: list[Effect]) -> None:
        self.carry(self.engine.tick(now), now, out)
        while (due := self._next_absence()) is not None and due <= now:
            _, role, ident = heapq.heappop(self._absences)
            party = Party(role, ident)  # type: ignore[arg-type]
            del self.absent[party]
            if role == KIOSK:
                live = self.calls.get(self.kiosk_calls.get(ident, ""))
                if live is not None:
                    self.carry(self.engine.end_call(live.id, now, EndReason.VISITOR_DISCONNECTED, "visitor"), now,
                                out)
            else:
                self.returning.pop(ident, None)
                if ident not in self.clerks:
                    self._clerk_offline(ident, now, out)

    # ------------------------------------------------------------------ decisions -> effects

    def event(self, live: LiveCall, kind: str, actor: str, now: float, data: dict[str, Any] | None = None,
               update: dict[str, Any] | None = None) -> CallEvent:
        return CallEvent(live.case, kind, actor, now, data or {}, update)

    def carry(self, decisions: Iterable[Decision], now: float, out: list[Effect]) -> None:
        for d in decisions:
            match d:
                case Ring(call_id=call_id, clerk_id=clerk_id, deadline=deadline, ring=ring):
                    live = self.calls[call_id]
                    call = self.engine.calls[call_id]
                    out.append(self.event(live, "rung", "system", now, {"clerk_id": clerk_id, "ring": ring}))
                    kiosk = live.kiosk
                    self.send(out, Party(CLERK, clerk_id), m.RingMsg(
                        call_id, live.case.field, live.language, kiosk.region, self._region_names(kiosk.region),
                        m.KioskName(kiosk.name), round(now - call.requested_at, 1), round(deadline - now, 1), ring))
                    self.send(out, Party(KIOSK, kiosk.id), m.Ringing(call_id))
                case RingEnded(call_id=call_id, clerk_id=clerk_id, reason=reason):
                    kind = {"timeout": "missed", "declined": "declined"}.get(reason.value, "ring_withdrawn")
                    actor = f"clerk:{clerk_id}" if kind == "declined" else "system"
                    out.append(self.event(self.calls[call_id], kind, actor, now,
                                           {"clerk_id": clerk_id, "reason": reason.value}))
                    self.send(out, Party(CLERK, clerk_id), m.RingEndedMsg(call_id, reason.value))
                case ClerkStatusChanged(clerk_id=clerk_id, status=status, reason=reason):
                    self.send(out, Party(CLERK, clerk_id), m.StatusMsg(status.value, reason))
                    if status in (ClerkStatus.AWAY, ClerkStatus.AVAILABLE):
                        # a clerk came or went: the waiting visitors they could serve hear whether anyone is there
                        out.extend(self.queue_positions(self._groups_served_by(clerk_id)))
                case Queued(call_id=call_id):
                    live = self.calls[call_id]
                    wait = self.told_wait(call_id, d.estimated_wait_s)
                    out.append(self.event(live, "queued", "system", now, {
                        "position": d.position, "estimated_wait_s": wait, "reason": d.reason}))
                    self.send(out, Party(KIOSK, live.kiosk.id), m.QueuedMsg(
                        call_id, d.position, seconds(wait), d.stage, d.reason))
                case StageWidened(call_id=call_id, stage=stage, name=name):
                    out.append(self.event(self.calls[call_id], "stage_widened", "system", now,
                                           {"stage": stage, "name": name}))
                case Matched(call_id=call_id, clerk_id=clerk_id):
                    self._matched(self.calls[call_id], clerk_id, now, out)
                case CallEnded():
                    self._ended(d, now, out)
                case QueueChanged(field=f, district=district):
                    out.append(QueueMoved(f, district))

    def _matched(self, live: LiveCall, clerk_id: str, now: float, out: list[Effect]) -> None:
        live.clerk = self.clerks[clerk_id][1]
        p = self.policy
        live.ice = ice_servers_for_call(p.ice_servers, live.id, now, p.turn_secret, p.turn_ttl_s)
        out.append(self.event(live, "accepted", f"clerk:{clerk_id}", now, {"clerk_id": clerk_id},
                               {"answered_at": now, "clerk_id": clerk_id}))
        if live.record:
            out.append(WarmRecorder())
        self.send(out, Party(KIOSK, live.kiosk.id), self._kiosk_matched(live))
        self.send(out, Party(CLERK, clerk_id), self._clerk_matched(live))

    def _kiosk_matched(self, live: LiveCall) -> m.KioskMatched:
        assert live.clerk is not None
        return m.KioskMatched(live.id, "offerer", live.ice, live.case.field, live.record,
                              m.ClerkPeer(live.clerk.name, live.clerk.center),
                              transport_policy(self.policy.turn_relay_only))

    def _clerk_matched(self, live: LiveCall) -> m.ClerkMatched:
        k = live.kiosk
        return m.ClerkMatched(live.id, "answerer", live.ice, live.case.field, live.record,
                              m.KioskPeer(k.name, k.region, self._region_names(k.region), live.language),
                              transport_policy(self.policy.turn_relay_only))

    def _ended(self, d: CallEnded, now: float, out: list[Effect]) -> None:
        live = self.calls.pop(d.call_id)
        out.append(self.event(live, "ended", d.by, now, {"reason": d.reason.value, "clerk_id": d.clerk_id},
                               {"ended_at": now, "end_reason": d.reason.value, "ended_by": d.by}))
        kiosk = Party(KIOSK, live.kiosk.id)
        self.send(out, kiosk, m.KioskCallEnded(d.call_id, d.reason.value, d.by, live.transferred_to))
        if self.kiosk_calls.get(live.kiosk.id) == d.call_id:
            del self.kiosk_calls[live.kiosk.id]
        self.absent.pop(kiosk, None)
        self.ended.add(EndedCall(live.case, live.kiosk.id, d.clerk_id, now))
        if d.clerk_id is not None:
            self.wrapups.owe(PendingWrapUp(live.case, d.clerk_id, now))
            state = self.engine.clerks.get(d.clerk_id)
            wrap_up = state is not None and state.status is ClerkStatus.WRAP_UP
            if wrap_up:
                self.wrapping[d.clerk_id] = d.call_id
            clerk = Party(CLERK, d.clerk_id)
            self.send(out, clerk, m.ClerkCallEnded(d.call_id, d.reason.value, d.by, wrap_up))
            if clerk in self.absent and clerk.id not in self.clerks:  # gone mid-call: now only their status waits
                self.returning[clerk.id] = (False, self.absent[clerk])
        if live.record:
            out.append(FinishRecording(d.call_id))

    def _region_names(self, region: str) -> dict[str, str]:
        known = self.policy.regions.regions.get(region)
        return dict(known.names) if known else {}

    # ------------------------------------------------------------------ checks shared by the events

    def served_anywhere(self, field_id: str, language: str, region: str) -> bool:
        """Could any clerk on record (online or not) ever take this call, at the widest stage?"""
        key = (field_id, language, region)
        found = self._served.get(key)
        if found is None:
            p = self.policy
            probe = Call(id="probe", field=field_id, language=language, region=region, requested_at=0.0, seq=0)
            last = len(p.stages) - 1
            found = any(eligible(p.regions, p.stages, c.profile(), probe, last) for c in self.roster.values())
            self._served[key] = found
        return found

    def kiosk_call(self, party: Party, call_id: str) -> tuple[LiveCall, Call]:
        live = self.calls.get(call_id)
        if live is None:
            raise SignalingError(errors.NO_SUCH_CALL, f"no call {call_id} in progress")
        if live.kiosk.id != party.id:
            raise SignalingError(errors.NOT_PARTICIPANT, "this call belongs to another kiosk")
        return live, self.engine.calls[call_id]

    def clerk_call(self, party: Party, call_id: str, answered: bool) -> tuple[LiveCall, Call]:
        live = self.calls.get(call_id)
        if live is None:
            raise SignalingError(errors.NO_SUCH_CALL, f"no call {call_id} in progress")
        call = self.engine.calls[call_id]
        if call.clerk_id != party.id:
            raise SignalingError(errors.NOT_PARTICIPANT, "this call is not yours")
        if answered and call.state not in ANSWERED:
            raise SignalingError(errors.WRONG_STATE, f"the call is {call.state}; accept or decline it first")
        return live, call

    def open_call(self, call_id: str, case_id: str, kiosk: KioskCard, field_id: str, language: str,
                   consent: bool | None, transferred_from: str | None, now: float, out: list[Effect]) -> LiveCall:
        policy = self.policy.catalog.get(field_id).recording
        record = policy.records(consent)  # a transfer into an "always" field without consent is not recorded
        case = CaseRef(call_id, case_id, field_id, kiosk.region, self.policy.district_of(kiosk.region))
        live = LiveCall(case, kiosk, language, consent, record)
        out.append(OpenCall(case, kiosk.id, language, now, f"kiosk:{kiosk.id}", {
            "language": language, "kiosk": kiosk.name, "transferred_from": transferred_from,
            "recording": {"policy": policy.value, "consent": consent, "recorded": record}}, transferred_from))
        self.calls[call_id] = live
        self.kiosk_calls[kiosk.id] = call_id
        return live

    # ------------------------------------------------------------------ recorder

    def _recorder_answered(self, call_id: str, who: str, error: str, now: float, out: list[Effect]) -> None:
        live = self.calls.get(call_id)
        ended = self.ended.get(call_id)
        case = live.case if live is not None else ended.case if ended is not None else None
        if case is None:
            return
        actor = f"kiosk:{live.kiosk.id}" if live is not None and who == "visitor" else (
            f"clerk:{live.clerk.id}" if live is not None and live.clerk is not None else "system")
        if error:
            out.append(CallEvent(case, "recording_failed", actor, now, {"participant": who, "error": error}))
        else:
            out.append(CallEvent(case, "recording_started", actor, now, {"participant": who}))
            if live is None:  # the call ended while the recorder answered: close what it opened
                out.append(FinishRecording(call_id))

    def _recorder_lost(self, call_id: str, who: str, now: float, out: list[Effect]) -> None:
        live = self.calls.get(call_id)
        if live is None:
            return
        out.append(self.event(live, "recording_interrupted", "system", now, {"participant": who}))
        if who == "visitor":
            self.send(out, Party(KIOSK, live.kiosk.id), m.RecorderLost(call_id))
        elif live.clerk is not None:
            self.send(out, Party(CLERK, live.clerk.id), m.RecorderLost(call_id))
