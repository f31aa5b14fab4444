"""Pending decisions and attribution: rewards joined to decisions by id.

A served decision is one row (a list, see the column positions below) that is both its
pending entry and its decision-log row; the reward is filled in place when it arrives.
:class:`PendingStore` keeps the rows waiting for a reward, oldest first: a row expires
``attribution_window`` seconds after its decision (checked when its reward comes, and by a
sweep every ``PURGE_EVERY`` decisions) and the oldest are evicted beyond ``max_pending``.
The ids of the last ``dedupe_capacity`` rewarded decisions are remembered, so that a
repeated reward is recognized as a duplicate and ignored.

>>> counters = dict.fromkeys(("duplicates", "expired", "evicted"), 0)
>>> store = PendingStore(attribution_window=60.0, max_pending=10, dedupe_capacity=10,
...                      counters=counters, clock=lambda: 130.0)
>>> store.add(new_row("d-0", 100.0, None, 1, 0.5, None, 1, 0, None, False), now=100.0)
>>> row, now = store.claim("d-0")
>>> store.complete(row, reward=1.0, now=now)
>>> store.claim("d-0"), counters["duplicates"]
(None, 1)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from splitlab.allocator.persistence import as_list, as_str, checked_array, corrupt
from splitlab.errors import InvalidArgumentError

# A row's columns: a pending decision and its decision-log row are one list.
ID, TIME, UNIT, ARM, PROPENSITY, PROBABILITIES, VERSION, PERIOD = range(8)
CONTEXT, REWARD, REWARD_TIME, STICKY = range(8, 12)
PURGE_EVERY = 256  # decisions between sweeps for expired pending decisions
# the columns a snapshot stores as ``pending.numbers``, in this order
_NUMBERS = (TIME, ARM, PROPENSITY, VERSION, PERIOD, STICKY)


class PendingDecision(NamedTuple):
    """A decision still waiting for its reward (see :meth:`Allocator.pending_decision`)."""

    id: str
    arm: str
    arm_index: int
    propensity: float
    timestamp: float
    unit: str | None
    context: np.ndarray | None


def new_row(
    decision_id, timestamp, unit, index, propensity, probabilities, version, period, context,
    sticky,
) -> list:  # fmt: skip
    """A decision's row, reward not yet known (``context`` copied as float64)."""
    return [
        decision_id, timestamp, unit, index, propensity, probabilities, version, period,
        None if context is None else np.array(context, dtype=np.float64), None, None, sticky,
    ]  # fmt: skip


class UnknownDecision(KeyError):
    """An id that is neither pending nor among the remembered rewarded ones."""


