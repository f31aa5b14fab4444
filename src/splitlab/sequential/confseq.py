"""Always-valid confidence sequences: intervals that may be checked after every unit.

The asymptotic normal-mixture confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy &
Ramdas, "Time-uniform central limit theory and asymptotic confidence sequences" (arXiv
2103.06476v7), the bound GrowthBook, Eppo and the ``confseq`` package use. With N units
seen so far (both arms), σ̂² = N·se² the per-unit variance of the effect estimate and
ρ > 0 a tuning parameter, the two-sided sequence (eq. 9) is

    θ̂ ± σ̂ sqrt( 2(Nρ² + 1) / (N²ρ²) · ln( sqrt(Nρ² + 1) / α ) ),

its e-value for θ = 0 (eq. 155) is e = exp(ρ²N²θ̂² / (2σ̂²(Nρ² + 1))) / sqrt(Nρ² + 1) and the
always-valid p-value is p = min(1, 1/e), which is below α exactly when the interval
excludes 0. ρ is set so that the interval is narrowest near N = ``n_star`` (eq. 161):
ρ² = (−2 ln α + ln(−2 ln α + 1)) / n_star.

The one-sided sequence (eq. 134) is θ̂ − σ̂ sqrt(2(Nρ² + 1)/(N²ρ²) · ln(1 + sqrt(Nρ² + 1)/(2α)))
for ``alternative="greater"`` (mirrored for "less"), with ρ tuned at level 2α, as gbstats
does. Its p-value inverts the bound at fixed ρ in closed form,
p = min(1, sqrt(Nρ² + 1) / (2 (exp(ρ²N²θ̂² / (2σ̂²(Nρ² + 1))) − 1))) on the side of the
alternative and 1 on the other (gbstats finds the same number by bisection).

Both guarantees are time-uniform: with probability ≥ 1 − α the interval covers θ at every
look simultaneously, so the running intersection of intervals and the running minimum of
p-values (:class:`~splitlab.sequential.monitor.SequentialMonitor`) keep the level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from splitlab._validation import (
    as_float_array,
    check_alpha,
    check_alternative,
    check_choice,
)
from splitlab.errors import InvalidArgumentError
from splitlab.stats.adjustment import cuped_difference
from splitlab.stats.frequentist import (
    Difference,
    as_joint_moments,
    as_moments,
    check_shapes,
    finish,
    mean_difference,
    ratio_difference,
)
from splitlab.stats.moments import JointMoments, Moments
from splitlab.stats.results import EffectResult

__all__ = [
    "SequentialResult",
    "confidence_sequence",
    "confidence_sequence_from_estimate",
]

KINDS = ("cuped", "ratio")


@dataclass(frozen=True, eq=False)
class SequentialResult(EffectResult):
    """An :class:`EffectResult` of an always-valid test at one look.

    ``ci_low``/``ci_high`` and ``p_value`` are valid at this look whenever it was chosen;
    their running intersection and minimum over looks keep the level too. ``e_value`` is
    the evidence against θ = 0 (p = min(1, 1/e)); it is None where the method has none
    (one-sided confidence sequences). ``statistic`` is the Wald z = effect / se.
    """

    e_value: Any = None


def check_positive(name: str, value: object) -> np.ndarray:
    """A finite, strictly positive number or array (a tuning parameter)."""
    array = as_float_array(name, value)
    if np.any(array <= 0):
        raise InvalidArgumentError(name, f"must be positive, got {value!r}")
    return array


def check_kind(kind: object) -> str | None:
    return None if kind is None else check_choice("kind", kind, KINDS)


def sequential_difference(
    control: Moments | JointMoments,
    treatment: Moments | JointMoments,
    *,
    relative: bool,
    kind: str | None,
) -> tuple[Difference, np.ndarray]:
    """The effect and standard error an always-valid method plugs in, with N = n_c + n_t.

    ``Moments`` give the Welch difference in means (or the delta-method lift), exactly as
    :func:`~splitlab.stats.frequentist.ttest` estimates them; ``JointMoments`` need
    ``kind``: "cuped" (x is a pre-period covariate) or "ratio" (x is the denominator).
    The reference distribution is normal (``df`` is None).
    """
    kind = check_kind(kind)
    if isinstance(control, JointMoments) or isinstance(treatment, JointMoments):
        if kind is None:
            raise InvalidArgumentError(
                "kind",
                "is required for JointMoments: 'cuped' (x = pre-period covariate) or "
                "'ratio' (x = the denominator of a ratio metric)",
            )
        control = as_joint_moments("control", control)
        treatment = as_joint_moments("treatment", treatment)
        check_shapes(control, treatment)
        if kind == "cuped":
            difference = cuped_difference(control, treatment, relative=relative)[0]
        else:
            difference = ratio_difference(control, treatment, relative=relative)
    else:
        if kind is not None:
            raise InvalidArgumentError(
                "kind", f"applies to JointMoments only; got {kind!r} with Moments"
            )
        control = as_moments("control", control)
        treatment = as_moments("treatment", treatment)
        check_shapes(control, treatment)
        difference = mean_difference(
            control.mean, control.var, control.n,
            treatment.mean, treatment.var, treatment.n,
            relative=relative,
        )  # fmt: skip
    normal = Difference(difference.effect, difference.se, None, difference.errors)
    return normal, control.n + treatment.n


def rho_squared(alpha: float, n_star: np.ndarray, alternative: str) -> np.ndarray:
    """ρ² = (−2 ln a + ln(−2 ln a + 1)) / n_star with a = α (two-sided) or 2α (one-sided),
    which makes the interval narrowest near N = n_star (Waudby-Smith et al., eq. 161)."""
    level = alpha if alternative == "two-sided" else 2.0 * alpha
    if level >= 1.0:
        raise InvalidArgumentError(
            "alpha", f"must be below 0.5 for a one-sided confidence sequence, got {alpha!r}"
        )
    log_term = -2.0 * np.log(level)
    return (log_term + np.log(log_term + 1.0)) / n_star


def _log_e_value(z2: np.ndarray, mixture: np.ndarray) -> np.ndarray:
    """ln e for θ = 0 with z² = (θ̂/se)² and mixture = Nρ² (eq. 155 with σ̂² = N se²)."""
    return mixture * z2 / (2.0 * (1.0 + mixture)) - 0.5 * np.log1p(mixture)


def _log_expm1(x: np.ndarray) -> np.ndarray:
    """ln(eˣ − 1) for x > 0, without overflow for large x."""
    large = x > 30.0
    return np.where(large, x, np.log(np.expm1(np.where(large, 1.0, x))))


def _bounds(effect, se, n_total, alpha, n_star, alternative):
    """Interval, p-value and ln e-value (None if one-sided) of the sequence; arrays only."""
    mixture = n_total * rho_squared(alpha, n_star, alternative)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        z2 = (effect / se) ** 2
        width_factor = (1.0 + mixture) / mixture
        if alternative == "two-sided":
            margin = se * np.sqrt(width_factor * (np.log1p(mixture) - 2.0 * np.log(alpha)))
            log_e = _log_e_value(z2, mixture)
            p_value = np.exp(np.minimum(-log_e, 0.0))
            return effect - margin, effect + margin, p_value, log_e
        log_ratio = np.log1p(np.sqrt(1.0 + mixture) / (2.0 * alpha))
        margin = se * np.sqrt(2.0 * width_factor * log_ratio)
        exponent = mixture * z2 / (2.0 * (1.0 + mixture))
        log_p = 0.5 * np.log1p(mixture) - np.log(2.0) - _log_expm1(exponent)
        p_value = np.exp(np.minimum(log_p, 0.0))
        if alternative == "greater":
            p_value = np.where(effect > 0, p_value, 1.0)
            ci_low, ci_high = effect - margin, np.full(np.shape(margin), np.inf)
        else:
            p_value = np.where(effect < 0, p_value, 1.0)
            ci_low, ci_high = np.full(np.shape(margin), -np.inf), effect + margin
        p_value = np.where(np.isnan(z2), np.nan, p_value)
        return ci_low, ci_high, p_value, None


def confidence_sequence_from_estimate(
    effect,
    se,
    n_total,
    *,
    alpha: float = 0.05,
    n_star: float = 5000.0,
    alternative: str = "two-sided",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ci_low, ci_high, p_value)`` of the confidence sequence from any estimate.

    ``effect`` and ``se`` are the estimate and its standard error after ``n_total`` units
    (both arms); they broadcast with ``n_total`` and ``n_star`` over any shape, e.g.
    (replications, looks) in a simulation. NaN rows stay NaN; this is the kernel that
    :func:`confidence_sequence` and the Analyzer call, so it checks only the options.

    >>> low, high, p = confidence_sequence_from_estimate(0.1, 0.04, 2000, n_star=2000)
    >>> round(float(low), 4), round(float(high), 4), round(float(p), 4)
    (-0.0214, 0.2214, 0.1863)
    """
    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    n_star = check_positive("n_star", n_star)
    effect = as_float_array("effect", effect, finite=False)
    se = as_float_array("se", se, finite=False)
    n_total = as_float_array("n_total", n_total, finite=False)
    if np.any(se < 0):
        raise InvalidArgumentError("se", "must be non-negative")
    if np.any(n_total <= 0):
        raise InvalidArgumentError("n_total", "must be positive")
    ci_low, ci_high, p_value, _ = _bounds(effect, se, n_total, alpha, n_star, alternative)
    return ci_low, ci_high, p_value


