"""What the two workloads of ``bench/routing.py`` share: random clerks and kiosk calls over the sample tree,
the pools the drivers pick from, percentiles.

Used by the engine's workload (``routing.py``) and the whole core's
(``routing_core.py``); not a benchmark of its own.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from signaling.regions import RegionTree
from signaling.routing import ClerkProfile

FIELDS = ("market", "tax", "social", "housing")
FIELD_WEIGHTS = (35, 35, 20, 10)


@dataclass(frozen=True)
class CallSpec:
    field: str
    language: str
    region: str


class Population:
    """Random clerks and kiosk calls over the sample tree."""

    def __init__(self, tree: RegionTree, rng: random.Random) -> None:
        self.rng = rng
        self.kiosks = sorted(tree.leaves())
        self.towns = sorted(p for p, r in tree.regions.items() if r.level == 3)
        self.districts = sorted(p for p, r in tree.regions.items() if r.level == 2)
        self.city = next(p for p, r in tree.regions.items() if r.level == 1)

    def _coverage(self) -> str:
        x = self.rng.random()
        if x < 0.05:
            return self.city
        if x < 0.55:
            return self.rng.choice(self.districts)
        return self.rng.choice(self.towns)

    def clerk(self, clerk_id: str) -> ClerkProfile:
        rng = self.rng
        regions = [self._coverage()]
        if rng.random() < 0.1:
            extra = self._coverage()
            if extra not in regions:
                regions.append(extra)
        fields = {rng.choices(FIELDS, FIELD_WEIGHTS)[0]}
        if rng.random() < 0.3:
            fields.add(rng.choices(FIELDS, FIELD_WEIGHTS)[0])
        languages = {"zh"}
        if rng.random() < 0.25:
            languages.add("en")
        if rng.random() < 0.05:
            languages.add("ar")
        return ClerkProfile(clerk_id, frozenset(fields), frozenset(languages), tuple(regions))

    def call(self) -> CallSpec:
        rng = self.rng
        language = rng.choices(("zh", "en", "ar"), (85, 12, 3))[0]
        return CallSpec(rng.choices(FIELDS, FIELD_WEIGHTS)[0], language, rng.choice(self.kiosks))


class Pool:
    """A set with O(1) add, remove and uniform random choice (deterministic for a given history)."""

    def __init__(self, items: Sequence[str] = ()) -> None:
        self._items: list[str] = []
        self._where: dict[str, int] = {}
        for item in items:
            self.add(item)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: str) -> None:
        if item not in self._where:
            self._where[item] = len(self._items)
            self._items.append(item)

    def discard(self, item: str) -> None:
        i = self._where.pop(item, None)
        if i is None:
            return
        last = self._items.pop()
        if i < len(self._items):
            self._items[i] = last
            self._where[last] = i

    def choice(self, rng: random.Random) -> str:
        return self._items[rng.randrange(len(self._items))]


def percentile(values: Sequence[int], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    i = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return float(ordered[i])