class PendingStore:
    """Rows waiting for their reward (oldest first) and the ids recently rewarded. Not
    thread-safe: the allocator calls it under its lock. ``counters`` is the allocator's
    dict; ``duplicates``, ``expired`` and ``evicted`` are counted in it."""

    def __init__(
        self,
        attribution_window: float | None,
        max_pending: int,
        dedupe_capacity: int,
        counters: dict[str, int],
        clock: Callable[[], float],
    ):
        self.rows: OrderedDict[str, list] = OrderedDict()
        self.done: OrderedDict[str, None] = OrderedDict()
        self.attribution_window = attribution_window
        self.max_pending = max_pending
        self.dedupe_capacity = dedupe_capacity
        self._counters = counters
        self._clock = clock
        self._since_purge = 0

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, decision_id: object) -> bool:
        return decision_id in self.rows

    def add(self, row: list, now: float) -> None:
        """Keep a new decision's row; evict the oldest beyond ``max_pending``, and sweep
        the expired ones every ``PURGE_EVERY`` decisions."""
        rows = self.rows
        rows[row[ID]] = row
        if len(rows) > self.max_pending:
            rows.popitem(last=False)
            self._counters["evicted"] += 1
        self._since_purge += 1
        if self._since_purge >= PURGE_EVERY:
            self.purge(now)

    def claim(self, decision_id: str) -> tuple[list, float] | None:
        """The pending row of ``decision_id`` and the time its reward came; None for a
        decision already rewarded (counted as a duplicate). Raises
        :class:`UnknownDecision` for an id not known here and ``InvalidArgumentError``
        for an expired decision (which is dropped). The row stays pending until
        :meth:`complete`."""
        row = self.rows.get(decision_id)
        if row is None:
            if decision_id in self.done:
                self._counters["duplicates"] += 1
                return None
            raise UnknownDecision(decision_id)
        now = self._clock()
        window = self.attribution_window
        if window is not None and now - row[TIME] > window:
            del self.rows[decision_id]
            self._counters["expired"] += 1
            raise InvalidArgumentError(
                "decision",
                f"{decision_id!r} expired: its reward came {now - row[TIME]:.0f} s after "
                f"the decision (attribution_window={window:g} s)",
            )
        return row, now

    def complete(self, row: list, reward: float, now: float) -> None:
        """The claimed ``row`` got its reward: it leaves the pending rows, its id is
        remembered (the oldest forgotten beyond ``dedupe_capacity``)."""
        decision_id = row[ID]
        del self.rows[decision_id]
        row[REWARD], row[REWARD_TIME] = reward, now
        done = self.done
        done[decision_id] = None
        if len(done) > self.dedupe_capacity:
            done.popitem(last=False)

    def purge(self, now: float) -> None:
        """Drop the rows older than ``attribution_window`` (counted as expired)."""
        self._since_purge = 0
        window = self.attribution_window
        if window is None:
            return
        rows = self.rows
        while rows:
            decision_id, row = next(iter(rows.items()))
            if now - row[TIME] <= window:
                break
            del rows[decision_id]
            self._counters["expired"] += 1

    def decision(self, decision_id: str, arms: list[str]) -> PendingDecision | None:
        """The pending decision ``decision_id`` (context copied), or None."""
        row = self.rows.get(decision_id)
        if row is None:
            return None
        return PendingDecision(
            row[ID], arms[row[ARM]], row[ARM], row[PROPENSITY], row[TIME], row[UNIT],
            None if row[CONTEXT] is None else row[CONTEXT].copy(),
        )  # fmt: skip

    def snapshot(self, n_arms: int, n_features: int | None) -> tuple[dict, dict]:
        """The pending rows and remembered ids as snapshot header fields and arrays
        (``pending.contexts`` only when ``n_features`` is given)."""
        pending = list(self.rows.values())
        arrays = {
            "pending.numbers": np.array(
                [[row[k] for k in _NUMBERS] for row in pending], dtype=np.float64
            ).reshape(len(pending), len(_NUMBERS)),
            "pending.probabilities": (
                np.stack([row[PROBABILITIES] for row in pending])
                if pending
                else np.empty((0, n_arms))
            ),
        }
        if n_features is not None:
            arrays["pending.contexts"] = (
                np.stack([row[CONTEXT] for row in pending])
                if pending
                else np.empty((0, n_features))
            )
        fields = {
            "pending_ids": [row[ID] for row in pending],
            "pending_units": [row[UNIT] for row in pending],
            "done": list(self.done),
        }
        return fields, arrays

    def restore(
        self,
        state: dict,
        arrays: dict,
        names: set[str],
        n_arms: int,
        n_features: int | None,
        version: int,
        period: int,
    ) -> list[list]:
        """Pending rows and remembered ids from a snapshot, every column checked against
        the restored allocator (its arms, version and period); returns the rows, oldest
        first. Adds the array names read to ``names``."""
        ids = as_list(state["pending_ids"], "state.pending_ids")
        count = len(ids)
        units = as_list(state["pending_units"], "state.pending_units", count)
        done = as_list(state["done"], "state.done")
        for where, values in (("state.pending_ids", ids), ("state.done", done)):
            for position, value in enumerate(values):
                as_str(value, f"{where}[{position}]")
            if len(set(values)) != len(values):
                raise corrupt(where, "repeats an id")
        if set(ids) & set(done):
            raise corrupt("state.done", "holds ids that are still pending")
        for position, unit in enumerate(units):
            if unit is not None:
                as_str(unit, f"state.pending_units[{position}]")
        numbers = checked_array(arrays, "pending.numbers", (count, 6))
        probabilities = checked_array(arrays, "pending.probabilities", (count, n_arms), minimum=0)
        if np.any(probabilities > 1) or np.any(np.abs(probabilities.sum(axis=1) - 1) > 1e-9):
            raise corrupt("pending.probabilities", "rows must be probabilities summing to 1")
        contexts = None
        if n_features is not None:
            names.add("pending.contexts")
            contexts = checked_array(arrays, "pending.contexts", (count, n_features))
        when, arm, propensity, row_version, row_period, sticky = numbers.T
        checks = {
            "arm index": (arm == np.round(arm)) & (arm >= 0) & (arm < n_arms),
            "propensity": (propensity > 0) & (propensity <= 1),
            "policy version": (row_version == np.round(row_version)) & (row_version >= 1)
            & (row_version <= version),
            "period": (row_period == np.round(row_period)) & (row_period >= 0)
            & (row_period <= period),
            "sticky flag": (sticky == 0) | (sticky == 1),
        }  # fmt: skip
        for what, fine in checks.items():
            if not fine.all():
                row = int(np.flatnonzero(~fine)[0])
                raise corrupt("pending.numbers", f"row {row} has an impossible {what}")
        drawn = probabilities[np.arange(count), arm.astype(np.int64)]
        mismatch = (sticky == 0) & (np.abs(drawn - propensity) > 1e-12)
        if mismatch.any():
            row = int(np.flatnonzero(mismatch)[0])
            raise corrupt("pending.numbers", f"row {row}: propensity is not its arm's probability")
        rows = []
        for position, decision_id in enumerate(ids):
            row_probabilities = probabilities[position].copy()
            row_probabilities.flags.writeable = False
            row = new_row(
                decision_id, float(when[position]), units[position], int(arm[position]),
                float(propensity[position]), row_probabilities, int(row_version[position]),
                int(row_period[position]), None if contexts is None else contexts[position],
                bool(sticky[position]),
            )  # fmt: skip
            self.rows[decision_id] = row
            rows.append(row)
        self.done.update(dict.fromkeys(done))
        return rows
