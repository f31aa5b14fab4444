"""Regression adjustment with many covariates on summary statistics (CUPED with k covariates:
Statsig's CURE, Eppo's CUPED++).

The adjusted metric of a unit is y − θᵀx, with x = (x_1, ..., x_k) covariates measured
before the treatment (the pre-period metric, other pre-period metrics, user attributes).
θ is estimated once for both arms, so the adjusted effect
(ȳt − θᵀx̄t) − (ȳc − θᵀx̄c) still estimates ȳt − ȳc's target, and the per-unit variance of
the adjusted metric var(y) + θᵀΣ_xxθ − 2θᵀΣ_xy is what is left of var(y) after a linear
prediction from x (Deng, Xu, Kohavi & Walker 2013, "Improving the sensitivity of online
controlled experiments by utilizing pre-experiment data", with a vector x; Lin 2013,
"Agnostic notes on regression adjustments to experimental data: reexamining Freedman's
critique", Ann. Appl. Stat. 7(1), for why the regression estimate is consistent, with a
sandwich standard error that is valid, whatever the true model).

Everything is computed from :class:`CrossMoments` — per group the count, the means of
v = [y, x_1, ..., x_k] and their covariance matrix — which pool exactly across segments,
days and engine partitions, as :class:`~splitlab.stats.moments.JointMoments` do for one x.

Checks of summary statistics follow :mod:`splitlab.stats.moments`: a covariance matrix no
data can have (a negative eigenvalue beyond rounding) raises
:class:`~splitlab.errors.InvalidArgumentError`; a variance that raw sums no longer resolve is
NaN and the test reports :data:`~splitlab.stats.moments.LOST_PRECISION` for its row.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from splitlab._validation import (
    as_counts,
    as_float_array,
    check_alpha,
    check_alternative,
    check_bool,
    check_choice,
)
from splitlab.errors import InvalidArgumentError, ShapeMismatchError
from splitlab.stats.frequentist import Difference, check_shapes, finish, mean_difference
from splitlab.stats.moments import EPSILON_FACTOR, LOST_PRECISION, centred_from_sums
from splitlab.stats.results import EffectResult, RowErrors, scalarize

THETA_METHODS = ("pooled", "within")
# smallest eigenvalue of the covariates' correlation matrix below which θ is not determined:
# with a condition number past 1e10 θ keeps fewer digits than the 1e-6 splitlab promises
COLLINEARITY = 1e-10
ZERO_VARIANCE_NOTE = "var(x) is zero: unadjusted test"
# relative slack of centred moments, as JointMoments' Cauchy–Schwarz check allows
_CENTRED_SLACK = 1e-9
_ROUNDING = EPSILON_FACTOR * np.finfo(float).eps
_SPACING_AT_ZERO = np.finfo(np.float64).smallest_subnormal
# a scaled entry past this is impossible anyway (the scaled diagonal is at most 1e9); the cap
# keeps the eigenvalue routine away from infinities
_SCALED_CAP = 1e150


def _dof(n: np.ndarray, ddof: int) -> np.ndarray:
    """Divisor of the centred cross products; a single unit has covariance 0."""
    return np.maximum(n - ddof, 1.0)


def _first_row(mask: np.ndarray) -> str:
    if mask.ndim == 0:
        return ""
    return f" (first at index {tuple(int(i) for i in np.argwhere(mask)[0])})"


def _check_ddof(ddof: object) -> int:
    if isinstance(ddof, bool) or ddof not in (0, 1):
        raise InvalidArgumentError("ddof", f"must be 0 or 1, got {ddof!r}")
    return int(ddof)  # type: ignore[call-overload]


def _shaped(n, mean, matrix, matrix_name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n (S), mean (S + (p,)) and a p × p matrix per row (S + (p, p)), broadcast to one S."""
    vector_name = "sums" if matrix_name == "cross" else "mean"
    if mean.ndim == 0:
        raise InvalidArgumentError(vector_name, "needs a variable axis, last: [y, x_1, ..., x_k]")
    p = mean.shape[-1]
    if p < 2:
        raise InvalidArgumentError(
            vector_name, f"needs y and at least one covariate on its last axis, got {p} variable"
        )
    if matrix.ndim < 2 or matrix.shape[-2:] != (p, p):
        raise ShapeMismatchError(
            f"{vector_name}/{matrix_name}",
            f"{matrix_name} must end in ({p}, {p}) for the {p} variables of {vector_name}, "
            f"got shape {matrix.shape}",
        )
    try:
        shape = np.broadcast_shapes(n.shape, mean.shape[:-1], matrix.shape[:-2])
    except ValueError as exc:
        raise ShapeMismatchError(
            f"n/{vector_name}/{matrix_name}",
            f"leading shapes do not broadcast together: n {n.shape}, {vector_name} "
            f"{mean.shape[:-1]}, {matrix_name} {matrix.shape[:-2]}",
        ) from exc
    return (
        np.array(np.broadcast_to(n, shape)),
        np.array(np.broadcast_to(mean, (*shape, p))),
        np.array(np.broadcast_to(matrix, (*shape, p, p))),
    )


