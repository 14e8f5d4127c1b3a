"""The switchboard: live state of one node and the glue between sockets and the core.

The namespaces hand it validated messages from authenticated peers; it asks the
routing engine, keeps who-is-connected and which call is whose, and turns the
engine's decisions into emits. The engine itself stays pure (signaling/).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from server.live.ice import ice_servers_for_call
from server.live.recording_desk import RecorderUnavailableError, RecordingDesk
from server.records.casework import CaseWork
from server.records.chain import Records
from server.records.identities import Clerk, IdentityStore, Kiosk
from server.settings import Settings
from signaling import errors
from signaling.calls import Call, CallState
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
from signaling.errors import SignalingError
from signaling.media import SignalRoute, route_signal
from signaling.messages import (
    CallbackRequest,
    CallRef,
    Rate,
    RecorderOffer,
    RequestCall,
    SetStatus,
    Signal,
    Transfer,
    WrapUp,
    to_builtins,
)
from signaling.routing import ClerkProfile, RoutingEngine, eligible

logger = logging.getLogger(__name__)

KIOSK_NS = "/kiosk"
CLERK_NS = "/clerk"

Emit = Callable[[str, Any, str, str], Coroutine[Any, Any, None]]  # (event, data, sid, namespace)
Disconnect = Callable[[str, str], Awaitable[None]]  # (sid, namespace)


class Clock(Protocol):
    def now(self) -> float: ...


class SystemClock:
    def now(self) -> float:
        return time.monotonic()


@dataclass
class CallInfo:
    """What the server knows of a call beyond the engine's routing state."""

    id: str
    kiosk: Kiosk
    field: str
    language: str
    case_id: str
    clerk: Clerk | None = None
    media_reported: set[str] = dataclasses.field(default_factory=set)
    consent: bool | None = None  # the visitor's answer to the recording notice (None: not asked)
    record: bool = False  # whether the participants send their media to the recorder too
    media_attempt: int = 0  # the peer connection in use: 0 the first, 1 after the one restart


