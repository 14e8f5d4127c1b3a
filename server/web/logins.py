"""Failed logins: limited per username and per client address, logged, and shown to administrators.

Each key (a username, an address) may fail ``free`` times within ``window_s`` seconds; from then on each
further attempt must wait ``1 s, 2 s, 4 s ...`` (at most ``backoff_max_s``) after the key's last failure, and
is answered 429 with the wait, without its password being checked. Failures older than the window no longer
count (a sliding window). A successful login clears its username's failures; its address keeps them, so a
known account cannot be used to reset an address that guesses others'. The counts live in this process.

Every checked login is logged twice: a line in the server's log and an event in the records
(``login`` or ``login_failed``: the username, the client's address; never the password), which the
administrator's clerk page lists.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from server.records.chain import Records
from server.records.db import events

logger = logging.getLogger(__name__)

BACKOFF_BASE_S = 1.0
MAX_KEYS = 100_000  # usernames and addresses remembered at most (the oldest forgotten first)
USERNAME_MAX = 100
RECENT_FAILURES = 20


@dataclass
class SlidingWindow:
    """Failure times per key within the last ``window_s`` seconds; the wait a key owes before its next try."""

    free: int
    window_s: float
    backoff_max_s: float
    _failures: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def wait_s(self, key: str, now: float) -> float:
        times = self._recent(key, now)
        if times is None or len(times) < self.free:
            return 0.0
        delay = min(self.backoff_max_s, BACKOFF_BASE_S * 2.0 ** min(len(times) - self.free, 64))
        return max(0.0, times[-1] + delay - now)

    def failed(self, key: str, now: float) -> None:
        times = self._recent(key, now) or deque()
        times.append(now)
        self._failures[key] = times
        self._failures.move_to_end(key)
        while len(self._failures) > MAX_KEYS:
            self._failures.popitem(last=False)

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)


@dataclass
class LoginThrottle:
    accounts: SlidingWindow
    addresses: SlidingWindow
    now: Callable[[], float] = time.time

    @classmethod
    def build(cls, per_account: int, per_address: int, window_s: float, backoff_max_s: float,
              now: Callable[[], float] = time.time) -> LoginThrottle:
        return cls(SlidingWindow(per_account, window_s, backoff_max_s),
                   SlidingWindow(per_address, window_s, backoff_max_s), now)

    def wait_s(self, account: str, address: str, now: float) -> int:
        """Whole seconds to wait before this login may be checked (0: check it now)."""
        wait = max(self.accounts.wait_s(account, now), self.addresses.wait_s(address, now))
        return math.ceil(wait)

    def failed(self, account: str, address: str, now: float) -> None:
        self.accounts.failed(account, now)
        self.addresses.failed(address, now)

    def succeeded(self, account: str) -> None:
        self.accounts.clear(account)


def account_key(username: str) -> str:
    return username.strip().casefold()[:USERNAME_MAX]


async def log_login(records: Records, *, ok: bool, username: str, address: str, user_id: str | None = None,
                    reason: str = "") -> None:
    """A checked login, in the server's log and in the records (never the password)."""
    shown = username[:USERNAME_MAX]
    if ok:
        logger.info("login ok: %r (%s) from %s", shown, user_id, address)
        await records.log("login", actor=f"user:{user_id}", data={"username": shown, "address": address})
    else:
        logger.warning("login failed: %r from %s (%s)", shown, address, reason)
        await records.log("login_failed", actor=f"address:{address}"[:64],
                          data={"username": shown, "address": address, "reason": reason})


async def recent_failures(engine: AsyncEngine, limit: int = RECENT_FAILURES) -> list[dict[str, Any]]:
    """The latest failed logins, newest first: time, username, address, reason."""
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(events.c.at, events.c.data).where(events.c.kind == "login_failed")
                                  .order_by(events.c.id.desc()).limit(limit))
        return [{"at": r.at, **{k: str(v) for k, v in dict(r.data).items()}} for r in rows]