def confidence_sequence(
    control: Moments | JointMoments,
    treatment: Moments | JointMoments,
    *,
    alpha: float = 0.05,
    n_star: float = 5000.0,
    relative: bool = False,
    alternative: str = "two-sided",
    kind: str | None = None,
) -> SequentialResult:
    """Always-valid interval and p-value of treatment − control (method "cs").

    The estimate and standard error are those of the fixed-horizon test — Welch's for
    ``Moments`` (delta-method lift with ``relative``), CUPED's or the ratio metric's for
    ``JointMoments`` with ``kind="cuped"`` or ``kind="ratio"`` — and N = n_c + n_t.
    ``n_star`` is the total sample size near which the interval should be tightest; any
    value keeps the guarantee. Rows that cannot be computed are NaN with a reason in
    ``error``, as in :func:`~splitlab.stats.frequentist.ttest`.

    >>> control = Moments(n=10_000, mean=10.0, var=16.0)
    >>> treatment = Moments(n=10_000, mean=10.2, var=16.0)
    >>> result = confidence_sequence(control, treatment, n_star=20_000)
    >>> round(float(result.ci_low), 4), round(float(result.ci_high), 4)
    (0.0283, 0.3717)
    >>> from splitlab.stats.frequentist import ttest
    >>> bool(result.p_value > ttest(control, treatment).p_value)
    True
    """
    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    n_star_array = check_positive("n_star", n_star)
    difference, n_total = sequential_difference(control, treatment, relative=relative, kind=kind)
    ci_low, ci_high, p_value, log_e = _bounds(
        difference.effect, difference.se, n_total, alpha, n_star_array, alternative
    )
    extra = {}
    if log_e is not None:
        with np.errstate(over="ignore"):
            extra["e_value"] = np.array(np.broadcast_to(np.exp(log_e), difference.errors.shape))
    return finish(
        difference,
        alpha=alpha,
        alternative=alternative,
        method="cs",
        scale="relative" if relative else "absolute",
        params={"n_star": n_star, "kind": kind},
        result_type=SequentialResult,
        interval=(ci_low, ci_high),
        p_value=p_value,
        **extra,
    )
