"""Test-only ways to make ICE fail for real, on chosen media attempts of a call (never in product code).

- :class:`BrokenPeerLink` replaces the bots' :class:`client.peerlink.PeerLink` (fixture ``break_attempts``):
  on a broken attempt it ignores the other side's candidates and keeps its own to itself (its descriptions
  still say end-of-candidates), so aioice has no pair to check and fails at once. With ``black_hole`` set,
  it instead advertises a candidate on that port of 127.0.0.1, where a socket takes the checks and never
  answers: a browser on the other side then checks it in vain and gives up after its own timeouts.
- :func:`black_hole_socket`: that socket.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import msgspec

from client import peerlink
from signaling.messages import IceCandidate, SessionDescription

CANDIDATE_LINE = re.compile(r"^a=candidate:.*\r?\n", re.MULTILINE)


class BrokenPeerLink(peerlink.PeerLink):
    """A bot's peer connection that, on the attempts in ``broken``, neither gives nor takes usable candidates."""

    broken: ClassVar[set[int]] = set()
    black_hole: ClassVar[int | None] = None

    @property
    def is_broken(self) -> bool:
        return self.attempt in self.broken

    def _outgoing(self, description: SessionDescription) -> SessionDescription:
        if not self.is_broken:
            return description
        sdp = CANDIDATE_LINE.sub("", description.sdp)
        if self.black_hole is not None:
            line = f"a=candidate:1 1 udp 2130706431 127.0.0.1 {self.black_hole} typ host\r\n"
            sdp = sdp.replace("a=end-of-candidates", line + "a=end-of-candidates")
        return msgspec.structs.replace(description, sdp=sdp)

    def _incoming(self, description: SessionDescription) -> SessionDescription:
        if not self.is_broken:
            return description
        # no candidates, and none to come: a browser trickles its own (ignored here) and never says the end
        return msgspec.structs.replace(description, sdp=end_of_candidates(CANDIDATE_LINE.sub("", description.sdp)))

    async def offer(self) -> SessionDescription:
        return self._outgoing(await super().offer())

    async def answer(self, offer: SessionDescription) -> SessionDescription:
        return self._outgoing(await super().answer(self._incoming(offer)))

    async def accept_answer(self, answer: SessionDescription) -> None:
        await super().accept_answer(self._incoming(answer))

    async def add_candidate(self, data: IceCandidate) -> None:
        if not self.is_broken:
            await super().add_candidate(data)


def end_of_candidates(sdp: str) -> str:
    """``sdp`` with ``a=end-of-candidates`` in every media section."""
    sections: list[list[str]] = [[]]
    for line in sdp.split("\r\n"):
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    out = sections[0]
    for section in sections[1:]:
        while section and section[-1] == "":
            section.pop()
        if "a=end-of-candidates" not in section:
            section.append("a=end-of-candidates")
        out = [*(line for line in out if line), *section]
    return "\r\n".join(out) + "\r\n"


@contextmanager
def black_hole_socket() -> Iterator[int]:
    """A UDP port on 127.0.0.1 that takes every packet and answers none; yields the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
    finally:
        sock.close()
