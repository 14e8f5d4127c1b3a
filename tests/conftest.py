"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from client import peerlink
from rtc.loopback import LoopbackPatch, allow_loopback_candidates
from tests.sabotage import BrokenPeerLink


@pytest.fixture
def loopback_ice() -> Iterator[LoopbackPatch]:
    """aioice also gathers 127.0.0.1 during the test (so peers connect on a loopback-only host); undone after."""
    with allow_loopback_candidates() as patch:
        yield patch


BreakAttempts = Callable[..., None]


@pytest.fixture
def break_attempts(monkeypatch: pytest.MonkeyPatch) -> BreakAttempts:
    """``break_attempts({0})``: from now on, the bots' peer connections of attempt 0 of every call fail ICE
    (``break_attempts({0, 1})``: the restart too; ``black_hole=port``: see :class:`tests.sabotage.BrokenPeerLink`)."""
    monkeypatch.setattr(peerlink, "PeerLink", BrokenPeerLink)
    monkeypatch.setattr(BrokenPeerLink, "broken", set())
    monkeypatch.setattr(BrokenPeerLink, "black_hole", None)

    def set_broken(attempts: set[int], black_hole: int | None = None) -> None:
        BrokenPeerLink.broken = set(attempts)
        BrokenPeerLink.black_hole = black_hole

    return set_broken
