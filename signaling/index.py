"""Buckets of sorted items: the indices that keep routing decisions logarithmic."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

from sortedcontainers import SortedList

Item = tuple[Any, ...]  # sort key..., id


class BucketIndex:
    """Buckets of sorted items; an item's last element is its id."""

    def __init__(self) -> None:
        self._buckets: dict[Hashable, SortedList] = {}

    def add(self, keys: Iterable[Hashable], item: Item) -> None:
        for key in keys:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = SortedList()
            bucket.add(item)

    def discard(self, keys: Iterable[Hashable], item: Item) -> None:
        for key in keys:
            bucket = self._buckets.get(key)
            if bucket is not None:
                bucket.discard(item)
                if not bucket:
                    del self._buckets[key]

    def first(self, key: Hashable, skip: Callable[[str], bool] | None = None) -> Item | None:
        bucket = self._buckets.get(key)
        if not bucket:
            return None
        if skip is None:
            return bucket[0]  # type: ignore[no-any-return]
        for item in bucket:
            if not skip(item[-1]):
                return item  # type: ignore[no-any-return]
        return None
