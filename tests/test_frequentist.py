from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats
from statsmodels.stats import proportion as sm_proportion

from conftest import gbstats_cases
from splitlab import JointMoments, Moments
from splitlab.errors import (
    DegenerateDataWarning,
    InvalidArgumentError,
    ShapeMismatchError,
    UnknownOptionError,
)
from splitlab.stats.adjustment import cuped_test
from splitlab.stats.frequentist import proportions_test, ratio_test, ttest

RTOL = 1e-6


def close(actual, expected, rtol=RTOL, atol=1e-12):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def random_samples(seed, size_c=40, size_t=55):
    rng = np.random.default_rng(seed)
    return rng.lognormal(1.0, 0.7, size_c), rng.lognormal(1.1, 0.9, size_t)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("equal_var", [False, True])
def test_ttest_matches_scipy_ttest_ind(seed, alternative, equal_var):
    x_c, x_t = random_samples(seed)
    result = ttest(
        Moments.from_samples(x_c),
        Moments.from_samples(x_t),
        alpha=0.1,
        alternative=alternative,
        equal_var=equal_var,
    )
    reference = stats.ttest_ind(x_t, x_c, equal_var=equal_var, alternative=alternative)
    interval = reference.confidence_interval(confidence_level=0.9)
    close(result.statistic, reference.statistic)
    close(result.p_value, reference.pvalue)
    close(result.df, reference.df)
    close(result.effect, x_t.mean() - x_c.mean())
    close([result.ci_low, result.ci_high], [interval.low, interval.high])
    assert result.error == ""


def test_ttest_is_vectorized_over_leading_shapes():
    rng = np.random.default_rng(7)
    x_c, x_t = rng.normal(0, 1, (2, 3, 30)), rng.normal(0.2, 1.5, (2, 3, 45))
    result = ttest(Moments.from_samples(x_c), Moments.from_samples(x_t))
    reference = stats.ttest_ind(x_t, x_c, axis=-1, equal_var=False)
    assert result.p_value.shape == (2, 3)
    close(result.p_value, reference.pvalue)


def test_multi_arm_treatment_array_broadcasts_against_one_control():
    rng = np.random.default_rng(8)
    x_c = rng.normal(10, 2, 200)
    arms = rng.normal([[10.0], [10.3], [9.6]], 2, (3, 150))
    result = ttest(Moments.from_samples(x_c), Moments.from_samples(arms), relative=True)
    for arm in range(3):
        single = ttest(Moments.from_samples(x_c), Moments.from_samples(arms[arm]), relative=True)
        close(result.p_value[arm], single.p_value, rtol=1e-12)
        close(result.ci_low[arm], single.ci_low, rtol=1e-12)


def test_results_follow_the_order_of_rows():
    rng = np.random.default_rng(9)
    n = rng.integers(10, 500, (2, 20))
    means, variances = rng.normal(5, 1, (2, 20)), rng.uniform(1, 3, (2, 20))
    order = rng.permutation(20)
    result = ttest(Moments(n[0], means[0], variances[0]), Moments(n[1], means[1], variances[1]))
    shuffled = ttest(
        Moments(n[0][order], means[0][order], variances[0][order]),
        Moments(n[1][order], means[1][order], variances[1][order]),
    )
    close(shuffled.p_value, result.p_value[order], rtol=0)


def relative_delta_by_hand(x_c, x_t, alpha):
    """The delta method written from its definition: gradient of (t − c)/c at the means."""
    mean_c, mean_t = x_c.mean(), x_t.mean()
    gradient_c, gradient_t = -mean_t / mean_c**2, 1 / mean_c
    variance = (
        gradient_c**2 * x_c.var(ddof=1) / x_c.size + gradient_t**2 * x_t.var(ddof=1) / x_t.size
    )
    se_c2, se_t2 = x_c.var(ddof=1) / x_c.size, x_t.var(ddof=1) / x_t.size
    df = (se_c2 + se_t2) ** 2 / (se_c2**2 / (x_c.size - 1) + se_t2**2 / (x_t.size - 1))
    lift = mean_t / mean_c - 1
    half = stats.t.ppf(1 - alpha / 2, df) * np.sqrt(variance)
    return lift, lift - half, lift + half


