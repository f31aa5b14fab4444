"""Fixed-horizon tests on summary statistics: Welch/Student t, two-proportion z, ratio
metrics and relative lift.

Every test takes per-group summaries (:class:`~splitlab.stats.moments.Moments` or
:class:`~splitlab.stats.moments.JointMoments`) whose fields broadcast together, so one call
compares any number of (control, treatment) pairs; a treatment array against a scalar
control is a multi-arm comparison. A row that cannot be computed (n < 2, zero variance in
both groups, a zero control mean on the relative scale) is NaN with a reason in ``error``;
the other rows are unaffected.

Relative lift is (μt − μc) / |μc| with the delta-method variance
var_t / (μc² n_t) + var_c μt² / (μc⁴ n_c) and the Welch degrees of freedom of the per-group
variances, the convention of GrowthBook's gbstats (frequentist/tests.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from splitlab._validation import (
    as_float_array,
    broadcast,
    check_alpha,
    check_alternative,
    check_choice,
    two_group_counts,
)
from splitlab.errors import InvalidArgumentError
from splitlab.stats.moments import LOST_PRECISION, JointMoments, Moments
from splitlab.stats.results import EffectResult, RowErrors

RELATIVE_METHODS = ("delta", "fieller")


@dataclass(frozen=True)
class Difference:
    """A point estimate of the effect with its standard error and degrees of freedom
    (``df`` None means a normal reference distribution); ``se2_c`` and ``se2_t`` are the
    squared standard errors of the two group means."""

    effect: np.ndarray
    se: np.ndarray
    df: np.ndarray | None
    errors: RowErrors
    se2_c: np.ndarray | None = None
    se2_t: np.ndarray | None = None


def welch_df(var_c, n_c, var_t, n_t) -> np.ndarray:
    """Welch-Satterthwaite degrees of freedom of the per-group unit variances."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        se2_c, se2_t = var_c / n_c, var_t / n_t
        return (se2_c + se2_t) ** 2 / (se2_c**2 / (n_c - 1) + se2_t**2 / (n_t - 1))


def relative_variance(mean_c, var_c, n_c, mean_t, var_t, n_t) -> np.ndarray:
    """Delta-method variance of (μt − μc)/|μc| from per-unit variances (gbstats)."""
    mean_c2 = mean_c * mean_c
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return var_t / (mean_c2 * n_t) + var_c * mean_t * mean_t / (mean_c2 * mean_c2 * n_c)


def _check_groups(n_c, n_t, errors: RowErrors, minimum: int) -> None:
    errors.flag(n_c < minimum, f"n < {minimum} in control")
    errors.flag(n_t < minimum, f"n < {minimum} in treatment")


def mean_difference(
    mean_c,
    var_c,
    n_c,
    mean_t,
    var_t,
    n_t,
    *,
    relative: bool,
    equal_var: bool = False,
    errors: RowErrors | None = None,
    minimum_n: int = 2,
    origin=0.0,
) -> Difference:
    """Effect, standard error and degrees of freedom of a difference in means.

    Variances are per unit; the t reference uses Welch's degrees of freedom, or the pooled
    n_c + n_t − 2 with ``equal_var``. ``errors`` may carry problems a caller found first.
    Means may be measured from ``origin`` (both groups from the same one): the difference
    is taken between the small offsets, the lift's denominator is origin + mean_c.
    """
    if errors is None:
        errors = RowErrors(np.broadcast_shapes(np.shape(mean_c), np.shape(mean_t)))
    _check_groups(n_c, n_t, errors, minimum_n)
    errors.flag(np.isnan(var_c), f"control {LOST_PRECISION}")
    errors.flag(np.isnan(var_t), f"treatment {LOST_PRECISION}")
    if equal_var:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            pooled = ((n_c - 1) * var_c + (n_t - 1) * var_t) / (n_c + n_t - 2)
        var_c = var_t = pooled
        df = n_c + n_t - 2.0
    else:
        df = welch_df(var_c, n_c, var_t, n_t)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        se2_c, se2_t = var_c / n_c, var_t / n_t
        if relative:
            level_c, level_t = origin + mean_c, origin + mean_t
            errors.flag(level_c == 0, "control mean is zero; relative lift is undefined")
            effect = (mean_t - mean_c) / np.abs(level_c)
            se = np.sqrt(relative_variance(level_c, var_c, n_c, level_t, var_t, n_t))
        else:
            effect = mean_t - mean_c
            se = np.sqrt(se2_c + se2_t)
    errors.flag(se == 0, "zero variance in both groups")
    return Difference(effect, se, df, errors, se2_c, se2_t)


