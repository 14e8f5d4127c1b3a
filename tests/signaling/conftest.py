"""Fixtures shared by the signaling tests: the sample region tree and the routing stages of ``config/``."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from signaling.regions import RegionTree
from signaling.routing import Stage

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def load_sample_tree() -> RegionTree:
    """The Shanghai sample tree of ``config/regions.toml``."""
    with (CONFIG_DIR / "regions.toml").open("rb") as fh:
        data = tomllib.load(fh)
    return RegionTree.build(data["levels"], data["regions"])


# The stages of config/routing.toml, spelled out (a test checks that they agree).
CONFIG_STAGES = (
    Stage("jurisdiction", 0.0, None, True),
    Stage("district", 120.0, 2, True),
    Stage("city", 300.0, 1, False),
)


@pytest.fixture(scope="session")
def sample_tree() -> RegionTree:
    return load_sample_tree()


@pytest.fixture(scope="session")
def stages() -> tuple[Stage, ...]:
    return CONFIG_STAGES
