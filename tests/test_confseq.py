from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from conftest import gbstats_cases
from splitlab import JointMoments, Moments
from splitlab.errors import DegenerateDataWarning, InvalidArgumentError, UnknownOptionError
from splitlab.sequential.confseq import confidence_sequence, confidence_sequence_from_estimate
from splitlab.stats.adjustment import cuped_test
from splitlab.stats.frequentist import ratio_test, ttest

RTOL = 1e-6


def close(actual, expected, rtol=RTOL, atol=1e-12):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def paper_rho2(alpha, n_star):
    """Waudby-Smith et al. (arXiv 2103.06476v7), eq. 161."""
    return (-2 * np.log(alpha) + np.log(-2 * np.log(alpha) + 1)) / n_star


def paper_two_sided(effect, se, n, alpha, n_star):
    """Eq. 9 (interval) and eq. 155 (e-value) written out with σ̂² = N se²."""
    rho2 = paper_rho2(alpha, n_star)
    sigma2 = se**2 * n
    half_width = np.sqrt(
        sigma2 * 2 * (n * rho2 + 1) / (n**2 * rho2) * np.log(np.sqrt(n * rho2 + 1) / alpha)
    )
    e_value = np.exp(rho2 * n**2 * effect**2 / (2 * sigma2 * (n * rho2 + 1))) / np.sqrt(
        n * rho2 + 1
    )
    return effect - half_width, effect + half_width, e_value


def paper_one_sided_margin(se, n, alpha, rho2):
    """Eq. 134: the one-sided bound's distance from the estimate."""
    sigma2 = se**2 * n
    return np.sqrt(
        sigma2
        * 2
        * (n * rho2 + 1)
        / (n * n * rho2)
        * np.log(1 + np.sqrt(n * rho2 + 1) / (2 * alpha))
    )


def arms(seed, shape=()):
    rng = np.random.default_rng(seed)
    n_c = rng.integers(200, 20_000, shape)
    n_t = rng.integers(200, 20_000, shape)
    control = Moments(n_c, rng.normal(10, 0.05, shape), rng.uniform(5, 30, shape))
    treatment = Moments(n_t, rng.normal(10.1, 0.05, shape), rng.uniform(5, 30, shape))
    return control, treatment


@pytest.mark.parametrize("case", gbstats_cases("confidence_sequence"))
def test_confidence_sequence_matches_gbstats_reference(case):
    control = Moments.from_sums(**case["control"])
    treatment = Moments.from_sums(**case["treatment"])
    result = confidence_sequence(
        control, treatment, alpha=case["alpha"], n_star=case["n_star"], relative=case["relative"]
    )
    for name in ("effect", "ci_low", "ci_high", "p_value"):
        close(getattr(result, name), case["expected"][name])


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.2])
def test_two_sided_matches_equations_9_and_155(seed, alpha):
    control, treatment = arms(seed)
    reference = ttest(control, treatment)
    n = float(control.n + treatment.n)
    low, high, e_value = paper_two_sided(reference.effect, reference.se, n, alpha, 3000.0)
    result = confidence_sequence(control, treatment, alpha=alpha, n_star=3000)
    close(result.ci_low, low)
    close(result.ci_high, high)
    close(result.e_value, e_value)
    close(result.p_value, min(1.0, 1.0 / e_value))
    assert result.method == "cs" and result.df is None


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_one_sided_matches_equation_134_and_its_bisection_p_value(seed, alternative):
    alpha, n_star = 0.05, 4000.0
    rng = np.random.default_rng(seed)
    effect = rng.normal(0, 0.05) * (1 if alternative == "greater" else -1) + (
        0.06 if alternative == "greater" else -0.06
    )
    se, n = 0.025, 9000.0
    rho2 = paper_rho2(2 * alpha, n_star)  # one-sided: ρ tuned at 2α, as gbstats does
    margin = paper_one_sided_margin(se, n, alpha, rho2)
    low, high, p = confidence_sequence_from_estimate(
        effect, se, n, alpha=alpha, n_star=n_star, alternative=alternative
    )
    if alternative == "greater":
        close(low, effect - margin)
        assert high == np.inf
    else:
        close(high, effect + margin)
        assert low == -np.inf

    def bound_crosses_zero(level):  # the bound at another level, ρ held fixed
        distance = abs(effect) - paper_one_sided_margin(se, n, level, rho2)
        return distance > 0

    lo, hi = 1e-12, 1.0 - 1e-12
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if bound_crosses_zero(mid) else (mid, hi)
    close(p, min(hi, 1.0), rtol=1e-9, atol=1e-12)