def quantile(probability: float, df: np.ndarray | None) -> np.ndarray:
    """Upper-tail critical value: the t quantile with ``df``, or the normal one."""
    if df is None:
        return np.asarray(special.ndtri(probability))
    with np.errstate(invalid="ignore", over="ignore"):
        return special.stdtrit(df, probability)


def _cdf(statistic: np.ndarray, df: np.ndarray | None) -> np.ndarray:
    if df is None:
        return special.ndtr(statistic)
    return special.stdtr(df, statistic)


def finish(
    difference: Difference,
    *,
    alpha: float,
    alternative: str,
    method: str,
    scale: str,
    params: dict[str, Any],
    result_type: type[EffectResult] = EffectResult,
    interval: tuple[np.ndarray, np.ndarray] | None = None,
    statistic: np.ndarray | None = None,
    p_value: np.ndarray | None = None,
    **extra: Any,
) -> EffectResult:
    """Statistic, p-value and confidence interval of a difference, with bad rows blanked.

    One-sided alternatives give one-sided intervals, as scipy's ``TtestResult`` does.
    ``interval`` replaces the Wald interval and ``statistic`` the Wald statistic (and so the
    p-value) where the test has its own; ``p_value`` replaces the p-value where it does not
    come from the statistic (always-valid tests).
    """
    given_p_value = p_value
    effect, se, df = difference.effect, difference.se, difference.df
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if statistic is None:
            statistic = effect / se
        if alternative == "two-sided":
            p_value = 2.0 * _cdf(-np.abs(statistic), df)
            margin = quantile(1.0 - alpha / 2.0, df) * se
            ci_low, ci_high = effect - margin, effect + margin
        elif alternative == "greater":
            p_value = _cdf(-statistic, df)
            ci_low = effect - quantile(1.0 - alpha, df) * se
            ci_high = np.full_like(ci_low, np.inf)
        else:
            p_value = _cdf(statistic, df)
            ci_high = effect + quantile(1.0 - alpha, df) * se
            ci_low = np.full_like(ci_high, -np.inf)
    if interval is not None:
        ci_low, ci_high = interval
    if given_p_value is not None:
        p_value = given_p_value
    errors = difference.errors
    with np.errstate(invalid="ignore", over="ignore"):
        overflow = ~(np.isfinite(effect) & np.isfinite(se)) | np.isnan(p_value)
    errors.flag(overflow, "no finite result: the values overflow floating point")
    shape = errors.shape
    effect, se, statistic, p_value, ci_low, ci_high = (
        np.array(np.broadcast_to(a, shape), dtype=float)
        for a in (effect, se, statistic, p_value, ci_low, ci_high)
    )
    df_array = None if df is None else np.array(np.broadcast_to(df, shape), dtype=float)
    blanked = [effect, se, statistic, p_value, ci_low, ci_high]
    if df_array is not None:
        blanked.append(df_array)
    # numbers of a bad row are blanked; text (a note) is kept
    blanked.extend(
        v
        for v in extra.values()
        if isinstance(v, np.ndarray) and v.shape == shape and v.dtype.kind == "f"
    )
    errors.blank(*blanked)
    return result_type(
        effect=effect,
        se=se,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        statistic=statistic,
        error=errors.messages,
        df=df_array,
        method=method,
        scale=scale,
        params={"alpha": alpha, "alternative": alternative, **params},
        **extra,
    )


def as_moments(name: str, value: object) -> Moments:
    if isinstance(value, JointMoments):
        return value.y
    if not isinstance(value, Moments):
        raise InvalidArgumentError(
            name, f"must be splitlab.Moments (e.g. Moments.from_sums), got {type(value).__name__}"
        )
    return value


def as_joint_moments(name: str, value: object) -> JointMoments:
    if not isinstance(value, JointMoments):
        raise InvalidArgumentError(
            name,
            f"must be splitlab.JointMoments (JointMoments.from_sums), got {type(value).__name__}",
        )
    return value


