"""Which requests for a recording's bytes are one playback, so each playback is logged once and nothing unlogged.

Each view of a session page that may play recordings gets a playback id (random, issued here for that user and
that call) which the page's players send as ``?playback=``. The first request of a recording that returns bytes
under a playback id logs ``recording_played``; the browser's further range requests of the same recording
under the same id (buffering, seeking) do not. A request without a playback id, with one this server did not
issue, issued to another user or for another call, or one past its lifetime is logged on its own: a download
can be coalesced only into a playback that was itself logged. The ids live in this process (another node logs
each of the requests it serves).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

PLAYBACK_TTL_S = 12 * 3600  # as long as a login session
MAX_PLAYBACKS = 10_000  # page views remembered at most (the oldest forgotten first)


@dataclass
class Playback:
    user_id: str
    call_id: str
    issued_at: float
    logged: set[int] = field(default_factory=set)  # recording ids whose playback is logged


class PlaybackLog:
    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.now = now
        self._playbacks: OrderedDict[str, Playback] = OrderedDict()

    def issue(self, user_id: str, call_id: str) -> str:
        """A playback id for one view of ``call_id``'s page by ``user_id``."""
        playback_id = secrets.token_urlsafe(16)
        self._playbacks[playback_id] = Playback(user_id, call_id, self.now())
        while len(self._playbacks) > MAX_PLAYBACKS:
            self._playbacks.popitem(last=False)
        return playback_id

    def _valid(self, playback_id: str, user_id: str, call_id: str) -> Playback | None:
        playback = self._playbacks.get(playback_id) if playback_id else None
        if playback is None or playback.user_id != user_id or playback.call_id != call_id:
            return None
        if self.now() - playback.issued_at > PLAYBACK_TTL_S:
            del self._playbacks[playback_id]
            return None
        return playback

    def starts(self, playback_id: str, user_id: str, call_id: str, rec_id: int) -> bool:
        """Whether bytes of recording ``rec_id`` sent now must be logged (and, if so, count them as logged)."""
        playback = self._valid(playback_id, user_id, call_id)
        if playback is None:
            return True
        if rec_id in playback.logged:
            return False
        playback.logged.add(rec_id)
        return True

    def unlog(self, playback_id: str, rec_id: int) -> None:
        """The log of a start failed: the next request of this playback logs again."""
        playback = self._playbacks.get(playback_id)
        if playback is not None:
            playback.logged.discard(rec_id)
