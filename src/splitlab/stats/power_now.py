"""Mid-experiment power ("power now"): how likely the running test is to detect ``mde``,
and how many more units it needs to reach a target power.

The formulas are those of GrowthBook's gbstats ``MidExperimentPower``
(``packages/stats/gbstats/power/midexperimentpower.py`` at commit 8f1db445, ``power`` at
lines 155-199). After N units the estimate is δ̂ ~ N(δ, se_N²), and the standard error is
assumed to shrink as 1/√N from the se observed at the current n: se_N² = se² n / N. gbstats
writes N = n (1 + k) with k its ``scaling_factor``. A test rejects when δ̂ > h_N or δ̂ < −l_N
(the margins below), so the power to detect an effect δ = ``mde`` is

    power(N) = Φ((δ − h_N) / se_N) + Φ((−l_N − δ) / se_N),

with a side dropped for a one-sided ``alternative``. For the margins, α' = α / ``tests``
(Bonferroni, gbstats' ``num_tests``) and z = z_{1−α'/2} (two-sided) or z_{1−α'} (one-sided):

- ``"fixed"``: h = l = z se_N, the fixed-horizon z-test (gbstats line 194).
- ``"cs"``: h and l are the half-widths at N of the asymptotic confidence sequence of
  :func:`~splitlab.sequential.confseq.confidence_sequence_from_estimate` at level α', tuned
  at ``n_star``, with σ̂² = N se_N² = n se²: two-sided (Waudby-Smith et al., arXiv
  2103.06476v7, eq. 9) h = l = σ̂ sqrt(2(Nρ² + 1)/(N²ρ²) · ln(sqrt(Nρ² + 1)/α')), one-sided
  (eq. 134) σ̂ sqrt(2(Nρ² + 1)/(N²ρ²) · ln(1 + sqrt(Nρ² + 1)/(2α'))), ρ² = (−2 ln a +
  ln(−2 ln a + 1))/n_star with a = α' or 2α' (eq. 161). gbstats' two-sided
  ``sequential_interval_halfwidth`` (``frequentist/tests.py`` lines 253-265, called at
  midexperimentpower.py lines 184-192) is the same formula with the same ρ. ``power`` is
  then the chance that the sequence excludes 0 at N, when looking at N only. (The statistics
  layer may not import ``splitlab.sequential``; the test suite checks that these half-widths
  are the sequence's.)
- ``"bayes"``: a normal prior N(μ, τ²) on the effect (``prior=(μ, τ)``); the test "rejects"
  when the equal-tailed 1 − α' credible interval excludes 0 (two-sided; for one side, when
  the posterior probability of that side exceeds 1 − α'). With P = 1/τ² + 1/se_N² the
  posterior precision, that is h = se_N² (z √P − μ/τ²) and l = se_N² (z √P + μ/τ²) (gbstats
  lines 173-182). ``prior=None`` is gbstats' default (an improper, flat prior), which gives
  the fixed-horizon test, as :func:`~splitlab.stats.bayesian.gaussian_posterior` does.

``goal_metrics`` > 1 asks each of that many goal metrics to reach the power
target_power^(1/goal_metrics), so that all of them together reach ``target_power``
(gbstats' ``adjusted_power``). gbstats' ``p_value_corrected`` with ``num_variations`` v and
``num_goal_metrics`` g is ``tests=(v − 1) g``; without it, ``tests=1``.

gbstats is two-sided only and takes |mde|; here ``mde`` is signed, which matters only for a
prior whose mean is not 0, and the one-sided alternatives are the same construction with
one side dropped. gbstats finds k by bisection, stopping within 1e-5 of the target power;
here it is solved to rounding (regula falsi); gbstats' k is off by up to ~2e-4 relative.

``n`` is the number of units in the comparison so far, both arms together (gbstats'
``pairwise_sample_size``, n_control + n_treatment), the ``n_total`` of
:func:`~splitlab.sequential.confseq.confidence_sequence_from_estimate`; ``units_needed`` and
``additional_units`` count the same units. ``se`` and ``mde`` share a scale: absolute, or
the relative lift when ``relative=True`` (which only labels the result).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import special

from splitlab._validation import (
    as_float_array,
    broadcast,
    check_alpha,
    check_alternative,
    check_bool,
    check_choice,
    check_integer,
)
from splitlab.errors import InvalidArgumentError
from splitlab.stats.bayesian import _normal_prior
from splitlab.stats.power import _solve_increasing
from splitlab.stats.results import RowErrors, scalarize

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PowerNowResult", "power_now"]

METHODS = ("fixed", "cs", "bayes")

# Bracketing the units needed doubles (or halves) N/n at most this often: 2^64 covers any
# se and mde that float64 can hold.
_MAX_DOUBLINGS = 64


@dataclass(frozen=True, eq=False)
class PowerNowResult:
    """Power now and units to target, one entry per broadcast comparison.

    ``power`` is the chance to detect ``mde`` at the current ``n``; ``units_needed`` the
    total units (both arms, real-valued) at which the power reaches the target, which is
    below ``n`` for a comparison that is already powered; ``additional_units`` =
    max(0, units_needed − n) in the rows that are not already powered, 0 in those that are;
    ``scaling_factor`` = additional_units / n (gbstats' name); ``already_powered`` is
    power > target (gbstats' rule). ``error`` is '' for a row that is fine and says why a
    row is NaN otherwise. ``params`` records the options, ``target_power_each`` among them.
    A prior decisive on its own (its mean beyond z prior sds from 0) needs no units:
    ``units_needed`` is 0 there.
    """

    power: Any
    units_needed: Any
    additional_units: Any
    scaling_factor: Any
    already_powered: Any
    error: Any
    method: str = ""
    scale: str = "absolute"
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for item in fields(self):
            object.__setattr__(self, item.name, scalarize(getattr(self, item.name)))

    def to_frame(self) -> pd.DataFrame:
        """One row per comparison (flattened in C order), with method and scale columns."""
        import pandas as pd  # only here: importing the statistics stays light

        columns = {
            item.name: np.ravel(getattr(self, item.name))
            for item in fields(self)
            if item.name not in ("method", "scale", "params")
        }
        frame = pd.DataFrame(columns)
        frame["method"] = self.method
        frame["scale"] = self.scale
        return frame


@dataclass(frozen=True)
class _Test:
    """The decision rule whose power is computed; arrays are flat, one entry per row."""

    method: str
    alpha: float  # per test, after the Bonferroni split
    alternative: str
    n_star: float
    prior_mean: np.ndarray | None
    prior_sd: np.ndarray | None


def _margins(test: _Test, se: np.ndarray, n: np.ndarray, index: np.ndarray):
    """(h, l): the test rejects when δ̂ > h or δ̂ < −l, with δ̂'s standard error ``se`` after
    ``n`` units; ``index`` picks the rows of the prior. An absent side is +inf."""
    two_sided = test.alternative == "two-sided"
    if test.method == "cs":
        high = low = _sequence_halfwidth(se, n, test.alpha, test.n_star, two_sided)
    else:
        z = -special.ndtri(test.alpha / 2.0 if two_sided else test.alpha)
        if test.prior_mean is None:
            high = low = z * se
        else:
            variance = se * se
            prior_precision = 1.0 / test.prior_sd[index] ** 2
            posterior_sd_inv = np.sqrt(prior_precision + 1.0 / variance)
            pull = test.prior_mean[index] * prior_precision
            high = variance * (z * posterior_sd_inv - pull)
            low = variance * (z * posterior_sd_inv + pull)
    if test.alternative == "greater":
        low = np.full(np.shape(high), np.inf)
    elif test.alternative == "less":
        high = np.full(np.shape(low), np.inf)
    return high, low


def _sequence_halfwidth(se, n, alpha: float, n_star: float, two_sided: bool) -> np.ndarray:
    """Half-width after ``n`` units of the confidence sequence (module docstring, eqs. 9,
    134, 161) with σ̂² = n se²."""
    level = alpha if two_sided else 2.0 * alpha
    log_term = -2.0 * np.log(level)
    mixture = n * (log_term + np.log1p(log_term)) / n_star  # Nρ²
    if two_sided:
        log_ratio = 0.5 * np.log1p(mixture) - np.log(alpha)
    else:
        log_ratio = np.log1p(np.sqrt(1.0 + mixture) / (2.0 * alpha))
    return se * np.sqrt(2.0 * (1.0 + mixture) / mixture * log_ratio)


def _power(test: _Test, se, n, mde, index):
    """Φ((δ − h)/se) + Φ((−l − δ)/se): the chance of rejecting when the effect is δ."""
    high, low = _margins(test, se, n, index)
    return special.ndtr((mde - high) / se) + special.ndtr((-low - mde) / se)


def _units_ratio(test: _Test, se, n, mde, target: float) -> np.ndarray:
    """N/n at which the power reaches ``target``, with se_N = se sqrt(n/N); flat arrays.

    Bracketed by doubling (or halving) from N = n, then solved by regula falsi. A row whose
    power stays above the target however few units (a prior decisive on its own) gets 0.
    """

    def excess(ratio: np.ndarray, index: np.ndarray) -> np.ndarray:
        return (
            _power(test, se[index] / np.sqrt(ratio), n[index] * ratio, mde[index], index) - target
        )

    everything = np.arange(se.size)
    start = np.ones(se.size)
    short = excess(start, everything) < 0.0
    upper, lower = start.copy(), start.copy()
    moving = everything[short]
    for _ in range(_MAX_DOUBLINGS):  # up: the first doubling that reaches the target
        if moving.size == 0:
            break
        upper[moving] *= 2.0
        moving = moving[excess(upper[moving], moving) < 0.0]
    lower[short] = upper[short] / 2.0
    upper[moving] = np.nan
    moving = everything[~short]
    for _ in range(_MAX_DOUBLINGS):  # down: the first halving that falls short
        if moving.size == 0:
            break
        lower[moving] /= 2.0
        moving = moving[excess(lower[moving], moving) >= 0.0]
    upper[~short] = 2.0 * lower[~short]
    decisive = np.zeros(se.size, dtype=bool)
    decisive[moving] = True
    lower[decisive] = upper[decisive] = 1.0  # placeholders; the answer there is 0
    ratio = _solve_increasing(excess, lower, upper)
    return np.where(decisive, 0.0, ratio)


def power_now(
    se: object,
    n: object,
    *,
    mde: object,
    relative: bool = False,
    alpha: float = 0.05,
    target_power: float = 0.8,
    alternative: str = "two-sided",
    method: str = "fixed",
    n_star: float = 5000.0,
    prior: tuple[object, object] | None = None,
    tests: int = 1,
    goal_metrics: int = 1,
) -> PowerNowResult:
    """Power now to detect ``mde``, and the units needed to reach ``target_power``.

    ``se`` is the standard error of the effect estimate after ``n`` units (both arms);
    ``mde`` is the effect to detect, on the scale of ``se`` (signed: positive for
    ``alternative="greater"``, negative for "less"). Formulas (gbstats' ``MidExperimentPower``)
    are in the module docstring. ``method`` is "fixed" (z-test), "cs" (the confidence
    sequence tuned at ``n_star``) or "bayes" (normal prior ``prior=(mean, sd)`` on the
    effect; None is flat). ``tests`` splits ``alpha`` (Bonferroni); ``goal_metrics`` raises
    the target of each to target_power^(1/goal_metrics). Inputs broadcast; rows with a zero
    or non-finite ``se`` or ``n`` are NaN with a reason in ``error``.

    >>> result = power_now(0.02, 10_000, mde=0.05)
    >>> round(float(result.power), 4), round(float(result.units_needed))
    (0.7054, 12558)
    >>> result = power_now([0.02, 0.01], 10_000, mde=0.05, method="cs")
    >>> result.power.round(4).tolist(), result.already_powered.tolist()
    ([0.2872, 0.9737], [False, True])
    """
    alpha = check_alpha(alpha)
    target = check_alpha(target_power, "target_power")
    alternative = check_alternative(alternative)
    method = check_choice("method", method, METHODS)
    relative = check_bool("relative", relative)
    tests = check_integer("tests", tests)
    goal_metrics = check_integer("goal_metrics", goal_metrics)
    n_star_array = as_float_array("n_star", n_star)
    if n_star_array.ndim != 0 or not n_star_array > 0.0:
        raise InvalidArgumentError("n_star", f"must be one positive number, got {n_star!r}")
    n_star = float(n_star_array)
    if method == "cs" and alternative != "two-sided" and alpha / tests >= 0.5:
        raise InvalidArgumentError(
            "alpha", "must be below 0.5 per test for a one-sided confidence sequence"
        )
    if target <= alpha:
        raise InvalidArgumentError(
            "target_power", f"must exceed alpha ({alpha}): a test rejects that often at no effect"
        )
    if prior is not None and method != "bayes":
        raise InvalidArgumentError("prior", f"applies to method='bayes' only, not {method!r}")

    se_array = as_float_array("se", se, finite=False)
    n_array = as_float_array("n", n, finite=False)
    mde_array = as_float_array("mde", mde)
    if np.any(se_array < 0.0):
        raise InvalidArgumentError("se", "must be non-negative (a standard error)")
    if np.any(n_array < 0.0):
        raise InvalidArgumentError("n", "must be non-negative (units so far)")
    if np.any(mde_array == 0.0):
        raise InvalidArgumentError("mde", "must be nonzero: the effect the test should detect")
    if alternative == "greater" and np.any(mde_array < 0.0):
        raise InvalidArgumentError("mde", "must be positive for alternative='greater'")
    if alternative == "less" and np.any(mde_array > 0.0):
        raise InvalidArgumentError("mde", "must be negative for alternative='less'")
    se_array, n_array, mde_array = broadcast(se=se_array, n=n_array, mde=mde_array)
    shape = se_array.shape

    prior_mean = prior_sd = None
    if prior is not None:
        prior_mean, prior_sd = _normal_prior(prior, shape)
        prior_mean = np.broadcast_to(prior_mean, shape).ravel()
        prior_sd = np.broadcast_to(prior_sd, shape).ravel()

    errors = RowErrors(shape)
    errors.flag(se_array == 0.0, "se is 0: a metric with no variance has no power")
    errors.flag(~np.isfinite(se_array), "se is NaN or infinite")
    errors.flag(n_array == 0.0, "n is 0: no units yet")
    errors.flag(~np.isfinite(n_array), "n is NaN or infinite")
    # flagged rows are computed on harmless placeholders, then blanked
    se_flat = np.where(errors.bad, 1.0, se_array).ravel()
    n_flat = np.where(errors.bad, 1.0, n_array).ravel()
    mde_flat = mde_array.ravel()

    test = _Test(method, alpha / tests, alternative, n_star, prior_mean, prior_sd)
    target_each = target ** (1.0 / goal_metrics)
    everything = np.arange(se_flat.size)
    power_values = _power(test, se_flat, n_flat, mde_flat, everything).reshape(shape)
    ratio = _units_ratio(test, se_flat, n_flat, mde_flat, target_each).reshape(shape)
    n_safe = n_flat.reshape(shape)
    already_powered = (power_values > target_each) & ~errors.bad
    scaling_factor = np.where(already_powered, 0.0, np.maximum(ratio - 1.0, 0.0))
    units_needed = n_safe * ratio
    additional_units = n_safe * scaling_factor
    errors.blank(power_values, units_needed, additional_units, scaling_factor)
    return PowerNowResult(
        power=power_values,
        units_needed=units_needed,
        additional_units=additional_units,
        scaling_factor=scaling_factor,
        already_powered=already_powered,
        error=errors.messages,
        method=method,
        scale="relative" if relative else "absolute",
        params={
            "alpha": alpha,
            "target_power": target,
            "target_power_each": target_each,
            "alternative": alternative,
            "n_star": n_star if method == "cs" else None,
            "prior": prior,
            "tests": tests,
            "goal_metrics": goal_metrics,
            "relative": relative,
        },
    )
