"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from client.ice import LoopbackPatch, allow_loopback_candidates


@pytest.fixture
def loopback_ice() -> Iterator[LoopbackPatch]:
    """aioice also gathers 127.0.0.1 during the test (so peers connect on a loopback-only host); undone after."""
    with allow_loopback_candidates() as patch:
        yield patch
