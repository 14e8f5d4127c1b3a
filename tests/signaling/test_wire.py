"""Commands survive the trip through bytes (for the cluster's journal), and a bad one is refused like a socket's."""

from __future__ import annotations

import msgspec
import pytest

from signaling import messages as m
from signaling import wire
from signaling.commands import (
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
from signaling.errors import SignalingError

CLERK = ClerkCard("c1", "Wang", "Jiading", ("tax",), ("sh/jiading",), ("zh", "en"))
COMMANDS: list[Command] = [
    KioskConnected("n1/s1", KioskCard("k1", "Park 3", "sh/jiading/xincheng/park-3")),
    ClerkConnected("n2/s2", CLERK),
    Disconnected(Party("kiosk", "k1"), "n1/s1", lost=True),
    Received(Party("kiosk", "k1"), "n1/s1", "request_call", m.RequestCall("tax", "en", True), "fresh-id"),
    Received(Party("kiosk", "k1"), "n1/s1", "signal",
             m.Signal("c", candidate=m.IceCandidate("candidate:1", "0", 0), attempt=1)),
    Received(Party("clerk", "c1"), "n2/s2", "wrap_up",
             m.WrapUp("c", [m.MatterIn("x", "yet_to_do", followup="general", notes="lease")])),
    Tick(),
    SendPositions((("tax", "sh/jiading"),)),
    RecorderAnswered("c", "visitor", "no worker"),
    RecorderLost("c", "clerk"),
    Revoked("k1"),
    RosterChanged((CLERK,)),
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: type(c).__name__)
def test_every_command_comes_back_equal(cmd: Command) -> None:
    assert wire.decode(wire.encode(cmd)) == cmd


def test_a_received_event_is_validated_again_on_the_way_in() -> None:
    bad = msgspec.msgpack.encode({"type": "Received", "party": {"role": "kiosk", "id": "k1"}, "conn": "s",
                                  "event": "request_call", "msg": {"field": 7, "language": "en"}})
    with pytest.raises(SignalingError) as err:
        wire.decode(bad)
    assert err.value.code == "invalid_payload" and "field" in err.value.message
