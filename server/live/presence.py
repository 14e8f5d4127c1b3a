"""Who is connected where: each kiosk and clerk to its socket, and sending to them.

The core speaks of kiosks and clerks (:class:`~signaling.commands.Party`);
only this map knows their Socket.IO connections. A message to someone not
connected is dropped here: the core has already recorded what matters, and a
returning client is brought up to date by its ``welcome``.
"""

from __future__ import annotations

import logging
from typing import Any

import socketio

from signaling.commands import KIOSK, Party

logger = logging.getLogger(__name__)

KIOSK_NS = "/kiosk"
CLERK_NS = "/clerk"


def namespace_of(party: Party) -> str:
    return KIOSK_NS if party.role == KIOSK else CLERK_NS


class Presence:
    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio
        self._sids: dict[Party, str] = {}

    def attach(self, party: Party, sid: str) -> None:
        self._sids[party] = sid

    def detach(self, party: Party, sid: str) -> None:
        if self._sids.get(party) == sid:
            del self._sids[party]

    def sid(self, party: Party) -> str | None:
        return self._sids.get(party)

    def count(self, role: str) -> int:
        return sum(1 for p in self._sids if p.role == role)

    async def send(self, party: Party, event: str, data: Any) -> None:
        sid = self._sids.get(party)
        if sid is None:
            return
        try:
            await self.sio.emit(event, data, to=sid, namespace=namespace_of(party))
        except Exception:  # a broken socket must not stop the messages to everyone else
            logger.exception("sending %s to %s failed", event, party)

    async def flush(self) -> None:
        """Everything is sent as it comes (see the cluster's outlet for batches)."""

    async def drop(self, party: Party, sid: str) -> None:
        try:
            await self.sio.disconnect(sid, namespace=namespace_of(party))
        except Exception:
            logger.exception("disconnecting %s (%s) failed", party, sid)
