"""The mixture sequential probability ratio test (mSPRT) with a normal mixture.

Johari, Koomen, Pekelis & Walsh (2017), "Peeking at A/B tests: why it matters, and what to
do about it", KDD '17 (and Johari, Pekelis & Walsh, "Always valid inference", Operations
Research 70(3), 2022). With the estimate θ̂ of the effect, V = se² its variance and the
effect mixed over N(θ0, τ²), the likelihood ratio of the normal model is

    Λ = sqrt(V / (V + τ²)) · exp(τ² (θ̂ − θ0)² / (2 V (V + τ²))),

a nonnegative martingale under θ = θ0 in information time 1/V, so by Ville's inequality
p = min(1, 1/Λ) is an always-valid p-value (here θ0 = 0), and inverting Λ < 1/α gives the
always-valid interval

    θ̂ ± sqrt( V (V + τ²) / τ² · (2 ln(1/α) + ln((V + τ²) / V)) ).

τ² is a design choice fixed before the data arrive: :func:`msprt_tau2` gives the value
that makes the interval narrowest at a planned sample size. Choosing it from the data
being tested would break the martingale argument, so ``msprt`` requires it.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from splitlab._validation import as_float_array, check_alpha
from splitlab.errors import InvalidArgumentError
from splitlab.sequential.confseq import SequentialResult, check_positive, sequential_difference
from splitlab.stats.frequentist import finish
from splitlab.stats.moments import JointMoments, Moments

__all__ = ["msprt", "msprt_from_estimate", "msprt_mixing_ratio", "msprt_tau2"]


def _log_likelihood_ratio(effect, variance, tau2):
    """ln Λ of the normal-mixture SPRT for θ0 = 0."""
    return tau2 * effect * effect / (2.0 * variance * (variance + tau2)) - 0.5 * np.log1p(
        tau2 / variance
    )


def _bounds(effect, se, alpha, tau2):
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        variance = se * se
        log_lr = _log_likelihood_ratio(effect, variance, tau2)
        margin = np.sqrt(
            variance * (variance + tau2) / tau2 * (-2.0 * np.log(alpha) + np.log1p(tau2 / variance))
        )
        p_value = np.exp(np.minimum(-log_lr, 0.0))
        return effect - margin, effect + margin, p_value, log_lr


def msprt_from_estimate(
    effect, se, *, alpha: float = 0.05, tau2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ci_low, ci_high, p_value)`` of the mSPRT from any estimate and standard error.

    ``effect``, ``se`` and ``tau2`` broadcast over any shape, e.g. (replications, looks)
    in a simulation; NaN rows stay NaN. ``p_value`` is this look's min(1, 1/Λ); the
    always-valid p-value of Johari et al. is its running minimum over looks.

    >>> low, high, p = msprt_from_estimate(0.1, 0.05, tau2=0.01)
    >>> round(float(low), 6), round(float(high), 6), round(float(p), 6)
    (-0.054119, 0.254119, 0.451454)
    """
    alpha = check_alpha(alpha)
    tau2 = check_positive("tau2", tau2)
    effect = as_float_array("effect", effect, finite=False)
    se = as_float_array("se", se, finite=False)
    if np.any(se < 0):
        raise InvalidArgumentError("se", "must be non-negative")
    ci_low, ci_high, p_value, _ = _bounds(effect, se, alpha, tau2)
    return ci_low, ci_high, p_value


def msprt_mixing_ratio(alpha: float = 0.05) -> float:
    """``r*`` = τ²/V at which the mSPRT interval is narrowest, ``r*`` = −W₋₁(−α²/e) − 1.

    The half-width is se · sqrt((1 + 1/r)(−2 ln α + ln(1 + r))) with r = τ²/V; setting
    its derivative to zero gives r = −2 ln α + ln(1 + r), solved by the lower branch of
    Lambert's W. Howard, Ramdas, McAuliffe & Sekhon (2021, Ann. Statist. 49(2)) and
    Waudby-Smith et al. (arXiv 2103.06476v7, eq. 161) use its first fixed-point step
    −2 ln α + ln(−2 ln α + 1), which is 3% smaller at α = 0.05.

    >>> round(msprt_mixing_ratio(0.05), 4)
    8.212
    """
    alpha = check_alpha(alpha)
    return float(-special.lambertw(-alpha * alpha / np.e, k=-1).real - 1.0)


