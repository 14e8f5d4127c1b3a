"""Commands as bytes, to forward them between nodes and keep them in a journal (msgpack, via msgspec).

An incoming event travels as its event name and plain payload and is validated
again on decoding, so a journal read back is checked like a socket's input.
"""

from __future__ import annotations

from typing import Any

import msgspec

from signaling import messages
from signaling.commands import (
    KIOSK,
    ClerkConnected,
    Command,
    Disconnected,
    KioskConnected,
    Received,
    RecorderAnswered,
    RecorderLost,
    Revoked,
    RosterChanged,
    SendPositions,
    Tick,
)

AnyCommand = (KioskConnected | ClerkConnected | Disconnected | Received | Tick | SendPositions | RecorderAnswered
              | RecorderLost | Revoked | RosterChanged)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AnyCommand)


def encode(cmd: Command) -> bytes:
    if isinstance(cmd, Received):  # the message struct as plain data, typed again on the way in
        cmd = msgspec.structs.replace(cmd, msg=msgspec.to_builtins(cmd.msg))
    return _encoder.encode(cmd)


def decode(data: bytes) -> Command:
    cmd: Any = _decoder.decode(data)
    if isinstance(cmd, Received):
        table = messages.KIOSK_IN if cmd.party.role == KIOSK else messages.CLERK_IN
        schema = table[cmd.event][0]
        cmd = msgspec.structs.replace(cmd, msg=messages.parse(schema, cmd.msg))
    assert isinstance(cmd, Command)
    return cmd