def _symmetric(matrix: np.ndarray, name: str) -> np.ndarray:
    """The matrix with its two triangles averaged, refused if they disagree beyond 1e-9."""
    diagonal = np.abs(np.diagonal(matrix, axis1=-2, axis2=-1))
    with np.errstate(over="ignore", invalid="ignore"):
        bound = _CENTRED_SLACK * np.sqrt(diagonal[..., :, None] * diagonal[..., None, :])
        wrong = np.abs(matrix - np.swapaxes(matrix, -1, -2)) > bound + _SPACING_AT_ZERO
    if np.any(wrong):
        rows = wrong.any(axis=(-2, -1))
        raise InvalidArgumentError(
            name, f"is not symmetric in {int(np.sum(rows))} row(s){_first_row(rows)}"
        )
    return 0.5 * (matrix + np.swapaxes(matrix, -1, -2))


def _check_empty(n: np.ndarray, **arrays: np.ndarray) -> None:
    for name, value in arrays.items():
        extra = value.ndim - n.ndim
        wrong = (n == 0) & np.any(value != 0, axis=tuple(range(-extra, 0)))
        if np.any(wrong):
            raise InvalidArgumentError(
                name, f"is non-zero where n is 0 in {int(np.sum(wrong))} row(s){_first_row(wrong)}"
            )


def _check_nonnegative_diagonal(matrix: np.ndarray, name: str) -> None:
    negative = np.any(np.diagonal(matrix, axis1=-2, axis2=-1) < 0, axis=-1)
    if np.any(negative):
        raise InvalidArgumentError(
            name,
            f"must have a non-negative diagonal (variances) in every row; "
            f"{int(np.sum(negative))} row(s) do not{_first_row(negative)}",
        )


def _refuse_indefinite(m2: np.ndarray, tolerance: np.ndarray, name: str, problem: str) -> None:
    """Raise where no matrix within rounding of ``m2`` is positive semi-definite.

    ``tolerance`` (S + (p,)) bounds the rounding of each diagonal entry; that of an entry
    (i, j) is taken as sqrt(T_i T_j), which dominates a sum of products of per-variable
    bounds. Scaled by D = diag(sqrt(T)), the rounding matrix has entries at most 1 in size and
    so a spectral norm at most p: a scaled eigenvalue below −p cannot be rounding. The test is
    scale-free, so a covariate measured in cents does not hide another's inconsistency.
    """
    p = m2.shape[-1]
    finite = np.isfinite(m2).all(axis=(-2, -1)) & np.isfinite(tolerance).all(axis=-1)
    root = np.sqrt(np.where(np.isfinite(tolerance), tolerance, 1.0))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        scaled = m2 / (root[..., :, None] * root[..., None, :])
    scaled = np.clip(np.nan_to_num(scaled, nan=0.0), -_SCALED_CAP, _SCALED_CAP)
    scaled = np.where(finite[..., None, None], scaled, np.eye(p))
    wrong = np.linalg.eigvalsh(scaled)[..., 0] < -p
    if np.any(wrong):
        raise InvalidArgumentError(
            name, f"{problem} in {int(np.sum(wrong))} row(s){_first_row(wrong)}"
        )


_INDEFINITE = (
    "is not the {what} of any data: Σ(v − v̄)(v − v̄)ᵀ has a negative eigenvalue beyond "
    "rounding (a correlation outside what the other correlations allow)"
)


def _centred_tolerance(m2: np.ndarray, n: np.ndarray) -> np.ndarray:
    diagonal = np.maximum(np.diagonal(m2, axis1=-2, axis2=-1), 0.0)
    return _CENTRED_SLACK * diagonal + (n[..., None] + 2.0) * _SPACING_AT_ZERO


