"""Sufficient statistics: the currency every splitlab analysis is computed from.

``Moments`` holds, per group, the count, the mean and the variance of one metric;
``JointMoments`` adds a second variable x (a CUPED covariate or a ratio metric's
denominator) and its covariance with y. Both are struct-of-arrays: every field is a numpy
array and they broadcast together, so thousands of groups are one object.

Merging (``a + b``) pools two groups exactly, with the parallel-variance update of
Chan, Golub & LeVeque (1979): M2 = M2_a + M2_b + n_a n_b / n (mean_a - mean_b)².

Raw power sums lose the variance to cancellation when the mean is large against the spread
(revenue of 1e9 + N(10, 2): Σy² − (Σy)²/n keeps no correct digit). ``from_sums`` therefore
checks every row: sums that no data can have (Σy² < (Σy)²/n beyond rounding, a negative
Σy², a sum where n = 0) raise :class:`~splitlab.errors.InvalidArgumentError`; a variance
that the sums no longer determine to :data:`RELATIVE_PRECISION` is NaN, and every test
reports such a row in its ``error`` (:data:`LOST_PRECISION`) instead of a confident answer.
Centred moments (``Moments(n, mean, var)``, ``from_samples``, the Analyzer's reduction) do
not have the problem.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from splitlab._validation import as_counts, as_float_array, broadcast, check_nonnegative
from splitlab.errors import InvalidArgumentError
from splitlab.stats.results import scalarize

# a variance from power sums is kept when its rounding error, about EPSILON_FACTOR·ε·Σy²,
# is below this fraction of it: the 1e-6 to which splitlab matches reference values
RELATIVE_PRECISION = 1e-6
EPSILON_FACTOR = 8.0
_ROUNDING = EPSILON_FACTOR * np.finfo(float).eps
_SUBNORMAL = 1e-280
_SPACING_AT_ZERO = np.finfo(np.float64).smallest_subnormal  # 5e-324
LOST_PRECISION = (
    "variance lost to rounding: Σy² − (Σy)²/n is within the rounding error of the sums "
    "(pass centred moments, Moments(n, mean, var))"
)


def _dof(n: np.ndarray, ddof: int) -> np.ndarray:
    """Divisor of the sum of squared deviations; a single unit has variance 0."""
    return np.maximum(n - ddof, 1.0)


def _first_row(mask: np.ndarray) -> str:
    if mask.ndim == 0:
        return ""
    return f" (first at index {tuple(int(i) for i in np.argwhere(mask)[0])})"


def _check_empty(n: np.ndarray, **sums: np.ndarray) -> None:
    for name, value in sums.items():
        wrong = (n == 0) & (value != 0)
        if np.any(wrong):
            raise InvalidArgumentError(
                name, f"is non-zero where n is 0 in {int(np.sum(wrong))} row(s){_first_row(wrong)}"
            )


def centred_from_sums(n, total, total_sq, *, name: str = "sum_sq", sum_name: str = "sum"):
    """Mean and M2 = Σ(y − ȳ)² from power sums, validated row by row.

    Raises where the sums are impossible (M2 below zero by more than rounding); M2 is NaN
    where rounding leaves fewer than 1/RELATIVE_PRECISION of it (see the module docstring).
    """
    if np.any(total_sq < 0):
        wrong = total_sq < 0
        raise InvalidArgumentError(name, f"must be non-negative{_first_row(wrong)}")
    safe_n = np.where(n > 0, n, 1.0)
    mean = total / safe_n
    with np.errstate(over="ignore", invalid="ignore"):
        m2 = total_sq - total * mean
        # relative rounding, plus the absolute spacing of subnormal squares (tiny values:
        # each y² and Σy·ȳ may round by half of 5e-324 whatever their size)
        rounding = _ROUNDING * total_sq + (safe_n + 2.0) * _SPACING_AT_ZERO
    impossible = m2 < -rounding
    if np.any(impossible):
        raise InvalidArgumentError(
            name,
            f"is smaller than {sum_name}²/n in {int(np.sum(impossible))} row(s)"
            f"{_first_row(impossible)}: no data has a negative variance",
        )
    lost = (m2 != 0) & (np.abs(m2) * RELATIVE_PRECISION < rounding)
    return mean, np.where(lost, np.nan, np.maximum(m2, 0.0))


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
        _check_empty(n, sum=total, sum_sq=total_sq)
        mean, m2 = centred_from_sums(n, total, total_sq)
        return cls._trusted(n, mean, m2 / _dof(n, 1))

    @classmethod
    def _trusted(cls, n, mean, var, ddof: int = 1) -> Moments:
        """Validated arrays; ``var`` may be NaN where :func:`centred_from_sums` lost it."""
        moments = object.__new__(cls)
        for name, value in (("n", n), ("mean", mean), ("var", var), ("ddof", ddof)):
            object.__setattr__(moments, name, value)
        return moments

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
        return Moments._trusted(self.n[index], self.mean[index], self.var[index], self.ddof)

    def __add__(self, other: Moments) -> Moments:
        if not isinstance(other, Moments):
            return NotImplemented
        if other.ddof != self.ddof:
            raise InvalidArgumentError(
                "other", "cannot merge proportion moments (ddof=0) with sample moments (ddof=1)"
            )
        n, mean, m2 = _pooled_m2(self.n, self.mean, self.m2, other.n, other.mean, other.m2)
        return Moments._trusted(n, mean, m2 / _dof(n, self.ddof), self.ddof)

    merge = __add__

    def __repr__(self) -> str:
        n, mean, var = (scalarize(a) for a in (self.n, self.mean, self.var))
        return f"Moments(n={n!r}, mean={mean!r}, var={var!r})"


def _check_covariance(var_y, var_x, cov, name: str, slack=0.0) -> None:
    """Cauchy–Schwarz: cov² ≤ var_y·var_x (beyond rounding) holds for every data set."""
    with np.errstate(over="ignore", invalid="ignore"):
        bound = np.sqrt(var_y) * np.sqrt(var_x) * (1.0 + 1e-9) + slack
        # squares that underflow carry no relative precision: checked in the normal range
        normal = (var_y > _SUBNORMAL) & (var_x > _SUBNORMAL)
        wrong = (np.abs(cov) > bound) & normal
    if np.any(wrong):
        raise InvalidArgumentError(
            name,
            f"is inconsistent with the variances in {int(np.sum(wrong))} row(s)"
            f"{_first_row(wrong)}: |cov(y, x)| exceeds sd(y)·sd(x)",
        )


@dataclass(frozen=True, eq=False)
class JointMoments:
    """Moments of a metric y and a second variable x per group, with their covariance.

    x is a pre-period covariate (CUPED) or the denominator of a ratio metric. Variances and
    the covariance are sample quantities (ddof=1), or population ones with ``ddof=0``: the
    p(1 − p) convention of proportion metrics (gbstats), which merging keeps exact.

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
    ddof: int = 1

    def __init__(self, n, mean_y, var_y, mean_x, var_x, cov, ddof: int = 1):
        arrays = {
            "n": as_counts("n", n),
            "mean_y": as_float_array("mean_y", mean_y),
            "var_y": check_nonnegative("var_y", as_float_array("var_y", var_y)),
            "mean_x": as_float_array("mean_x", mean_x),
            "var_x": check_nonnegative("var_x", as_float_array("var_x", var_x)),
            "cov": as_float_array("cov", cov),
        }
        if ddof not in (0, 1):
            raise InvalidArgumentError("ddof", f"must be 0 or 1, got {ddof!r}")
        values = broadcast(**arrays)
        _check_covariance(values[2], values[4], values[5], "cov")
        for name, value in zip(arrays, values, strict=True):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "ddof", ddof)

    @classmethod
    def _trusted(cls, n, mean_y, var_y, mean_x, var_x, cov, ddof: int = 1) -> JointMoments:
        """Validated arrays; variances (and so ``cov``) may be NaN where sums lost them."""
        moments = object.__new__(cls)
        names = ("n", "mean_y", "var_y", "mean_x", "var_x", "cov", "ddof")
        values = (n, mean_y, var_y, mean_x, var_x, cov, ddof)
        for name, value in zip(names, values, strict=True):
            object.__setattr__(moments, name, value)
        return moments

    @classmethod
    def from_sums(cls, n, sum_y, sum_y2, sum_x, sum_x2, sum_xy) -> JointMoments:
        """From n, Σy, Σy², Σx, Σx², Σxy per group, checked as :meth:`Moments.from_sums`
        checks its sums; Σxy must also fit Cauchy–Schwarz, |cov| ≤ sd_y·sd_x."""
        arrays = {
            "n": as_counts("n", n),
            "sum_y": as_float_array("sum_y", sum_y),
            "sum_y2": as_float_array("sum_y2", sum_y2),
            "sum_x": as_float_array("sum_x", sum_x),
            "sum_x2": as_float_array("sum_x2", sum_x2),
            "sum_xy": as_float_array("sum_xy", sum_xy),
        }
        n, sum_y, sum_y2, sum_x, sum_x2, sum_xy = broadcast(**arrays)
        _check_empty(n, sum_y=sum_y, sum_y2=sum_y2, sum_x=sum_x, sum_x2=sum_x2, sum_xy=sum_xy)
        mean_y, m2_y = centred_from_sums(n, sum_y, sum_y2, name="sum_y2", sum_name="sum_y")
        mean_x, m2_x = centred_from_sums(n, sum_x, sum_x2, name="sum_x2", sum_name="sum_x")
        with np.errstate(over="ignore", invalid="ignore"):
            co_moment = sum_xy - sum_y * mean_x
            rounding = _ROUNDING * np.sqrt(sum_y2 * sum_x2)
        _check_covariance(m2_y, m2_x, co_moment, "sum_xy", slack=rounding)
        divisor = _dof(n, 1)
        co_moment = np.where(np.isnan(m2_y) | np.isnan(m2_x), np.nan, co_moment)
        return cls._trusted(n, mean_y, m2_y / divisor, mean_x, m2_x / divisor, co_moment / divisor)

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
        return Moments._trusted(self.n, self.mean_y, self.var_y, self.ddof)

    @property
    def x(self) -> Moments:
        return Moments._trusted(self.n, self.mean_x, self.var_x, self.ddof)

    @property
    def co_moment(self) -> np.ndarray:
        """Σ(y − ȳ)(x − x̄)."""
        return np.where(self.n > 0, self.cov * _dof(self.n, self.ddof), 0.0)

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
        return self.co_moment + self.n * self.mean_x * self.mean_y

    def __getitem__(self, index) -> JointMoments:
        return JointMoments._trusted(
            self.n[index],
            self.mean_y[index],
            self.var_y[index],
            self.mean_x[index],
            self.var_x[index],
            self.cov[index],
            self.ddof,
        )

    def __add__(self, other: JointMoments) -> JointMoments:
        if not isinstance(other, JointMoments):
            return NotImplemented
        y = self.y + other.y
        x = self.x + other.x
        co_a, co_b = self.co_moment, other.co_moment
        n = self.n + other.n
        with np.errstate(invalid="ignore", divide="ignore"):
            weight = np.where(n > 0, self.n * other.n / np.where(n > 0, n, 1.0), 0.0)
        co_moment = (
            co_a + co_b + weight * (self.mean_y - other.mean_y) * (self.mean_x - other.mean_x)
        )
        return JointMoments._trusted(
            n, y.mean, y.var, x.mean, x.var, co_moment / _dof(n, self.ddof), self.ddof
        )

    merge = __add__

    def __repr__(self) -> str:
        return (
            f"JointMoments(n={scalarize(self.n)!r}, mean_y={scalarize(self.mean_y)!r}, "
            f"mean_x={scalarize(self.mean_x)!r}, cov={scalarize(self.cov)!r})"
        )
