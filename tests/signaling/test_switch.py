"""The switch (the whole call policy) by example: commands in, effects out, no sockets and no loop."""

from __future__ import annotations

import pytest

from signaling import messages as m
from signaling.commands import ClerkConnected, Disconnected, KioskCard, Received, RecorderAnswered, Revoked
from signaling.effects import Drop, FileCallback, FileRating, FileWrapUp, FinishRecording, WarmRecorder
from signaling.switch import Switch
from signaling.workdays import WorkCalendar
from tests.signaling.switch_world import START, World, clerk, clerk_card, kiosk, kiosk_card

TAX = m.RequestCall("tax", "en")


def in_call(w: World, n: int = 1) -> str:
    """Kiosk n calls tax; clerk n (connected, available) accepts. The call's id."""
    call_id = w.ok(kiosk(n), "request_call", TAX)["call_id"]
    assert w.last(clerk(n), "ring")["call_id"] == call_id
    w.ok(clerk(n), "accept", m.CallRef(call_id))
    return str(call_id)


@pytest.fixture
def w() -> World:
    world = World.make(roster=(clerk_card(1),))
    world.connect_kiosk(kiosk_card(1))
    world.connect_clerk(clerk_card(1))
    return world


def test_a_whole_call_writes_its_records_in_order_and_tells_both_sides(w: World) -> None:
    call_id = in_call(w)
    km, cm = w.last(kiosk(1), "matched"), w.last(clerk(1), "matched")
    assert km["role"] == "offerer" and cm["role"] == "answerer" and km["ice_servers"] == cm["ice_servers"]
    assert km["peer"] == {"name": "Clerk 1", "center": "Center"}
    assert cm["peer"]["region_names"] == {"en": "C/D1/T1/P1", "zh": "c/d1/t1/p1"}
    w.ok(kiosk(1), "media_connected", m.CallRef(call_id))
    w.ok(clerk(1), "media_connected", m.CallRef(call_id))
    w.ok(clerk(1), "hangup", m.CallRef(call_id))
    assert w.kinds(call_id) == ["requested", "rung", "accepted", "media_connected", "media_connected", "ended"]
    assert w.last(kiosk(1), "call_ended") == {"call_id": call_id, "reason": "hangup", "by": "clerk"}
    assert w.last(clerk(1), "call_ended")["wrap_up"] is True
    ack = w.ok(clerk(1), "wrap_up", m.WrapUp(call_id, [m.MatterIn("consultation", "completed")]))
    assert ack == {"matters": [], "followups": []}  # the records fill in the ids
    [filed] = [e for e in w.effects if isinstance(e, FileWrapUp)]
    assert filed.case.call_id == call_id and filed.clerk_id == "c1"
    assert w.last(clerk(1), "status")["status"] == "available"
    assert w.refused(clerk(1), "wrap_up", m.WrapUp(call_id, [m.MatterIn("consultation", "completed")])) == \
        "already_done"


def test_a_refused_command_changes_nothing(w: World) -> None:
    before = w.switch.snapshot()
    assert w.refused(kiosk(1), "request_call", m.RequestCall("astrology", "en")) == "unknown_field"
    assert w.refused(kiosk(1), "request_call", m.RequestCall("tax", "fr")) == "unsupported_language"
    assert w.refused(clerk(1), "accept", m.CallRef("nope")) == "no_such_call"
    assert w.refused(kiosk(1), "teleport", m.CallRef("x")) == "unknown_event"
    assert Switch.restore(w.switch.policy, before).snapshot() == Switch.restore(w.switch.policy,
                                                                                 w.switch.snapshot()).snapshot()