def check_shapes(control, treatment) -> None:
    broadcast(control=np.empty(control.shape), treatment=np.empty(treatment.shape))


def _fieller_interval(
    mean_c: np.ndarray,
    mean_t: np.ndarray,
    absolute: Difference,
    difference: Difference,
    alpha: float,
    alternative: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Fieller's (1954) interval for the ratio μt/μc of independent means, minus one.

    Solves (μt − ρ μc)² = q² (se_t² + ρ² se_c²) for ρ. When μc is not significantly
    different from zero (μc² ≤ q² se_c²) the set is unbounded and the row gets an error.
    """
    se2_t, se2_c = absolute.se2_t, absolute.se2_c
    tail = alpha / 2.0 if alternative == "two-sided" else alpha
    q = quantile(1.0 - tail, difference.df)
    q2 = q * q
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        denominator = mean_c * mean_c - q2 * se2_c
        root = q * np.sqrt(mean_c * mean_c * se2_t + mean_t * mean_t * se2_c - q2 * se2_t * se2_c)
        ratio_low = (mean_t * mean_c - root) / denominator
        ratio_high = (mean_t * mean_c + root) / denominator
    difference.errors.flag(
        denominator <= 0,
        "Fieller interval is unbounded: control mean is not distinguishable from zero",
    )
    positive = mean_c > 0
    low = np.where(positive, ratio_low - 1.0, 1.0 - ratio_high)
    high = np.where(positive, ratio_high - 1.0, 1.0 - ratio_low)
    if alternative == "greater":
        high = np.full_like(high, np.inf)
    elif alternative == "less":
        low = np.full_like(low, -np.inf)
    return low, high


def ttest(
    control: Moments,
    treatment: Moments,
    *,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    relative: bool = False,
    relative_method: str = "delta",
    equal_var: bool = False,
    origin=0.0,
) -> EffectResult:
    """Two-sample t-test of treatment − control on summary statistics; Welch by default.

    With ``relative=True`` the effect is the lift (μt − μc)/|μc|: ``relative_method="delta"``
    gives the delta-method interval, ``"fieller"`` Fieller's interval for μt/μc − 1 (whose
    p-value is the absolute test's, since both test μt = μc).

    ``origin`` says that both groups' means are measured from it (μ = origin + mean): data
    far from zero against its spread (epoch timestamps, int64 ids near 2⁶²) keep their
    difference exact when reduced about a shift, as the Analyzer does. It changes only the
    lift's denominator; the absolute test does not depend on it.

    >>> from scipy import stats
    >>> c = Moments.from_samples([4.1, 5.0, 6.2, 5.5, 4.8])
    >>> t = Moments.from_samples([5.9, 6.1, 7.0, 6.4, 5.2, 6.6])
    >>> result = ttest(c, t)
    >>> reference = stats.ttest_ind([5.9, 6.1, 7.0, 6.4, 5.2, 6.6], [4.1, 5.0, 6.2, 5.5, 4.8],
    ...                             equal_var=False)
    >>> bool(abs(result.p_value - reference.pvalue) < 1e-12)
    True
    """
    control = as_moments("control", control)
    treatment = as_moments("treatment", treatment)
    check_shapes(control, treatment)
    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    relative_method = check_choice("relative_method", relative_method, RELATIVE_METHODS)
    origin = as_float_array("origin", origin)
    difference = mean_difference(
        control.mean, control.var, control.n,
        treatment.mean, treatment.var, treatment.n,
        relative=relative, equal_var=equal_var, origin=origin,
    )  # fmt: skip
    interval = statistic = None
    if relative and relative_method == "fieller":
        absolute = mean_difference(
            control.mean, control.var, control.n,
            treatment.mean, treatment.var, treatment.n,
            relative=False, equal_var=equal_var,
        )  # fmt: skip
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            statistic = absolute.effect / absolute.se
        interval = _fieller_interval(
            origin + control.mean, origin + treatment.mean, absolute, difference, alpha,
            alternative,
        )  # fmt: skip
    return finish(
        difference,
        alpha=alpha,
        alternative=alternative,
        method="student" if equal_var else "welch",
        scale="relative" if relative else "absolute",
        params={"relative_method": relative_method if relative else None, "equal_var": equal_var},
        interval=interval,
        statistic=statistic,
    )


def proportions_test(
    successes_c,
    n_c,
    successes_t,
    n_t,
    *,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    relative: bool = False,
    pooled: bool = False,
) -> EffectResult:
    """Two-proportion z test of p_t − p_c (or the lift p_t/p_c − 1 with ``relative``).

    By default the unpooled Wald test (statsmodels ``test_proportions_2indep(method="wald")``);
    ``pooled=True`` takes the statistic from the pooled variance p̄(1 − p̄)(1/n_c + 1/n_t)
    under the null (statsmodels ``proportions_ztest``), while the interval stays the
    unpooled Wald interval (it is not computed under the null).

    >>> result = proportions_test(100, 1000, 130, 1000)
    >>> round(float(result.effect), 3), round(float(result.p_value), 4)
    (0.03, 0.0353)
    """
    successes_c, n_c, successes_t, n_t = two_group_counts(successes_c, n_c, successes_t, n_t)
    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        p_c, p_t = successes_c / n_c, successes_t / n_t
    difference = mean_difference(
        p_c, p_c * (1 - p_c), n_c, p_t, p_t * (1 - p_t), n_t, relative=relative, minimum_n=1
    )
    difference = Difference(
        difference.effect,
        difference.se,
        None,
        difference.errors,
        difference.se2_c,
        difference.se2_t,
    )
    statistic = None
    if pooled:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            p_pooled = (successes_c + successes_t) / (n_c + n_t)
            se_null = np.sqrt(p_pooled * (1 - p_pooled) * (1 / n_c + 1 / n_t))
            statistic = (p_t - p_c) / se_null
    return finish(
        difference,
        alpha=alpha,
        alternative=alternative,
        method="z-pooled" if pooled else "z",
        scale="relative" if relative else "absolute",
        params={"pooled": pooled},
        statistic=statistic,
    )


def ratio_moments(moments: JointMoments, errors: RowErrors, group: str):
    """Per-unit mean and delta-method variance of the ratio metric Σy/Σx of one group:
    var = (var_y − 2 r cov + r² var_x) / x̄² (Deng et al. 2018, "Applying the delta method in
    metric analytics", eq. 4, per unit)."""
    errors.flag(moments.mean_x == 0, f"denominator mean is zero in {group}")
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ratio = moments.mean_y / moments.mean_x
        var = (
            moments.var_y - 2 * ratio * moments.cov + ratio * ratio * moments.var_x
        ) / moments.mean_x**2
    return ratio, np.maximum(var, 0.0)


def ratio_difference(
    control: JointMoments, treatment: JointMoments, *, relative: bool
) -> Difference:
    """Effect and Welch standard error of a ratio metric's difference (or lift) between
    validated, shape-checked groups; the estimate every ratio-metric test shares."""
    errors = RowErrors(np.broadcast_shapes(control.shape, treatment.shape))
    ratio_c, var_c = ratio_moments(control, errors, "control")
    ratio_t, var_t = ratio_moments(treatment, errors, "treatment")
    return mean_difference(
        ratio_c, var_c, control.n, ratio_t, var_t, treatment.n, relative=relative, errors=errors
    )


def ratio_test(
    control: JointMoments,
    treatment: JointMoments,
    *,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    relative: bool = False,
) -> EffectResult:
    """Welch test of a ratio metric Σy/Σx per group (x = the denominator, e.g. sessions),
    with the delta-method variance including the covariance of y and x.

    >>> c = JointMoments.from_sums(1000, 2000.0, 9000.0, 1000.0, 1200.0, 2500.0)
    >>> t = JointMoments.from_sums(1000, 2200.0, 9900.0, 1000.0, 1200.0, 2700.0)
    >>> round(float(ratio_test(c, t).effect), 6)
    0.2
    """
    control = as_joint_moments("control", control)
    treatment = as_joint_moments("treatment", treatment)
    check_shapes(control, treatment)
    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    difference = ratio_difference(control, treatment, relative=relative)
    return finish(
        difference,
        alpha=alpha,
        alternative=alternative,
        method="ratio-delta",
        scale="relative" if relative else "absolute",
        params={},
    )
