"""The region tree: city > district > town/subdistrict > park/village.

A node is named by its path, e.g. ``sh/jiading/xincheng/park-3``; its level is
its depth (1 = city). A clerk covers nodes and everything below them; a kiosk
stands in one node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


class RegionError(ValueError):
    """A region path or level that the tree does not know."""


@dataclass(frozen=True)
class Region:
    path: str
    names: Mapping[str, str]
    level: int  # 1-based depth

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names.get("en") or self.path


@dataclass
class RegionTree:
    """An immutable tree of regions with cached ancestor chains."""

    levels: tuple[str, ...]
    regions: dict[str, Region]
    _ancestors: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _children: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, levels: Iterable[str], nodes: Mapping[str, Mapping[str, str]]) -> RegionTree:
        levels_t = tuple(levels)
        if not levels_t:
            raise RegionError("the region tree needs at least one level")
        regions: dict[str, Region] = {}
        for path in sorted(nodes, key=lambda p: p.count("/")):
            parts = path.split("/")
            if any(not p for p in parts):
                raise RegionError(f"region path {path!r} has an empty segment")
            if len(parts) > len(levels_t):
                raise RegionError(f"region {path!r} is deeper than the {len(levels_t)} levels")
            parent = "/".join(parts[:-1])
            if parent and parent not in regions:
                raise RegionError(f"region {path!r} has no parent {parent!r} in the tree")
            regions[path] = Region(path=path, names=dict(nodes[path]), level=len(parts))
        tree = cls(levels=levels_t, regions=regions)
        for path in regions:
            parts = path.split("/")
            tree._ancestors[path] = tuple("/".join(parts[: i + 1]) for i in range(len(parts)))
            tree._children.setdefault(path, [])
            if len(parts) > 1:
                tree._children.setdefault("/".join(parts[:-1]), []).append(path)
        return tree

    def __contains__(self, path: object) -> bool:
        return path in self.regions

    def get(self, path: str) -> Region:
        try:
            return self.regions[path]
        except KeyError:
            raise RegionError(f"unknown region {path!r}") from None

    def ancestors(self, path: str) -> tuple[str, ...]:
        """Ancestors of ``path`` from the root down, ``path`` included."""
        try:
            return self._ancestors[path]
        except KeyError:
            raise RegionError(f"unknown region {path!r}") from None

    def level_index(self, level: str) -> int:
        """The 1-based depth of a named level ("city" -> 1)."""
        try:
            return self.levels.index(level) + 1
        except ValueError:
            raise RegionError(f"unknown region level {level!r}; known: {', '.join(self.levels)}") from None

    def ancestor_at(self, path: str, depth: int) -> str:
        """The ancestor of ``path`` at ``depth``, or ``path`` itself if shallower."""
        chain = self.ancestors(path)
        return chain[min(depth, len(chain)) - 1]

    def covers(self, covered: str, path: str) -> bool:
        """True when ``covered`` is ``path`` or one of its ancestors."""
        return covered in self.ancestors(path)

    def children(self, path: str) -> list[str]:
        return list(self._children.get(path, []))

    def leaves(self) -> list[str]:
        return [p for p, kids in self._children.items() if not kids]

    def display(self, path: str, language: str) -> str:
        """A human name for ``path`` such as "Jiading District / New Town Science Park"."""
        chain = self.ancestors(path)
        shown = chain[1:] if len(chain) > 1 else chain
        return " / ".join(self.regions[p].name(language) for p in shown)