def test_one_sided_p_value_is_one_on_the_wrong_side():
    _, _, p = confidence_sequence_from_estimate(-0.2, 0.01, 5000, alternative="greater")
    assert p == 1.0
    _, _, p = confidence_sequence_from_estimate(0.2, 0.01, 5000, alternative="less")
    assert p == 1.0


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_p_value_below_alpha_exactly_when_interval_excludes_zero(alternative):
    rng = np.random.default_rng(3)
    effect = rng.normal(0, 0.05, 5000)
    se = rng.uniform(0.005, 0.03, 5000)
    n = rng.integers(100, 100_000, 5000)
    low, high, p = confidence_sequence_from_estimate(
        effect, se, n, alpha=0.05, n_star=5000, alternative=alternative
    )
    excludes_zero = (low > 0) | (high < 0)
    assert excludes_zero.any() and not excludes_zero.all()
    np.testing.assert_array_equal(p < 0.05, excludes_zero)


@pytest.mark.parametrize("kind", ["cuped", "ratio"])
@pytest.mark.parametrize("relative", [False, True])
def test_joint_moments_plug_in_the_cuped_and_ratio_estimates(kind, relative):
    rng = np.random.default_rng(11)
    x = rng.gamma(4.0, 2.0, size=(2, 3000)) + 1
    y = 0.8 * x + rng.normal(0, 1, size=(2, 3000)) + np.array([[0.0], [0.15]])
    control, treatment = (
        JointMoments.from_samples(y[0], x[0]),
        JointMoments.from_samples(y[1], x[1]),
    )
    fixed = (cuped_test if kind == "cuped" else ratio_test)(control, treatment, relative=relative)
    result = confidence_sequence(control, treatment, relative=relative, kind=kind, n_star=6000)
    low, high, e_value = paper_two_sided(fixed.effect, fixed.se, 6000.0, 0.05, 6000.0)
    close(result.effect, fixed.effect)
    close(result.se, fixed.se)
    close([result.ci_low, result.ci_high, result.p_value], [low, high, min(1.0, 1 / e_value)])


def test_relative_uses_the_delta_method_estimate_of_ttest():
    control, treatment = arms(5, shape=(20,))
    result = confidence_sequence(control, treatment, relative=True)
    reference = ttest(control, treatment, relative=True)
    close(result.effect, reference.effect)
    close(result.se, reference.se)
    assert result.scale == "relative"


def test_width_shrinks_like_sqrt_log_n_over_n():
    sd = 2.0
    n = np.array([1e4, 1e6, 1e10, 1e50, 1e200])
    se = sd / np.sqrt(n)  # σ̂² = N se² = sd²
    low, high, _ = confidence_sequence_from_estimate(0.0, se, n, n_star=5000)
    half_width = (high - low) / 2
    ratio = half_width**2 * n / (sd**2 * np.log(n))
    # half_width² N / sd² = (1 + 1/(Nρ²)) (−2 ln α + ln(1 + Nρ²)), and over ln N → 1
    close(ratio, 1.0, rtol=0.05)
    assert abs(ratio[-1] - 1) < 0.002
    # a fixed-horizon interval has half_width·sqrt(N) constant; the sequence's grows
    assert np.all(np.diff(half_width * np.sqrt(n)) > 0)


@pytest.mark.parametrize("n_star", [100.0, 5000.0, 1e6])
def test_sequence_is_wider_and_its_p_value_larger_than_the_fixed_horizon_test(n_star):
    rng = np.random.default_rng(0)
    effect = rng.normal(0, 0.05, 2000)
    se = rng.uniform(0.005, 0.05, 2000)
    n = rng.integers(10, 1_000_000, 2000)
    low, high, p = confidence_sequence_from_estimate(effect, se, n, n_star=n_star)
    z = stats.norm.ppf(0.975)
    assert np.all(high - effect > z * se)
    assert np.all(effect - low > z * se)
    assert np.all(p >= 2 * stats.norm.sf(np.abs(effect / se)))


