"""Always-valid sample-ratio mismatch: check the traffic split after every batch.

The Dirichlet-multinomial Bayes-factor test of Lindon & Malek (2022), "Anytime-Valid
Inference for Multinomial Count Data", NeurIPS 35 (arXiv 2011.03567). Under the null the
arm of each unit is an independent draw from the configured split p; the alternative
mixes the multinomial over θ ~ Dirichlet(c · p). The Bayes factor of the cumulative counts
is then a nonnegative martingale with mean 1 under the null, so by Ville's inequality
P(BF_t ≥ 1/α for some t) ≤ α: the test may be checked after every unit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from scipy import special

from splitlab._validation import check_alpha, counts_and_weights
from splitlab.errors import DegenerateDataWarning, InvalidArgumentError

__all__ = ["SequentialSRMResult", "sequential_srm"]


@dataclass(frozen=True)
class SequentialSRMResult:
    """Always-valid SRM test per experiment (the leading axes of ``counts``).

    ``bayes_factor`` is the evidence for a mismatch (Dirichlet-multinomial marginal
    likelihood over the multinomial likelihood at the configured split),
    ``log_bayes_factor`` its natural logarithm (finite where ``bayes_factor`` overflows),
    and ``p_value = min(1, 1 / bayes_factor)`` the always-valid p-value. ``reject`` is
    ``p_value <= alpha`` when the call gave ``alpha`` and ``None`` otherwise. Experiments
    that cannot be tested carry NaN (and ``reject`` False) and say why in ``error``;
    ``error`` is ``""`` elsewhere. A single experiment gives numpy scalars and a ``str``.
    """

    bayes_factor: np.ndarray | np.float64
    p_value: np.ndarray | np.float64
    log_bayes_factor: np.ndarray | np.float64
    error: np.ndarray | str
    reject: np.ndarray | np.bool_ | None = None

    def to_frame(self) -> pd.DataFrame:
        """One row per experiment, one column per field (``reject`` only if computed)."""
        return pd.DataFrame(
            {
                field.name: np.ravel(getattr(self, field.name))
                for field in fields(self)
                if getattr(self, field.name) is not None
            }
        )


def sequential_srm(
    counts: object,
    weights: object = None,
    *,
    concentration: float = 100.0,
    alpha: float | None = None,
) -> SequentialSRMResult:
    """Always-valid test that cumulative ``counts`` (last axis = arms) follow ``weights``.

    With p = w / Σw over the arms with positive weight, prior parameters a = c · p
    (c = ``concentration``), n = Σ x_i and the multivariate beta function
    B(a) = Π Γ(a_i) / Γ(Σ a_i), the Bayes factor of Lindon & Malek (2022) is the
    Dirichlet-multinomial marginal likelihood over the null multinomial likelihood; the
    multinomial coefficient n! / Π x_i! appears in both and cancels::

        log BF = log B(a + x) − log B(a) − Σ_i x_i log p_i

    evaluated in log space with Stirling's leading terms cancelled algebraically (accurate
    to ~10⁻⁷ absolute at 10⁹ units, where plain ``gammaln`` differences lose ~10⁻⁵), and
    the always-valid p-value is min(1, 1 / BF). A larger ``concentration`` centres the
    alternative more tightly on the configured split: more power against small
    mismatches, less against large ones.

    Zero-weight arms are left out, as in :func:`splitlab.stats.srm.srm_test`; units in
    one make that experiment an error. ``weights=None`` means an equal split; weights
    broadcast against ``counts`` like the chi-square test's. Leading axes are independent
    experiments. No units at all is legal and gives BF = 1, p = 1 (no evidence yet).
    Experiments with fewer than two weighted arms get NaN, an ``error`` message and one
    ``DegenerateDataWarning`` for the call.

    Pass *cumulative* counts at each look. Because BF is a nonnegative martingale under
    the null, the running minimum of the p-value over looks is itself always valid — that
    running minimum is what to report and compare with ``alpha`` when monitoring:

    >>> result = sequential_srm([1000, 1100], [0.5, 0.5])
    >>> round(float(result.bayes_factor), 4), round(float(result.p_value), 4)
    (2.0681, 0.4835)
    >>> looks = np.array([[500, 540], [1000, 1100], [1500, 1690]])  # cumulative, per look
    >>> monitored = sequential_srm(looks, [0.5, 0.5], alpha=0.05)
    >>> np.minimum.accumulate(monitored.p_value).round(4).tolist()
    [1.0, 0.4835, 0.0237]
    >>> monitored.reject.tolist()
    [False, False, True]
    """
    observed, split = counts_and_weights(counts, weights)
    prior_size = _check_concentration(concentration)
    level = None if alpha is None else check_alpha(alpha)

    weighted = split > 0.0
    weighted_arms = np.count_nonzero(weighted, axis=-1)
    stray_units = np.any(~weighted & (observed > 0.0), axis=-1)
    error = np.select(
        [weighted_arms < 2, stray_units],
        ["fewer than 2 arms have positive weight", "an arm with zero weight has units"],
        default="",
    ).astype(object)
    testable = error == ""

    weight_sum = np.sum(np.where(weighted, split, 0.0), axis=-1, keepdims=True)
    null_probability = np.where(weighted, split, 1.0) / np.where(weight_sum > 0.0, weight_sum, 1.0)
    kept = np.where(weighted, observed, 0.0)
    log_bf = _log_bayes_factor(kept, null_probability, weighted, prior_size)
    # Exactly 0 before the first unit, rather than the rounding residue of the formula.
    log_bf = np.where(np.sum(kept, axis=-1) == 0.0, 0.0, log_bf)
    log_bf = np.where(testable, log_bf, np.nan)
    with np.errstate(over="ignore"):
        bayes_factor = np.exp(log_bf)
    p_value = np.minimum(1.0, np.exp(-log_bf))

    if not np.all(testable):
        untestable = np.size(testable) - np.count_nonzero(testable)
        warnings.warn(
            f"{untestable} of {np.size(testable)} experiment(s) cannot be tested for sample-"
            "ratio mismatch; see the error field",
            DegenerateDataWarning,
            stacklevel=2,
        )

    reject = None
    if level is not None:
        reject = np.where(testable, p_value <= level, False)
        reject = reject[()] if reject.ndim == 0 else reject
    return SequentialSRMResult(
        bayes_factor=bayes_factor[()] if bayes_factor.ndim == 0 else bayes_factor,
        p_value=p_value[()] if p_value.ndim == 0 else p_value,
        log_bayes_factor=log_bf[()] if log_bf.ndim == 0 else log_bf,
        error=str(error) if error.ndim == 0 else error,
        reject=reject,
    )


def _check_concentration(concentration: object) -> float:
    try:
        value = float(concentration)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            "concentration", f"must be a positive number, got {concentration!r}"
        ) from exc
    if not (np.isfinite(value) and value > 0.0):
        raise InvalidArgumentError(
            "concentration", f"must be a positive finite number, got {concentration!r}"
        )
    return value


_HALF_LOG_TWO_PI = 0.5 * np.log(2.0 * np.pi)


def _log_bayes_factor(
    counts: np.ndarray, null_probability: np.ndarray, weighted: np.ndarray, prior_size: float
) -> np.ndarray:
    """log B(a + x) − log B(a) − Σ x_i log p_i over the ``weighted`` arms, a = c · p.

    Subtracting ``gammaln`` values near 2·10¹⁰ (counts of 10⁹) would lose about 10⁻⁵ of
    log BF to rounding, so Stirling's leading terms are cancelled algebraically. With
    z_i = a_i + x_i, Z = Σ z_i = c + n, k arms and r the Stirling remainder
    (log Γ(z) = (z − ½) log z − z + ½ log 2π + r(z)):

        log BF = Σ_i [x_i L_i + (a_i − ½)(log p_i + L_i) + r(z_i) − log Γ(a_i)]
                 − (k − 1)/2 · log(Z / 2π) − r(Z) + log Γ(c),
        L_i = log(z_i / (p_i Z)) = log1p((x_i − n p_i) / (p_i Z)),

    which keeps log BF to about 10⁻⁷ absolute at 10⁹ units (the limit set by rounding
    p_i itself).
    """
    arms = np.count_nonzero(weighted, axis=-1)
    total = np.sum(counts, axis=-1, keepdims=True)
    grand = prior_size + total
    prior = prior_size * null_probability
    log_ratio = np.log1p((counts - total * null_probability) / (null_probability * grand))
    arm_terms = (
        counts * log_ratio
        + (prior - 0.5) * (np.log(null_probability) + log_ratio)
        + _stirling_remainder(np.where(weighted, prior + counts, 1.0))
        - special.gammaln(prior)
    )
    grand = grand[..., 0]
    return (
        np.sum(np.where(weighted, arm_terms, 0.0), axis=-1)
        - 0.5 * (arms - 1) * (np.log(grand) - 2.0 * _HALF_LOG_TWO_PI)
        - _stirling_remainder(grand)
        + special.gammaln(prior_size)
    )


def _stirling_remainder(z: np.ndarray) -> np.ndarray:
    """r(z) = log Γ(z) − ((z − ½) log z − z + ½ log 2π) for z > 0.

    For z ≥ 10 the asymptotic series 1/(12z) − 1/(360z³) + 1/(1260z⁵) − 1/(1680z⁷)
    (Abramowitz & Stegun 6.1.41), whose truncation error is below 10⁻¹²; below 10 the
    difference is taken directly, where both terms are small.
    """
    z = np.asarray(z, dtype=np.float64)
    large = z >= 10.0
    safe = np.where(large, z, 10.0)
    inverse_square = 1.0 / (safe * safe)
    series = (
        1.0
        / safe
        * (
            1.0 / 12.0
            - inverse_square
            * (1.0 / 360.0 - inverse_square * (1.0 / 1260.0 - inverse_square / 1680.0))
        )
    )
    small = np.where(large, 1.0, z)
    direct = special.gammaln(small) - ((small - 0.5) * np.log(small) - small + _HALF_LOG_TWO_PI)
    return np.where(large, series, direct)
