"""CUPED / regression adjustment with a pre-period covariate.

Deng, Xu, Kohavi & Walker (2013), "Improving the sensitivity of online controlled
experiments by utilizing pre-experiment data": the adjusted metric y − θ x with
θ = cov(y, x) / var(x) has the same expected treatment effect and variance
var(y) + θ² var(x) − 2θ cov(y, x) per unit. θ is estimated once over both groups pooled, as
GrowthBook does, so that the same adjustment applies to every arm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from splitlab._validation import as_float_array, check_alpha, check_alternative
from splitlab.stats.frequentist import (
    Difference,
    as_joint_moments,
    check_shapes,
    finish,
    mean_difference,
)
from splitlab.stats.moments import JointMoments
from splitlab.stats.results import EffectResult, RowErrors


@dataclass(frozen=True, eq=False)
class CupedResult(EffectResult):
    """An :class:`EffectResult` with the adjustment's ``theta``, the ``variance_reduction``
    it achieved (1 − adjusted / unadjusted variance of the effect) and a ``note`` where the
    adjustment fell back to the unadjusted test."""

    theta: Any = None
    variance_reduction: Any = None
    note: Any = None


def pooled_theta(control: JointMoments, treatment: JointMoments) -> np.ndarray:
    """θ = cov(y, x) / var(x) over both groups taken as one sample; 0 where var(x) = 0."""
    both = control + treatment
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return np.where(both.var_x > 0, both.cov / np.where(both.var_x > 0, both.var_x, 1.0), 0.0)


def _adjusted_variance(moments: JointMoments, theta: np.ndarray) -> np.ndarray:
    variance = moments.var_y + theta * theta * moments.var_x - 2 * theta * moments.cov
    return np.maximum(variance, 0.0)


def cuped_test(
    control: JointMoments,
    treatment: JointMoments,
    *,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    relative: bool = False,
    origin=0.0,
) -> CupedResult:
    """Welch test on CUPED-adjusted means (x = the pre-period value of the metric).

    The absolute effect is (ȳt − θ x̄t) − (ȳc − θ x̄c). The relative lift divides it by the
    *unadjusted* control mean ȳc; its delta-method variance keeps the covariance of the
    adjusted control mean with ȳc (gbstats' RegressionAdjustedStatistic):
    v_t = (σ²_yt + θ² σ²_xt − 2θ c_t) / (n_t ȳc²),
    v_c = (σ²_yc ȳt²/ȳc² − 2θ c_c ȳt/ȳc + θ² σ²_xc) / (n_c ȳc²).
    Where the pooled var(x) is zero, θ = 0 and the result is the unadjusted test, noted in
    ``note``. ``origin``: the y means are measured from it, as in
    :func:`~splitlab.stats.frequentist.ttest` (x may have its own shift: only differences of
    x̄ enter).

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(10, 2, size=(2, 2000))
    >>> y = x + rng.normal(0, 1, size=(2, 2000))
    >>> result = cuped_test(JointMoments.from_samples(y[0], x[0]),
    ...                     JointMoments.from_samples(y[1], x[1]))
    >>> bool(result.variance_reduction > 0.7)
    True
    """
    control = as_joint_moments("control", control)
    treatment = as_joint_moments("treatment", treatment)
    check_shapes(control, treatment)
    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    origin = as_float_array("origin", origin)
    difference, theta, variance_reduction = cuped_difference(
        control, treatment, relative=relative, origin=origin
    )
    shape = difference.errors.shape
    note = np.where(theta == 0, "var(x) is zero: unadjusted test", "")
    return finish(
        difference,
        alpha=alpha,
        alternative=alternative,
        method="cuped",
        scale="relative" if relative else "absolute",
        params={},
        result_type=CupedResult,
        theta=np.array(np.broadcast_to(theta, shape), dtype=float),
        variance_reduction=np.array(np.broadcast_to(variance_reduction, shape), dtype=float),
        note=note,
    )


def cuped_difference(
    control: JointMoments, treatment: JointMoments, *, relative: bool, origin=0.0
) -> tuple[Difference, np.ndarray, np.ndarray]:
    """The CUPED estimate of validated, shape-checked groups (see :func:`cuped_test` for
    the formulas), with the pooled ``theta`` and the ``variance_reduction`` it achieved."""
    shape = np.broadcast_shapes(control.shape, treatment.shape)
    errors = RowErrors(shape)
    theta = pooled_theta(control, treatment)
    var_c = _adjusted_variance(control, theta)
    var_t = _adjusted_variance(treatment, theta)
    adjusted_c = control.mean_y - theta * control.mean_x
    adjusted_t = treatment.mean_y - theta * treatment.mean_x
    absolute = mean_difference(adjusted_c, var_c, control.n, adjusted_t, var_t, treatment.n,
                               relative=False, errors=errors)  # fmt: skip
    unadjusted = mean_difference(
        control.mean_y, control.var_y, control.n,
        treatment.mean_y, treatment.var_y, treatment.n,
        relative=False, errors=RowErrors(shape),
    )  # fmt: skip
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        variance_reduction = 1.0 - absolute.se**2 / unadjusted.se**2
    if relative:
        mean_c, mean_t = origin + control.mean_y, origin + treatment.mean_y
        errors.flag(mean_c == 0, "control mean is zero; relative lift is undefined")
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            scale_t = mean_t / mean_c
            v_t = var_t / (treatment.n * mean_c**2)
            v_c = (
                control.var_y * scale_t**2
                - 2 * theta * control.cov * scale_t
                + theta**2 * control.var_x
            ) / (control.n * mean_c**2)
            effect = absolute.effect / np.abs(mean_c)
            se = np.sqrt(np.maximum(v_t + v_c, 0.0))
        difference = Difference(effect, se, absolute.df, errors, v_c, v_t)
    else:
        difference = absolute
    return difference, theta, variance_reduction
