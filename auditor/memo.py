"""The one bounded cache of the package: every memo of a device's values goes through here.

A device controls what it sends, so anything remembered per host, field or connection must
have a ceiling, and one rule for what happens at the ceiling reads better than fifteen. The
rule: a ``Memo`` holds at most ``limit`` entries and forgets all of them at once when a new
one would go past it. Forgetting everything costs one ``dict.clear`` and keeps a hit a plain
dictionary lookup (no recency bookkeeping on the hot path); what a device sends again is
simply computed again.

``memoised(limit)`` is the same ceiling for a pure function of hashable arguments
(``functools.lru_cache``, whose eviction is per entry: fine where the function is called
through Python anyway).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
F = TypeVar("F", bound=Callable)


class Memo(Generic[K, V]):
    """At most ``limit`` entries; all forgotten at once when a new one would go past it."""

    __slots__ = ("limit", "_items")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a memo holds at least one entry, not {limit}")
        self.limit = limit
        self._items: dict[K, V] = {}

    def get(self, key: K, default: V | None = None) -> V | None:
        return self._items.get(key, default)

    @property
    def lookup(self) -> Callable[[K], V | None]:
        """``get`` without a Python call around it, for a loop that asks once per field:
        the entries' own ``dict.get``. It stays valid for the memo's life, since forgetting
        empties the dictionary in place and never replaces it."""
        return self._items.get

    def put(self, key: K, value: V) -> V:
        """Remember ``value`` under ``key`` and return it."""
        items = self._items
        if key not in items and len(items) >= self.limit:
            items.clear()
        items[key] = value
        return value

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The remembered value, or ``make()`` remembered."""
        try:
            return self._items[key]
        except KeyError:
            return self.put(key, make())

    def pop(self, key: K, default: V | None = None) -> V | None:
        return self._items.pop(key, default)

    def clear(self) -> None:
        self._items.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


def memoised(limit: int) -> Callable[[F], F]:
    """A pure function's results, at most ``limit`` of them (``functools.lru_cache``)."""
    return functools.lru_cache(maxsize=limit)  # type: ignore[return-value]
