"""SRM: served counts against served weights, period by period.

:class:`SRMAccumulator` keeps, per period, the counts of draws per arm and their expected
counts, Σ over draws of the probability each was drawn with. A draw from the context-free
table (whose probabilities are one vector, see :meth:`~SRMAccumulator.new_table`) is only
counted while it happens: ``counts[index] += 1; table_served += 1``, which the allocator's
hot path does inline. A draw with its own probabilities is buffered as
``(1, probabilities)`` (:meth:`~SRMAccumulator.served`); both are folded into
the period's arrays lazily (:meth:`~SRMAccumulator.settle`, every ``FOLD_EVERY`` buffered
vectors, at the end of a period and before reading). :func:`srm_result` is Pearson's
chi-square of each period, summed over periods (degrees of freedom summed too).

>>> srm = SRMAccumulator(2)
>>> srm.new_table(np.array([0.5, 0.5]), period=0)
>>> for index in [0] * 60 + [1] * 40:
...     srm.counts[index] += 1
...     srm.table_served += 1
>>> result = srm_result(srm.settled(period=0), ["a", "b"])
>>> round(result.statistic, 6), result.df           # (60 - 50)² / 50 + (40 - 50)² / 50
(4.0, 1)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

FOLD_EVERY = 1024  # served weight vectors buffered before folding into SRM expectations


class AllocatorSRM(NamedTuple):
    """Sample-ratio check of served counts against served weights: Pearson's chi-square
    summed over periods (degrees of freedom summed too)."""

    statistic: float
    df: int
    p_value: float
    periods: pd.DataFrame


class SRMAccumulator:
    """Per-period draw counts and expected counts, folded in lazily (not thread-safe: the
    allocator calls it under its lock)."""

    def __init__(self, n_arms: int):
        self.n_arms = n_arms
        self.periods: dict[int, list[np.ndarray]] = {}  # period -> [counts, expected counts]
        self.counts = [0] * n_arms  # draws of the current period not yet folded
        self.table_served = 0  # draws from the current table not yet folded
        self._table: np.ndarray | None = None
        self._parts: list[tuple[int, np.ndarray]] = []

    def served(self, index: int, probabilities: np.ndarray, period: int) -> None:
        """One draw of arm ``index`` with its own ``probabilities``."""
        self.counts[index] += 1
        self._parts.append((1, probabilities))
        if len(self._parts) >= FOLD_EVERY:
            self.settle(period)

    def new_table(self, probabilities: np.ndarray, period: int) -> None:
        """The table now serves ``probabilities``; the old table's draws are buffered."""
        if self.table_served:
            self._parts.append((self.table_served, self._table))  # type: ignore[arg-type]
            self.table_served = 0
            if len(self._parts) >= FOLD_EVERY:
                self.settle(period)
        self._table = probabilities

    def settle(self, period: int) -> None:
        """Fold the pending counts and expected counts into ``period``'s arrays."""
        if self.table_served:
            self._parts.append((self.table_served, self._table))  # type: ignore[arg-type]
            self.table_served = 0
        arrays = self.periods.get(period)
        if arrays is None:
            arrays = self.periods[period] = [np.zeros(self.n_arms), np.zeros(self.n_arms)]
        arrays[0] += self.counts
        self.counts = [0] * self.n_arms
        parts = self._parts
        if parts:
            served = np.array([count for count, _ in parts], dtype=np.float64)
            arrays[1] += served @ np.stack([probabilities for _, probabilities in parts])
            self._parts = []

    def settled(self, period: int) -> dict[int, list[np.ndarray]]:
        """Every period's [counts, expected counts], copies, after settling ``period``."""
        self.settle(period)
        return {key: [value[0].copy(), value[1].copy()] for key, value in self.periods.items()}


def srm_result(
    periods: dict[int, list[np.ndarray]], arms: list[str], alpha: float = 0.001
) -> AllocatorSRM:
    """Pearson's chi-square per period, Σ (n_k − e_k)² / e_k over arms with e_k > 0 (an arm
    drawn without expectation makes it infinite), df = arms with e_k > 0 minus one; the
    statistics and df of periods with df > 0 are summed (Pearson, Phil. Mag. 1900)."""
    rows = []
    total_statistic, total_df = 0.0, 0
    for period, (counts, expected) in sorted(periods.items()):
        positive = expected > 1e-12
        with np.errstate(divide="ignore", invalid="ignore"):
            statistic = float(
                np.sum((counts[positive] - expected[positive]) ** 2 / expected[positive])
            )
        if np.any(counts[~positive] > 0):
            statistic = math.inf
        df = int(positive.sum()) - 1
        if df > 0:
            total_statistic += statistic
            total_df += df
        p_value = float(scipy_stats.chi2.sf(statistic, df)) if df > 0 else math.nan
        row = {"period": period, "decisions": int(counts.sum()), "statistic": statistic,
               "df": df, "p_value": p_value}  # fmt: skip
        for label, count, expectation in zip(arms, counts, expected, strict=True):
            row[f"n_{label}"] = round(count)
            row[f"expected_{label}"] = float(expectation)
        rows.append(row)
    p_value = float(scipy_stats.chi2.sf(total_statistic, total_df)) if total_df else math.nan
    frame = pd.DataFrame(rows)
    frame.attrs["alpha"] = alpha
    frame.attrs["flagged"] = bool(p_value < alpha) if total_df else False
    return AllocatorSRM(total_statistic, total_df, p_value, frame)
