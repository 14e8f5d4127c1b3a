"""Estimated waits: how many online clerks could serve a queue, and how long a call of a field takes.

The estimate for the call at ``position`` in its (field, district) queue is
``handle time × ⌈position / servers⌉``: the field's handling time (a moving
average over answered calls, :data:`HANDLE_TIME_WEIGHT` for the newest) times
the rounds the clerks ahead of it need, where the servers are the online
clerks of the field (any status) who cover the kiosk's region above the
district, or anything inside its district. None while nobody online could
take the call.

The counts are kept per (field, covered node) and (field, each ancestor of a
covered node) as clerks come and go, so an estimate costs a walk up the
kiosk's region, not a scan of the clerks. The region tree is passed in, not
kept, so that the engine's state pickles without the configuration.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from signaling.calls import Call
from signaling.regions import RegionTree
from signaling.stages import ClerkProfile

HANDLE_TIME_WEIGHT = 0.2  # weight of the newest call in the moving average


def district_depth(regions: RegionTree) -> int:
    """The depth of the level queues are kept by (the district, or the root of a shallower tree)."""
    return min(2, len(regions.levels))


@dataclass
class WaitEstimates:
    default_handle_s: float = 300.0
    handle_s: dict[str, float] = field(default_factory=dict)  # field -> moving average, once a call was answered
    online: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (field, "cover" | "inside", node)

    def clerk_online(self, regions: RegionTree, profile: ClerkProfile) -> None:
        self._count(regions, profile, +1)

    def clerk_offline(self, regions: RegionTree, profile: ClerkProfile) -> None:
        self._count(regions, profile, -1)

    def handled(self, field: str, took: float) -> None:
        """An answered call of ``field`` ended after ``took`` seconds of conversation."""
        old = self.handle_s.get(field, self.default_handle_s)
        self.handle_s[field] = (1 - HANDLE_TIME_WEIGHT) * old + HANDLE_TIME_WEIGHT * took

    def handle_time(self, field: str) -> float:
        return self.handle_s.get(field, self.default_handle_s)

    def estimate(self, regions: RegionTree, call: Call, position: int) -> float | None:
        depth = district_depth(regions)
        chain = regions.ancestors(call.region)
        district = regions.ancestor_at(call.region, depth)
        servers = sum(self.online[(call.field, "cover", a)] for a in chain[: depth - 1])
        servers += self.online[(call.field, "inside", district)]
        if servers == 0:
            return None
        return self.handle_time(call.field) * math.ceil(position / servers)

    def _count(self, regions: RegionTree, profile: ClerkProfile, delta: int) -> None:
        seen: set[tuple[str, str, str]] = set()
        for f in profile.fields:
            for c in profile.regions:
                seen.add((f, "cover", c))
                seen.update((f, "inside", a) for a in regions.ancestors(c))
        for key in seen:
            self.online[key] += delta
            if self.online[key] <= 0:
                del self.online[key]
