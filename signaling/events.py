"""What each kiosk and clerk event does: the handlers the switch dispatches to.

Each handler takes the switch, the sender, the validated message, a fresh
random id (for the events that open a call), the time and the list of effects
to extend; it returns the acknowledgement. Every check comes before the first
change of state, so a refused event changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from signaling import errors
from signaling import messages as m
from signaling.calls import ANSWERED, PRIORITY_TRANSFERRED, WAITING, Call, CallState
from signaling.casefile import PendingCallback, check_matters
from signaling.commands import CLERK, KIOSK, Party
from signaling.decisions import EndReason
from signaling.effects import Effect, FileCallback, FileRating, FileWrapUp, Send
from signaling.errors import SignalingError
from signaling.media import SignalRoute, route_signal

if TYPE_CHECKING:
    from signaling.switch import LiveCall, Switch


def seconds(wait: float | None) -> int | None:
    """An estimated wait as whole seconds (None: nobody who could take the call is online)."""
    return None if wait is None else round(wait)

Handler = Callable[["Switch", Party, Any, str, float, list[Effect]], msgspec.Struct]


# -- kiosk events ------------------------------------------------------------------------------------------------

def request_call(sw: Switch, party: Party, msg: m.RequestCall, fresh: str, now: float,
                 out: list[Effect]) -> msgspec.Struct:
    p = sw.policy
    if msg.field not in p.catalog:
        raise SignalingError(errors.UNKNOWN_FIELD, f"unknown service field {msg.field!r}; "
                             f"known: {', '.join(p.catalog.ids())}")
    if msg.language not in p.languages:
        raise SignalingError(errors.UNSUPPORTED_LANGUAGE, f"language {msg.language!r} is not offered; "
                             f"offered: {', '.join(p.languages)}")
    if party.id in sw.kiosk_calls:
        raise SignalingError(errors.ALREADY_IN_CALL, "this kiosk already has a call waiting or in progress")
    p.catalog.get(msg.field).recording.require_consent(msg.recording_consent)
    if not p.is_open(now):
        raise SignalingError(errors.OUTSIDE_SERVICE_HOURS, f"the service is open {p.service_hours} "
                             "on working days; leave a callback request instead")
    kiosk = sw.kiosks[party.id][1]
    p.regions.get(kiosk.region)
    if not sw.served_anywhere(msg.field, msg.language, kiosk.region):
        raise SignalingError(errors.FIELD_NOT_SERVED,
                             f"no clerk serves {msg.field!r} for region {kiosk.region!r}")
    assert fresh, "request_call needs a fresh call id"
    sw.open_call(fresh, fresh, kiosk, msg.field, msg.language, msg.recording_consent, None, now, out)
    decisions = sw.engine.request_call(fresh, msg.field, msg.language, kiosk.region, now)
    state = sw.engine.calls[fresh].state
    position, wait = sw.engine.position(fresh)
    if state is CallState.QUEUED:
        wait = sw.told_wait(fresh, wait)  # as the queued message says it
    sw.carry(decisions, now, out)
    return m.CallRequested(fresh, state.value, position, seconds(wait))  # type: ignore[arg-type]

def cancel_call(sw: Switch, party: Party, msg: m.CallRef, fresh: str, now: float, out: list[Effect]) -> msgspec.Struct:
    live, call = sw.kiosk_call(party, msg.call_id)
    if call.state not in WAITING:
        raise SignalingError(errors.WRONG_STATE, f"the call is {call.state}; hang up instead")
    sw.carry(sw.engine.end_call(live.id, now, EndReason.CANCELLED, "visitor"), now, out)
    return m.Done()

def kiosk_hangup(sw: Switch, party: Party, msg: m.CallRef, fresh: str, now: float, out: list[Effect]) -> msgspec.Struct:
    live, call = sw.kiosk_call(party, msg.call_id)
    reason = EndReason.HANGUP if call.state in ANSWERED else EndReason.CANCELLED
    sw.carry(sw.engine.end_call(live.id, now, reason, "visitor"), now, out)
    return m.Done()

def kiosk_signal(sw: Switch, party: Party, msg: m.Signal, fresh: str, now: float, out: list[Effect]) -> msgspec.Struct:
    live, call = sw.kiosk_call(party, msg.call_id)
    if call.state not in ANSWERED or call.clerk_id is None:
        raise SignalingError(errors.WRONG_STATE, "the call has not been answered yet")
    return _relay(sw, live, msg, party, Party(CLERK, call.clerk_id), now, out)

def kiosk_media_connected(sw: Switch, party: Party, msg: m.CallRef, fresh: str, now: float,
                          out: list[Effect]) -> msgspec.Struct:
    live, call = sw.kiosk_call(party, msg.call_id)
    _media_connected(sw, live, call, "visitor", party, now, out)
    return m.Done()

def kiosk_media_failed(sw: Switch, party: Party, msg: m.CallRef, fresh: str, now: float,
                       out: list[Effect]) -> msgspec.Struct:
    live, call = sw.kiosk_call(party, msg.call_id)
    _media_failed(sw, live, call, "visitor", now, out)
    return m.Done()

def kiosk_recorder_offer(sw: Switch, party: Party, msg: m.RecorderOffer, fresh: str, now: float,
                         out: list[Effect]) -> msgspec.Struct:
    live, call = sw.kiosk_call(party, msg.call_id)
    return _recorder_offer(live, call)

def rate(sw: Switch, party: Party, msg: m.Rate, fresh: str, now: float, out: list[Effect]) -> msgspec.Struct:
    ended = sw.ended.get(msg.call_id)
    live = sw.calls.get(msg.call_id)
    owner = live.kiosk.id if live is not None else ended.kiosk_id if ended is not None else None
    if owner is None:
        raise SignalingError(errors.NO_SUCH_CALL, f"no call {msg.call_id} on record")
    if owner != party.id:
        raise SignalingError(errors.NOT_PARTICIPANT, "this call belongs to another kiosk")
    if ended is None or ended.clerk_id is None:
        raise SignalingError(errors.WRONG_STATE, "only a call that was answered and has ended can be rated")
    if ended.rated:
        raise SignalingError(errors.ALREADY_DONE, "this call has been rated already")
    ended.rated = True
    out.append(FileRating(ended.case, party.id, now, msg.score, msg.reason))
    return m.Done()

def request_callback(sw: Switch, party: Party, msg: m.CallbackRequest, fresh: str, now: float,
                     out: list[Effect]) -> msgspec.Struct:
    p = sw.policy
    if msg.field not in p.catalog:
        raise SignalingError(errors.UNKNOWN_FIELD, f"unknown service field {msg.field!r}")
    if msg.language not in p.languages:
        raise SignalingError(errors.UNSUPPORTED_LANGUAGE, f"language {msg.language!r} is not offered")
    kiosk = sw.kiosks[party.id][1]
    due = p.due_date("general", now)
    earlier = sw.callbacks.find(kiosk.id, msg.field, msg.phone, p.local(now).date())
    if earlier is not None:  # asked again (a double tap, a visitor who came back): the earlier request stands
        # (``due`` is for a new follow-up, should the records find the earlier one closed meanwhile)
        out.append(FileCallback(earlier.case_id, kiosk.id, msg.field, msg.language, kiosk.region,
                                p.district_of(kiosk.region), msg.phone, msg.description, due.isoformat(),
                                now, merge=True))
        return m.CallbackFiled(0, earlier.due.isoformat(), merged=True)
    assert fresh, "request_callback needs a fresh case id"
    out.append(FileCallback(fresh, kiosk.id, msg.field, msg.language, kiosk.region,
                            p.district_of(kiosk.region), msg.phone, msg.description, due.isoformat(), now))
    sw.callbacks.add(kiosk.id, msg.field, msg.phone, PendingCallback(fresh, due))
    return m.CallbackFiled(0, due.isoformat())  # the follow-up's id is the records' to give

# -- clerk events ------------------------------------------------------------------------------------------------

def set_status(sw: Switch, party: Party, msg: m.SetStatus, fresh: str, now: float, out: list[Effect]) -> msgspec.Struct:
    if msg.status == "available":
        decisions = sw.engine.set_available(party.id, now)
    else:
        decisions = sw.engine.set_away(party.id, now)
        sw.wrapping.pop(party.id, None)
    sw.carry(decisions, now, out)
    return m.StatusNow(sw.engine.clerks[party.id].status.value)

def accept(sw: Switch, party: Party, msg: m.CallRef, fresh: str, now: float, out: list[Effect]) -> msgspec.Struct:
    sw.clerk_call(party, msg.call_id, answered=False)
    sw.carry(sw.engine.accept(party.id, msg.call_id, now), now, out)
    return m.Accepted(msg.call_id)

def decline(sw: Switch, party: Party, msg: m.CallRef, fresh: str, now: float, out: list[Effect]) -> msgspec.Struct:
    sw.clerk_call(party, msg.call_id, answered=False)
    sw.carry(sw.engine.decline(party.id, msg.call_id, now), now, out)
    return m.Done()

def clerk_hangup(sw: Switch, party: Party, msg: m.CallRef, fresh: str, now: float, out: list[Effect]) -> msgspec.Struct:
    sw.clerk_call(party, msg.call_id, answered=True)
    sw.carry(sw.engine.end_call(msg.call_id, now, EndReason.HANGUP, "clerk"), now, out)
    return m.Done()

def clerk_signal(sw: Switch, party: Party, msg: m.Signal, fresh: str, now: float, out: list[Effect]) -> msgspec.Struct:
    live, _ = sw.clerk_call(party, msg.call_id, answered=True)
    return _relay(sw, live, msg, party, Party(KIOSK, live.kiosk.id), now, out)

def clerk_media_connected(sw: Switch, party: Party, msg: m.CallRef, fresh: str, now: float,
                          out: list[Effect]) -> msgspec.Struct:
    live, call = sw.clerk_call(party, msg.call_id, answered=True)
    _media_connected(sw, live, call, "clerk", party, now, out)
    return m.Done()

def clerk_media_failed(sw: Switch, party: Party, msg: m.CallRef, fresh: str, now: float,
                       out: list[Effect]) -> msgspec.Struct:
    live, call = sw.clerk_call(party, msg.call_id, answered=True)
    _media_failed(sw, live, call, "clerk", now, out)
    return m.Done()

def clerk_recorder_offer(sw: Switch, party: Party, msg: m.RecorderOffer, fresh: str, now: float,
                         out: list[Effect]) -> msgspec.Struct:
    live, call = sw.clerk_call(party, msg.call_id, answered=True)
    return _recorder_offer(live, call)

def wrap_up(sw: Switch, party: Party, msg: m.WrapUp, fresh: str, now: float, out: list[Effect]) -> msgspec.Struct:
    owed = sw.wrapups.get(msg.call_id)
    if owed is None:
        live = sw.calls.get(msg.call_id)
        ended = sw.ended.get(msg.call_id)
        if live is not None:
            call = sw.engine.calls[msg.call_id]
            if call.clerk_id != party.id:
                raise SignalingError(errors.NOT_PARTICIPANT, "this call is not yours")
            raise SignalingError(errors.WRONG_STATE, "the call is still in progress; hang up first")
        if ended is not None and ended.clerk_id == party.id:
            raise SignalingError(errors.ALREADY_DONE, "this call has been wrapped up already")
        if ended is not None:
            raise SignalingError(errors.NOT_PARTICIPANT, "this call was not yours")
        raise SignalingError(errors.NO_SUCH_CALL, f"no call {msg.call_id} awaits your wrap-up")
    if owed.clerk_id != party.id:
        raise SignalingError(errors.NOT_PARTICIPANT, "this call was not yours")
    matters = check_matters(sw.policy.catalog, owed.case.field, msg.matters, sw.policy, now)
    sw.wrapups.settle(msg.call_id)
    out.append(FileWrapUp(owed.case, party.id, now, matters))
    if sw.wrapping.get(party.id) == msg.call_id:
        del sw.wrapping[party.id]
        if party.id in sw.engine.clerks:
            sw.carry(sw.engine.finish_wrapup(party.id, now), now, out)
    return m.WrappedUp([], [])  # the ids are the records' to give

def transfer(sw: Switch, party: Party, msg: m.Transfer, fresh: str, now: float, out: list[Effect]) -> msgspec.Struct:
    """Hand the visitor on to another service field within the same case, to the front of its queue."""
    live, _ = sw.clerk_call(party, msg.call_id, answered=True)
    if msg.field not in sw.policy.catalog:
        raise SignalingError(errors.UNKNOWN_FIELD, f"unknown service field {msg.field!r}")
    if msg.field == live.case.field:
        raise SignalingError(errors.WRONG_STATE, "the visitor is already in this service field")
    if not sw.served_anywhere(msg.field, live.language, live.kiosk.region):
        raise SignalingError(errors.FIELD_NOT_SERVED, f"no clerk serves {msg.field!r} for this region")
    assert fresh, "transfer needs a fresh call id"
    out.append(sw.event(live, "transferred", str(party), now, {"to_field": msg.field, "new_call_id": fresh}))
    sw.open_call(fresh, live.case.case_id, live.kiosk, msg.field, live.language, live.consent, live.id, now,
                    out)
    live.transferred_to = m.TransferredTo(fresh, msg.field)
    sw.carry(sw.engine.end_call(live.id, now, EndReason.TRANSFERRED, "clerk"), now, out)
    sw.carry(sw.engine.request_call(fresh, msg.field, live.language, live.kiosk.region, now,
                                         priority=PRIORITY_TRANSFERRED), now, out)
    return m.TransferDone(fresh, live.case.case_id)

# -- shared by both sides ----------------------------------------------------------------------------------------

def _relay(sw: Switch, live: LiveCall, msg: m.Signal, sender: Party, to: Party, now: float,
           out: list[Effect]) -> msgspec.Struct:
    route = route_signal(live.media_attempt, msg, from_offerer=sender.role == KIOSK)
    if route is SignalRoute.STALE:
        return m.Relayed(False)
    if route is SignalRoute.RESTART:
        live.media_attempt = msg.attempt
        live.media_reported.clear()
        out.append(sw.event(live, "media_restarted", str(sender), now, {"attempt": msg.attempt}))
    if not sw.connected(to):
        return m.Relayed(False)
    out.append(Send(to, msg))
    return m.Relayed(True)

def _media_connected(sw: Switch, live: LiveCall, call: Call, side: str, party: Party, now: float,
                     out: list[Effect]) -> None:
    if call.state not in ANSWERED:
        raise SignalingError(errors.WRONG_STATE, "the call has not been answered yet")
    if side not in live.media_reported:
        live.media_reported.add(side)
        out.append(sw.event(live, "media_connected", str(party), now,
                               {"side": side, "attempt": live.media_attempt}))
    sw.carry(sw.engine.media_connected(live.id, now), now, out)

def _media_failed(sw: Switch, live: LiveCall, call: Call, side: str, now: float, out: list[Effect]) -> None:
    if call.state not in ANSWERED:
        raise SignalingError(errors.WRONG_STATE, f"the call is {call.state}, not answered: cancel or hang up")
    sw.carry(sw.engine.end_call(live.id, now, EndReason.MEDIA_FAILED, side), now, out)

def _recorder_offer(live: LiveCall, call: Call) -> msgspec.Struct:
    """Checks only: the server's recorder answers the offer, then reports with :class:`RecorderAnswered`."""
    if call.state not in ANSWERED:
        raise SignalingError(errors.WRONG_STATE, "the call has not been answered yet")
    if not live.record:
        raise SignalingError(errors.NOT_RECORDED, "this call is not recorded")
    return m.Done()



KIOSK_EVENTS: dict[str, Handler] = {
    "request_call": request_call,
    "cancel_call": cancel_call,
    "hangup": kiosk_hangup,
    "signal": kiosk_signal,
    "media_connected": kiosk_media_connected,
    "media_failed": kiosk_media_failed,
    "recorder_offer": kiosk_recorder_offer,
    "rate": rate,
    "request_callback": request_callback,
}
CLERK_EVENTS: dict[str, Handler] = {
    "set_status": set_status,
    "accept": accept,
    "decline": decline,
    "hangup": clerk_hangup,
    "signal": clerk_signal,
    "media_connected": clerk_media_connected,
    "media_failed": clerk_media_failed,
    "recorder_offer": clerk_recorder_offer,
    "wrap_up": wrap_up,
    "transfer": transfer,
}