@pytest.mark.parametrize("seed", range(4))
def test_relative_delta_interval_matches_the_delta_method_by_hand(seed):
    x_c, x_t = random_samples(seed)
    result = ttest(Moments.from_samples(x_c), Moments.from_samples(x_t), relative=True)
    close([result.effect, result.ci_low, result.ci_high], relative_delta_by_hand(x_c, x_t, 0.05))
    assert result.scale == "relative"


@pytest.mark.parametrize("seed", range(4))
def test_fieller_interval_endpoints_solve_fiellers_equation(seed):
    x_c, x_t = random_samples(seed, 30, 30)
    control, treatment = Moments.from_samples(x_c), Moments.from_samples(x_t)
    result = ttest(control, treatment, relative=True, relative_method="fieller")
    se_c2, se_t2 = x_c.var(ddof=1) / 30, x_t.var(ddof=1) / 30
    df = (se_c2 + se_t2) ** 2 / (se_c2**2 / 29 + se_t2**2 / 29)
    q = stats.t.ppf(0.975, df)

    def excess(lift):
        ratio = 1 + lift
        return (x_t.mean() - ratio * x_c.mean()) ** 2 / (se_t2 + ratio**2 * se_c2) - q**2

    lift = x_t.mean() / x_c.mean() - 1
    low = optimize.brentq(excess, -0.99, lift)
    high = optimize.brentq(excess, lift, 10.0)
    close([result.ci_low, result.ci_high], [low, high], rtol=1e-9)
    absolute = stats.ttest_ind(x_t, x_c, equal_var=False)
    close(result.p_value, absolute.pvalue)


def test_fieller_interval_is_flagged_when_control_mean_is_indistinguishable_from_zero():
    control = Moments(n=20, mean=0.1, var=4.0)
    treatment = Moments(n=20, mean=1.0, var=4.0)
    with pytest.warns(DegenerateDataWarning):
        result = ttest(control, treatment, relative=True, relative_method="fieller")
    assert np.isnan(result.ci_low) and "Fieller" in result.error


@pytest.mark.parametrize("case", gbstats_cases("ttest", "proportions_ttest"))
def test_ttest_matches_gbstats_reference(case):
    if case["kind"] == "ttest":
        arms = [Moments.from_sums(**case[arm]) for arm in ("control", "treatment")]
    else:
        arms = [
            Moments.from_proportions(case[arm]["successes"], case[arm]["n"])
            for arm in ("control", "treatment")
        ]
    result = ttest(*arms, alpha=case["alpha"], relative=case["relative"])
    expected = case["expected"]
    for name in ("effect", "ci_low", "ci_high", "p_value"):
        close(getattr(result, name), expected[name])


@pytest.mark.parametrize("case", gbstats_cases("cuped_ttest", "ratio_ttest"))
def test_cuped_and_ratio_tests_match_gbstats_reference(case):
    test = cuped_test if case["kind"] == "cuped_ttest" else ratio_test
    control = JointMoments.from_sums(**case["control"])
    treatment = JointMoments.from_sums(**case["treatment"])
    result = test(control, treatment, alpha=case["alpha"], relative=case["relative"])
    for name in ("effect", "ci_low", "ci_high", "p_value"):
        close(getattr(result, name), case["expected"][name])


def proportion_inputs(seed):
    rng = np.random.default_rng(seed)
    n_c, n_t = rng.integers(200, 5000, 2)
    return rng.binomial(n_c, 0.1), n_c, rng.binomial(n_t, 0.12), n_t


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("alternative", ["two-sided", "larger", "smaller"])
def test_unpooled_proportions_test_matches_statsmodels_wald(seed, alternative):
    s_c, n_c, s_t, n_t = proportion_inputs(seed)
    ours = {"larger": "greater", "smaller": "less"}.get(alternative, alternative)
    result = proportions_test(s_c, n_c, s_t, n_t, alternative=ours, alpha=0.05)
    reference = sm_proportion.test_proportions_2indep(
        s_t, n_t, s_c, n_c, method="wald", compare="diff", alternative=alternative
    )
    close(result.statistic, reference.statistic)
    close(result.p_value, reference.pvalue)
    if ours == "two-sided":
        low, high = sm_proportion.confint_proportions_2indep(
            s_t, n_t, s_c, n_c, method="wald", alpha=0.05
        )
        close([result.ci_low, result.ci_high], [low, high])


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("alternative", ["two-sided", "larger", "smaller"])
def test_pooled_proportions_test_matches_statsmodels_proportions_ztest(seed, alternative):
    s_c, n_c, s_t, n_t = proportion_inputs(seed)
    ours = {"larger": "greater", "smaller": "less"}.get(alternative, alternative)
    result = proportions_test(s_c, n_c, s_t, n_t, alternative=ours, pooled=True)
    statistic, p_value = sm_proportion.proportions_ztest(
        [s_t, s_c], [n_t, n_c], alternative=alternative
    )
    close(result.statistic, statistic)
    close(result.p_value, p_value)