def test_an_event_from_a_replaced_connection_is_refused(w: World) -> None:
    old = w.conn(kiosk(1))
    w.connect_kiosk(kiosk_card(1))  # the same kiosk connects again: the newer connection wins
    assert any(isinstance(e, Drop) and e.conn == old for e in w.effects)
    outcome = w.apply(Received(kiosk(1), old, "request_call", TAX, "fresh"))
    assert outcome.error is not None and outcome.error.code == "replaced"
    w.apply(Disconnected(kiosk(1), old, lost=False))  # the old socket's goodbye changes nothing
    assert "k1" in w.switch.kiosks


def test_signals_go_to_the_other_participant_only(w: World) -> None:
    w.connect_kiosk(kiosk_card(2))
    w.connect_clerk(clerk_card(2), available=False)
    call_id = in_call(w)
    offer = m.Signal(call_id, description=m.SessionDescription("offer", "v=0"))
    assert w.ok(kiosk(1), "signal", offer) == {"relayed": True}
    assert w.told(clerk(1), "signal") == [{"call_id": call_id, "description": {"type": "offer", "sdp": "v=0"}}]
    assert w.refused(kiosk(2), "signal", offer) == "not_participant"
    assert w.refused(clerk(2), "signal", offer) == "not_participant"
    assert w.told(kiosk(2), "signal") == [] and w.told(clerk(2), "signal") == []


def test_a_transfer_keeps_the_case_and_goes_first_in_the_new_field() -> None:
    w = World.make(roster=(clerk_card(1, fields=("market",)), clerk_card(2, fields=("tax",))))
    w.connect_kiosk(kiosk_card(1))
    w.connect_kiosk(kiosk_card(2))
    w.connect_clerk(clerk_card(1, fields=("market",)))
    w.connect_clerk(clerk_card(2, fields=("tax",)), available=False)
    early = w.ok(kiosk(2), "request_call", TAX)["call_id"]
    call_id = w.ok(kiosk(1), "request_call", m.RequestCall("market", "en", False))["call_id"]
    w.ok(clerk(1), "accept", m.CallRef(call_id))
    done = w.ok(clerk(1), "transfer", m.Transfer(call_id, "tax"))
    assert done["case_id"] == call_id and done["new_call_id"] != call_id
    assert w.last(kiosk(1), "call_ended")["transferred_to"] == {"call_id": done["new_call_id"], "field": "tax"}
    w.ok(clerk(2), "set_status", m.SetStatus("available"))
    assert w.last(clerk(2), "ring")["call_id"] == done["new_call_id"]  # ahead of the call that waited longer
    assert w.switch.calls[done["new_call_id"]].case.case_id == call_id
    assert early in w.switch.calls


def test_a_kiosk_lost_mid_call_comes_back_to_its_call() -> None:
    w = World.make(roster=(clerk_card(1),))
    w.connect_kiosk(kiosk_card(1))
    w.connect_clerk(clerk_card(1))
    call_id = in_call(w)
    w.drop(kiosk(1), lost=True)
    assert w.last(clerk(1), "peer_connection") == {"call_id": call_id, "connected": False, "grace_s": 30.0}
    w.advance(29)
    w.connect_kiosk(kiosk_card(1))
    welcome = w.last(kiosk(1), "welcome")
    assert welcome["call"]["call_id"] == call_id and welcome["call"]["state"] == "connecting"
    assert welcome["call"]["matched"]["peer"]["name"] == "Clerk 1"
    assert w.last(clerk(1), "peer_connection")["connected"] is True
    w.advance(10)  # past the old grace: nothing happens, the kiosk is back
    assert call_id in w.switch.calls
    assert w.kinds(call_id)[-2:] == ["connection_lost", "reconnected"]


def test_a_kiosk_gone_past_its_grace_ends_the_call_and_the_clerk_wraps_up(w: World) -> None:
    call_id = in_call(w)
    w.drop(kiosk(1), lost=True)
    w.advance(30)
    assert w.last(clerk(1), "call_ended")["reason"] == "visitor_disconnected"
    assert w.switch.wrapups.get(call_id) is not None


