"""The decision log: every served decision's row, buffered until flushed to Parquet.

A row is the decision's pending row (:mod:`splitlab.allocator.pending`), so a reward
joined later is in it when the row is written. :class:`DecisionLog` keeps at most
``capacity`` rows (the oldest are dropped beyond it, with one
:class:`DecisionLogOverflowWarning`); :func:`decision_table` turns rows into the Arrow
table the Analyzer and :mod:`splitlab.ope` read: one column per field, ``prob_<k>`` per
arm, ``x_<j>`` per context feature, and the allocator's identity in the schema metadata.

>>> counters = {"log_dropped": 0}
>>> log = DecisionLog(capacity=2, counters=counters)
>>> for k in range(2):
...     log.append([f"d-{k}"])
>>> [row[0] for row in log.take(pending={"d-1"})], len(log)
(['d-0'], 1)
"""

from __future__ import annotations

import json
import math
import warnings
from collections import deque
from collections.abc import Container
from typing import Any

import numpy as np

from splitlab.allocator.pending import (
    ARM,
    CONTEXT,
    ID,
    PERIOD,
    PROBABILITIES,
    PROPENSITY,
    REWARD,
    REWARD_TIME,
    STICKY,
    TIME,
    UNIT,
    VERSION,
)
from splitlab.allocator.persistence import splitlab_version
from splitlab.bandits.base import Policy


class DecisionLogOverflowWarning(UserWarning):
    """The decision log reached ``log_capacity`` before a flush; the oldest rows were
    dropped (counted in ``Allocator.counters()['log_dropped']``)."""


class DecisionLog:
    """At most ``capacity`` rows, oldest first. Not thread-safe: the allocator calls it
    under its lock. ``counters`` is the allocator's dict; dropped rows are counted in its
    ``log_dropped``."""

    def __init__(self, capacity: int, counters: dict[str, int]):
        self.capacity = capacity
        self.rows: deque[list] = deque()
        self._counters = counters

    def __len__(self) -> int:
        return len(self.rows)

    def append(self, row: list) -> None:
        """Log a served decision's row, dropping the oldest at capacity (the allocator's
        hot path does the same inline)."""
        if len(self.rows) >= self.capacity:
            self.drop_oldest()
        self.rows.append(row)

    def drop_oldest(self) -> None:
        """Drop the oldest row to make room (counted; the first drop warns)."""
        self.rows.popleft()
        self._counters["log_dropped"] += 1
        if self._counters["log_dropped"] == 1:
            warnings.warn(
                f"the decision log reached log_capacity={self.capacity}; the oldest rows "
                "are dropped until flush() is called",
                DecisionLogOverflowWarning,
                stacklevel=4,  # drop_oldest < append or _record < choose < its caller
            )

    def extend(self, rows: list[list]) -> None:
        """Rows restored from a snapshot (its pending decisions), kept whatever the
        capacity."""
        self.rows.extend(rows)

    def take(self, pending: Container[str]) -> list[list]:
        """Remove and return the rows whose decision is not in ``pending``, oldest first."""
        taken, kept = [], deque()
        for row in self.rows:
            if row[ID] not in pending:
                taken.append(row)
            else:
                kept.append(row)
        self.rows = kept
        return taken

    def put_back(self, rows: list[list]) -> None:
        """Rows taken but not written go back in front of those logged since."""
        self.rows = deque([*rows, *self.rows])


def decision_table(rows: list[list], arms: list[str], salt: str, policy: Policy, mode: str) -> Any:
    """The rows as a ``pyarrow.Table`` (timestamps in UTC microseconds; a missing reward is
    null), with the allocator's identity as ``splitlab`` schema metadata."""
    import pyarrow as pa

    n_arms = len(arms)
    count = len(rows)
    probabilities = (
        np.stack([row[PROBABILITIES] for row in rows]) if count else np.empty((0, n_arms))
    )
    timestamps = np.array([row[TIME] for row in rows], dtype=np.float64)
    reward_times = [row[REWARD_TIME] for row in rows]
    columns: dict[str, Any] = {
        "decision_id": pa.array([row[ID] for row in rows], pa.string()),
        "timestamp": _timestamps(timestamps, pa),
        "unit": pa.array([row[UNIT] for row in rows], pa.string()),
        "experiment": pa.array([salt] * count, pa.string()),
        "arm": pa.array([arms[row[ARM]] for row in rows], pa.string()),
        "action": pa.array([row[ARM] for row in rows], pa.int64()),
        "propensity": pa.array([row[PROPENSITY] for row in rows], pa.float64()),
    }
    for k in range(n_arms):
        columns[f"prob_{k}"] = pa.array(probabilities[:, k], pa.float64())
    if policy.contextual:
        contexts = (
            np.stack([row[CONTEXT] for row in rows]) if count else np.empty((0, policy.n_features))
        )
        for j in range(policy.n_features):  # type: ignore[arg-type]
            columns[f"x_{j}"] = pa.array(contexts[:, j], pa.float64())
    columns["policy_version"] = pa.array([row[VERSION] for row in rows], pa.int64())
    columns["period"] = pa.array([row[PERIOD] for row in rows], pa.int64())
    columns["reward"] = pa.array([row[REWARD] for row in rows], pa.float64())
    columns["reward_timestamp"] = _timestamps(
        np.array([math.nan if t is None else t for t in reward_times]), pa
    )
    columns["sticky"] = pa.array([row[STICKY] for row in rows], pa.bool_())
    table = pa.table(columns)
    metadata = {
        "splitlab_version": splitlab_version(),
        "arms": arms,
        "policy": type(policy).__name__,
        "hyperparameters": policy._hyperparameters(),
        "mode": mode,
        "salt": salt,
    }
    return table.replace_schema_metadata({"splitlab": json.dumps(metadata)})


def _timestamps(seconds: np.ndarray, pa: Any) -> Any:
    missing = np.isnan(seconds)
    micros = np.where(missing, 0, np.round(np.where(missing, 0, seconds) * 1e6)).astype(np.int64)
    return pa.array(micros, pa.timestamp("us", tz="UTC"), mask=missing)
