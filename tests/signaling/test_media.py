"""Unit tests of :func:`signaling.media.route_signal`: which signals of a call's media attempts are relayed."""

from __future__ import annotations

from typing import Any

import pytest

from signaling import errors
from signaling.errors import SignalingError
from signaling.media import SignalRoute, route_signal
from signaling.messages import MAX_ATTEMPT, Signal, parse


def offer(attempt: int) -> Signal:
    return parse(Signal, {"call_id": "c", "attempt": attempt, "description": {"type": "offer", "sdp": "v=0"}})


def answer(attempt: int) -> Signal:
    return parse(Signal, {"call_id": "c", "attempt": attempt, "description": {"type": "answer", "sdp": "v=0"}})


def candidate(attempt: int) -> Signal:
    return parse(Signal, {"call_id": "c", "attempt": attempt, "candidate": {"candidate": "candidate:1 1 udp 1 "
                                                                                         "127.0.0.1 9 typ host"}})


def test_a_signal_without_attempt_belongs_to_the_first_connection() -> None:
    sig = parse(Signal, {"call_id": "c", "description": {"type": "offer", "sdp": "v=0"}})
    assert sig.attempt == 0
    assert route_signal(0, sig, from_offerer=True) is SignalRoute.RELAY


@pytest.mark.parametrize("make", [offer, answer, candidate])
def test_signals_of_the_current_attempt_are_relayed_both_ways(make: Any) -> None:
    for current in (0, 1):
        assert route_signal(current, make(current), from_offerer=True) is SignalRoute.RELAY
        assert route_signal(current, make(current), from_offerer=False) is SignalRoute.RELAY


def test_the_offerers_offer_for_the_next_attempt_is_the_restart() -> None:
    assert route_signal(0, offer(1), from_offerer=True) is SignalRoute.RESTART


@pytest.mark.parametrize("make", [offer, answer, candidate])
def test_signals_of_a_replaced_attempt_are_stale(make: Any) -> None:
    assert route_signal(1, make(0), from_offerer=True) is SignalRoute.STALE
    assert route_signal(1, make(0), from_offerer=False) is SignalRoute.STALE


@pytest.mark.parametrize(("sig", "from_offerer", "says"), [
    (offer(1), False, "starts with the kiosk's offer"),  # the answerer does not restart
    (answer(1), False, "attempt 1 has not started"),  # an answer to an offer never made
    (candidate(1), True, "attempt 1 has not started"),  # a candidate before its offer
])
def test_a_next_attempt_must_start_with_the_offerers_offer(sig: Signal, from_offerer: bool, says: str) -> None:
    with pytest.raises(SignalingError) as err:
        route_signal(0, sig, from_offerer)
    assert err.value.code == errors.WRONG_STATE and says in err.value.message


def test_only_one_restart_per_call() -> None:
    assert MAX_ATTEMPT == 1
    for current in (0, 1):
        with pytest.raises(SignalingError) as err:
            route_signal(current, offer(2), from_offerer=True)
        assert err.value.code == errors.WRONG_STATE and "at most 1 time" in err.value.message


def test_the_attempt_is_a_small_non_negative_integer() -> None:
    for bad in (-1, 256, "1", 1.5, True, None):
        with pytest.raises(SignalingError) as err:
            parse(Signal, {"call_id": "c", "attempt": bad, "candidate": {"candidate": ""}})
        assert err.value.code == errors.INVALID_PAYLOAD and "$.attempt" in err.value.message
