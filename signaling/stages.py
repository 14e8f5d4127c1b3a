"""Routing stages: how the circle of eligible clerks widens as a call waits.

Eligibility of a clerk for a call at stage ``k`` (see ``config/routing.toml``):
the clerk serves the call's field, and

* covers an ancestor-or-self of the kiosk's region (stage 0, "jurisdiction"),
  or has a covered region inside the kiosk's ancestor at stage ``k``'s level;
* speaks the call's language, unless stage ``k`` relaxes that.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from signaling.calls import Call
from signaling.regions import RegionTree


@dataclass(frozen=True)
class ClerkProfile:
    id: str
    fields: frozenset[str]
    languages: frozenset[str]
    regions: tuple[str, ...]


@dataclass(frozen=True)
class Stage:
    name: str
    after_s: float
    level: int | None = None  # depth of the ancestor whose subtree is admitted
    require_language: bool = True


def validate_stages(stages: Sequence[Stage]) -> tuple[Stage, ...]:
    """Check that stages only ever widen; return them as a tuple."""
    if not stages:
        raise ValueError("at least one routing stage is needed")
    if stages[0].after_s != 0:
        raise ValueError(f"the first stage ({stages[0].name}) must start at after_s = 0")
    for prev, cur in itertools.pairwise(stages):
        if cur.after_s <= prev.after_s:
            raise ValueError(f"stage {cur.name!r} must start after stage {prev.name!r}")
        if prev.level is not None and (cur.level is None or cur.level > prev.level):
            raise ValueError(f"stage {cur.name!r} must not narrow the region of stage {prev.name!r}")
        if cur.require_language and not prev.require_language:
            raise ValueError(f"stage {cur.name!r} requires the language again after {prev.name!r} relaxed it")
    return tuple(stages)


def eligible(regions: RegionTree, stages: Sequence[Stage], clerk: ClerkProfile, call: Call, stage: int) -> bool:
    """The plain definition of who may take a call at a stage (no index)."""
    if call.field not in clerk.fields:
        return False
    st = stages[stage]
    if st.require_language and call.language not in clerk.languages:
        return False
    chain = regions.ancestors(call.region)
    if any(c in chain for c in clerk.regions):
        return True
    if st.level is None:
        return False
    anchor = regions.ancestor_at(call.region, st.level)
    return any(anchor in regions.ancestors(c) for c in clerk.regions)