def test_relative_proportions_test_uses_the_delta_method():
    s_c, n_c, s_t, n_t = 400, 4000, 460, 4100
    result = proportions_test(s_c, n_c, s_t, n_t, relative=True)
    p_c, p_t = s_c / n_c, s_t / n_t
    se = np.sqrt(p_t * (1 - p_t) / (n_t * p_c**2) + p_c * (1 - p_c) * p_t**2 / (n_c * p_c**4))
    close(result.effect, p_t / p_c - 1)
    close(result.ci_high, p_t / p_c - 1 + stats.norm.ppf(0.975) * se)


def ratio_by_matrix_delta(y, x):
    """Delta method in matrix form: gradient of mean(y)/mean(x) through cov of the means."""
    gradient = np.array([1 / x.mean(), -y.mean() / x.mean() ** 2])
    return y.mean() / x.mean(), gradient @ np.cov(y, x) @ gradient / y.size


@pytest.mark.parametrize("relative", [False, True])
def test_ratio_test_matches_matrix_delta_method(relative):
    rng = np.random.default_rng(11)
    sessions = rng.poisson(3, (2, 400)) + 1.0
    clicks = rng.binomial(sessions.astype(int), [[0.3], [0.33]]).astype(float)
    (r_c, v_c), (r_t, v_t) = (ratio_by_matrix_delta(clicks[i], sessions[i]) for i in (0, 1))
    result = ratio_test(
        JointMoments.from_samples(clicks[0], sessions[0]),
        JointMoments.from_samples(clicks[1], sessions[1]),
        relative=relative,
    )
    if relative:
        effect, variance = r_t / r_c - 1, v_t / r_c**2 + v_c * r_t**2 / r_c**4
    else:
        effect, variance = r_t - r_c, v_t + v_c
    close(result.effect, effect)
    close(result.se, np.sqrt(variance))


def test_cuped_reduces_variance_and_reports_it():
    rng = np.random.default_rng(12)
    pre = rng.normal(10, 3, (2, 3000))
    post = pre + rng.normal([[0.0], [0.2]], 1.0, (2, 3000))
    control = JointMoments.from_samples(post[0], pre[0])
    treatment = JointMoments.from_samples(post[1], pre[1])
    adjusted, plain = cuped_test(control, treatment), ttest(control, treatment)
    close(adjusted.variance_reduction, 1 - adjusted.se**2 / plain.se**2)
    assert adjusted.variance_reduction > 0.8
    pooled = np.cov(post.ravel(), pre.ravel())
    close(adjusted.theta, pooled[0, 1] / pooled[1, 1])


def test_cuped_without_covariate_variance_falls_back_to_the_unadjusted_test():
    rng = np.random.default_rng(13)
    post = rng.normal(5, 1, (2, 100))
    constant = np.ones(100)
    control = JointMoments.from_samples(post[0], constant)
    treatment = JointMoments.from_samples(post[1], constant)
    result = cuped_test(control, treatment)
    close(result.p_value, stats.ttest_ind(post[1], post[0], equal_var=False).pvalue)
    assert "unadjusted" in result.note


def test_a_bad_row_keeps_its_cuped_note_text():
    """A row without a result blanks its numbers, not its note (it read 'nan')."""
    n = np.array([1.0, 100.0])
    control = JointMoments(n, [1.0, 1.0], [1.0, 1.0], [2.0, 2.0], [0.0, 0.0], [0.0, 0.0])
    with pytest.warns(DegenerateDataWarning):
        result = cuped_test(control, control)
    assert list(result.note) == ["var(x) is zero: unadjusted test"] * 2
    assert np.isnan(result.theta[0]) and result.error[0] == "n < 2 in control"


