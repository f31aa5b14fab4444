"""Regression adjustment of ratio metrics with their pre-period ratio ("ratio CUPED").

A ratio metric R = Σm / Σd (revenue per session, clicks per pageview) is adjusted with the
same ratio measured before the experiment, P = Σm_pre / Σd_pre, on the same units:
A = R − θ P, one θ for both arms, so that the effect A_t − A_c still estimates R_t − R_c's
target. Both ratios are smooth functions of the four per-unit means
β = (m̄, d̄, m̄_pre, d̄_pre), and every variance is the delta method's ∇ᵀ Σ ∇ / n with Σ the
4 × 4 sample covariance of (m, d, m_pre, d_pre) per unit (Deng, Knoblich & Lu 2018,
"Applying the delta method in metric analytics: a practical guide with novel ideas", KDD:
the delta method for ratio metrics and for their regression adjustment).

The estimator is GrowthBook's: gbstats ``RegressionAdjustedRatioStatistic`` (GrowthBook
repository, ``packages/stats/gbstats/models/statistics.py`` at commit
8f1db4456915a8e7b7faf23d5632ca7219d2f469: ``nabla`` and ``lambda_matrix`` at lines 431–474,
θ in ``compute_theta_regression_adjusted_ratio`` at line 509) and the relative-lift variance
``frequentist_variance_relative_cuped_ratio`` of ``packages/stats/gbstats/models/tests.py``
(line 77). Inputs are :class:`~splitlab.stats.regression.CrossMoments` of the four variables
in the order (numerator, denominator, numerator_pre, denominator_pre), built with
:func:`ratio_cross_moments` from gbstats-style sums or with ``CrossMoments.from_samples``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from splitlab._validation import as_float_array, check_alpha, check_alternative, check_bool
from splitlab.errors import InvalidArgumentError, ShapeMismatchError
from splitlab.stats.frequentist import Difference, finish, mean_difference
from splitlab.stats.moments import LOST_PRECISION
from splitlab.stats.regression import COLLINEARITY, CrossMoments, as_cross_moments
from splitlab.stats.regression import _check_pair as check_cross_moment_pair
from splitlab.stats.results import EffectResult, RowErrors

VARIABLES = ("numerator", "denominator", "numerator_pre", "denominator_pre")
NO_PRE_VARIANCE_NOTE = "the pre-period ratio has no variance: unadjusted test"
# (row, column) of Σv_i v_j in the order cross_products of ratio_cross_moments takes them
_PRODUCT_INDEX = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))


@dataclass(frozen=True, eq=False)
class RatioCupedResult(EffectResult):
    """An :class:`~splitlab.stats.results.EffectResult` of :func:`ratio_cuped_test`.

    ``theta`` is the adjustment R − θP used for both arms, ``variance_reduction``
    1 − se²_adjusted / se²_unadjusted of the absolute effect, and ``note`` says where θ fell
    back to 0 (no variance in the pre-period ratio: the unadjusted ratio test).
    """

    theta: Any = None
    variance_reduction: Any = None
    note: Any = None


def ratio_cross_moments(n, sums, sum_squares, cross_products) -> CrossMoments:
    """The 4-variable :class:`~splitlab.stats.regression.CrossMoments` of a ratio metric and
    its pre-period from the sums a SQL group-by returns (gbstats' inputs).

    ``sums`` and ``sum_squares`` end in 4, in :data:`VARIABLES` order
    (m, d, m_pre, d_pre); ``cross_products`` ends in 6: Σm·d, Σm·m_pre, Σm·d_pre, Σd·m_pre,
    Σd·d_pre, Σm_pre·d_pre (gbstats' ``m_post_d_post``, ``m_post_m_pre``, ``m_post_d_pre``,
    ``m_pre_d_post``, ``d_post_d_pre``, ``m_pre_d_pre_sum_of_products``). Checked as
    :meth:`CrossMoments.from_sums` checks sums.

    >>> rng = np.random.default_rng(4)
    >>> v = rng.poisson(3.0, size=(4, 50)).astype(float)
    >>> products = [v[i] @ v[j] for i, j in _PRODUCT_INDEX]
    >>> cm = ratio_cross_moments(50, v.sum(1), (v * v).sum(1), products)
    >>> bool(np.allclose(cm.cov, np.cov(v)))
    True
    """
    sums = as_float_array("sums", sums)
    sum_squares = as_float_array("sum_squares", sum_squares)
    cross_products = as_float_array("cross_products", cross_products)
    for name, value, size in (
        ("sums", sums, 4),
        ("sum_squares", sum_squares, 4),
        ("cross_products", cross_products, 6),
    ):
        if value.ndim == 0 or value.shape[-1] != size:
            raise InvalidArgumentError(
                name, f"must end in an axis of {size} (see ratio_cross_moments), got {value.shape}"
            )
    try:
        shape = np.broadcast_shapes(sum_squares.shape[:-1], cross_products.shape[:-1])
    except ValueError as exc:
        raise ShapeMismatchError(
            "sum_squares/cross_products",
            f"leading shapes do not broadcast together: {sum_squares.shape[:-1]} and "
            f"{cross_products.shape[:-1]}",
        ) from exc
    cross = np.zeros((*shape, 4, 4))
    index = np.arange(4)
    cross[..., index, index] = sum_squares
    for position, (i, j) in enumerate(_PRODUCT_INDEX):
        cross[..., i, j] = cross[..., j, i] = cross_products[..., position]
    return CrossMoments.from_sums(n, sums, cross)


def _check_pair(control: object, treatment: object) -> tuple[CrossMoments, CrossMoments]:
    for name, moments in (("control", control), ("treatment", treatment)):
        k = as_cross_moments(name, moments).k
        if k != 3:
            raise InvalidArgumentError(
                name, f"ratio CUPED needs 4 variables ({', '.join(VARIABLES)}), got {k + 1}"
            )
    return check_cross_moment_pair(control, treatment)


def _check_theta(theta: object, shape: tuple[int, ...]) -> np.ndarray | None:
    if theta is None:
        return None
    value = as_float_array("theta", theta)
    try:
        if np.broadcast_shapes(shape, value.shape) != shape:
            raise ValueError
    except ValueError as exc:
        raise ShapeMismatchError(
            "theta", f"must broadcast to the groups' shape {shape}, got {value.shape}"
        ) from exc
    return np.array(np.broadcast_to(value, shape))


def _form(left: np.ndarray, matrix: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.einsum("...i,...ij,...j->...", left, matrix, right)


def _ratio(numerator: np.ndarray, denominator: np.ndarray, which: tuple[int, int]):
    """A ratio of two of the four means and its gradient in β (S + (4,)); both 0 where the
    denominator mean is 0 (gbstats' convention, the row is flagged by the caller)."""
    defined = denominator != 0
    safe = np.where(defined, denominator, 1.0)
    with np.errstate(invalid="ignore", over="ignore"):
        ratio = np.where(defined, numerator / safe, 0.0)
        gradient = np.zeros((*np.shape(ratio), 4))
        gradient[..., which[0]] = np.where(defined, 1.0 / safe, 0.0)
        gradient[..., which[1]] = np.where(defined, -ratio / safe, 0.0)
    return ratio, gradient


class _Arm:
    """The post- and pre-period ratios of one arm with their gradients and per-unit
    delta-method (co)variances."""

    def __init__(self, moments: CrossMoments):
        mean = moments.mean
        self.cov = moments.cov
        self.pre_defined = mean[..., 3] != 0
        self.post, self.grad_post = _ratio(mean[..., 0], mean[..., 1], (0, 1))
        self.pre, self.grad_pre = _ratio(mean[..., 2], mean[..., 3], (2, 3))
        with np.errstate(invalid="ignore", over="ignore"):
            self.var_post = np.maximum(_form(self.grad_post, self.cov, self.grad_post), 0.0)
            self.var_pre = np.maximum(_form(self.grad_pre, self.cov, self.grad_pre), 0.0)
            # what the terms of var_pre add up to in size: their sum is rounding below this
            self.var_pre_terms = _form(
                np.abs(self.grad_pre), np.abs(self.cov), np.abs(self.grad_pre)
            )
            self.cov_post_pre = _form(self.grad_post, self.cov, self.grad_pre)


def _pooled_theta(control: _Arm, treatment: _Arm) -> tuple[np.ndarray, np.ndarray]:
    """gbstats' θ: the per-unit covariances of the two ratios summed over the arms, over the
    summed per-unit variances of the pre-period ratio (each arm weighted equally, whatever
    its n); 0 where that sum is 0 (statistics.py line 509) or, unlike gbstats, below what
    the cancellation of its terms resolves (a pre-period ratio constant across units)."""
    with np.errstate(invalid="ignore", over="ignore"):
        covariance = control.cov_post_pre + treatment.cov_post_pre
        variance = control.var_pre + treatment.var_pre
        terms = control.var_pre_terms + treatment.var_pre_terms
    fallback = variance <= COLLINEARITY * terms
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        theta = np.where(fallback, 0.0, covariance / np.where(fallback, 1.0, variance))
    return theta, fallback


def _estimate(
    control: CrossMoments, treatment: CrossMoments, relative: bool, theta: np.ndarray | None
) -> tuple[Difference, np.ndarray, np.ndarray, np.ndarray]:
    shape = np.broadcast_shapes(control.shape, treatment.shape)
    errors = RowErrors(shape)
    errors.flag(control.n < 2, "n < 2 in control")
    errors.flag(treatment.n < 2, "n < 2 in treatment")
    errors.flag(np.isnan(control.cov).any(axis=(-2, -1)), f"control {LOST_PRECISION}")
    errors.flag(np.isnan(treatment.cov).any(axis=(-2, -1)), f"treatment {LOST_PRECISION}")
    errors.flag(control.mean[..., 1] == 0, "denominator mean is zero in control")
    errors.flag(treatment.mean[..., 1] == 0, "denominator mean is zero in treatment")
    arm_c, arm_t = _Arm(control), _Arm(treatment)
    if theta is None:
        theta, fallback = _pooled_theta(arm_c, arm_t)
    else:
        fallback = np.zeros(shape, dtype=bool)
    theta = np.array(np.broadcast_to(theta, shape), dtype=float)
    fallback = np.array(np.broadcast_to(fallback, shape))
    adjusting = theta != 0
    errors.flag(adjusting & ~arm_c.pre_defined, "pre-period denominator mean is zero in control")
    errors.flag(adjusting & ~arm_t.pre_defined, "pre-period denominator mean is zero in treatment")
    with np.errstate(invalid="ignore", over="ignore"):
        level_c = arm_c.post - theta * arm_c.pre
        level_t = arm_t.post - theta * arm_t.pre
        gradient_c = arm_c.grad_post - theta[..., None] * arm_c.grad_pre
        gradient_t = arm_t.grad_post - theta[..., None] * arm_t.grad_pre
        var_c = np.maximum(_form(gradient_c, arm_c.cov, gradient_c), 0.0)
        var_t = np.maximum(_form(gradient_t, arm_t.cov, gradient_t), 0.0)
    absolute = mean_difference(
        level_c, var_c, control.n, level_t, var_t, treatment.n, relative=False, errors=errors
    )
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        unadjusted = arm_c.var_post / control.n + arm_t.var_post / treatment.n
        variance_reduction = 1.0 - absolute.se**2 / unadjusted
    if not relative:
        return absolute, theta, variance_reduction, fallback
    ratio_c = arm_c.post
    errors.flag(ratio_c == 0, "control ratio is zero; relative lift is undefined")
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # ∂/∂β_c of (A_t − A_c)/|R_c| = −((1 + Δ/R_c) ∇R_c − θ ∇P_c) / |R_c|, Δ = A_t − A_c
        scale = 1.0 + absolute.effect / ratio_c
        lift_gradient_c = -(scale[..., None] * arm_c.grad_post - theta[..., None] * arm_c.grad_pre)
        v_c = _form(lift_gradient_c, arm_c.cov, lift_gradient_c) / (control.n * ratio_c**2)
        v_t = var_t / (treatment.n * ratio_c**2)
        effect = absolute.effect / np.abs(ratio_c)
        se = np.sqrt(np.maximum(v_c + v_t, 0.0))
    # the degrees of freedom stay Welch's of the absolute per-arm variances (gbstats' dof)
    return (
        Difference(effect, se, absolute.df, errors, v_c, v_t),
        theta,
        variance_reduction,
        fallback,
    )


def ratio_cuped_difference(
    control: CrossMoments, treatment: CrossMoments, *, relative: bool, theta=None
) -> Difference:
    """The regression-adjusted ratio estimate behind :func:`ratio_cuped_test`, for callers
    that build their own intervals (sequential tests, post-stratification): the
    :class:`~splitlab.stats.frequentist.Difference` with Welch's degrees of freedom.
    Formulas and arguments as in :func:`ratio_cuped_test`; rows the test would blank carry
    their reason in ``difference.errors`` (their numbers are not blanked here).

    >>> rng = np.random.default_rng(5)
    >>> d = rng.poisson(3.0, size=(2, 2, 500)) + 1.0
    >>> m = 2.0 * d + rng.normal(size=(2, 2, 500))
    >>> arms = [CrossMoments.from_samples(m[a, 0], [d[a, 0], m[a, 1], d[a, 1]]) for a in (0, 1)]
    >>> difference = ratio_cuped_difference(*arms, relative=True)
    >>> bool(abs(difference.effect) < 3 * difference.se)
    True
    """
    control, treatment = _check_pair(control, treatment)
    relative = check_bool("relative", relative)
    shape = np.broadcast_shapes(control.shape, treatment.shape)
    difference, _, _, _ = _estimate(control, treatment, relative, _check_theta(theta, shape))
    return difference


def ratio_cuped_test(
    control: CrossMoments,
    treatment: CrossMoments,
    *,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    relative: bool = False,
    theta=None,
) -> RatioCupedResult:
    """Welch test of a ratio metric adjusted with its pre-period ratio (ratio CUPED).

    With β = (m̄, d̄, m̄_pre, d̄_pre) the means of an arm and Σ their per-unit covariance, the
    adjusted ratio is A = m̄/d̄ − θ m̄_pre/d̄_pre, its gradient
    ∇A = (1/d̄, −m̄/d̄², −θ/d̄_pre, θ m̄_pre/d̄_pre²) and its per-unit variance ∇Aᵀ Σ ∇A
    (the delta method; gbstats ``RegressionAdjustedRatioStatistic.nabla``/``variance``,
    ``packages/stats/gbstats/models/statistics.py`` at GrowthBook commit 8f1db445, line 463).
    The absolute effect is A_t − A_c with the Welch–Satterthwaite degrees of freedom of the
    two per-unit variances, θ treated as known.

    ``theta=None`` (default) estimates θ as gbstats does (``compute_theta_regression_adjusted
    _ratio``, statistics.py line 509): θ = (c_c + c_t) / (v_c + v_t) with c the per-unit
    delta-method covariance of the post- and pre-period ratios of an arm, ∇Rᵀ Σ ∇P, and v
    the per-unit variance of its pre-period ratio, ∇Pᵀ Σ ∇P; the arms are weighted equally,
    whatever their sizes. Where v_c + v_t = 0, θ = 0 and the row is the unadjusted ratio test
    (:func:`~splitlab.stats.frequentist.ratio_test`), said in ``note``. Zero means below
    1e-10 of the size of its terms: a pre-period ratio that is the same for every unit
    leaves only rounding, which gbstats divides by (its θ is then ~1e15); gbstats falls back
    where |θ| < 1e-8, which moves its figures by less than 1e-8 · |P_t − P_c|. A number or
    array broadcastable to the rows fixes θ instead (0: the unadjusted test).

    ``relative=True`` divides the effect by the *unadjusted* control ratio R_c = m̄_c/d̄_c,
    as gbstats does; the delta-method variance differentiates (A_t − A_c)/|R_c| in all eight
    means: the control's gradient is −((1 + Δ/R_c) ∇R_c − θ ∇P_c)/|R_c| with Δ = A_t − A_c,
    the treatment's ∇A_t/|R_c| (gbstats ``frequentist_variance_relative_cuped_ratio``,
    ``packages/stats/gbstats/models/tests.py`` line 77). The degrees of freedom stay those of
    the absolute per-arm variances (gbstats' ``TTest.dof``).

    Rows without a result carry NaN and an ``error``: n < 2, a zero denominator mean, a zero
    pre-period denominator mean where θ ≠ 0, zero variance in both arms, a zero control ratio
    on the relative scale, variances lost to the rounding of raw sums. One-sided
    ``alternative`` values give one-sided intervals.

    >>> rng = np.random.default_rng(0)
    >>> d = rng.poisson(4.0, size=(2, 2, 3000)) + 1.0          # arm, period, unit
    >>> skill = rng.gamma(2.0, 1.0, size=(2, 1, 3000))
    >>> m = rng.poisson(skill * d).astype(float)
    >>> control = CrossMoments.from_samples(m[0, 0], [d[0, 0], m[0, 1], d[0, 1]])
    >>> treatment = CrossMoments.from_samples(m[1, 0], [d[1, 0], m[1, 1], d[1, 1]])
    >>> result = ratio_cuped_test(control, treatment)
    >>> result.method, bool(result.variance_reduction > 0.5), bool(0.5 < result.theta < 1.5)
    ('ratio-cuped', True, True)
    """
    control, treatment = _check_pair(control, treatment)
    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    relative = check_bool("relative", relative)
    shape = np.broadcast_shapes(control.shape, treatment.shape)
    fixed = _check_theta(theta, shape)
    difference, coefficients, variance_reduction, fallback = _estimate(
        control, treatment, relative, fixed
    )
    result = finish(
        difference,
        alpha=alpha,
        alternative=alternative,
        method="ratio-cuped",
        scale="relative" if relative else "absolute",
        params={"theta": "pooled" if theta is None else "fixed"},
        result_type=RatioCupedResult,
        theta=coefficients,
        variance_reduction=np.array(np.broadcast_to(variance_reduction, shape), dtype=float),
    )
    # after finish, which blanks arrays shaped like the rows: the note stays readable there
    return dataclasses.replace(result, note=np.where(fallback, NO_PRE_VARIANCE_NOTE, ""))