@dataclass
class Switchboard:
    settings: Settings
    identities: IdentityStore
    records: Records
    emit: Emit
    disconnect: Disconnect
    clock: Clock = field(default_factory=SystemClock)
    desk: RecordingDesk | None = None  # None: no recording on this server

    def __post_init__(self) -> None:
        s = self.settings
        self.engine = RoutingEngine(s.regions, s.stages, s.ring_timeout_s, s.default_handle_s, s.wrapup_timeout_s)
        self.casework = CaseWork(s, self.records.engine, self.records)
        self.wrapup_calls: dict[str, str] = {}  # clerk id -> the call they are wrapping up
        self._transfers: dict[str, dict[str, str]] = {}  # old call id -> {call_id, field} it went on to
        self.kiosk_sids: dict[str, str] = {}  # kiosk id -> sid
        self.clerk_sids: dict[str, str] = {}
        self.sid_kiosks: dict[str, Kiosk] = {}
        self.sid_clerks: dict[str, Clerk] = {}
        self.calls: dict[str, CallInfo] = {}
        self.kiosk_calls: dict[str, str] = {}  # kiosk id -> live call id
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._dirty: set[tuple[str, str]] = set()
        self._flush: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        for handle in (self._timer, self._flush):
            if handle is not None:
                handle.cancel()
        for task in list(self._tasks):
            task.cancel()

    # ------------------------------------------------------------ connections

    async def kiosk_connected(self, sid: str, kiosk: Kiosk) -> None:
        old = self.kiosk_sids.get(kiosk.id)
        if old is not None:
            logger.info("kiosk %s connected again; closing its older connection", kiosk.id)
            await self.kiosk_disconnected(old)
            await self.disconnect(old, KIOSK_NS)
        self.kiosk_sids[kiosk.id] = sid
        self.sid_kiosks[sid] = kiosk
        # after the connect handler returns, so the client has its CONNECT packet first
        self._spawn(self._welcome_kiosk(sid, kiosk))

    async def _welcome_kiosk(self, sid: str, kiosk: Kiosk) -> None:
        """Greet a kiosk; one that comes back within the grace period gets its place in the queue back."""
        region = self.settings.regions.get(kiosk.region)
        call_id = self.kiosk_calls.get(kiosk.id)
        held = self.engine.calls.get(call_id) if call_id else None
        resumed = None
        if held is not None and held.state is CallState.HELD:
            resumed = {"call_id": held.id, "field": held.field, "language": held.language}
        await self.emit("welcome", {
            "kiosk": {"id": kiosk.id, "name": kiosk.name, "region": kiosk.region, "region_names": dict(region.names)},
            "fields": self.settings.catalog.as_dicts(),
            "languages": self.settings.languages,
            "recording_retention_days": self.settings.recording_retention_days,
            "call": resumed,
        }, sid, KIOSK_NS)
        if held is not None and resumed is not None:
            # the engine first (no await in between): a disconnect handled meanwhile must see the call resumed
            decisions = self.engine.resume(held.id, self.clock.now())
            await self.records.call_event(held.id, "resumed", f"kiosk:{kiosk.id}")
            await self._run(decisions)

    async def kiosk_disconnected(self, sid: str) -> None:
        kiosk = self.sid_kiosks.pop(sid, None)
        if kiosk is None:
            return
        if self.kiosk_sids.get(kiosk.id) == sid:
            del self.kiosk_sids[kiosk.id]
        call_id = self.kiosk_calls.get(kiosk.id)
        call = self.engine.calls.get(call_id) if call_id else None
        if call is None:
            return
        now = self.clock.now()
        grace = self.settings.reconnect_grace_s
        if grace > 0 and call.state in (CallState.QUEUED, CallState.RINGING):
            # the engine first (no await in between): a kiosk that reconnects meanwhile must find its call held
            decisions = self.engine.hold(call.id, now, now + grace)
            await self.records.call_event(call.id, "held", "system", {"grace_s": grace})
            await self._run(decisions)
        elif call.state is not CallState.HELD:
            await self._run(self.engine.end_call(call.id, now, EndReason.VISITOR_DISCONNECTED, "visitor"))

    async def clerk_connected(self, sid: str, clerk: Clerk) -> None:
        old = self.clerk_sids.get(clerk.id)
        if old is not None:
            logger.info("clerk %s connected again; closing the older connection", clerk.id)
            await self.clerk_disconnected(old)
            await self.disconnect(old, CLERK_NS)
        self.clerk_sids[clerk.id] = sid
        self.sid_clerks[sid] = clerk
        profile = ClerkProfile(clerk.id, frozenset(clerk.fields), frozenset(clerk.languages), clerk.regions)
        decisions = self.engine.clerk_online(profile, self.clock.now())
        pending = await self.casework.pending_wrapups(clerk.id)
        self._spawn(self.emit("welcome", {
            "clerk": {"id": clerk.id, "name": clerk.name, "center": clerk.center, "fields": list(clerk.fields),
                      "regions": list(clerk.regions), "languages": list(clerk.languages)},
            "status": self.engine.clerks[clerk.id].status.value,
            "ring_timeout_s": self.settings.ring_timeout_s,
            "wrapup_timeout_s": self.settings.wrapup_timeout_s,
            "fields": self.settings.catalog.as_dicts(),
            "pending_wrapups": pending,
        }, sid, CLERK_NS))
        await self._run(decisions)

    async def clerk_disconnected(self, sid: str) -> None:
        clerk = self.sid_clerks.pop(sid, None)
        if clerk is None:
            return
        if self.clerk_sids.get(clerk.id) == sid:
            del self.clerk_sids[clerk.id]
        if clerk.id in self.engine.clerks:
            await self._run(self.engine.clerk_offline(clerk.id, self.clock.now()))

    async def identity_revoked(self, identity_id: str) -> None:
        """Cut off a kiosk or clerk whose token was just revoked (it cannot connect again)."""
        for sids, namespace in ((self.kiosk_sids, KIOSK_NS), (self.clerk_sids, CLERK_NS)):
            sid = sids.get(identity_id)
            if sid is not None:
                logger.info("%s %s was revoked; disconnecting it", namespace.strip("/"), identity_id)
                await self.disconnect(sid, namespace)

    # ------------------------------------------------------------ kiosk events

    async def request_call(self, kiosk: Kiosk, msg: RequestCall) -> dict[str, Any]:
        if msg.field not in self.settings.catalog:
            raise SignalingError(errors.UNKNOWN_FIELD, f"unknown service field {msg.field!r}; "
                                 f"known: {', '.join(self.settings.catalog.ids())}")
        if msg.language not in self.settings.languages:
            raise SignalingError(errors.UNSUPPORTED_LANGUAGE, f"language {msg.language!r} is not offered; "
                                 f"offered: {', '.join(self.settings.languages)}")
        if kiosk.id in self.kiosk_calls:
            raise SignalingError(errors.ALREADY_IN_CALL, "this kiosk already has a call waiting or in progress")
        self.settings.catalog.get(msg.field).recording.require_consent(msg.recording_consent)
        if not self.settings.is_open(datetime.datetime.now(datetime.UTC)):
            raise SignalingError(errors.OUTSIDE_SERVICE_HOURS, f"the service is open {self.settings.service_hours} "
                                 "on working days; leave a callback request instead")
        if not await self._field_served(msg.field, msg.language, kiosk.region):
            raise SignalingError(errors.FIELD_NOT_SERVED,
                                 f"no clerk serves {msg.field!r} for region {kiosk.region!r}")
        call_id = secrets.token_urlsafe(16)
        await self._open_call(call_id, call_id, kiosk, msg.field, msg.language, None, msg.recording_consent)
        logger.info("call %s requested by kiosk %s (%s, %s, %s)", call_id, kiosk.id, msg.field, msg.language,
                    kiosk.region)
        decisions = self.engine.request_call(call_id, msg.field, msg.language, kiosk.region, self.clock.now())
        call = self.engine.calls[call_id]
        position, wait = self.engine.position(call_id)
        await self._run(decisions)
        return {"call_id": call_id, "state": call.state.value, "position": position, "estimated_wait_s": wait}

    async def cancel_call(self, kiosk: Kiosk, msg: CallRef) -> dict[str, Any]:
        call = self._kiosk_call(kiosk, msg.call_id)
        if call.state not in (CallState.QUEUED, CallState.RINGING):
            raise SignalingError(errors.WRONG_STATE, f"the call is {call.state}; hang up instead")
        await self._run(self.engine.end_call(call.id, self.clock.now(), EndReason.CANCELLED, "visitor"))
        return {}

    async def kiosk_hangup(self, kiosk: Kiosk, msg: CallRef) -> dict[str, Any]:
        call = self._kiosk_call(kiosk, msg.call_id)
        reason = EndReason.HANGUP if call.state in (CallState.CONNECTING, CallState.ACTIVE) else EndReason.CANCELLED
        await self._run(self.engine.end_call(call.id, self.clock.now(), reason, "visitor"))
        return {}

    async def kiosk_signal(self, kiosk: Kiosk, msg: Signal) -> dict[str, Any]:
        call = self._kiosk_call(kiosk, msg.call_id)
        if call.state not in (CallState.CONNECTING, CallState.ACTIVE) or call.clerk_id is None:
            raise SignalingError(errors.WRONG_STATE, "the call has not been answered yet")
        if not await self._route_signal(call, msg, f"kiosk:{kiosk.id}", from_offerer=True):
            return {"relayed": False}
        sid = self.clerk_sids.get(call.clerk_id)
        if sid is not None:
            await self.emit("signal", to_builtins(msg), sid, CLERK_NS)
        return {"relayed": sid is not None}

    async def kiosk_media_connected(self, kiosk: Kiosk, msg: CallRef) -> dict[str, Any]:
        call = self._kiosk_call(kiosk, msg.call_id)
        await self._media_connected(call, "visitor", f"kiosk:{kiosk.id}")
        return {}

    async def kiosk_recorder_offer(self, kiosk: Kiosk, msg: RecorderOffer) -> dict[str, Any]:
        call = self._kiosk_call(kiosk, msg.call_id)
        return await self._recorder_offer(call, "visitor", f"kiosk:{kiosk.id}", msg.sdp)

    async def kiosk_media_failed(self, kiosk: Kiosk, msg: CallRef) -> dict[str, Any]:
        call = self._kiosk_call(kiosk, msg.call_id)
        await self._media_failed(call, "visitor")
        return {}

    async def rate(self, kiosk: Kiosk, msg: Rate) -> dict[str, Any]:
        return await self.casework.rate(kiosk, msg)

    async def request_callback(self, kiosk: Kiosk, msg: CallbackRequest) -> dict[str, Any]:
        return await self.casework.request_callback(kiosk, msg, self.engine.district_of(kiosk.region))

    async def _media_connected(self, call: Call, side: str, actor: str) -> None:
        if call.state not in (CallState.CONNECTING, CallState.ACTIVE):
            raise SignalingError(errors.WRONG_STATE, "the call has not been answered yet")
        info = self.calls[call.id]
        if side not in info.media_reported:
            info.media_reported.add(side)
            await self.records.call_event(call.id, "media_connected", actor,
                                          {"side": side, "attempt": info.media_attempt})
        await self._run(self.engine.media_connected(call.id, self.clock.now()))

    async def _route_signal(self, call: Call, msg: Signal, actor: str, from_offerer: bool) -> bool:
        """Whether to relay ``msg``; the kiosk's offer for the next attempt is the restart, logged first."""
        info = self.calls[call.id]
        route = route_signal(info.media_attempt, msg, from_offerer)
        if route is SignalRoute.STALE:
            logger.debug("call %s: signal of replaced attempt %d dropped", call.id, msg.attempt)
            return False
        if route is SignalRoute.RESTART:
            logger.info("call %s: media restarted (attempt %d)", call.id, msg.attempt)
            info.media_attempt = msg.attempt
            info.media_reported.clear()
            await self.records.call_event(call.id, "media_restarted", actor, {"attempt": msg.attempt})
        return True

    async def _media_failed(self, call: Call, side: str) -> None:
        """A participant gave up on the media (its restart failed too, or none came): the call ends for both."""
        if call.state not in (CallState.CONNECTING, CallState.ACTIVE):
            raise SignalingError(errors.WRONG_STATE, f"the call is {call.state}, not answered: cancel or hang up")
        logger.info("call %s: media failed at attempt %d, reported by the %s", call.id,
                    self.calls[call.id].media_attempt, side)
        await self._run(self.engine.end_call(call.id, self.clock.now(), EndReason.MEDIA_FAILED, side))

    async def _open_call(self, call_id: str, case_id: str, kiosk: Kiosk, field_id: str, language: str,
                         transferred_from: str | None, consent: bool | None) -> None:
        """Commit the call's record and its first event before anything is said about it."""
        policy = self.settings.catalog.get(field_id).recording
        record = policy.records(consent)  # a transfer into an "always" field without consent is not recorded
        await self.records.open_call({
            "id": call_id, "case_id": case_id, "kiosk_id": kiosk.id, "field": field_id, "language": language,
            "region": kiosk.region, "district": self.engine.district_of(kiosk.region), "requested_at": time.time(),
            "transferred_from": transferred_from,
        }, actor=f"kiosk:{kiosk.id}", data={"language": language, "kiosk": kiosk.name,
                                              "transferred_from": transferred_from,
                                              "recording": {"policy": policy.value, "consent": consent,
                                                            "recorded": record}})
        self.calls[call_id] = CallInfo(call_id, kiosk, field_id, language, case_id, consent=consent, record=record)
        self.kiosk_calls[kiosk.id] = call_id

    # ------------------------------------------------------------ clerk events

    async def set_status(self, clerk: Clerk, msg: SetStatus) -> dict[str, Any]:
        now = self.clock.now()
        if msg.status == "available":
            decisions = self.engine.set_available(clerk.id, now)
        else:
            decisions = self.engine.set_away(clerk.id, now)
        await self._run(decisions)
        return {"status": self.engine.clerks[clerk.id].status.value}

    async def accept(self, clerk: Clerk, msg: CallRef) -> dict[str, Any]:
        self._clerk_call(clerk, msg.call_id, answered=False)
        await self._run(self.engine.accept(clerk.id, msg.call_id, self.clock.now()))
        return {"call_id": msg.call_id}

    async def decline(self, clerk: Clerk, msg: CallRef) -> dict[str, Any]:
        self._clerk_call(clerk, msg.call_id, answered=False)
        await self._run(self.engine.decline(clerk.id, msg.call_id, self.clock.now()))
        return {}

    async def clerk_hangup(self, clerk: Clerk, msg: CallRef) -> dict[str, Any]:
        self._clerk_call(clerk, msg.call_id, answered=True)
        await self._run(self.engine.end_call(msg.call_id, self.clock.now(), EndReason.HANGUP, "clerk"))
        return {}

    async def clerk_signal(self, clerk: Clerk, msg: Signal) -> dict[str, Any]:
        call = self._clerk_call(clerk, msg.call_id, answered=True)
        if not await self._route_signal(call, msg, f"clerk:{clerk.id}", from_offerer=False):
            return {"relayed": False}
        info = self.calls[msg.call_id]
        sid = self.kiosk_sids.get(info.kiosk.id)
        if sid is not None:
            await self.emit("signal", to_builtins(msg), sid, KIOSK_NS)
        return {"relayed": sid is not None}

    async def wrap_up(self, clerk: Clerk, msg: WrapUp) -> dict[str, Any]:
        result = await self.casework.wrap_up(clerk, msg)
        if self.wrapup_calls.get(clerk.id) == msg.call_id:
            del self.wrapup_calls[clerk.id]
            if clerk.id in self.engine.clerks:
                await self._run(self.engine.finish_wrapup(clerk.id, self.clock.now()))
        return result

    async def transfer(self, clerk: Clerk, msg: Transfer) -> dict[str, Any]:
        """Hand the visitor on to another service field within the same case, to the front of its queue."""
        call = self._clerk_call(clerk, msg.call_id, answered=True)
        info = self.calls[call.id]
        if msg.field not in self.settings.catalog:
            raise SignalingError(errors.UNKNOWN_FIELD, f"unknown service field {msg.field!r}")
        if msg.field == call.field:
            raise SignalingError(errors.WRONG_STATE, "the visitor is already in this service field")
        if not await self._field_served(msg.field, call.language, call.region):
            raise SignalingError(errors.FIELD_NOT_SERVED, f"no clerk serves {msg.field!r} for this region")
        new_id = secrets.token_urlsafe(16)
        await self.records.call_event(call.id, "transferred", f"clerk:{clerk.id}",
                                      {"to_field": msg.field, "new_call_id": new_id})
        await self._open_call(new_id, info.case_id, info.kiosk, msg.field, call.language, call.id, info.consent)
        self._transfers[call.id] = {"call_id": new_id, "field": msg.field}
        now = self.clock.now()
        await self._run(self.engine.end_call(call.id, now, EndReason.TRANSFERRED, "clerk"))
        await self._run(self.engine.request_call(new_id, msg.field, call.language, call.region, now, priority=2))
        return {"new_call_id": new_id, "case_id": info.case_id}

    async def clerk_recorder_offer(self, clerk: Clerk, msg: RecorderOffer) -> dict[str, Any]:
        call = self._clerk_call(clerk, msg.call_id, answered=True)
        return await self._recorder_offer(call, "clerk", f"clerk:{clerk.id}", msg.sdp)

    async def _recorder_offer(self, call: Call, participant: str, actor: str, sdp: str) -> dict[str, Any]:
        """Answer a participant's send-only connection to the recorder (calls that are recorded only)."""
        if call.state not in (CallState.CONNECTING, CallState.ACTIVE):
            raise SignalingError(errors.WRONG_STATE, "the call has not been answered yet")
        if not self.calls[call.id].record:
            raise SignalingError(errors.NOT_RECORDED, "this call is not recorded")
        try:
            if self.desk is None:
                raise RecorderUnavailableError("this server has no recorder")
            answer = await self.desk.answer(call.id, participant, sdp)
        except RecorderUnavailableError as exc:
            await self.records.call_event(call.id, "recording_failed", actor,
                                          {"participant": participant, "error": str(exc)})
            raise SignalingError(errors.RECORDER_UNAVAILABLE, str(exc)) from None
        await self.records.call_event(call.id, "recording_started", actor, {"participant": participant})
        if call.id not in self.calls:  # the call ended while the recorder answered: close what it opened
            self._spawn(self._finish_recording(call.id))
        return {"sdp": answer}

    async def recording_interrupted(self, call_id: str, participant: str) -> None:
        """A recorder worker died: log it, and ask the participant to connect to the recorder again."""
        info = self.calls.get(call_id)
        if info is None:
            return
        await self.records.call_event(call_id, "recording_interrupted", "system", {"participant": participant})
        if participant == "visitor":
            await self._to_kiosk(call_id, "recorder_lost", {"call_id": call_id})
        elif info.clerk is not None:
            await self._to_clerk(info.clerk.id, "recorder_lost", {"call_id": call_id})

    async def clerk_media_connected(self, clerk: Clerk, msg: CallRef) -> dict[str, Any]:
        call = self._clerk_call(clerk, msg.call_id, answered=True)
        await self._media_connected(call, "clerk", f"clerk:{clerk.id}")
        return {}

    async def clerk_media_failed(self, clerk: Clerk, msg: CallRef) -> dict[str, Any]:
        call = self._clerk_call(clerk, msg.call_id, answered=True)
        await self._media_failed(call, "clerk")
        return {}

    # ------------------------------------------------------------ time

    async def run_due(self) -> None:
        """Carry out ring timeouts and stage widenings that are due now."""
        await self._run(self.engine.tick(self.clock.now()))

    def _reschedule(self) -> None:
        deadline = self.engine.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            delay = max(0.0, deadline - self.clock.now())
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._spawn(self.run_due())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background; its failure is logged. A task cancelled before it starts closes it."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background step failed", exc_info=task.exception())

    # ------------------------------------------------------------ decisions -> emits

    async def _run(self, decisions: Iterable[Decision]) -> None:
        for d in decisions:
            await self._apply(d)
        self._reschedule()

    async def _to_kiosk(self, call_id: str, event: str, data: dict[str, Any]) -> None:
        info = self.calls.get(call_id)
        sid = self.kiosk_sids.get(info.kiosk.id) if info else None
        if sid is not None:
            await self.emit(event, data, sid, KIOSK_NS)

    async def _to_clerk(self, clerk_id: str, event: str, data: dict[str, Any]) -> None:
        sid = self.clerk_sids.get(clerk_id)
        if sid is not None:
            await self.emit(event, data, sid, CLERK_NS)

    async def _record(self, d: Decision) -> None:
        """Write the decision to the call's durable event log (committed before anyone is told)."""
        match d:
            case Ring(call_id=call_id, clerk_id=clerk_id, ring=ring):
                await self.records.call_event(call_id, "rung", "system", {"clerk_id": clerk_id, "ring": ring})
            case RingEnded(call_id=call_id, clerk_id=clerk_id, reason=reason):
                kind = {"timeout": "missed", "declined": "declined"}.get(reason.value, "ring_withdrawn")
                actor = f"clerk:{clerk_id}" if kind == "declined" else "system"
                await self.records.call_event(call_id, kind, actor, {"clerk_id": clerk_id, "reason": reason.value})
            case Queued(call_id=call_id):
                await self.records.call_event(call_id, "queued", "system", {
                    "position": d.position, "estimated_wait_s": d.estimated_wait_s, "reason": d.reason})
            case StageWidened(call_id=call_id, stage=stage, name=name):
                await self.records.call_event(call_id, "stage_widened", "system", {"stage": stage, "name": name})
            case Matched(call_id=call_id, clerk_id=clerk_id):
                await self.records.call_event(call_id, "accepted", f"clerk:{clerk_id}", {"clerk_id": clerk_id},
                                              update={"answered_at": time.time(), "clerk_id": clerk_id})
            case CallEnded(call_id=call_id, clerk_id=clerk_id, reason=reason, by=by):
                await self.records.call_event(call_id, "ended", by, {"reason": reason.value, "clerk_id": clerk_id},
                                              update={"ended_at": time.time(), "end_reason": reason.value,
                                                      "ended_by": by})
            case _:
                pass

    async def _apply(self, d: Decision) -> None:
        logger.info("decision %s", d)
        await self._record(d)
        match d:
            case Ring(call_id=call_id, clerk_id=clerk_id, deadline=deadline, ring=ring):
                info = self.calls[call_id]
                call = self.engine.calls[call_id]
                region = self.settings.regions.get(info.kiosk.region)
                now = self.clock.now()
                await self._to_clerk(clerk_id, "ring", {
                    "call_id": call_id, "field": info.field, "language": info.language,
                    "region": info.kiosk.region, "region_names": dict(region.names),
                    "kiosk": {"name": info.kiosk.name}, "waited_s": round(now - call.requested_at, 1),
                    "timeout_s": round(deadline - now, 1), "ring": ring,
                })
                await self._to_kiosk(call_id, "ringing", {"call_id": call_id})
            case RingEnded(call_id=call_id, clerk_id=clerk_id, reason=reason):
                await self._to_clerk(clerk_id, "ring_ended", {"call_id": call_id, "reason": reason.value})
            case ClerkStatusChanged(clerk_id=clerk_id, status=status, reason=reason):
                await self._to_clerk(clerk_id, "status", {"status": status.value, "reason": reason})
            case Queued(call_id=call_id):
                await self._to_kiosk(call_id, "queued", {
                    "call_id": call_id, "position": d.position, "estimated_wait_s": d.estimated_wait_s,
                    "stage": d.stage, "reason": d.reason,
                })
            case StageWidened():
                pass  # logged above; positions follow through QueueChanged
            case Matched(call_id=call_id, clerk_id=clerk_id):
                await self._matched(call_id, clerk_id)
            case CallEnded(call_id=call_id, clerk_id=clerk_id):
                payload: dict[str, Any] = {"call_id": call_id, "reason": d.reason.value, "by": d.by}
                nxt = self._transfers.pop(call_id, None)
                await self._to_kiosk(call_id, "call_ended", {**payload, "transferred_to": nxt} if nxt else payload)
                if clerk_id is not None:
                    clerk_state = self.engine.clerks.get(clerk_id)
                    wrap_up = clerk_state is not None and clerk_state.status is ClerkStatus.WRAP_UP
                    if wrap_up:
                        self.wrapup_calls[clerk_id] = call_id
                    await self._to_clerk(clerk_id, "call_ended", {**payload, "wrap_up": wrap_up})
                ended = self.calls.pop(call_id) if call_id in self.calls else None
                if ended is not None and self.kiosk_calls.get(ended.kiosk.id) == call_id:
                    del self.kiosk_calls[ended.kiosk.id]
                if ended is not None and ended.record and self.desk is not None and self.desk.recording(call_id):
                    self._spawn(self._finish_recording(call_id))
            case QueueChanged(field=f, district=district):
                self._dirty.add((f, district))
                if self._flush is None:
                    loop = asyncio.get_running_loop()
                    self._flush = loop.call_later(self.settings.queue_update_interval_s, self._on_flush)

    async def _matched(self, call_id: str, clerk_id: str) -> None:
        info = self.calls[call_id]
        sid = self.clerk_sids[clerk_id]
        clerk = self.sid_clerks[sid]
        info.clerk = clerk
        region = self.settings.regions.get(info.kiosk.region)
        s = self.settings
        ice = ice_servers_for_call(s.ice_servers, call_id, time.time(), s.turn_secret, s.turn_ttl_s)
        if info.record and self.desk is not None:
            self.desk.warm()
        await self._to_kiosk(call_id, "matched", {
            "call_id": call_id, "role": "offerer", "ice_servers": ice, "field": info.field, "recording": info.record,
            "peer": {"name": clerk.name, "center": clerk.center},
        })
        await self._to_clerk(clerk_id, "matched", {
            "call_id": call_id, "role": "answerer", "ice_servers": ice, "field": info.field,
            "recording": info.record,
            "peer": {"name": info.kiosk.name, "region": info.kiosk.region, "region_names": dict(region.names),
                     "language": info.language},
        })

    async def _finish_recording(self, call_id: str) -> None:
        assert self.desk is not None
        stored = await self.desk.finish(call_id)
        logger.info("call %s: %d recording(s) stored", call_id, len(stored))

    def _on_flush(self) -> None:
        self._flush = None
        dirty, self._dirty = self._dirty, set()
        self._spawn(self._send_positions(dirty))

    async def _send_positions(self, groups: Iterable[tuple[str, str]]) -> None:
        for f, district in groups:
            for call_id, position, wait in self.engine.waiting_in(f, district):
                call = self.engine.calls[call_id]
                await self._to_kiosk(call_id, "queued", {
                    "call_id": call_id, "position": position, "estimated_wait_s": wait,
                    "stage": call.stage, "reason": "",
                })

    # ------------------------------------------------------------ checks

    def _kiosk_call(self, kiosk: Kiosk, call_id: str) -> Call:
        info = self.calls.get(call_id)
        if info is None or call_id not in self.engine.calls:
            raise SignalingError(errors.NO_SUCH_CALL, f"no call {call_id} in progress")
        if info.kiosk.id != kiosk.id:
            raise SignalingError(errors.NOT_PARTICIPANT, "this call belongs to another kiosk")
        return self.engine.calls[call_id]

    def _clerk_call(self, clerk: Clerk, call_id: str, answered: bool) -> Call:
        call = self.engine.calls.get(call_id)
        if call is None or call_id not in self.calls:
            raise SignalingError(errors.NO_SUCH_CALL, f"no call {call_id} in progress")
        if call.clerk_id != clerk.id:
            raise SignalingError(errors.NOT_PARTICIPANT, "this call is not yours")
        if answered and call.state not in (CallState.CONNECTING, CallState.ACTIVE):
            raise SignalingError(errors.WRONG_STATE, f"the call is {call.state}; accept or decline it first")
        return call

    async def _field_served(self, field_id: str, language: str, region: str) -> bool:
        """Could any clerk (online or not) ever take this call, at the widest stage?"""
        last = len(self.settings.stages) - 1
        probe = Call(id="probe", field=field_id, language=language, region=region, requested_at=0.0, seq=0)
        for clerk in await self.identities.clerks():
            if clerk.revoked:
                continue
            profile = ClerkProfile(clerk.id, frozenset(clerk.fields), frozenset(clerk.languages), clerk.regions)
            if eligible(self.settings.regions, self.settings.stages, profile, probe, last):
                return True
        return False