def test_one_bad_row_does_not_fail_the_batch():
    control = Moments(n=[100, 1, 50, 100], mean=[1.0, 1.0, 2.0, 0.0], var=[1.0, 1.0, 0.0, 1.0])
    treatment = Moments(n=[120, 80, 50, 100], mean=[1.2, 1.1, 2.0, 0.1], var=[1.5, 1.0, 0.0, 1.0])
    with pytest.warns(DegenerateDataWarning, match="3 of 4"):
        result = ttest(control, treatment, relative=True)
    assert result.error[0] == ""
    assert "n < 2 in control" in result.error[1]
    assert "zero variance" in result.error[2]
    assert "control mean is zero" in result.error[3]
    assert np.isnan(result.p_value[1:]).all() and np.isnan(result.ci_low[1:]).all()
    single = ttest(control[0], treatment[0], relative=True)
    close(result.p_value[0], single.p_value, rtol=0)


@pytest.mark.parametrize("relative", [False, True])
@pytest.mark.parametrize("equal_var", [False, True])
def test_empty_and_single_unit_groups_are_row_errors_not_numpy_warnings(relative, equal_var):
    control = Moments(n=[0, 1, 0, 30], mean=[0.0, 1.0, 0.0, 1.0], var=[0.0, 0.0, 0.0, 1.0])
    treatment = Moments(n=[0, 5, 7, 30], mean=[0.0, 1.0, 2.0, 1.2], var=[0.0, 1.0, 1.0, 1.0])
    with pytest.warns(DegenerateDataWarning, match="3 of 4"):
        result = ttest(control, treatment, relative=relative, equal_var=equal_var)
    assert list(result.error[:3]) == ["n < 2 in control"] * 3 and result.error[3] == ""


def test_zero_variance_in_one_group_is_legal():
    result = ttest(Moments(50, 1.0, 0.0), Moments(50, 1.3, 1.0))
    assert result.error == "" and np.isfinite(result.p_value)


def test_to_frame_has_one_row_per_comparison():
    frame = ttest(Moments(100, 1.0, 1.0), Moments([100, 200], [1.1, 1.2], 1.0)).to_frame()
    assert list(frame.columns[:7]) == [
        "effect", "se", "ci_low", "ci_high", "p_value", "statistic", "error"
    ]  # fmt: skip
    assert len(frame) == 2 and (frame["method"] == "welch").all()


def test_scalar_inputs_give_scalar_fields():
    result = ttest(Moments(100, 1.0, 1.0), Moments(100, 1.1, 1.0))
    assert np.ndim(result.p_value) == 0 and isinstance(result.error, str)
    assert result.params["alpha"] == 0.05 and result.version


FINE = Moments(10, 0.0, 1.0)
FINE_JOINT = JointMoments(10, 0.0, 1.0, 0.0, 1.0, 0.0)


@pytest.mark.parametrize(
    ("call", "argument", "error"),
    [
        (lambda: ttest(FINE, FINE, alpha=1.5), "alpha", InvalidArgumentError),
        (lambda: ttest(FINE, FINE, alpha=0), "alpha", InvalidArgumentError),
        (lambda: ttest(FINE, FINE, alternative="bigger"), "alternative", UnknownOptionError),
        (
            lambda: ttest(FINE, FINE, relative=True, relative_method="boot"),
            "relative_method",
            UnknownOptionError,
        ),
        (lambda: ttest([1, 2], FINE), "control", InvalidArgumentError),
        (
            lambda: ttest(Moments([10, 10], 0, 1), Moments([10, 10, 10], 0, 1)),
            "control/treatment",
            ShapeMismatchError,
        ),
        (lambda: proportions_test(11, 10, 5, 10), "successes_c", InvalidArgumentError),
        (lambda: proportions_test(1, 10, 5, -10), "n_t", InvalidArgumentError),
        (lambda: proportions_test(1, 10, np.nan, 10), "successes_t", InvalidArgumentError),
        (lambda: ratio_test(FINE, FINE), "control", InvalidArgumentError),
        (lambda: cuped_test(FINE_JOINT, FINE), "treatment", InvalidArgumentError),
    ],
)
def test_bad_input_raises_naming_the_argument(call, argument, error):
    with pytest.raises(error) as info:
        call()
    assert info.value.argument == argument
    assert isinstance(info.value, ValueError)