def test_a_clerk_lost_while_available_comes_back_available(w: World) -> None:
    w.drop(clerk(1), lost=True)
    assert "c1" not in w.switch.engine.clerks  # rung for nothing meanwhile
    call_id = w.ok(kiosk(1), "request_call", TAX)["call_id"]
    w.advance(5)
    w.connect_clerk(clerk_card(1), available=False)
    assert w.last(clerk(1), "welcome")["status"] == "ringing"  # available again, and at once rung
    assert w.last(clerk(1), "ring")["call_id"] == call_id


def test_a_clerk_who_said_goodbye_comes_back_away(w: World) -> None:
    w.drop(clerk(1), lost=False)
    w.connect_clerk(clerk_card(1), available=False)
    assert w.last(clerk(1), "welcome")["status"] == "away"


def test_answered_calls_do_not_widen_and_a_requeued_call_continues_at_its_stage(w: World) -> None:
    call_id = in_call(w)
    w.advance(200)
    assert "stage_widened" not in w.kinds(call_id)
    w.drop(clerk(1), lost=False)  # the clerk is gone: the visitor goes back, at the stage 200 s of waiting reached
    assert w.switch.engine.calls[call_id].stage == 1
    assert w.last(kiosk(1), "queued")["reason"] == "clerk_disconnected"
    w.advance(100)
    assert w.switch.engine.calls[call_id].stage == 2
    assert w.kinds(call_id).count("stage_widened") == 2


def test_a_kiosk_of_an_unknown_region_gets_its_own_error_code() -> None:
    w = World.make(roster=(clerk_card(1),))
    w.connect_kiosk(KioskCard("k9", "Moved", "c/gone"))
    assert w.refused(kiosk(9), "request_call", TAX) == "unknown_region"


def test_a_follow_up_past_the_calendar_is_its_own_error_code() -> None:
    w = World.make(roster=(clerk_card(1),), calendar=WorkCalendar.from_toml_dict({"years": {"2020": {}}}))
    w.connect_kiosk(kiosk_card(1))
    code = w.refused(kiosk(1), "request_callback", m.CallbackRequest("tax", "en", "+86 21 1234567"))
    assert code == "calendar_not_covered"


def test_rating_once_by_the_kiosk_of_an_answered_call(w: World) -> None:
    w.connect_kiosk(kiosk_card(2))
    call_id = in_call(w)
    assert w.refused(kiosk(1), "rate", m.Rate(call_id, "satisfied")) == "wrong_state"  # not ended yet
    w.ok(kiosk(1), "hangup", m.CallRef(call_id))
    assert w.refused(kiosk(2), "rate", m.Rate(call_id, "satisfied")) == "not_participant"
    w.ok(kiosk(1), "rate", m.Rate(call_id, "satisfied"))
    assert [e.score for e in w.effects if isinstance(e, FileRating)] == ["satisfied"]
    assert w.refused(kiosk(1), "rate", m.Rate(call_id, "neutral")) == "already_done"


def test_a_callback_request_is_filed_with_its_due_date(w: World) -> None:
    ack = w.ok(kiosk(1), "request_callback", m.CallbackRequest("tax", "en", "+86 21 1234567"))
    [filed] = [e for e in w.effects if isinstance(e, FileCallback)]
    assert filed.due_date == ack["due_date"] == "2026-09-24"  # 3 working days after Monday 2026-09-21
    assert filed.phone == "+86 21 1234567" and filed.district == "c/d1"


