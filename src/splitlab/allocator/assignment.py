"""Assignment: which arm a request gets, given the probabilities served.

Arm labels fix the order of the hashing buckets; a draw is the inverse CDF of the served
probabilities at a uniform number, the unit's hash (:func:`splitlab.hashing.unit_uniform`)
or the seeded generator's. A sticky store keeps each unit's first (arm, propensity) so that
a returning unit keeps its arm.

>>> draw([0.2, 0.5, 0.3], 0.75)
(2, 0.3)
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Sequence
from itertools import accumulate
from typing import Protocol

from splitlab._validation import check_integer
from splitlab.errors import InvalidArgumentError


class StickyStore(Protocol):
    """Where ``sticky=True`` keeps each unit's first (arm, propensity): any object with
    ``get(unit) -> tuple | None`` and ``set(unit, value)`` (e.g. a Redis adapter)."""

    def get(self, unit: str) -> tuple[str, float] | None: ...

    def set(self, unit: str, value: tuple[str, float]) -> None: ...


class BoundedStore:
    """The default sticky store: in memory, least recently used units evicted beyond
    ``capacity``.

    >>> store = BoundedStore(capacity=2)
    >>> store.set("a", ("x", 0.5)); store.set("b", ("y", 0.5)); store.set("c", ("x", 0.5))
    >>> store.get("a") is None, store.get("c")
    (True, ('x', 0.5))
    """

    def __init__(self, capacity: int = 1_000_000):
        self.capacity = check_integer("sticky_capacity", capacity)
        self._items: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def get(self, unit: str) -> tuple[str, float] | None:
        value = self._items.get(unit)
        if value is not None:
            self._items.move_to_end(unit)
        return value

    def set(self, unit: str, value: tuple[str, float]) -> None:
        self._items[unit] = value
        self._items.move_to_end(unit)
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def check_arms(arms: object) -> list[str]:
    """Arm labels as a list: non-empty, unique, non-empty strings."""
    if isinstance(arms, str) or not isinstance(arms, Sequence):
        raise InvalidArgumentError("arms", "must be a list of arm labels")
    labels = list(arms)
    if len(labels) < 1:
        raise InvalidArgumentError("arms", "needs at least one arm")
    if not all(isinstance(label, str) and label for label in labels):
        raise InvalidArgumentError("arms", "labels must be non-empty strings")
    if len(set(labels)) != len(labels):
        raise InvalidArgumentError("arms", f"labels must be unique, got {labels}")
    return labels


def cdf(propensities: list[float]) -> tuple[list[float], int]:
    """Running sums (sequential, as np.cumsum) and the last arm that can be drawn."""
    last = len(propensities) - 1
    while propensities[last] <= 0:
        last -= 1
    return list(accumulate(propensities)), last


def draw(propensities: list[float], uniform: float) -> tuple[int, float]:
    """Inverse-CDF draw as ``draw_from``, on a Python list (no numpy calls for ~10 arms)."""
    cumulative, last = cdf(propensities)
    index = min(bisect_right(cumulative, uniform * cumulative[-1]), last)
    return index, propensities[index]
