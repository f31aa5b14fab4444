"""Sufficient statistics: the currency every splitlab analysis is computed from.

``Moments`` holds, per group, the count, the mean and the variance of one metric;
``JointMoments`` adds a second variable x (a CUPED covariate or a ratio metric's
denominator) and its covariance with y. Both are struct-of-arrays: every field is a numpy
array and they broadcast together, so thousands of groups are one object.

Merging (``a + b``) pools two groups exactly, with the parallel-variance update of
Chan, Golub & LeVeque (1979): M2 = M2_a + M2_b + n_a n_b / n (mean_a - mean_b)².
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from splitlab._validation import as_counts, as_float_array, broadcast, check_nonnegative
from splitlab.errors import InvalidArgumentError
from splitlab.stats.results import scalarize


def _dof(n: np.ndarray, ddof: int) -> np.ndarray:
    """Divisor of the sum of squared deviations; a single unit has variance 0."""
    return np.maximum(n - ddof, 1.0)


def _pooled_m2(n_a, mean_a, m2_a, n_b, mean_b, m2_b):
    n = n_a + n_b
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(n > 0, n_a * n_b / np.where(n > 0, n, 1.0), 0.0)
        mean = np.where(n > 0, (n_a * mean_a + n_b * mean_b) / np.where(n > 0, n, 1.0), 0.0)
    return n, mean, m2_a + m2_b + weight * (mean_a - mean_b) ** 2


@dataclass(frozen=True, eq=False)
class Moments:
    """Count, mean and variance of one metric per group.

    ``var`` is the sample variance (ddof=1), except for :meth:`from_proportions`, whose
    variance is p(1 - p) (ddof=0), the convention of GrowthBook and Statsig. ``ddof`` records
    which, so that merging stays exact.

    >>> a = Moments.from_samples([1.0, 2.0, 3.0])
    >>> b = Moments.from_samples([4.0, 5.0])
    >>> whole = a + b
    >>> float(whole.n), float(whole.mean), float(whole.var)
    (5.0, 3.0, 2.5)
    """

    n: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    ddof: int = 1

    def __init__(self, n, mean, var, ddof: int = 1):
        n = as_counts("n", n)
        mean = as_float_array("mean", mean)
        var = check_nonnegative("var", as_float_array("var", var))
        if ddof not in (0, 1):
            raise InvalidArgumentError("ddof", f"must be 0 or 1, got {ddof!r}")
        n, mean, var = broadcast(n=n, mean=mean, var=var)
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "var", var)
        object.__setattr__(self, "ddof", ddof)

    @classmethod
    def from_sums(cls, n, sum, sum_sq) -> Moments:
        """From the count, Σy and Σy² of each group (what a SQL group-by returns)."""
        n = as_counts("n", n)
        total = as_float_array("sum", sum)
        total_sq = as_float_array("sum_sq", sum_sq)
        n, total, total_sq = broadcast(n=n, sum=total, sum_sq=total_sq)
        safe_n = np.where(n > 0, n, 1.0)
        mean = total / safe_n
        m2 = np.maximum(total_sq - total * mean, 0.0)
        return cls(n, mean, m2 / _dof(n, 1))

    @classmethod
    def from_samples(cls, x, axis: int = -1) -> Moments:
        """From raw observations along ``axis``."""
        values = as_float_array("x", x)
        if values.ndim == 0:
            raise InvalidArgumentError("x", "must have at least one dimension")
        n = np.full(np.delete(values.shape, axis % values.ndim), values.shape[axis], float)
        mean = values.mean(axis=axis)
        m2 = ((values - np.expand_dims(mean, axis)) ** 2).sum(axis=axis)
        return cls(n, mean, m2 / _dof(n, 1))

    @classmethod
    def from_proportions(cls, successes, n) -> Moments:
        """From conversion counts: mean p = successes / n and variance p(1 - p)."""
        successes = as_counts("successes", successes)
        n = as_counts("n", n)
        successes, n = broadcast(successes=successes, n=n)
        if np.any(successes > n):
            raise InvalidArgumentError("successes", "must not exceed n")
        p = successes / np.where(n > 0, n, 1.0)
        return cls(n, p, p * (1.0 - p), ddof=0)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.n.shape

    @property
    def sum(self) -> np.ndarray:
        return self.n * self.mean

    @property
    def sum_sq(self) -> np.ndarray:
        return self.m2 + self.n * self.mean**2

    @property
    def m2(self) -> np.ndarray:
        """Sum of squared deviations from the mean."""
        return np.where(self.n > 0, self.var * _dof(self.n, self.ddof), 0.0)

    @property
    def std_error(self) -> np.ndarray:
        """Standard error of the mean, sqrt(var / n) (infinite for an empty group)."""
        with np.errstate(divide="ignore"):
            return np.sqrt(self.var / self.n)

    def __getitem__(self, index) -> Moments:
        return Moments(self.n[index], self.mean[index], self.var[index], ddof=self.ddof)

    def __add__(self, other: Moments) -> Moments:
        if not isinstance(other, Moments):
            return NotImplemented
        if other.ddof != self.ddof:
            raise InvalidArgumentError(
                "other", "cannot merge proportion moments (ddof=0) with sample moments (ddof=1)"
            )
        n, mean, m2 = _pooled_m2(self.n, self.mean, self.m2, other.n, other.mean, other.m2)
        return Moments(n, mean, m2 / _dof(n, self.ddof), ddof=self.ddof)

    merge = __add__

    def __repr__(self) -> str:
        n, mean, var = (scalarize(a) for a in (self.n, self.mean, self.var))
        return f"Moments(n={n!r}, mean={mean!r}, var={var!r})"


@dataclass(frozen=True, eq=False)
class JointMoments:
    """Moments of a metric y and a second variable x per group, with their covariance.

    x is a pre-period covariate (CUPED) or the denominator of a ratio metric. Variances and
    the covariance are sample quantities (ddof=1).

    >>> jm = JointMoments.from_samples([1.0, 2.0, 4.0], [1.0, 1.0, 2.0])
    >>> float(jm.cov)
    0.8333333333333334
    """

    n: np.ndarray
    mean_y: np.ndarray
    var_y: np.ndarray
    mean_x: np.ndarray
    var_x: np.ndarray
    cov: np.ndarray

    def __init__(self, n, mean_y, var_y, mean_x, var_x, cov):
        arrays = {
            "n": as_counts("n", n),
            "mean_y": as_float_array("mean_y", mean_y),
            "var_y": check_nonnegative("var_y", as_float_array("var_y", var_y)),
            "mean_x": as_float_array("mean_x", mean_x),
            "var_x": check_nonnegative("var_x", as_float_array("var_x", var_x)),
            "cov": as_float_array("cov", cov),
        }
        for name, value in zip(arrays, broadcast(**arrays), strict=True):
            object.__setattr__(self, name, value)

    @classmethod
    def from_sums(cls, n, sum_y, sum_y2, sum_x, sum_x2, sum_xy) -> JointMoments:
        """From n, Σy, Σy², Σx, Σx², Σxy per group."""
        arrays = {
            "n": as_counts("n", n),
            "sum_y": as_float_array("sum_y", sum_y),
            "sum_y2": as_float_array("sum_y2", sum_y2),
            "sum_x": as_float_array("sum_x", sum_x),
            "sum_x2": as_float_array("sum_x2", sum_x2),
            "sum_xy": as_float_array("sum_xy", sum_xy),
        }
        n, sum_y, sum_y2, sum_x, sum_x2, sum_xy = broadcast(**arrays)
        safe_n = np.where(n > 0, n, 1.0)
        mean_y, mean_x = sum_y / safe_n, sum_x / safe_n
        divisor = _dof(n, 1)
        return cls(
            n,
            mean_y,
            np.maximum(sum_y2 - sum_y * mean_y, 0.0) / divisor,
            mean_x,
            np.maximum(sum_x2 - sum_x * mean_x, 0.0) / divisor,
            (sum_xy - sum_y * mean_x) / divisor,
        )

    @classmethod
    def from_samples(cls, y, x, axis: int = -1) -> JointMoments:
        """From paired raw observations along ``axis``."""
        y_values = as_float_array("y", y)
        x_values = as_float_array("x", x)
        if y_values.shape != x_values.shape:
            raise InvalidArgumentError(
                "x", f"must have the shape of y {y_values.shape}, got {x_values.shape}"
            )
        if y_values.ndim == 0:
            raise InvalidArgumentError("y", "must have at least one dimension")
        size = y_values.shape[axis]
        n = np.full(np.delete(y_values.shape, axis % y_values.ndim), size, float)
        mean_y, mean_x = y_values.mean(axis=axis), x_values.mean(axis=axis)
        dev_y = y_values - np.expand_dims(mean_y, axis)
        dev_x = x_values - np.expand_dims(mean_x, axis)
        divisor = _dof(n, 1)
        return cls(
            n,
            mean_y,
            (dev_y**2).sum(axis=axis) / divisor,
            mean_x,
            (dev_x**2).sum(axis=axis) / divisor,
            (dev_y * dev_x).sum(axis=axis) / divisor,
        )

    @property
    def shape(self) -> tuple[int, ...]:
        return self.n.shape

    @property
    def y(self) -> Moments:
        return Moments(self.n, self.mean_y, self.var_y)

    @property
    def x(self) -> Moments:
        return Moments(self.n, self.mean_x, self.var_x)

    @property
    def sum_y(self) -> np.ndarray:
        return self.n * self.mean_y

    @property
    def sum_x(self) -> np.ndarray:
        return self.n * self.mean_x

    @property
    def sum_y2(self) -> np.ndarray:
        return self.y.sum_sq

    @property
    def sum_x2(self) -> np.ndarray:
        return self.x.sum_sq

    @property
    def sum_xy(self) -> np.ndarray:
        co_moment = np.where(self.n > 0, self.cov * _dof(self.n, 1), 0.0)
        return co_moment + self.n * self.mean_x * self.mean_y

    def __getitem__(self, index) -> JointMoments:
        return JointMoments(
            self.n[index],
            self.mean_y[index],
            self.var_y[index],
            self.mean_x[index],
            self.var_x[index],
            self.cov[index],
        )

    def __add__(self, other: JointMoments) -> JointMoments:
        if not isinstance(other, JointMoments):
            return NotImplemented
        y = self.y + other.y
        x = self.x + other.x
        co_a = np.where(self.n > 0, self.cov * _dof(self.n, 1), 0.0)
        co_b = np.where(other.n > 0, other.cov * _dof(other.n, 1), 0.0)
        n = self.n + other.n
        with np.errstate(invalid="ignore", divide="ignore"):
            weight = np.where(n > 0, self.n * other.n / np.where(n > 0, n, 1.0), 0.0)
        co_moment = (
            co_a + co_b + weight * (self.mean_y - other.mean_y) * (self.mean_x - other.mean_x)
        )
        return JointMoments(n, y.mean, y.var, x.mean, x.var, co_moment / _dof(n, 1))

    merge = __add__

    def __repr__(self) -> str:
        return (
            f"JointMoments(n={scalarize(self.n)!r}, mean_y={scalarize(self.mean_y)!r}, "
            f"mean_x={scalarize(self.mean_x)!r}, cov={scalarize(self.cov)!r})"
        )