def test_a_repeated_callback_request_of_a_kiosk_is_merged_into_the_pending_one(w: World) -> None:
    first = w.ok(kiosk(1), "request_callback", m.CallbackRequest("tax", "en", "+86 21 1234567"))
    again = w.ok(kiosk(1), "request_callback", m.CallbackRequest("tax", "zh", "+86-21-1234567", "about my invoice"))
    assert "merged" not in first and again["merged"] is True and again["due_date"] == first["due_date"]
    filed = [e for e in w.effects if isinstance(e, FileCallback)]
    assert [f.merge for f in filed] == [False, True] and filed[1].case_id == filed[0].case_id
    assert filed[1].description == "about my invoice"
    # another field or another number is another visitor's request; so is one from another kiosk
    w.connect_kiosk(kiosk_card(2))
    for party, request in ((kiosk(1), m.CallbackRequest("market", "en", "+86 21 1234567")),
                           (kiosk(1), m.CallbackRequest("tax", "en", "+86 21 7654321")),
                           (kiosk(2), m.CallbackRequest("tax", "en", "+86 21 1234567"))):
        assert "merged" not in w.ok(party, "request_callback", request)
    assert len({f.case_id for f in w.effects if isinstance(f, FileCallback)}) == 4
    # once the first is past its due date, the same request is new again
    w.now += 5 * 86_400
    assert "merged" not in w.ok(kiosk(1), "request_callback", m.CallbackRequest("tax", "en", "+86 21 1234567"))
    assert len({f.case_id for f in w.effects if isinstance(f, FileCallback)}) == 5


def test_recording_consent_and_the_recorder(w: World) -> None:
    declined = w.ok(kiosk(1), "request_call", m.RequestCall("market", "en", False))["call_id"]
    w.ok(clerk(1), "accept", m.CallRef(declined))
    assert w.last(kiosk(1), "matched")["recording"] is False
    assert w.refused(kiosk(1), "recorder_offer", m.RecorderOffer(declined, "v=0")) == "not_recorded"
    w.ok(kiosk(1), "hangup", m.CallRef(declined))
    w.ok(clerk(1), "wrap_up", m.WrapUp(declined, [m.MatterIn("cancellation", "completed")]))
    assert not any(isinstance(e, WarmRecorder | FinishRecording) for e in w.effects)

    call_id = w.ok(kiosk(1), "request_call", m.RequestCall("market", "en", True))["call_id"]
    w.ok(clerk(1), "accept", m.CallRef(call_id))
    assert any(isinstance(e, WarmRecorder) for e in w.effects)
    assert w.last(kiosk(1), "matched")["recording"] is True
    w.ok(kiosk(1), "recorder_offer", m.RecorderOffer(call_id, "v=0"))  # checks only: the recorder answers
    w.apply(RecorderAnswered(call_id, "visitor"))
    w.ok(clerk(1), "hangup", m.CallRef(call_id))
    assert FinishRecording(call_id) in w.effects
    assert w.kinds(call_id).count("recording_started") == 1


def test_revoking_drops_the_connection_and_the_roster(w: World) -> None:
    w.apply(Revoked("c1"))
    assert any(isinstance(e, Drop) and e.party == clerk(1) for e in w.effects)
    w.drop(clerk(1), lost=False)
    assert w.refused(kiosk(1), "request_call", TAX) == "field_not_served"


def test_snapshot_and_restore_go_on_alike(w: World) -> None:
    call_id = w.ok(kiosk(1), "request_call", TAX)["call_id"]
    copy = World(Switch.restore(w.switch.policy, w.switch.snapshot()), now=w.now, conns=dict(w.conns))
    for world in (w, copy):
        world.clear()
        world.advance(20)  # the ring times out the same way in both
    assert w.told(clerk(1)) == copy.told(clerk(1)) == [
        {"status": "away", "reason": "ring_timeout"}, {"call_id": call_id, "reason": "timeout"}]


def test_a_clerk_connecting_with_an_unknown_region_is_refused() -> None:
    w = World.make()
    outcome = w.apply(ClerkConnected("s1", clerk_card(1, regions=("c/nowhere",))))
    assert outcome.error is not None and outcome.error.code == "unknown_region"
    assert w.switch.clerks == {}


def test_the_start_is_a_working_monday() -> None:
    import datetime as dt

    assert dt.datetime.fromtimestamp(START, dt.UTC).weekday() == 0
