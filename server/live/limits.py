"""Rate limits on what one kiosk or clerk may send: token buckets per identity and per event.

Every event a connected kiosk or clerk sends takes one token from the bucket of its identity for all events,
before it is parsed, and once it is a valid message, one from the bucket of its identity for that event, before
it reaches the one writer; with either empty the event is answered ``rate_limited`` (docs/protocol.md, "Rate
limits"), so a flood costs the server little more than reading it, and a client correcting a malformed message
is not held back by it. Past the bucket for all events, the namespace answers only after the bucket's wait (at
most a second), and since a socket's packets are handled one after the other, the flooder's socket is read no
faster than its bucket refills: the rest of its flood waits in its own buffers.

The buckets belong to the identity, not the connection: connecting again does not refill them. Each node keeps
its own (a kiosk or clerk is connected to one node at a time).

The sizes are for a real device's worst honest use, with room to spare: a burst is what a client may send at
once, the rate how fast the bucket refills. Pure bookkeeping, no I/O: the clock is given.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from signaling import errors
from signaling.errors import SignalingError


@dataclass(frozen=True)
class Limit:
    burst: int  # tokens when full: events that may come at once
    per_s: float  # tokens added a second

    def describe(self) -> str:
        every = 1 / self.per_s
        pace = f"{self.per_s:g} a second" if self.per_s >= 1 else f"1 every {every:g} s"
        return f"{self.burst} at once, then {pace}"


ANY_EVENT = "*"  # the bucket of every event of an identity
OTHER = "?"  # events the namespace does not know share one bucket

# A call's setup trickles a few dozen ICE candidates each way within a second or two (twice over for a media
# restart, and again to the recorder); the rest are a handful of events per call, and a call takes minutes.
KIOSK_LIMITS: Mapping[str, Limit] = {
    ANY_EVENT: Limit(300, 60.0),
    "signal": Limit(200, 50.0),
    "request_call": Limit(5, 0.1),  # a visitor who picked the wrong field cancels and asks again: a few a minute
    "cancel_call": Limit(5, 0.1),
    "hangup": Limit(10, 0.5),
    "media_connected": Limit(10, 1.0),
    "media_failed": Limit(10, 1.0),
    "recorder_offer": Limit(10, 1.0),
    "rate": Limit(5, 0.1),
    "request_callback": Limit(3, 1 / 60),  # each visitor types a phone number: one a minute at most
    OTHER: Limit(10, 1.0),
}
CLERK_LIMITS: Mapping[str, Limit] = {
    ANY_EVENT: Limit(300, 60.0),
    "signal": Limit(200, 50.0),
    "set_status": Limit(20, 1.0),
    "accept": Limit(10, 1.0),
    "decline": Limit(10, 1.0),
    "hangup": Limit(10, 1.0),
    "media_connected": Limit(10, 1.0),
    "media_failed": Limit(10, 1.0),
    "recorder_offer": Limit(10, 1.0),
    "wrap_up": Limit(20, 0.5),  # a wrap-up refused for a typo is corrected and sent again
    "transfer": Limit(5, 0.1),
    OTHER: Limit(10, 1.0),
}


class Bucket:
    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at

    def refill(self, limit: Limit, now: float) -> None:
        if now > self.at:
            self.tokens = min(float(limit.burst), self.tokens + (now - self.at) * limit.per_s)
        self.at = now

    def wait_s(self, limit: Limit) -> float:
        """How long until one token is there (0 if it is)."""
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / limit.per_s


class RateLimiter:
    """The buckets of every identity that sent something, for one namespace's table of limits."""

    def __init__(self, limits: Mapping[str, Limit], clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._buckets: dict[tuple[str, str], Bucket] = {}

    def take(self, who: str, event: str) -> None:
        """Take a token of ``who``'s bucket for ``event`` (:data:`ANY_EVENT`: for all events; an event without
        limits of its own: :data:`OTHER`), or raise ``rate_limited`` with the seconds to wait."""
        key = event if event in self.limits else OTHER
        limit = self.limits[key]
        bucket = self._bucket(who, key, self.clock())
        if bucket.tokens < 1:
            retry = math.ceil(bucket.wait_s(limit) * 10) / 10
            what = "events" if key == ANY_EVENT else f"{event!r} events" if key == event else "unknown events"
            raise SignalingError(errors.RATE_LIMITED, f"too many {what}: {limit.describe()}; "
                                 f"try again in {retry:g} s", retry_after_s=retry)
        bucket.tokens -= 1

    def _bucket(self, who: str, key: str, now: float) -> Bucket:
        limit = self.limits[key]
        b = self._buckets.get((who, key))
        if b is None:
            b = self._buckets[(who, key)] = Bucket(float(limit.burst), now)
        else:
            b.refill(limit, now)
        return b

    def forget_idle(self, who: str) -> None:
        """Drop ``who``'s buckets that are full again (nothing to remember); those still short stay."""
        now = self.clock()
        for key in list(self.limits):
            b = self._buckets.get((who, key))
            if b is not None:
                b.refill(self.limits[key], now)
                if b.tokens >= self.limits[key].burst:
                    del self._buckets[(who, key)]

    def __len__(self) -> int:
        return len(self._buckets)
