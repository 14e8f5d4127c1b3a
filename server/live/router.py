"""The router: where commands go to be applied.

One node runs the core itself (:class:`LocalRouter`, the embedded default);
several nodes share one core through Redis (:class:`server.live.cluster.RedisRouter`).
The namespaces, the admin pages and the recording desk talk to a :class:`Router`
only: ``submit`` a command and get its answer, ``revoke`` an identity, say the
roster of clerks changed, read the live board. :func:`make_router` chooses the
implementation from the settings, in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

import socketio

from server.live.liveboard import board_of
from server.live.presence import Presence
from server.live.writer import Answer, Clock, Recorder, Writer
from server.records.casework import CaseFiles
from server.records.identities import IdentityStore
from server.settings import Settings
from signaling.commands import ClerkCard, Command, KioskCard, Party, Revoked, RosterChanged
from signaling.policy import CallPolicy
from signaling.switch import Switch

logger = logging.getLogger(__name__)

ROSTER_REFRESH_S = 60.0  # clerks added or revoked by another process (the command line) are seen this soon


class Router(Protocol):
    def attach(self, party: Party, sid: str, card: KioskCard | ClerkCard) -> str: ...

    def detach(self, party: Party, sid: str) -> None: ...

    async def submit(self, cmd: Command) -> Answer: ...

    async def tick(self) -> Answer: ...

    async def revoke(self, ident: str) -> None: ...

    async def roster_changed(self) -> None: ...

    def board(self) -> dict[str, Any]: ...

    async def start(self) -> None: ...

    async def shutting_down(self) -> None:
        """The server stops taking requests: answer what still waits at once."""

    async def close(self) -> None: ...


def make_router(settings: Settings, files: CaseFiles, identities: IdentityStore, sio: socketio.AsyncServer,
                clock: Clock, recorder: Recorder | None) -> Router:
    """Several nodes on Redis when ``redis_url`` is set; otherwise this process alone, in memory."""
    if settings.redis_url:
        from server.live.cluster import RedisRouter, new_node_id

        return RedisRouter(settings.redis_url, new_node_id(settings.port), settings.policy(), files, identities,
                           clock, recorder, sio)
    return LocalRouter(settings.policy(), files, identities, Presence(sio), clock, recorder)


class LocalRouter:
    """The core in this process, behind the one writer; live state in memory."""

    def __init__(self, policy: CallPolicy, files: CaseFiles, identities: IdentityStore, presence: Presence,
                 clock: Clock, recorder: Recorder | None) -> None:
        self.policy = policy
        self.files = files
        self.identities = identities
        self.presence = presence
        self.clock = clock
        self.recorder = recorder
        self._writer: Writer | None = None
        self._refresh: asyncio.Task[None] | None = None

    @property
    def writer(self) -> Writer:
        if self._writer is None:
            raise RuntimeError("the router has not started")
        return self._writer

    @property
    def switch(self) -> Switch:
        return self.writer.switch

    async def start(self) -> None:
        """Close what a killed server left open, then build the core from the records."""
        pending, ended = await self.files.recover(self.clock.now())
        switch = Switch(self.policy, await self.roster(), pending, ended)
        self._writer = Writer(switch, self.files, self.presence, self.clock,
                              queue_update_interval_s=self.policy.queue_update_interval_s, recorder=self.recorder)
        self._refresh = asyncio.get_running_loop().create_task(self._refresh_roster())
        self.identities.on_roster_change(self.roster_changed)
        if pending:
            logger.info("%d wrap-up(s) still owed by clerks", len(pending))

    def attach(self, party: Party, sid: str, card: KioskCard | ClerkCard) -> str:
        self.presence.attach(party, sid)
        return sid

    def detach(self, party: Party, sid: str) -> None:
        self.presence.detach(party, sid)

    async def submit(self, cmd: Command) -> Answer:
        return await self.writer.submit(cmd)

    def board(self) -> dict[str, Any]:
        return board_of(self.switch, self.clock.now())

    async def tick(self) -> Answer:
        return await self.writer.tick()

    async def revoke(self, ident: str) -> None:
        """Cut off a kiosk or clerk whose token was just revoked, and stop counting the clerk as serving."""
        await self.submit(Revoked(ident))

    async def roster_changed(self) -> None:
        await self.submit(RosterChanged(await self.roster()))

    async def roster(self) -> tuple[ClerkCard, ...]:
        return tuple(c.card() for c in await self.identities.clerks() if not c.revoked and c.role == "clerk")

    async def shutting_down(self) -> None:
        pass  # the writer answers every command it takes; nothing waits on another node

    async def _refresh_roster(self) -> None:
        while True:
            await asyncio.sleep(ROSTER_REFRESH_S)
            try:
                await self.roster_changed()
            except Exception:
                logger.exception("refreshing the roster of clerks failed")

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh
        if self._writer is not None:
            await self._writer.close()