def msprt_tau2(n_per_arm, sd, *, alpha: float = 0.05) -> np.ndarray | float:
    """The mixing variance τ² that makes the mSPRT most powerful at a planned sample size.

    With ``n_per_arm`` units planned in each arm and per-unit standard deviation ``sd``,
    the effect's variance at the planned look is V = 2 sd² / n_per_arm, and
    τ² = ``r*``·V with ``r*`` = :func:`msprt_mixing_ratio` (α). This τ² minimises the always-valid
    half-width at that look — equivalently the |z| threshold the test must cross there —
    so it maximises the probability of rejecting at the planned sample size whatever the
    true effect; looks before and after remain valid, only less sharp. It is the
    normal-mixture tuning of Howard et al. (2021) that Waudby-Smith et al. (eq. 161)
    apply to confidence sequences, solved exactly, and in the spirit of Johari et al.
    (2017), who match τ² to the scale of effects the experiment should detect. For a
    relative lift pass the coefficient of variation sd / |baseline mean| as ``sd``.

    >>> round(float(msprt_tau2(10_000, 4.0)), 6)
    0.026278
    """
    n_per_arm = check_positive("n_per_arm", n_per_arm)
    sd = check_positive("sd", sd)
    planned_variance = 2.0 * sd * sd / n_per_arm
    tau2 = msprt_mixing_ratio(alpha) * planned_variance
    return tau2[()] if tau2.ndim == 0 else tau2


def msprt(
    control: Moments | JointMoments,
    treatment: Moments | JointMoments,
    *,
    alpha: float = 0.05,
    tau2=None,
    relative: bool = False,
    kind: str | None = None,
) -> SequentialResult:
    """Always-valid mSPRT p-value and interval of treatment − control (method "msprt").

    The estimate and V = se² are those of the fixed-horizon test — Welch's for
    ``Moments`` (delta-method lift with ``relative``), CUPED's or the ratio metric's for
    ``JointMoments`` with ``kind="cuped"`` or ``kind="ratio"``. ``tau2`` (on the scale of
    the effect, so relative lifts need a relative τ²) is required: take it from
    :func:`msprt_tau2` at the planned sample size. ``e_value`` is Λ.

    >>> control = Moments(n=10_000, mean=10.0, var=16.0)
    >>> treatment = Moments(n=10_000, mean=10.2, var=16.0)
    >>> result = msprt(control, treatment, tau2=msprt_tau2(10_000, 4.0))
    >>> round(float(result.p_value), 4), round(float(result.e_value), 2)
    (0.0115, 86.6)
    """
    alpha = check_alpha(alpha)
    if tau2 is None:
        raise InvalidArgumentError(
            "tau2",
            "is required: fix the mixing variance before the experiment, e.g. "
            "tau2=msprt_tau2(planned_n_per_arm, sd, alpha=alpha)",
        )
    tau2_array = check_positive("tau2", tau2)
    difference, _ = sequential_difference(control, treatment, relative=relative, kind=kind)
    ci_low, ci_high, p_value, log_lr = _bounds(difference.effect, difference.se, alpha, tau2_array)
    with np.errstate(over="ignore"):
        e_value = np.array(np.broadcast_to(np.exp(log_lr), difference.errors.shape))
    return finish(
        difference,
        alpha=alpha,
        alternative="two-sided",
        method="msprt",
        scale="relative" if relative else "absolute",
        params={"tau2": tau2, "kind": kind},
        result_type=SequentialResult,
        interval=(ci_low, ci_high),
        p_value=p_value,
        e_value=e_value,
    )
