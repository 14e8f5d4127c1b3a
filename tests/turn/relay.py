"""A bot call for the TURN suite, and what it reads off the bots' peer connections and off coturn's log."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from aioice import Candidate

from client import peerlink
from client.bot import ClerkBot, KioskBot, KioskResult
from client.peerlink import RestartTiming
from tests.server.conftest import Harness


def ice_transport(pc: Any) -> Any:
    """The ``RTCIceTransport`` of ``pc``'s first transceiver (the bots bundle audio and video on it)."""
    return pc.getTransceivers()[0].sender.transport.transport


def nominated_pair(pc: Any) -> tuple[Candidate, Candidate]:
    """The (local, remote) candidates of the pair ICE nominated for ``pc``. aiortc has no candidate-pair stats,
    so this reads aioice's connection; it fails loudly if that is not where it was."""
    connection = ice_transport(pc)._connection
    pairs = list(connection._nominated.values())
    assert len(pairs) == 1, f"expected one nominated pair (one component), found {pairs}"
    return pairs[0].local_candidate, pairs[0].remote_candidate


class WatchedPeerLink(peerlink.PeerLink):
    """A bot's peer connection that keeps its connection states, its gathered candidates and, once connected,
    its nominated pair. Installed in place of ``PeerLink`` for a test (``made`` is reset by the fixture)."""

    made: ClassVar[list[WatchedPeerLink]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.states: list[str] = []
        self.pair: tuple[Candidate, Candidate] | None = None
        self.local_types: list[str] = []
        type(self).made.append(self)

    def _on_state(self) -> None:
        state = self.pc.connectionState
        self.states.append(state)
        if state == "connected":
            self.pair = nominated_pair(self.pc)
        super()._on_state()

    async def offer(self) -> Any:
        description = await super().offer()
        self._note_candidates()
        return description

    async def answer(self, offer: Any) -> Any:
        description = await super().answer(offer)
        self._note_candidates()
        return description

    def _note_candidates(self) -> None:
        # aiortc gathers every candidate before it sets the local description
        self.local_types = [c.type for c in ice_transport(self.pc).iceGatherer.getLocalCandidates()]


@dataclass(frozen=True)
class PeerUsage:
    """coturn's ``peer usage`` line of one allocation: what it relayed to and from the peers, at its end."""

    username: str
    received_packets: int
    received_bytes: int
    sent_packets: int
    sent_bytes: int


PEER_USAGE = re.compile(r"peer usage: realm=<[^>]*>, username=<([^>]*)>, rp=(\d+), rb=(\d+), sp=(\d+), sb=(\d+)")


def peer_usage(log: str, call_id: str) -> list[PeerUsage]:
    """The ``peer usage`` of every ended allocation of call ``call_id`` (usernames ``<expiry>:<call id>``)."""
    out = []
    for match in PEER_USAGE.finditer(log):
        username = match.group(1)
        if username.endswith(":" + call_id):
            out.append(PeerUsage(username, *(int(match.group(i)) for i in range(2, 6))))
    return out


def refusals(log: str, call_id: str) -> list[str]:
    """coturn's log lines that refused a request of call ``call_id``'s username with 401."""
    return [line for line in log.splitlines()
            if f":{call_id}>" in line and "error 401" in line]


def allocations(log: str, call_id: str) -> list[str]:
    """coturn's log lines of allocations it granted to call ``call_id``'s username."""
    return [line for line in log.splitlines()
            if f":{call_id}>" in line and "ALLOCATE processed, success" in line]


async def bot_call(harness: Harness, seconds: float, timing: RestartTiming | None = None,
                   timeout_s: float = 30) -> KioskResult:
    """A kiosk bot's call answered by a clerk bot; the kiosk's result once the clerk has seen the call end."""
    _, kiosk_token = await harness.identities.add_kiosk("Relay kiosk", "sh/jiading/xincheng/park-3")
    _, clerk_token = await harness.identities.add_clerk("Relay clerk", ["tax"], ["sh/jiading"], ["en"],
                                                       center="Jiading center")
    clerk = ClerkBot(harness.url, clerk_token, auto_accept=True, timing=timing)
    stop = asyncio.Event()
    clerk_task = asyncio.create_task(clerk.run(stop=stop))
    try:
        await asyncio.wait_for(clerk.ready.wait(), 10)
        kiosk = KioskBot(harness.url, kiosk_token, field="tax", language="en", timing=timing)
        result = await kiosk.run(seconds, timeout_s=timeout_s)
        if result.call_id is not None:
            await clerk.wait_ended(result.call_id, timeout_s=10)
        return result
    finally:
        stop.set()
        await asyncio.wait_for(clerk_task, 10)
