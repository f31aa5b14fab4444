"""Sample size, power and minimum detectable effect for two-sample comparisons.

Two metric kinds share one vocabulary. With ``sd`` given, the metric is a mean with a
common standard deviation in both arms. With ``sd=None`` it is a proportion: ``baseline``
is the control rate p_c, the treatment rate is p_t = p_c + effect, and each arm keeps its
own Bernoulli variance, so the difference of means has variance

    p_c (1 − p_c) / n_c + p_t (1 − p_t) / n_t        (unpooled, same under H0 and H1).

``mde`` is the effect treatment − control: absolute, or a fraction of ``baseline`` when
``relative=True``. ``ratio`` is n_treatment / n_control and ``n`` is the control arm size.

``test="z"`` is the normal test of statsmodels' ``NormalIndPower``; ``test="t"`` is the
pooled two-sample t-test of ``TTestIndPower`` (mean metrics only). As in statsmodels, the
two-sided power counts both rejection tails, Φ(s − z) + Φ(−s − z), so a two-sided sample
size is solved numerically rather than read off the textbook (z_{1−α/2} + z_{1−β})² rule,
which ignores the far tail. Effects are signed: a one-sided ``"less"`` alternative needs a
negative ``mde`` and ``mde()`` then returns a negative effect.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
from scipy import special

from splitlab._validation import as_float_array, broadcast, check_alternative, check_choice
from splitlab.errors import DegenerateDataWarning, InvalidArgumentError
from splitlab.stats.results import scalarize

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SampleSizeResult", "mde", "power", "sample_size"]

TESTS = ("z", "t")

# Whole units are taken after forgiving this much floating-point excess, so that an exact
# solution of 100.00000000000003 is reported as 100 units rather than 101.
_ROUNDING_SLACK = 1e-10


@dataclass(frozen=True)
class SampleSizeResult:
    """Units per arm needed to reach the target power.

    ``n_control``, ``n_treatment`` and ``n_total`` are whole units, rounded up;
    ``n_control_exact`` is the real-valued solution of the power equation (what
    statsmodels' ``solve_power(nobs1=None, ...)`` returns). Fields are shaped like the
    broadcast inputs; a scalar call gives numpy floats.
    """

    n_control: np.ndarray | np.float64
    n_treatment: np.ndarray | np.float64
    n_total: np.ndarray | np.float64
    n_control_exact: np.ndarray | np.float64

    def to_frame(self) -> pd.DataFrame:
        """One row per broadcast element, one column per field."""
        import pandas as pd  # only here: importing the statistics stays light

        columns = {field.name: np.ravel(getattr(self, field.name)) for field in fields(self)}
        return pd.DataFrame(columns)


@dataclass(frozen=True)
class _Design:
    """Validated, broadcast inputs; ``effect`` is absolute treatment − control."""

    baseline: np.ndarray
    sd: np.ndarray | None
    effect: np.ndarray | None
    n_control: np.ndarray | None
    alpha: np.ndarray
    power: np.ndarray | None
    ratio: np.ndarray
    alternative: str
    test: str


def _open_unit_interval(name: str, value: object) -> np.ndarray:
    array = as_float_array(name, value)
    if np.any((array <= 0.0) | (array >= 1.0)):
        raise InvalidArgumentError(name, "must be strictly between 0 and 1")
    return array


def _positive(name: str, value: object) -> np.ndarray:
    array = as_float_array(name, value)
    if np.any(array <= 0.0):
        raise InvalidArgumentError(name, "must be positive")
    return array


def _validate(
    *,
    baseline: object,
    sd: object,
    mde: object,
    n: object,
    relative: bool,
    alpha: object,
    power: object,
    ratio: object,
    alternative: object,
    test: object,
) -> _Design:
    """Check and broadcast the shared vocabulary; ``mde``/``n``/``power`` may be absent."""
    alternative = check_alternative(alternative)
    test = check_choice("test", test, TESTS)
    if not isinstance(relative, bool | np.bool_):
        raise InvalidArgumentError("relative", f"must be True or False, got {relative!r}")
    if test == "t" and sd is None:
        raise InvalidArgumentError("test", "'t' applies to mean metrics only; pass sd")

    named = {
        "baseline": as_float_array("baseline", baseline),
        "alpha": _open_unit_interval("alpha", alpha),
        "ratio": _positive("ratio", ratio),
    }
    if sd is not None:
        named["sd"] = _positive("sd", sd)
    if mde is not None:
        named["mde"] = as_float_array("mde", mde)
    if n is not None:
        named["n"] = _positive("n", n)
    if power is not None:
        named["power"] = _open_unit_interval("power", power)
    arrays = dict(zip(named, broadcast(**named), strict=True))

    baseline_array = arrays["baseline"]
    if sd is None and np.any((baseline_array <= 0.0) | (baseline_array >= 1.0)):
        raise InvalidArgumentError(
            "baseline", "a proportion metric (sd=None) needs a baseline rate strictly in (0, 1)"
        )
    if relative and np.any(baseline_array <= 0.0):
        raise InvalidArgumentError("baseline", "must be positive when relative=True")
    if power is not None and np.any(arrays["power"] <= arrays["alpha"]):
        raise InvalidArgumentError("power", "must exceed alpha (power equals alpha at no effect)")

    effect = None
    if mde is not None:
        effect = arrays["mde"] * baseline_array if relative else arrays["mde"]
        if sd is None:
            treatment_rate = baseline_array + effect
            if np.any((treatment_rate < 0.0) | (treatment_rate > 1.0)):
                raise InvalidArgumentError(
                    "mde", "baseline + effect must be a proportion in [0, 1]"
                )
    if test == "t" and n is not None and np.any(arrays["n"] * (1.0 + arrays["ratio"]) <= 2.0):
        raise InvalidArgumentError("n", "the t-test needs n * (1 + ratio) > 2 (positive df)")

    return _Design(
        baseline=baseline_array,
        sd=arrays.get("sd"),
        effect=effect,
        n_control=arrays.get("n"),
        alpha=arrays["alpha"],
        power=arrays.get("power"),
        ratio=arrays["ratio"],
        alternative=alternative,
        test=test,
    )


def _variance_per_control_unit(design: _Design, effect: np.ndarray) -> np.ndarray:
    """V such that Var(mean_t − mean_c) = V / n_control."""
    if design.sd is not None:
        return design.sd**2 * (1.0 + 1.0 / design.ratio)
    control_rate = design.baseline
    treatment_rate = control_rate + effect
    return (
        control_rate * (1.0 - control_rate) + treatment_rate * (1.0 - treatment_rate) / design.ratio
    )


def _critical_z(alpha: np.ndarray, alternative: str) -> np.ndarray:
    tail = alpha / 2.0 if alternative == "two-sided" else alpha
    return -special.ndtri(tail)


def _z_power(shift: np.ndarray, alpha: np.ndarray, alternative: str) -> np.ndarray:
    """Power of a z-test whose statistic is N(shift, 1); statsmodels ``normal_power``."""
    critical = _critical_z(alpha, alternative)
    if alternative == "greater":
        return special.ndtr(shift - critical)
    if alternative == "less":
        return special.ndtr(-shift - critical)
    return special.ndtr(shift - critical) + special.ndtr(-shift - critical)


def _noncentral_t_cdf(df: np.ndarray, noncentrality: np.ndarray, x: np.ndarray) -> np.ndarray:
    """P(T <= x) for a noncentral t, repairing the NaN that scipy returns in far tails.

    scipy's Boost-based ``nctdtr`` (scipy 1.16-1.17) answers NaN for some points whose
    probability is within rounding of 0 or 1 (scipy issue #25470). There the mirrored
    1 − P(T <= −x; −nc) is tried, and failing that the tail is read as the limit it is.
    """
    cdf = special.nctdtr(df, noncentrality, x)
    failed = np.isnan(cdf)
    if np.any(failed):
        mirrored = 1.0 - special.nctdtr(df, -noncentrality, -x)
        limit = np.where(x < noncentrality, 0.0, 1.0)
        cdf = np.where(failed, np.where(np.isnan(mirrored), limit, mirrored), cdf)
    return cdf


def _t_power(
    noncentrality: np.ndarray, df: np.ndarray, alpha: np.ndarray, alternative: str
) -> np.ndarray:
    """Power of a t-test from the noncentral t; statsmodels ``ttest_power``."""
    tail = alpha / 2.0 if alternative == "two-sided" else alpha
    critical = -special.stdtrit(df, tail)
    if alternative == "greater":
        return 1.0 - _noncentral_t_cdf(df, noncentrality, critical)
    if alternative == "less":
        return _noncentral_t_cdf(df, noncentrality, -critical)
    return (
        1.0
        - _noncentral_t_cdf(df, noncentrality, critical)
        + _noncentral_t_cdf(df, noncentrality, -critical)
    )


def _solve_increasing(
    func: Callable[[np.ndarray, np.ndarray], np.ndarray],
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    rel_tol: float = 1e-14,
    max_iter: int = 200,
) -> np.ndarray:
    """Elementwise root of an increasing ``func(x, index)`` bracketed by [lower, upper].

    ``index`` picks the elements (of the flattened problem) that ``x`` belongs to. The
    Illinois variant of regula falsi (Dowell & Jarratt 1971, BIT 11:168) keeps the bracket
    and converges superlinearly; it needs func(lower) <= 0 <= func(upper).
    """
    index = np.arange(lower.size)
    low, high = lower.ravel().copy(), upper.ravel().copy()
    f_low, f_high = func(low, index), func(high, index)
    last_moved = np.zeros(lower.size, dtype=np.int8)
    root = np.where(f_low == 0.0, low, np.where(f_high == 0.0, high, np.nan))
    active = np.isnan(root) & np.isfinite(f_low) & np.isfinite(f_high)
    index, low, high, f_low, f_high, last_moved = (
        a[active] for a in (index, low, high, f_low, f_high, last_moved)
    )
    for _ in range(max_iter):
        if index.size == 0:
            break
        span = f_high - f_low
        secant = low - f_low * np.divide(high - low, span, out=np.zeros_like(span), where=span > 0)
        inside = (secant > low) & (secant < high)
        guess = np.where(inside, secant, 0.5 * (low + high))
        f_guess = func(guess, index)

        moves_high = f_guess > 0.0
        moves_low = f_guess < 0.0
        f_low = np.where(moves_high & (last_moved == 1), 0.5 * f_low, f_low)
        f_high = np.where(moves_low & (last_moved == -1), 0.5 * f_high, f_high)
        high = np.where(moves_high, guess, high)
        f_high = np.where(moves_high, f_guess, f_high)
        low = np.where(moves_low, guess, low)
        f_low = np.where(moves_low, f_guess, f_low)
        last_moved = np.where(moves_high, 1, np.where(moves_low, -1, 0)).astype(np.int8)

        done = (f_guess == 0.0) | (high - low <= rel_tol * np.abs(guess))
        root[index[done]] = guess[done]
        keep = ~done
        index, low, high, f_low, f_high, last_moved = (
            a[keep] for a in (index, low, high, f_low, f_high, last_moved)
        )
    root[index] = 0.5 * (low + high)
    return root.reshape(lower.shape)


def _z_shift_for_power(alpha: np.ndarray, target: np.ndarray, alternative: str) -> np.ndarray:
    """The standardized shift s ≥ 0 at which the z-test reaches the target power."""
    critical = _critical_z(alpha, alternative)
    if alternative != "two-sided":
        return critical + special.ndtri(target)
    # Φ(s − c) ≤ power(s) ≤ Φ(s − c) + α/2 brackets the root; power > α keeps it positive.
    lower = critical + special.ndtri(target - alpha / 2.0)
    upper = critical + special.ndtri(target)
    flat_alpha, flat_target = alpha.ravel(), target.ravel()

    def excess_power(shift: np.ndarray, index: np.ndarray) -> np.ndarray:
        return _z_power(shift, flat_alpha[index], alternative) - flat_target[index]

    return _solve_increasing(excess_power, lower, upper)


def _expand_upper(
    func: Callable[[np.ndarray, np.ndarray], np.ndarray],
    start: np.ndarray,
    *,
    max_doublings: int = 64,
) -> np.ndarray:
    """Double ``start`` elementwise until ``func`` is non-negative there; NaN if it never is."""
    upper = start.ravel().copy()
    index = np.arange(upper.size)
    short = func(upper, index) < 0.0
    for _ in range(max_doublings):
        if not np.any(short):
            break
        index = index[short]
        upper[index] *= 2.0
        short = func(upper[index], index) < 0.0
    if np.any(short):
        upper[index[short]] = np.nan
        warnings.warn(
            f"{np.count_nonzero(short)} design(s) cannot reach the target power; "
            "their result is NaN",
            DegenerateDataWarning,
            stacklevel=4,
        )
    return upper.reshape(start.shape)


def sample_size(
    *,
    baseline: object,
    sd: object = None,
    mde: object,
    relative: bool = False,
    alpha: object = 0.05,
    power: object = 0.8,
    ratio: object = 1.0,
    alternative: str = "two-sided",
    test: str = "z",
) -> SampleSizeResult:
    """Units per arm for a two-sample test to detect ``mde`` with the given power.

    Solves power(n_control) = ``power`` for the z-test of statsmodels ``NormalIndPower``
    (Chow, Shao & Wang, *Sample Size Calculations in Clinical Research*, 2nd ed., §4.2;
    one-sided: n_c = (z_{1−α} + z_{1−β})² V / effect², V = σ_c² + σ_t² / ratio) or the
    pooled t-test of ``TTestIndPower`` (noncentral t, Cohen 1988, ch. 2). Inputs broadcast.

    >>> result = sample_size(baseline=10.0, sd=2.0, mde=1.0, test="t")  # Cohen's d = 0.5
    >>> int(result.n_control), round(float(result.n_control_exact), 4)
    (64, 63.7656)
    >>> result = sample_size(baseline=0.10, mde=0.10, relative=True, ratio=2.0)
    >>> int(result.n_control), int(result.n_treatment), int(result.n_total)
    (10906, 21812, 32718)
    """
    design = _validate(
        baseline=baseline,
        sd=sd,
        mde=mde,
        n=None,
        relative=relative,
        alpha=alpha,
        power=power,
        ratio=ratio,
        alternative=alternative,
        test=test,
    )
    effect = design.effect
    if np.any(effect == 0.0):
        raise InvalidArgumentError("mde", "must be nonzero")
    if design.alternative == "greater" and np.any(effect < 0.0):
        raise InvalidArgumentError(
            "mde", "must be positive for alternative='greater' (effect = treatment − control)"
        )
    if design.alternative == "less" and np.any(effect > 0.0):
        raise InvalidArgumentError(
            "mde", "must be negative for alternative='less' (effect = treatment − control)"
        )

    variance_unit = _variance_per_control_unit(design, effect)
    shift = _z_shift_for_power(design.alpha, design.power, design.alternative)
    n_control_exact = shift**2 * variance_unit / effect**2
    if design.test == "t":
        n_control_exact = _t_sample_size(design, n_control_exact)

    n_control = np.ceil(n_control_exact * (1.0 - _ROUNDING_SLACK))
    n_treatment = np.ceil(design.ratio * n_control_exact * (1.0 - _ROUNDING_SLACK))
    return SampleSizeResult(
        n_control=scalarize(n_control),
        n_treatment=scalarize(n_treatment),
        n_total=scalarize(n_control + n_treatment),
        n_control_exact=scalarize(n_control_exact),
    )


def _t_power_at(design: _Design, effect: np.ndarray, n_control: np.ndarray) -> np.ndarray:
    """TTestIndPower.power: effective n = n_c·ratio/(1 + ratio), df = n_c (1 + ratio) − 2."""
    noncentrality = effect / design.sd * np.sqrt(n_control * design.ratio / (1.0 + design.ratio))
    df = n_control * (1.0 + design.ratio) - 2.0
    return _t_power(noncentrality, df, design.alpha, design.alternative)


def _t_sample_size(design: _Design, n_normal: np.ndarray) -> np.ndarray:
    """Solve the t-test power equation for n_control, starting from the z-test solution."""
    flat = {
        name: np.ravel(value)
        for name, value in (
            ("effect", design.effect),
            ("sd", design.sd),
            ("alpha", design.alpha),
            ("power", design.power),
            ("ratio", design.ratio),
        )
    }
    alternative = design.alternative

    def excess_power(n_control: np.ndarray, index: np.ndarray) -> np.ndarray:
        ratio = flat["ratio"][index]
        noncentrality = (
            flat["effect"][index] / flat["sd"][index] * np.sqrt(n_control * ratio / (1.0 + ratio))
        )
        df = n_control * (1.0 + ratio) - 2.0
        achieved = _t_power(noncentrality, df, flat["alpha"][index], alternative)
        return achieved - flat["power"][index]

    # The t-test never beats the z-test with known variance at equal n, so the z solution
    # is a lower end; where the few degrees of freedom defeat that, start just above df = 0.
    smallest = 2.0 / (1.0 + design.ratio) * (1.0 + 1e-6)
    lower = np.maximum(n_normal, smallest)
    index = np.arange(lower.size)
    too_high = (excess_power(lower.ravel(), index) > 0.0).reshape(lower.shape)
    lower = np.where(too_high, smallest, lower)
    upper = _expand_upper(excess_power, np.maximum(2.0 * lower, lower + 2.0))
    return _solve_increasing(excess_power, lower, upper)


def power(
    *,
    baseline: object,
    sd: object = None,
    mde: object,
    n: object,
    relative: bool = False,
    alpha: object = 0.05,
    ratio: object = 1.0,
    alternative: str = "two-sided",
    test: str = "z",
) -> np.ndarray | np.float64:
    """Probability that the test rejects when the true effect is ``mde``.

    z-test: Φ(s − z_{1−α/2}) + Φ(−s − z_{1−α/2}) with s = effect·√(n / V) (statsmodels
    ``normal_power``; one-sided drops the tail against the alternative). t-test: noncentral
    t with noncentrality s and n(1 + ratio) − 2 degrees of freedom (statsmodels
    ``ttest_power``). ``n`` is the control size; the treatment arm has ``ratio * n``.
    A zero ``mde`` gives the size of the test, ``alpha``.

    >>> f"{power(baseline=0.10, mde=0.01, n=14749):.4f}"
    '0.8000'
    >>> f"{power(baseline=10.0, sd=2.0, mde=1.0, n=64, test='t'):.4f}"
    '0.8015'
    """
    design = _validate(
        baseline=baseline,
        sd=sd,
        mde=mde,
        n=n,
        relative=relative,
        alpha=alpha,
        power=None,
        ratio=ratio,
        alternative=alternative,
        test=test,
    )
    effect = design.effect
    if design.test == "t":
        return scalarize(_t_power_at(design, effect, design.n_control))
    shift = effect * np.sqrt(design.n_control / _variance_per_control_unit(design, effect))
    return scalarize(_z_power(shift, design.alpha, design.alternative))


def mde(
    *,
    baseline: object,
    sd: object = None,
    n: object,
    relative: bool = False,
    alpha: object = 0.05,
    power: object = 0.8,
    ratio: object = 1.0,
    alternative: str = "two-sided",
    test: str = "z",
) -> np.ndarray | np.float64:
    """The smallest effect that ``n`` control units (and ``ratio * n`` treated) detect.

    Inverts :func:`power` in the effect, the way statsmodels ``solve_power(effect_size=None)``
    does: positive for "two-sided" and "greater", negative for "less"; relative to
    ``baseline`` when ``relative=True``. For a proportion the treatment variance moves with
    the effect, so n·δ² = s² (p_c(1 − p_c) + p_t(1 − p_t)/ratio) is solved as a quadratic in
    δ. Where no rate in [0, 1] reaches the power, the result is NaN and a
    ``DegenerateDataWarning`` is emitted.

    >>> f"{mde(baseline=0.10, n=14749):.4f}"
    '0.0100'
    >>> f"{mde(baseline=10.0, sd=2.0, n=64, test='t', relative=True):.4f}"
    '0.0998'
    """
    design = _validate(
        baseline=baseline,
        sd=sd,
        mde=None,
        n=n,
        relative=relative,
        alpha=alpha,
        power=power,
        ratio=ratio,
        alternative=alternative,
        test=test,
    )
    direction = -1.0 if design.alternative == "less" else 1.0
    n_control = design.n_control
    if design.test == "t":
        df = n_control * (1.0 + design.ratio) - 2.0
        shift = _t_noncentrality(df, design.alpha, design.power, design.alternative)
    else:
        shift = _z_shift_for_power(design.alpha, design.power, design.alternative)

    if design.sd is not None:
        effect = direction * shift * design.sd * np.sqrt((1.0 + 1.0 / design.ratio) / n_control)
    else:
        effect = _proportion_effect(design.baseline, n_control, design.ratio, shift, direction)
    return scalarize(effect / design.baseline if relative else effect)


def _t_noncentrality(
    df: np.ndarray, alpha: np.ndarray, target: np.ndarray, alternative: str
) -> np.ndarray:
    """Noncentrality δ > 0 at which the t-test reaches the target power against δ·sign."""
    # The power against −δ for "less" equals the power against δ for "greater".
    one_sided_or_both = "two-sided" if alternative == "two-sided" else "greater"
    flat_df, flat_alpha, flat_target = df.ravel(), alpha.ravel(), target.ravel()

    def excess_power(noncentrality: np.ndarray, index: np.ndarray) -> np.ndarray:
        achieved = _t_power(noncentrality, flat_df[index], flat_alpha[index], one_sided_or_both)
        return achieved - flat_target[index]

    # At δ = 0 the power is alpha < target; the z-test shift is a first upper guess.
    lower = np.zeros(df.shape)
    start = _z_shift_for_power(alpha, target, one_sided_or_both)
    upper = _expand_upper(excess_power, start)
    return _solve_increasing(excess_power, lower, upper)


def _proportion_effect(
    control_rate: np.ndarray,
    n_control: np.ndarray,
    ratio: np.ndarray,
    shift: np.ndarray,
    direction: float,
) -> np.ndarray:
    """Root δ (sign ``direction``) of n δ² = s² (v_c + (v_c + δ(1 − 2p) − δ²)/ratio)."""
    control_variance = control_rate * (1.0 - control_rate)
    shift_sq = shift**2
    quadratic = n_control + shift_sq / ratio
    linear = -shift_sq * (1.0 - 2.0 * control_rate) / ratio
    constant = -shift_sq * control_variance * (1.0 + 1.0 / ratio)
    # constant < 0 < quadratic, so there is one root of each sign; the citardauq form
    # avoids cancellation (Press et al., Numerical Recipes, 3rd ed., eq. 5.6.4).
    sqrt_discriminant = np.sqrt(linear**2 - 4.0 * quadratic * constant)
    if direction > 0:
        effect = np.where(
            linear >= 0.0,
            2.0 * constant / (-linear - sqrt_discriminant),
            (-linear + sqrt_discriminant) / (2.0 * quadratic),
        )
        reachable = n_control * (1.0 - control_rate) >= shift_sq * control_rate
    else:
        effect = np.where(
            linear <= 0.0,
            2.0 * constant / (-linear + sqrt_discriminant),
            (-linear - sqrt_discriminant) / (2.0 * quadratic),
        )
        reachable = n_control * control_rate >= shift_sq * (1.0 - control_rate)
    if not np.all(reachable):
        warnings.warn(
            f"{np.size(reachable) - np.count_nonzero(reachable)} design(s) cannot reach the "
            "target power with any treatment rate in [0, 1]; their mde is NaN",
            DegenerateDataWarning,
            stacklevel=3,
        )
    return np.where(reachable, effect, np.nan)