def test_vectorized_over_replications_and_looks_like_scalar_calls():
    rng = np.random.default_rng(1)
    shape = (50, 30)
    n = np.cumsum(rng.integers(50, 150, shape), axis=1)
    effect = rng.normal(0, 1, shape) / np.sqrt(n)
    se = 2 / np.sqrt(n)
    low, high, p = confidence_sequence_from_estimate(effect, se, n, n_star=np.array(3000.0))
    assert low.shape == high.shape == p.shape == shape
    for i, j in [(0, 0), (7, 29), (49, 13)]:
        one = confidence_sequence_from_estimate(effect[i, j], se[i, j], n[i, j], n_star=3000)
        close([low[i, j], high[i, j], p[i, j]], one, rtol=1e-14)


def test_many_comparisons_in_one_call_match_one_by_one():
    control, treatment = arms(2, shape=(6,))
    together = confidence_sequence(control, treatment, alpha=0.1, n_star=2000)
    frame = together.to_frame()
    assert len(frame) == 6 and set(frame["method"]) == {"cs"}
    for i in range(6):
        one = confidence_sequence(control[i], treatment[i], alpha=0.1, n_star=2000)
        close(together.ci_low[i], one.ci_low, rtol=1e-14)
        close(together.p_value[i], one.p_value, rtol=1e-14)


def test_large_effects_give_tiny_p_values_without_overflow():
    result = confidence_sequence(Moments(10**6, 0.0, 1.0), Moments(10**6, 1.0, 1.0))
    assert result.p_value == 0.0 and result.e_value == np.inf
    _, _, p = confidence_sequence_from_estimate(50.0, 1.0, 1e6, alternative="greater")
    assert p == 0.0


def test_bad_rows_are_nan_with_a_reason():
    control = Moments([1, 500, 500], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0])
    treatment = Moments([500, 500, 500], [1.2, 1.1, 1.0], [1.0, 1.0, 0.0])
    with pytest.warns(DegenerateDataWarning):
        result = confidence_sequence(control, treatment)
    assert np.isnan(result.p_value[[0, 2]]).all() and np.isnan(result.e_value[[0, 2]]).all()
    assert result.error[0] == "n < 2 in control"
    assert "zero variance" in result.error[2]
    assert result.error[1] == "" and np.isfinite(result.ci_low[1])


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5, "x"])
def test_alpha_outside_unit_interval_is_refused(alpha):
    with pytest.raises(InvalidArgumentError, match="alpha"):
        confidence_sequence(Moments(100, 1.0, 1.0), Moments(100, 1.1, 1.0), alpha=alpha)
    with pytest.raises(InvalidArgumentError, match="alpha"):
        confidence_sequence_from_estimate(0.1, 0.1, 100, alpha=alpha)


def test_one_sided_needs_alpha_below_one_half():
    with pytest.raises(InvalidArgumentError, match="alpha"):
        confidence_sequence_from_estimate(0.1, 0.1, 100, alpha=0.5, alternative="less")


@pytest.mark.parametrize("n_star", [0, -10, np.nan, [100, 0]])
def test_n_star_must_be_positive(n_star):
    with pytest.raises(InvalidArgumentError, match="n_star"):
        confidence_sequence(Moments(100, 1.0, 1.0), Moments(100, 1.1, 1.0), n_star=n_star)


def test_kind_is_required_for_joint_moments_and_refused_for_moments():
    joint = JointMoments(100, 1.0, 1.0, 2.0, 1.0, 0.5)
    with pytest.raises(InvalidArgumentError, match="kind"):
        confidence_sequence(joint, joint)
    with pytest.raises(InvalidArgumentError, match="kind"):
        confidence_sequence(Moments(100, 1.0, 1.0), Moments(100, 1.1, 1.0), kind="cuped")
    with pytest.raises(UnknownOptionError, match="kind"):
        confidence_sequence(joint, joint, kind="regression")
    with pytest.raises(InvalidArgumentError, match="treatment"):
        confidence_sequence(joint, Moments(100, 1.0, 1.0), kind="ratio")


def test_low_level_inputs_are_checked():
    with pytest.raises(InvalidArgumentError, match="se"):
        confidence_sequence_from_estimate(0.1, -0.1, 100)
    with pytest.raises(InvalidArgumentError, match="n_total"):
        confidence_sequence_from_estimate(0.1, 0.1, 0)
    with pytest.raises(UnknownOptionError, match="alternative"):
        confidence_sequence_from_estimate(0.1, 0.1, 10, alternative="larger")
