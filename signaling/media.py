"""The media attempts of a call: its first peer connection and at most one restart.

aiortc has no ICE restart, so a call whose connection fails renegotiates a
*new* peer connection instead: the kiosk (the offerer) sends a fresh offer
marked ``attempt: 1``; every signal carries the attempt of the connection it
belongs to. :func:`route_signal` decides, for one signal and the call's current
attempt, whether the server relays it, relays it as the start of the restart,
or drops it as a leftover of a connection already replaced. Pure: no I/O.
"""

from __future__ import annotations

import enum

from signaling import errors
from signaling.errors import SignalingError
from signaling.messages import MAX_ATTEMPT, Signal


class SignalRoute(enum.StrEnum):
    RELAY = "relay"  # of the current attempt
    RESTART = "restart"  # the offerer's offer opening the next attempt: relay it, and the call's attempt moves on
    STALE = "stale"  # of an attempt already replaced: drop it (the other side has closed that connection)


def route_signal(current: int, signal: Signal, from_offerer: bool) -> SignalRoute:
    """What to do with ``signal`` in a call whose media is at attempt ``current``.

    Raises :class:`SignalingError` (``wrong_state``) for an attempt the call cannot have: past the one
    restart, or a new attempt that does not start with the offerer's offer.
    """
    attempt = signal.attempt
    if attempt < current:
        return SignalRoute.STALE
    if attempt == current:
        return SignalRoute.RELAY
    if attempt > MAX_ATTEMPT:
        raise SignalingError(errors.WRONG_STATE, f"attempt {attempt} refused: a call's media is restarted at most "
                             f"{MAX_ATTEMPT} time(s) (attempts 0 to {MAX_ATTEMPT})")
    is_offer = signal.description is not None and signal.description.type == "offer"
    if attempt != current + 1 or not (from_offerer and is_offer):
        raise SignalingError(errors.WRONG_STATE, f"attempt {attempt} has not started (the call's media is at "
                             f"attempt {current}): the next attempt starts with the kiosk's offer")
    return SignalRoute.RESTART