@dataclass(frozen=True, eq=False)
class CrossMoments:
    """Count, means and covariance matrix of v = [y, x_1, ..., x_k] per group.

    Struct-of-arrays over a leading shape S: ``n`` has shape S, ``mean`` S + (p,) and ``cov``
    S + (p, p) with p = k + 1 and y first. ``cov`` is the sample covariance (``ddof=1``) or
    the population one (``ddof=0``, the p(1 − p) convention of proportion metrics); merging
    (``a + b``) pools two groups exactly with Chan, Golub & LeVeque's update of the centred
    cross products, M = M_a + M_b + n_a n_b / n (v̄_a − v̄_b)(v̄_a − v̄_b)ᵀ. These are the
    statistics of regression adjustment (Deng et al. 2013 with k covariates).

    Build it with :meth:`from_samples` (raw observations), :meth:`from_centred` (n, means and
    centred cross products, as the Analyzer's reduction returns them) or :meth:`from_sums`
    (n, Σv and Σvvᵀ from a SQL group-by, checked for impossible and unresolved sums).

    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=(2, 100))
    >>> y = x[0] + 0.5 * x[1] + rng.normal(size=100)
    >>> cm = CrossMoments.from_samples(y, x)
    >>> cm.k, cm.mean.shape, cm.cov.shape
    (2, (3,), (3, 3))
    >>> bool(np.allclose(cm.cov, np.cov(np.vstack([y, x]))))
    True
    """

    n: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    ddof: int = 1
    # per variable, a bound on the absolute rounding of m2's diagonal carried from raw sums
    # (None: none, as for samples and centred moments); it decides which eigenvalues of the
    # covariates' correlation matrix the moments resolve
    _rounding: Any = field(default=None, repr=False)

    def __init__(self, n, mean, cov, ddof: int = 1):
        ddof = _check_ddof(ddof)
        n, mean, cov = _shaped(
            as_counts("n", n), as_float_array("mean", mean), as_float_array("cov", cov), "cov"
        )
        cov = _symmetric(cov, "cov")
        _check_nonnegative_diagonal(cov, "cov")
        _refuse_indefinite(
            cov, _centred_tolerance(cov, n), "cov", _INDEFINITE.format(what="covariance")
        )
        for name, value in (("n", n), ("mean", mean), ("cov", cov), ("ddof", ddof)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_rounding", None)

    @classmethod
    def _trusted(cls, n, mean, cov, ddof: int = 1, rounding=None) -> CrossMoments:
        """Validated arrays; ``cov`` may be NaN where sums lost a variance."""
        moments = object.__new__(cls)
        values = (("n", n), ("mean", mean), ("cov", cov), ("ddof", ddof), ("_rounding", rounding))
        for name, value in values:
            object.__setattr__(moments, name, value)
        return moments

    @property
    def rounding(self) -> np.ndarray:
        """A bound on the absolute rounding of each variable's M2 = Σ(v − v̄)², S + (p,):
        zero unless the moments come from raw sums (:meth:`from_sums`)."""
        if self._rounding is None:
            return np.zeros(self.mean.shape)
        return np.broadcast_to(self._rounding, self.mean.shape)

    @classmethod
    def from_samples(cls, y, covariates, axis: int = -1) -> CrossMoments:
        """From raw observations along ``axis``.

        ``covariates`` is a list of k arrays shaped like ``y``, or one array with an extra
        covariate axis just before the observation axis: shape (..., k, n) for ``axis=-1``.
        """
        y_values = as_float_array("y", y)
        if y_values.ndim == 0:
            raise InvalidArgumentError("y", "must have at least one dimension")
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise InvalidArgumentError("axis", f"must be an integer, got {axis!r}")
        if not -y_values.ndim <= axis < y_values.ndim:
            raise InvalidArgumentError(
                "axis", f"is out of range for y with {y_values.ndim} dimension(s), got {axis}"
            )
        position = int(axis) % y_values.ndim
        if isinstance(covariates, (list, tuple)):
            if len(covariates) == 0:
                raise InvalidArgumentError("covariates", "needs at least one covariate")
            columns = [as_float_array(f"covariates[{j}]", c) for j, c in enumerate(covariates)]
            for j, column in enumerate(columns):
                if column.shape != y_values.shape:
                    raise InvalidArgumentError(
                        "covariates",
                        f"covariates[{j}] must have the shape of y {y_values.shape}, "
                        f"got {column.shape}",
                    )
            x_values = np.stack(columns, axis=position)
        else:
            x_values = as_float_array("covariates", covariates)
            expected = (*y_values.shape[:position], "k", *y_values.shape[position:])
            if (
                x_values.ndim != y_values.ndim + 1
                or x_values.shape[:position] + x_values.shape[position + 1 :] != y_values.shape
                or x_values.shape[position] == 0
            ):
                raise InvalidArgumentError(
                    "covariates",
                    f"must have shape {expected} (a covariate axis before y's observation "
                    f"axis) or be a list of arrays shaped like y, got {x_values.shape}",
                )
        y_last = np.moveaxis(y_values, position, -1)
        x_last = np.moveaxis(x_values, (position, position + 1), (-2, -1))
        values = np.concatenate([y_last[..., None, :], x_last], axis=-2)
        size = values.shape[-1]
        n = np.full(values.shape[:-2], size, dtype=float)
        mean = values.sum(axis=-1) / max(size, 1)
        deviations = values - mean[..., None]
        m2 = deviations @ np.swapaxes(deviations, -1, -2)
        m2 = 0.5 * (m2 + np.swapaxes(m2, -1, -2))
        return cls._trusted(n, mean, m2 / _dof(n, 1)[..., None, None], 1)

    @classmethod
    def from_centred(cls, n, mean, m2, *, ddof: int = 1) -> CrossMoments:
        """From n, the means (S + (p,)) and the centred cross products
        M = Σ(v − v̄)(v − v̄)ᵀ (S + (p, p)); ``ddof`` chooses the covariance kept."""
        ddof = _check_ddof(ddof)
        n, mean, m2 = _shaped(
            as_counts("n", n), as_float_array("mean", mean), as_float_array("m2", m2), "m2"
        )
        _check_empty(n, m2=m2)
        m2 = _symmetric(m2, "m2")
        _check_nonnegative_diagonal(m2, "m2")
        _refuse_indefinite(
            m2, _centred_tolerance(m2, n), "m2", _INDEFINITE.format(what="cross-product matrix")
        )
        return cls._trusted(n, mean, m2 / _dof(n, ddof)[..., None, None], ddof)

    @classmethod
    def from_sums(cls, n, sums, cross) -> CrossMoments:
        """From n, Σv (S + (p,)) and Σvvᵀ (S + (p, p)) per group, checked row by row.

        As :meth:`splitlab.stats.moments.Moments.from_sums`: sums no data
        can have raise (a negative Σv², Σv_j² < (Σv_j)²/n beyond rounding, sums where n = 0,
        and here also a centred matrix with a negative eigenvalue beyond rounding: pairwise
        correlations that cannot hold together); a variance the sums no longer resolve is
        NaN, with its row and column of ``cov``, and every test reports the row. The
        rounding bound of each variance is kept (:attr:`rounding`), so that a regression
        test does not take the rounding of exactly collinear covariates for information.
        """
        n, sums, cross = _shaped(
            as_counts("n", n), as_float_array("sums", sums), as_float_array("cross", cross),
            "cross",
        )  # fmt: skip
        _check_empty(n, sums=sums, cross=cross)
        _check_nonnegative_diagonal(cross, "cross")
        cross = _symmetric(cross, "cross")
        count = n[..., None]
        raw_diagonal = np.diagonal(cross, axis1=-2, axis2=-1)
        mean, m2_diagonal = centred_from_sums(
            count, sums, raw_diagonal, name="cross", sum_name="sums"
        )
        with np.errstate(over="ignore", invalid="ignore"):
            m2 = cross - sums[..., :, None] * mean[..., None, :]
            m2 = 0.5 * (m2 + np.swapaxes(m2, -1, -2))
            lost = np.isnan(m2_diagonal)
            diagonal = np.maximum(np.diagonal(m2, axis1=-2, axis2=-1), 0.0)
            index = np.arange(m2.shape[-1])
            m2[..., index, index] = diagonal
            # the rounding of Σv_iv_j − Σv_i Σv_j / n is of the order of ε·sqrt(Σv_i² Σv_j²)
            tolerance = _centred_tolerance(m2, n) + _ROUNDING * raw_diagonal
        _refuse_indefinite(m2, tolerance, "cross", _INDEFINITE.format(what="cross-product sums"))
        # a lost variance takes its covariances with it; those of two resolved variances are
        # resolved too (their rounding is below 1e-6 of the product of the two deviations)
        unresolved = lost[..., :, None] | lost[..., None, :]
        unresolved |= ~np.isfinite(m2).all(axis=(-2, -1))[..., None, None]
        m2 = np.where(unresolved, np.nan, m2)
        rounding = _ROUNDING * raw_diagonal + (count + 2.0) * _SPACING_AT_ZERO
        return cls._trusted(n, mean, m2 / _dof(n, 1)[..., None, None], 1, rounding)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.n.shape

    @property
    def k(self) -> int:
        """The number of covariates."""
        return self.mean.shape[-1] - 1

    @property
    def mean_y(self) -> np.ndarray:
        return self.mean[..., 0]

    @property
    def mean_x(self) -> np.ndarray:
        return self.mean[..., 1:]

    @property
    def var_y(self) -> np.ndarray:
        return self.cov[..., 0, 0]

    @property
    def cov_xx(self) -> np.ndarray:
        """The covariates' covariance matrix, S + (k, k)."""
        return self.cov[..., 1:, 1:]

    @property
    def cov_xy(self) -> np.ndarray:
        """cov(x_j, y) for each covariate, S + (k,)."""
        return self.cov[..., 1:, 0]

    @property
    def m2(self) -> np.ndarray:
        """Centred cross products Σ(v − v̄)(v − v̄)ᵀ."""
        divisor = np.where(self.n > 0, _dof(self.n, self.ddof), 0.0)
        return self.cov * divisor[..., None, None]

    def __getitem__(self, index) -> CrossMoments:
        rows = np.arange(self.n.size).reshape(self.shape)[index]
        p = self.mean.shape[-1]
        rounding = None if self._rounding is None else self.rounding.reshape(-1, p)[rows]
        return CrossMoments._trusted(
            np.asarray(self.n.reshape(-1)[rows]),
            self.mean.reshape(-1, p)[rows],
            self.cov.reshape(-1, p, p)[rows],
            self.ddof,
            rounding,
        )

    def __add__(self, other: CrossMoments) -> CrossMoments:
        if not isinstance(other, CrossMoments):
            return NotImplemented
        if other.k != self.k:
            raise InvalidArgumentError(
                "other", f"has {other.k} covariate(s), these moments have {self.k}"
            )
        if other.ddof != self.ddof:
            raise InvalidArgumentError(
                "other", "cannot merge proportion moments (ddof=0) with sample moments (ddof=1)"
            )
        try:
            np.broadcast_shapes(self.shape, other.shape)
        except ValueError as exc:
            raise ShapeMismatchError(
                "other", f"shapes do not broadcast together: {self.shape} and {other.shape}"
            ) from exc
        n = self.n + other.n
        positive = n > 0
        safe = np.where(positive, n, 1.0)
        with np.errstate(invalid="ignore", over="ignore"):
            weight = np.where(positive, self.n * other.n / safe, 0.0)
            mean = np.where(
                positive[..., None],
                (self.n[..., None] * self.mean + other.n[..., None] * other.mean) / safe[..., None],
                0.0,
            )
            gap = self.mean - other.mean
            m2 = (
                self.m2 + other.m2 + weight[..., None, None] * gap[..., :, None] * gap[..., None, :]
            )
        # the pooling term comes from the means, which keep their precision: only the two
        # groups' roundings add up
        rounding = None
        if self._rounding is not None or other._rounding is not None:
            rounding = self.rounding + other.rounding
        divisor = _dof(n, self.ddof)[..., None, None]
        return CrossMoments._trusted(n, mean, m2 / divisor, self.ddof, rounding)

    merge = __add__

    def __repr__(self) -> str:
        return (
            f"CrossMoments(k={self.k}, n={scalarize(self.n)!r}, mean={self.mean!r}, "
            f"cov={self.cov!r})"
        )


@dataclass(frozen=True, eq=False)
class RegressionResult(EffectResult):
    """An :class:`~splitlab.stats.results.EffectResult` of a regression-adjusted test.

    ``theta`` (S + (k,)) is the adjustment y − θᵀx used for both arms, ``variance_reduction``
    1 − se²_adjusted / se²_unadjusted of the absolute effect (the CUPED measure of Deng et al.
    2013), and ``note`` says where the adjustment fell back to the unadjusted test (one
    covariate without variance).
    :meth:`~splitlab.stats.results.EffectResult.to_frame` gives θ as columns theta_1, ...,
    theta_k.

    >>> rng = np.random.default_rng(2)
    >>> x = rng.normal(size=(2, 2, 500))
    >>> y = x[:, 0] - x[:, 1] + rng.normal(size=(2, 500))
    >>> result = regression_test(CrossMoments.from_samples(y[0], x[0]),
    ...                          CrossMoments.from_samples(y[1], x[1]))
    >>> frame = result.to_frame()
    >>> result.theta.shape, [name for name in frame.columns if name.startswith("theta")]
    ((2,), ['theta_1', 'theta_2'])
    """

    theta: Any = None
    variance_reduction: Any = None
    note: Any = None

    def _array_fields(self) -> dict[str, np.ndarray]:
        columns = super()._array_fields()
        theta = columns.pop("theta", None)
        if theta is not None:
            for j in range(theta.shape[-1]):
                columns[f"theta_{j + 1}"] = theta[..., j]
        return columns


def as_cross_moments(name: str, value: object) -> CrossMoments:
    if not isinstance(value, CrossMoments):
        raise InvalidArgumentError(
            name,
            "must be splitlab CrossMoments (CrossMoments.from_samples, from_centred or "
            f"from_sums), got {type(value).__name__}",
        )
    return value


def _check_pair(control: object, treatment: object) -> tuple[CrossMoments, CrossMoments]:
    control = as_cross_moments("control", control)
    treatment = as_cross_moments("treatment", treatment)
    check_shapes(control, treatment)
    if treatment.k != control.k:
        raise InvalidArgumentError(
            "treatment", f"has {treatment.k} covariate(s), control has {control.k}"
        )
    if treatment.ddof != control.ddof:
        raise InvalidArgumentError(
            "treatment",
            f"has ddof={treatment.ddof}, control has ddof={control.ddof}: proportion "
            "(ddof=0) and sample (ddof=1) moments do not mix",
        )
    return control, treatment


def _solve_theta(m_xx: np.ndarray, m_xy: np.ndarray, rounding: np.ndarray, errors: RowErrors):
    """θ = M_xx⁻¹ M_xy per row, solved on the correlation scale; with the rows where one
    covariate has no variance (θ = 0, the unadjusted test).

    ``rounding`` bounds the absolute rounding of each covariate's M2 (moments from raw
    sums): the correlation matrix is then known to within a matrix of spectral norm
    Σ_j rounding_j / M2_j, and an eigenvalue below that is not resolved either.
    """
    k = m_xx.shape[-1]
    finite = np.isfinite(m_xx).all(axis=(-2, -1)) & np.isfinite(m_xy).all(axis=-1)
    diagonal = np.diagonal(m_xx, axis1=-2, axis2=-1)
    usable = finite[..., None] & (diagonal > 0)
    scale = np.sqrt(np.where(usable, diagonal, 1.0))
    with np.errstate(invalid="ignore", over="ignore"):
        correlation = m_xx / (scale[..., :, None] * scale[..., None, :])
    correlation = np.where(finite[..., None, None], correlation, np.eye(k))
    if k == 1:
        # cuped_test's convention: no variance in the one covariate, no adjustment
        fallback = finite & ~usable[..., 0]
        singular = np.zeros_like(fallback)
    else:
        eigenvalues = np.linalg.eigvalsh(correlation)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            noise = np.sum(np.where(usable, rounding / np.where(usable, diagonal, 1.0), 0.0), -1)
        threshold = np.maximum(COLLINEARITY, np.where(finite, noise, 0.0))
        rank = np.sum(eigenvalues > threshold[..., None], axis=-1)
        fallback = np.zeros(finite.shape, dtype=bool)
        singular = finite & (rank < k)
        for value in np.unique(rank[singular]):
            errors.flag(
                singular & (rank == value),
                f"covariates are collinear: the covariate matrix has rank {value} of {k}",
            )
    solvable = finite & ~singular & ~fallback
    system = np.where(solvable[..., None, None], correlation, np.eye(k))
    with np.errstate(invalid="ignore", over="ignore"):
        right = np.where(solvable[..., None], m_xy / scale, 0.0)
    scaled_theta = np.linalg.solve(system, right[..., None])[..., 0]
    with np.errstate(invalid="ignore", over="ignore"):
        theta = scaled_theta / scale
    theta = np.where(solvable[..., None], theta, np.where(fallback[..., None], 0.0, np.nan))
    return theta, fallback


def _quadratic(theta: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return np.einsum("...i,...ij,...j->...", theta, matrix, theta)


def _inner(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("...i,...i->...", a, b)


def _adjusted_variance(group: CrossMoments, theta: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        variance = group.var_y + _quadratic(theta, group.cov_xx) - 2.0 * _inner(theta, group.cov_xy)
    return np.maximum(variance, 0.0)


def _estimate(
    control: CrossMoments, treatment: CrossMoments, relative: bool, origin, theta: str
) -> tuple[Difference, np.ndarray, np.ndarray, np.ndarray]:
    shape = np.broadcast_shapes(control.shape, treatment.shape)
    try:
        if np.broadcast_shapes(shape, np.shape(origin)) != shape:
            raise ValueError
    except ValueError as exc:
        raise ShapeMismatchError(
            "origin", f"must broadcast to the groups' shape {shape}, got {np.shape(origin)}"
        ) from exc
    errors = RowErrors(shape)
    # flagged before collinearity, so that a row of one unit says so rather than "collinear"
    errors.flag(control.n < 2, "n < 2 in control")
    errors.flag(treatment.n < 2, "n < 2 in treatment")
    errors.flag(np.isnan(control.cov).any(axis=(-2, -1)), f"control {LOST_PRECISION}")
    errors.flag(np.isnan(treatment.cov).any(axis=(-2, -1)), f"treatment {LOST_PRECISION}")
    if theta == "pooled":
        m2 = (control + treatment).m2
    else:
        m2 = control.m2 + treatment.m2
    rounding = (control.rounding + treatment.rounding)[..., 1:]
    coefficients, fallback = _solve_theta(m2[..., 1:, 1:], m2[..., 1:, 0], rounding, errors)
    coefficients = np.array(np.broadcast_to(coefficients, (*shape, control.k)))
    fallback = np.array(np.broadcast_to(fallback, shape))
    var_c = _adjusted_variance(control, coefficients)
    var_t = _adjusted_variance(treatment, coefficients)
    # x enters only through x̄t − x̄c: measured from the control's x̄ (any shift of x cancels)
    with np.errstate(invalid="ignore", over="ignore"):
        shift = _inner(coefficients, treatment.mean_x - control.mean_x)
    absolute = mean_difference(
        control.mean_y, var_c, control.n, treatment.mean_y - shift, var_t, treatment.n,
        relative=False, errors=errors,
    )  # fmt: skip
    unadjusted = mean_difference(
        control.mean_y, control.var_y, control.n,
        treatment.mean_y, treatment.var_y, treatment.n,
        relative=False, errors=RowErrors(shape),
    )  # fmt: skip
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        variance_reduction = 1.0 - absolute.se**2 / unadjusted.se**2
    if not relative:
        return absolute, coefficients, variance_reduction, fallback
    level_c, level_t = origin + control.mean_y, origin + treatment.mean_y
    errors.flag(level_c == 0, "control mean is zero; relative lift is undefined")
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ratio = level_t / level_c
        v_t = var_t / (treatment.n * level_c**2)
        v_c = (
            control.var_y * ratio**2
            - 2.0 * ratio * _inner(coefficients, control.cov_xy)
            + _quadratic(coefficients, control.cov_xx)
        ) / (control.n * level_c**2)
        effect = absolute.effect / np.abs(level_c)
        se = np.sqrt(np.maximum(v_t + v_c, 0.0))
    difference = Difference(effect, se, absolute.df, errors, v_c, v_t)
    return difference, coefficients, variance_reduction, fallback


def regression_difference(
    control: CrossMoments,
    treatment: CrossMoments,
    *,
    relative: bool,
    origin=0.0,
    theta: str = "pooled",
) -> tuple[Difference, np.ndarray, np.ndarray]:
    """The regression-adjusted estimate behind :func:`regression_test`, for callers that
    build their own intervals (sequential ones): the
    :class:`~splitlab.stats.frequentist.Difference`, ``theta`` (S + (k,)) and the
    ``variance_reduction`` it achieved. Formulas and arguments as in :func:`regression_test`
    (Deng et al. 2013; Lin 2013). Rows the test would blank carry NaN effects and their
    reason in ``difference.errors``; ``theta`` and ``variance_reduction`` are not blanked.

    >>> rng = np.random.default_rng(3)
    >>> x = rng.normal(size=(2, 3, 400))
    >>> y = x[:, 0] + rng.normal(size=(2, 400))
    >>> difference, theta, reduction = regression_difference(
    ...     CrossMoments.from_samples(y[0], x[0]), CrossMoments.from_samples(y[1], x[1]),
    ...     relative=False)
    >>> theta.shape, bool(reduction > 0.3)
    ((3,), True)
    """
    control, treatment = _check_pair(control, treatment)
    relative = check_bool("relative", relative)
    origin = as_float_array("origin", origin)
    theta = check_choice("theta", theta, THETA_METHODS)
    difference, coefficients, variance_reduction, _ = _estimate(
        control, treatment, relative, origin, theta
    )
    return difference, coefficients, variance_reduction


def regression_test(
    control: CrossMoments,
    treatment: CrossMoments,
    *,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    relative: bool = False,
    origin=0.0,
    theta: str = "pooled",
) -> RegressionResult:
    """Welch test on regression-adjusted means with k covariates (CUPED with many x).

    The adjusted metric is y − θᵀx with one θ for both arms. The absolute effect is
    (ȳt − θᵀx̄t) − (ȳc − θᵀx̄c); each arm's per-unit variance is
    var(y) + θᵀΣ_xxθ − 2θᵀΣ_xy with its own moments, and the test is Welch's (degrees of
    freedom of Welch–Satterthwaite) with θ treated as known (Deng et al. 2013; Lin 2013).

    ``theta``:

    - ``"pooled"`` (default): θ = Σ_xx⁻¹Σ_xy of both groups taken as one sample, GrowthBook's
      convention; with one covariate this is :func:`~splitlab.stats.adjustment.cuped_test`.
    - ``"within"``: θ = (Σ_arms M_xx)⁻¹ Σ_arms M_xy from within-arm centred cross products,
      the OLS coefficients of x in y ~ 1 + T + x, so that the effect is the OLS coefficient
      of T (Lin's estimator without the interactions).

    Standard error: ``se`` equals statsmodels' HC2 standard error of T in the OLS of
    y − θ̂ᵀx on [1, T] (for one binary regressor HC2 is Welch's se). The sandwich standard
    error of T in y ~ 1 + T + (x − x̄) with ``cov_type="HC1"`` (statsmodels), which also
    counts the estimation of θ, differs from it by O(1/n) only (k/n in the degrees of
    freedom, and x's chance imbalance between arms, O(1/√n), squared): well under 1% at a
    few thousand units per arm.

    ``relative=True`` divides the effect by the *unadjusted* control mean origin + ȳc, with
    the delta-method variance that keeps the covariance of the adjusted control mean with
    ȳc (gbstats' RegressionAdjustedStatistic with a vector θ): v_t = var_adj,t / (n_t ȳc²),
    v_c = (σ²_yc r² − 2r θᵀc_c + θᵀΣ_xx,c θ) / (n_c ȳc²), r = ȳt/ȳc, c_c = cov(y, x) in
    control. ``origin``: the y means are measured from it (as in
    :func:`~splitlab.stats.frequentist.ttest`); x may have its own shifts, since only
    x̄t − x̄c enters.

    Rows without a result carry NaN and an ``error``: collinear covariates ("covariates are
    collinear: the covariate matrix has rank r of k", the smallest eigenvalue of their
    correlation matrix below 1e-10, or below what the rounding of raw sums resolves, a
    constant covariate among several included), n < 2,
    zero variance, variances lost to rounding. With one covariate of zero variance θ = 0 and
    the row is the unadjusted test, said in ``note``.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(10, 2, size=(2, 2, 2000))
    >>> y = x[:, 0] + x[:, 1] + rng.normal(0, 1, size=(2, 2000))
    >>> result = regression_test(CrossMoments.from_samples(y[0], x[0]),
    ...                          CrossMoments.from_samples(y[1], x[1]))
    >>> result.method, bool(result.variance_reduction > 0.8)
    ('regression', True)
    """
    control, treatment = _check_pair(control, treatment)
    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    relative = check_bool("relative", relative)
    origin = as_float_array("origin", origin)
    theta = check_choice("theta", theta, THETA_METHODS)
    difference, coefficients, variance_reduction, fallback = _estimate(
        control, treatment, relative, origin, theta
    )
    shape = difference.errors.shape
    result = finish(
        difference,
        alpha=alpha,
        alternative=alternative,
        method="regression",
        scale="relative" if relative else "absolute",
        params={"theta": theta, "covariates": control.k},
        result_type=RegressionResult,
        theta=coefficients,
        variance_reduction=np.array(np.broadcast_to(variance_reduction, shape), dtype=float),
    )
    coefficients[difference.errors.bad] = np.nan
    # after finish, which blanks arrays shaped like the rows: the note stays readable there
    return dataclasses.replace(result, note=np.where(fallback, ZERO_VARIANCE_NOTE, ""))
