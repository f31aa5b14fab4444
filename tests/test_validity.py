"""Statistical validity of the fixed-horizon tests, checked by seeded simulation.

Each test simulates R replications of an experiment whose truth is known from the
data-generating process, analyses all of them in one vectorized call, and compares the
rejection or coverage rate with its nominal value within ``binomial_tolerance`` (4 binomial
standard errors of a rate over R replications). Normal data are summarised from their exact
sampling distributions; skewed, discrete and ratio data are drawn raw at moderate n.

Tests marked ``slow`` (deselected by the default ``-m "not slow"``; run them with ``-m slow``)
repeat a default check with five times more replications, and so a tighter tolerance;
every property is covered without them.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from simulation_helpers import (
    assert_rate_close,
    binomial_tolerance,
    bivariate_normal_joint_moments,
    coverage_rate,
    in_chunks,
    normal_moments,
    normal_power,
    rejection_rate,
)
from splitlab.stats.adjustment import cuped_test
from splitlab.stats.frequentist import proportions_test, ratio_test, ttest
from splitlab.stats.moments import JointMoments, Moments

pytestmark = pytest.mark.validity

ALPHA = 0.05
ALTERNATIVES = ("two-sided", "greater", "less")
R_EXACT = 50_000  # replications when summaries come from exact laws (cheap at any n)
R_RAW = 20_000  # replications when raw samples of shape (R, n) are drawn
R_SLOW = 100_000


def slow(value):
    return pytest.param(value, marks=pytest.mark.slow, id=f"R={value}")


def fast(value):
    return pytest.param(value, id=f"R={value}")


# --- data generators, cached so parametrized alternatives share one draw -------------------


SKEWED_SEEDS = {"lognormal": 21, "exponential": 22}


def skewed_samples(rng, distribution: str, replications: int, n: int) -> Moments:
    """Summaries of raw samples: lognormal(0, 1) (skewness 6, excess kurtosis 111) or
    exponential(1) (skewness 2, excess kurtosis 6)."""
    if distribution == "lognormal":
        values = rng.lognormal(0.0, 1.0, size=(replications, n))
    else:
        values = rng.exponential(1.0, size=(replications, n))
    return Moments.from_samples(values, axis=-1)


@cache
def skewed_aa_moments(distribution: str, replications: int, n: int):
    """A/A summaries, both groups of size n from the same skewed distribution."""
    rng = np.random.default_rng([SKEWED_SEEDS[distribution], replications, n])
    return tuple(
        in_chunks(lambda size: skewed_samples(rng, distribution, size, n), replications)
        for _ in range(2)
    )


RATIO_SESSIONS = 2.0  # mean extra sessions per user: x = 1 + Poisson(2), E[x] = 3
CONTROL_CLICK_SHAPE = (2.0, 8.0)  # per-user click-through ~ Beta(2, 8), mean 0.20
TREATMENT_CLICK_SHAPE = (2.2, 7.8)  # mean 0.22: a 10% lift in clicks per session


def ratio_samples(rng, replications: int, n: int, click_shape: tuple[float, float]):
    """Per-user (clicks, sessions): sessions x = 1 + Poisson(2), a user click-through rate
    c ~ Beta(click_shape) independent of x, clicks y | x, c ~ Binomial(x, c). y and x are
    correlated and y is over-dispersed; the ratio metric's truth is
    E[y] / E[x] = E[c] = a / (a + b)."""
    sessions = 1 + rng.poisson(RATIO_SESSIONS, size=(replications, n))
    rate = rng.beta(*click_shape, size=(replications, n))
    clicks = rng.binomial(sessions, rate)
    return JointMoments.from_samples(clicks.astype(float), sessions.astype(float), axis=-1)


def ratio_truth(click_shape: tuple[float, float]) -> float:
    a, b = click_shape
    return a / (a + b)


@cache
def clicks_per_session_moments(replications: int, n: int, click_shape_t: tuple[float, float]):
    rng = np.random.default_rng([12, replications, n, int(10 * click_shape_t[0])])
    return (
        in_chunks(lambda size: ratio_samples(rng, size, n, CONTROL_CLICK_SHAPE), replications),
        in_chunks(lambda size: ratio_samples(rng, size, n, click_shape_t), replications),
    )


def _skewed_cuped_correlation() -> float:
    var_pre = (np.exp(0.8**2) - 1) * np.exp(2 * 1.0 + 0.8**2)  # variance of lognormal(1, 0.8)
    return float(np.sqrt(0.8**2 * var_pre / (0.8**2 * var_pre + 1.0)))


SKEWED_CUPED_CORRELATION = _skewed_cuped_correlation()  # ≈ 0.943


def skewed_cuped_samples(rng, replications: int, n: int, effect: float) -> JointMoments:
    """Per-user pre-period spend x ~ lognormal(1, 0.8) and in-period y = 0.8 x + 0.5 + ε,
    ε ~ exponential(1) − 1 (variance 1), plus an additive ``effect``; corr(y, x) is
    ``SKEWED_CUPED_CORRELATION``."""
    pre = rng.lognormal(1.0, 0.8, size=(replications, n))
    noise = rng.exponential(1.0, size=(replications, n)) - 1.0
    return JointMoments.from_samples(0.8 * pre + 0.5 + noise + effect, pre, axis=-1)


@cache
def cuped_skewed_moments(replications: int, n: int, effect: float):
    rng = np.random.default_rng([13, replications, n])
    return (
        in_chunks(lambda size: skewed_cuped_samples(rng, size, n, 0.0), replications),
        in_chunks(lambda size: skewed_cuped_samples(rng, size, n, effect), replications),
    )


# --- type-I error under A/A ----------------------------------------------------------------


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize(
    ("n_c", "sd_c", "n_t", "sd_t"),
    [(200, 1.0, 200, 1.0), (40, 3.0, 400, 1.0)],
    ids=["balanced", "unequal-n-and-variance"],
)
def test_welch_type_one_error_holds_for_normal_data(n_c, sd_c, n_t, sd_t, alternative):
    rng = np.random.default_rng([1, n_c, n_t])
    control = normal_moments(rng, R_EXACT, n_c, 5.0, sd_c)
    treatment = normal_moments(rng, R_EXACT, n_t, 5.0, sd_t)
    result = ttest(control, treatment, alpha=ALPHA, alternative=alternative)
    rate = rejection_rate(result.p_value, ALPHA)
    assert_rate_close(rate, ALPHA, R_EXACT, "type-I error")


@pytest.mark.parametrize(
    ("replications", "n"),
    [
        pytest.param(R_RAW, 500, id=f"R={R_RAW}"),
        pytest.param(R_SLOW, 1000, marks=pytest.mark.slow, id=f"R={R_SLOW}"),
    ],
)
@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("distribution", ["lognormal", "exponential"])
def test_welch_type_one_error_holds_for_skewed_data(distribution, alternative, replications, n):
    # Equal group sizes: the skewness of the two means cancels in their difference, which is
    # what keeps one-sided Welch tests valid on skewed data at moderate n. The lognormal's
    # kurtosis makes Welch conservative by O(1/n) (two-sided 0.0473 at n = 200, 0.0495 at
    # n = 1000, from 4·10⁵ and 2·10⁵ replications), so n grows with the precision asked.
    control, treatment = skewed_aa_moments(distribution, replications, n)
    result = ttest(control, treatment, alpha=ALPHA, alternative=alternative)
    rate = rejection_rate(result.p_value, ALPHA)
    assert_rate_close(rate, ALPHA, replications, "type-I error")


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_student_type_one_error_holds_for_equal_variances(alternative):
    rng = np.random.default_rng(2)
    control = normal_moments(rng, R_EXACT, 30, 2.0, 1.5)
    treatment = normal_moments(rng, R_EXACT, 90, 2.0, 1.5)
    result = ttest(control, treatment, alpha=ALPHA, alternative=alternative, equal_var=True)
    rate = rejection_rate(result.p_value, ALPHA)
    assert_rate_close(rate, ALPHA, R_EXACT, "type-I error")


def test_student_type_one_error_is_inflated_when_the_small_group_is_noisier():
    # A check of the harness as much as of the test: the simulation must be able to see a
    # method that is invalid. Student's pooled variance underweights the small noisy group.
    rng = np.random.default_rng(3)
    control = normal_moments(rng, R_EXACT, 40, 5.0, 3.0)
    treatment = normal_moments(rng, R_EXACT, 400, 5.0, 1.0)
    student = rejection_rate(ttest(control, treatment, equal_var=True).p_value, ALPHA)
    welch = rejection_rate(ttest(control, treatment).p_value, ALPHA)
    assert student > ALPHA + 10 * binomial_tolerance(ALPHA, R_EXACT)
    assert_rate_close(welch, ALPHA, R_EXACT, "Welch type-I error")


@pytest.mark.parametrize("pooled", [False, True], ids=["unpooled", "pooled"])
@pytest.mark.parametrize(
    ("p", "n_c", "n_t", "alternative"),
    [
        (0.1, 1000, 1000, "two-sided"),
        (0.1, 1000, 1000, "greater"),
        (0.1, 1000, 1000, "less"),
        (0.02, 2000, 2000, "two-sided"),
        (0.3, 300, 900, "two-sided"),
    ],
)
def test_proportions_type_one_error_holds(p, n_c, n_t, alternative, pooled):
    rng = np.random.default_rng([4, n_c, n_t, int(1000 * p)])
    successes_c = rng.binomial(n_c, p, size=R_EXACT)
    successes_t = rng.binomial(n_t, p, size=R_EXACT)
    result = proportions_test(
        successes_c, n_c, successes_t, n_t, alpha=ALPHA, alternative=alternative, pooled=pooled
    )
    rate = rejection_rate(result.p_value, ALPHA)
    assert_rate_close(rate, ALPHA, R_EXACT, "type-I error")


@pytest.mark.parametrize("replications", [fast(R_RAW), slow(R_SLOW)])
@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_ratio_test_type_one_error_holds(alternative, replications):
    control, treatment = clicks_per_session_moments(replications, 200, CONTROL_CLICK_SHAPE)
    result = ratio_test(control, treatment, alpha=ALPHA, alternative=alternative)
    rate = rejection_rate(result.p_value, ALPHA)
    assert_rate_close(rate, ALPHA, replications, "type-I error")


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_cuped_type_one_error_holds_for_normal_data(alternative):
    rng = np.random.default_rng(5)
    groups = [
        bivariate_normal_joint_moments(rng, R_EXACT, n, 10.0, 10.0, 2.0, 2.0, 0.8)
        for n in (300, 500)
    ]
    result = cuped_test(*groups, alpha=ALPHA, alternative=alternative)
    rate = rejection_rate(result.p_value, ALPHA)
    assert_rate_close(rate, ALPHA, R_EXACT, "type-I error")


@pytest.mark.parametrize("replications", [fast(R_RAW), slow(R_SLOW)])
@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_cuped_type_one_error_holds_for_skewed_data(alternative, replications):
    control, treatment = cuped_skewed_moments(replications, 200, 0.0)
    result = cuped_test(control, treatment, alpha=ALPHA, alternative=alternative)
    rate = rejection_rate(result.p_value, ALPHA)
    assert_rate_close(rate, ALPHA, replications, "type-I error")


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_relative_delta_ttest_type_one_error_holds(alternative):
    # The delta-method standard error is evaluated at the observed treatment mean, so a
    # positive observed lift inflates it and a negative one shrinks it: one-sided errors
    # drift apart by O(cv of the control mean) (0.041 / 0.058 at cv 0.046). At a realistic
    # cv of 0.008 the drift is well inside the tolerance.
    rng = np.random.default_rng(6)
    control = normal_moments(rng, R_EXACT, 10_000, 10.0, 8.0)
    treatment = normal_moments(rng, R_EXACT, 10_000, 10.0, 8.0)
    result = ttest(control, treatment, alpha=ALPHA, alternative=alternative, relative=True)
    rate = rejection_rate(result.p_value, ALPHA)
    assert_rate_close(rate, ALPHA, R_EXACT, "type-I error")


@pytest.mark.parametrize("pooled", [False, True], ids=["unpooled", "pooled"])
def test_relative_proportions_type_one_error_holds(pooled):
    rng = np.random.default_rng(7)
    successes_c = rng.binomial(2000, 0.1, size=R_EXACT)
    successes_t = rng.binomial(2000, 0.1, size=R_EXACT)
    result = proportions_test(
        successes_c, 2000, successes_t, 2000, alpha=ALPHA, relative=True, pooled=pooled
    )
    rate = rejection_rate(result.p_value, ALPHA)
    assert_rate_close(rate, ALPHA, R_EXACT, "type-I error")


# --- coverage of the intervals at 1 − α -----------------------------------------------------


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_welch_interval_covers_the_true_difference(alternative):
    rng = np.random.default_rng(8)
    control = normal_moments(rng, R_EXACT, 60, 3.0, 2.5)
    treatment = normal_moments(rng, R_EXACT, 240, 3.4, 1.0)
    result = ttest(control, treatment, alpha=ALPHA, alternative=alternative)
    rate = coverage_rate(result.ci_low, result.ci_high, 0.4)
    assert_rate_close(rate, 1 - ALPHA, R_EXACT, "coverage")


@pytest.mark.parametrize("replications", [fast(R_RAW), slow(R_SLOW)])
def test_welch_interval_covers_the_true_difference_for_skewed_data(replications):
    rng = np.random.default_rng([9, replications])
    control = Moments.from_samples(rng.exponential(1.0, size=(replications, 200)))
    treatment = Moments.from_samples(rng.exponential(1.2, size=(replications, 200)))
    result = ttest(control, treatment, alpha=ALPHA)
    rate = coverage_rate(result.ci_low, result.ci_high, 0.2)
    assert_rate_close(rate, 1 - ALPHA, replications, "coverage")


@pytest.mark.parametrize("method", ["delta", "fieller"])
def test_relative_interval_covers_a_five_percent_lift(method):
    rng = np.random.default_rng(10)
    control = normal_moments(rng, R_EXACT, 300, 10.0, 8.0)
    treatment = normal_moments(rng, R_EXACT, 900, 10.5, 4.0)
    result = ttest(control, treatment, alpha=ALPHA, relative=True, relative_method=method)
    rate = coverage_rate(result.ci_low, result.ci_high, 0.05)
    assert_rate_close(rate, 1 - ALPHA, R_EXACT, "coverage")


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["positive-means", "negative-means"])
@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_fieller_interval_keeps_coverage_when_the_control_mean_is_noisy(alternative, sign):
    # Control mean with coefficient of variation 0.1. The delta method's one-sided intervals
    # miss here (coverage 0.973 / 0.932 for "greater" / "less" with 400 units of N(1, 2²)
    # per group); Fieller's are exact for normal data, whatever the sign of the means. The
    # lift (μt − μc)/|μc| is 5% in the direction of ``sign``.
    rng = np.random.default_rng([11, int(sign > 0)])
    control = normal_moments(rng, R_EXACT, 400, sign * 1.0, 2.0)
    treatment = normal_moments(rng, R_EXACT, 100, sign * 1.05, 0.5)
    result = ttest(
        control, treatment, alpha=ALPHA, alternative=alternative,
        relative=True, relative_method="fieller",
    )  # fmt: skip
    rate = coverage_rate(result.ci_low, result.ci_high, sign * 0.05)
    assert_rate_close(rate, 1 - ALPHA, R_EXACT, "coverage")


def test_relative_proportions_interval_covers_the_true_lift():
    rng = np.random.default_rng(12)
    successes_c = rng.binomial(5000, 0.10, size=R_EXACT)
    successes_t = rng.binomial(5000, 0.11, size=R_EXACT)
    result = proportions_test(successes_c, 5000, successes_t, 5000, alpha=ALPHA, relative=True)
    rate = coverage_rate(result.ci_low, result.ci_high, 0.1)
    assert_rate_close(rate, 1 - ALPHA, R_EXACT, "coverage")


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_cuped_interval_covers_the_true_effect_for_normal_data(alternative):
    rng = np.random.default_rng(13)
    control = bivariate_normal_joint_moments(rng, R_EXACT, 400, 10.0, 10.0, 2.0, 2.0, 0.8)
    treatment = bivariate_normal_joint_moments(rng, R_EXACT, 400, 10.3, 10.0, 2.0, 2.0, 0.8)
    result = cuped_test(control, treatment, alpha=ALPHA, alternative=alternative)
    rate = coverage_rate(result.ci_low, result.ci_high, 0.3)
    assert_rate_close(rate, 1 - ALPHA, R_EXACT, "coverage")


def test_cuped_relative_interval_covers_the_true_lift():
    rng = np.random.default_rng(14)
    control = bivariate_normal_joint_moments(rng, R_EXACT, 400, 10.0, 10.0, 3.0, 3.0, 0.7)
    treatment = bivariate_normal_joint_moments(rng, R_EXACT, 400, 10.5, 10.0, 3.0, 3.0, 0.7)
    result = cuped_test(control, treatment, alpha=ALPHA, relative=True)
    rate = coverage_rate(result.ci_low, result.ci_high, 0.05)
    assert_rate_close(rate, 1 - ALPHA, R_EXACT, "coverage")


@pytest.mark.parametrize("replications", [fast(R_RAW), slow(R_SLOW)])
def test_cuped_interval_covers_the_true_effect_and_is_narrower_than_unadjusted(replications):
    effect = 0.3
    control, treatment = cuped_skewed_moments(replications, 200, effect)
    adjusted = cuped_test(control, treatment, alpha=ALPHA)
    unadjusted = ttest(control, treatment, alpha=ALPHA)
    assert_rate_close(
        coverage_rate(adjusted.ci_low, adjusted.ci_high, effect), 1 - ALPHA, replications,
        "CUPED coverage",
    )  # fmt: skip
    assert_rate_close(
        coverage_rate(unadjusted.ci_low, unadjusted.ci_high, effect), 1 - ALPHA, replications,
        "unadjusted coverage",
    )  # fmt: skip
    width_ratio = (adjusted.ci_high - adjusted.ci_low) / (unadjusted.ci_high - unadjusted.ci_low)
    assert np.all(width_ratio < 1.0)
    # With corr(y, x) = ρ the adjusted standard error is sqrt(1 − ρ²) of the raw one (the
    # median ratio of sample widths sits 1.5% above it here).
    expected_ratio = np.sqrt(1 - SKEWED_CUPED_CORRELATION**2)
    assert np.median(width_ratio) == pytest.approx(expected_ratio, rel=0.05)


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
@pytest.mark.parametrize("replications", [fast(R_RAW), slow(R_SLOW)])
def test_ratio_interval_covers_the_true_ratio_difference(replications, relative):
    control, treatment = clicks_per_session_moments(replications, 200, TREATMENT_CLICK_SHAPE)
    truth_c, truth_t = ratio_truth(CONTROL_CLICK_SHAPE), ratio_truth(TREATMENT_CLICK_SHAPE)
    truth = truth_t / truth_c - 1 if relative else truth_t - truth_c
    result = ratio_test(control, treatment, alpha=ALPHA, relative=relative)
    rate = coverage_rate(result.ci_low, result.ci_high, truth)
    assert_rate_close(rate, 1 - ALPHA, replications, "coverage")


# --- power ------------------------------------------------------------------------------------


@pytest.mark.parametrize("alternative", ["two-sided", "greater"])
@pytest.mark.parametrize("standardized_effect", [1.0, 2.0, 2.8, 3.6])
def test_welch_power_matches_the_normal_approximation(standardized_effect, alternative):
    # δ/se = 1.0, 2.0, 2.8, 3.6 give two-sided power of about 0.17, 0.52, 0.80 and 0.95.
    n_c, n_t, sd = 1000, 1500, 2.0
    se = sd * np.sqrt(1 / n_c + 1 / n_t)
    effect = standardized_effect * se
    expected = normal_power(effect, se, ALPHA, alternative)
    rng = np.random.default_rng([15, int(10 * standardized_effect), len(alternative)])
    control = normal_moments(rng, R_EXACT, n_c, 0.0, sd)
    treatment = normal_moments(rng, R_EXACT, n_t, effect, sd)
    result = ttest(control, treatment, alpha=ALPHA, alternative=alternative)
    rate = rejection_rate(result.p_value, ALPHA)
    assert_rate_close(rate, expected, R_EXACT, "power")
