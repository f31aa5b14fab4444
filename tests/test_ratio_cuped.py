"""Regression-adjusted ratio metrics (ratio CUPED): gbstats' RegressionAdjustedRatioStatistic,
the unadjusted ratio test at θ = 0, an independent delta-method computation from raw samples,
interval coverage, and input checks."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import expected_value, load_reference, reference_case, reference_cases
from splitlab.errors import DegenerateDataWarning, InvalidArgumentError, ShapeMismatchError
from splitlab.stats.frequentist import ratio_test
from splitlab.stats.moments import JointMoments
from splitlab.stats.ratio_adjustment import (
    NO_PRE_VARIANCE_NOTE,
    RatioCupedResult,
    ratio_cross_moments,
    ratio_cuped_difference,
    ratio_cuped_test,
)
from splitlab.stats.regression import CrossMoments

REFERENCE = "gbstats_ratio_cuped.json"
FIELDS = ("effect", "se", "ci_low", "ci_high", "p_value", "df")


def close(actual, expected, rtol=1e-6, atol=0.0):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def arm(case: dict, name: str) -> CrossMoments:
    sums = case[name]
    moments = ratio_cross_moments(
        sums["n"], sums["sums"], sums["sum_squares"], sums["cross_products"]
    )
    if case["ddof"] == 0:  # gbstats' ProportionStatistic: every covariance divides by n
        return CrossMoments.from_centred(moments.n, moments.mean, moments.m2, ddof=0)
    return moments


def run(case: dict) -> RatioCupedResult:
    return ratio_cuped_test(
        arm(case, "control"),
        arm(case, "treatment"),
        alpha=case["alpha"],
        alternative=case["alternative"],
        relative=case["relative"],
        theta=case["theta"],
    )


def cases(select) -> list:
    return reference_cases(REFERENCE, select)


def case_named(name: str) -> dict:
    return reference_case(REFERENCE, name)


# ----------------------------------------------------------------------------- gbstats


def test_reference_file_is_the_one_described():
    reference = load_reference(REFERENCE)
    assert "8f1db4456915a8e7b7faf23d5632ca7219d2f469" in reference["source"]
    ported = [c for c in reference["cases"] if c["origin"].startswith("ported")]
    assert len(ported) == 14 and len(reference["cases"]) == 50
    assert all(c["expected"]["error_message"] is None for c in reference["cases"])


@pytest.mark.parametrize("case", cases(lambda c: True))
def test_matches_gbstats(case):
    result = run(case)
    assert result.error == ""
    for name in FIELDS:
        # gbstats takes p = 1 − cdf: its tiny p-values carry ~1e-16 absolute error
        atol = 1e-12 if name == "p_value" else 0.0
        close(getattr(result, name), expected_value(case, name), atol=atol)
    # gbstats falls back to θ = 0 where |θ| < 1e-8; splitlab keeps such a θ
    close(result.theta, case["expected"]["theta"], atol=1e-8)
    absolute = ratio_cuped_difference(
        arm(case, "control"), arm(case, "treatment"), relative=False, theta=case["theta"]
    )
    n_c, n_t = case["control"]["n"], case["treatment"]["n"]
    close(absolute.se2_c * n_c, case["expected"]["variance_control"])
    close(absolute.se2_t * n_t, case["expected"]["variance_treatment"])


@pytest.mark.parametrize("case", cases(lambda c: "literal" in c))
def test_matches_the_figures_written_in_gbstats_test_files(case):
    result = run(case)
    literal = case["literal"]
    rounding = 0.5 * 10.0 ** -literal["decimals"] + 1e-12
    for name in ("effect", "se", "ci_low", "ci_high", "p_value"):
        if name in literal:
            assert abs(getattr(result, name) - literal[name]) <= rounding, name
    if "control_ratio" in literal:  # test_gbstats.py's variations[i].cr: the unadjusted ratios
        control, treatment = arm(case, "control"), arm(case, "treatment")
        for moments, key in ((control, "control_ratio"), (treatment, "treatment_ratio")):
            assert abs(moments.mean[0] / moments.mean[1] - literal[key]) <= rounding


def test_a_constant_pre_period_ratio_is_the_unadjusted_test_not_gbstats_rounding():
    for scale in ("abs", "rel"):
        case = case_named(f"constant_pre_ratio-{scale}")
        result = run(case)
        assert result.theta == 0.0 and result.note == NO_PRE_VARIANCE_NOTE
        close(result.effect, case["expected"]["effect"])
        # gbstats divides two rounding errors of a zero variance: θ of order 1e15
        assert abs(case["as_is"]["theta"]) > 1e10


def test_zero_pre_period_sums_fall_back_to_the_unadjusted_ratio_as_gbstats_does():
    case = case_named("post_strat_ratio_fallback_single_cell-abs")
    assert case["expected"]["adjusted"] is False
    result = run(case)
    assert result.theta == 0.0 and result.note == NO_PRE_VARIANCE_NOTE


# ----------------------------------------------------------------------------- θ = 0


def draw_units(rng, shape, n, lift=0.0, carry=0.8):
    """(m, d, m_pre, d_pre) per unit, shape + (4, n): sessions d, Poisson events m whose
    rate per session is a unit's propensity, shared by the two periods with weight carry."""
    base = rng.gamma(2.0, 0.5, (*shape, n))
    post = carry * base + (1.0 - carry) * rng.gamma(2.0, 0.5, (*shape, n))
    d_pre = rng.poisson(3.0, (*shape, n)) + 1.0
    d = rng.poisson(3.0, (*shape, n)) + 1.0
    m_pre = rng.poisson(base * d_pre).astype(float)
    m = rng.poisson(post * d * (1.0 + lift)).astype(float)
    return np.stack([m, d, m_pre, d_pre], axis=-2)


def moments_of(units: np.ndarray) -> CrossMoments:
    return CrossMoments.from_samples(units[..., 0, :], units[..., 1:, :])


def post_joint_moments(units: np.ndarray) -> JointMoments:
    m, d = units[..., 0, :], units[..., 1, :]
    return JointMoments.from_sums(
        m.shape[-1], m.sum(-1), (m * m).sum(-1), d.sum(-1), (d * d).sum(-1), (m * d).sum(-1)
    )


@pytest.mark.parametrize("relative", [False, True])
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_theta_zero_is_the_ratio_test_on_the_post_period(relative, alternative):
    rng = np.random.default_rng(11)
    control, treatment = draw_units(rng, (6,), 300), draw_units(rng, (6,), 340, lift=0.05)
    result = ratio_cuped_test(
        moments_of(control),
        moments_of(treatment),
        relative=relative,
        alternative=alternative,
        theta=0.0,
    )
    expected = ratio_test(
        post_joint_moments(control),
        post_joint_moments(treatment),
        relative=relative,
        alternative=alternative,
    )
    for name in FIELDS:
        close(getattr(result, name), getattr(expected, name), rtol=1e-9)
    close(result.variance_reduction, 0.0, atol=1e-12)


def test_a_pre_period_ratio_without_variance_gives_the_ratio_test():
    rng = np.random.default_rng(12)
    control, treatment = draw_units(rng, (), 200), draw_units(rng, (), 220)
    for units in (control, treatment):
        units[2] = 3.0 * units[3]  # the same pre-period ratio for every unit
    result = ratio_cuped_test(moments_of(control), moments_of(treatment))
    expected = ratio_test(post_joint_moments(control), post_joint_moments(treatment))
    assert result.theta == 0.0 and result.note == NO_PRE_VARIANCE_NOTE
    close(result.effect, expected.effect, rtol=1e-9)
    close(result.se, expected.se, rtol=1e-9)


# ----------------------------------------------------------------------------- raw samples


def estimate(beta_c: np.ndarray, beta_t: np.ndarray, theta: float, relative: bool) -> float:
    """The estimator as a function of the eight means, written out."""
    adjusted_c = beta_c[0] / beta_c[1] - theta * beta_c[2] / beta_c[3]
    adjusted_t = beta_t[0] / beta_t[1] - theta * beta_t[2] / beta_t[3]
    if relative:
        return (adjusted_t - adjusted_c) / abs(beta_c[0] / beta_c[1])
    return adjusted_t - adjusted_c


def numerical_gradient(function, beta: np.ndarray) -> np.ndarray:
    gradient = np.empty(4)
    for i in range(4):
        step = 1e-6 * abs(beta[i])
        up, down = beta.copy(), beta.copy()
        up[i] += step
        down[i] -= step
        gradient[i] = (function(up) - function(down)) / (2 * step)
    return gradient


@pytest.mark.parametrize("relative", [False, True])
def test_matches_the_delta_method_computed_from_raw_samples(relative):
    rng = np.random.default_rng(13)
    control, treatment = draw_units(rng, (), 700), draw_units(rng, (), 650, lift=0.1)
    control[0] *= -1.0  # a negative baseline: the relative lift divides by |R_c|
    treatment[0] *= -1.0
    covariances = [np.cov(units) for units in (control, treatment)]
    betas = [units.mean(axis=1) for units in (control, treatment)]

    def ratio_gradients(beta):
        post = np.array([1 / beta[1], -beta[0] / beta[1] ** 2, 0.0, 0.0])
        pre = np.array([0.0, 0.0, 1 / beta[3], -beta[2] / beta[3] ** 2])
        return post, pre

    covariance = variance = 0.0
    for beta, sigma in zip(betas, covariances, strict=True):
        post, pre = ratio_gradients(beta)
        covariance += post @ sigma @ pre
        variance += pre @ sigma @ pre
    theta = covariance / variance
    gradient_c = numerical_gradient(lambda b: estimate(b, betas[1], theta, relative), betas[0])
    gradient_t = numerical_gradient(lambda b: estimate(betas[0], b, theta, relative), betas[1])
    se = np.sqrt(
        gradient_c @ covariances[0] @ gradient_c / control.shape[1]
        + gradient_t @ covariances[1] @ gradient_t / treatment.shape[1]
    )
    result = ratio_cuped_test(moments_of(control), moments_of(treatment), relative=relative)
    close(result.theta, theta, rtol=1e-9)
    close(result.effect, estimate(betas[0], betas[1], theta, relative), rtol=1e-9)
    close(result.se, se, rtol=1e-6)


def test_from_sums_equals_from_samples():
    rng = np.random.default_rng(14)
    units = draw_units(rng, (), 500)
    products = [units[i] @ units[j] for i, j in ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))]
    from_sums = ratio_cross_moments(500, units.sum(1), (units * units).sum(1), products)
    close(from_sums.mean, units.mean(1), rtol=1e-12)
    close(from_sums.cov, np.cov(units), rtol=1e-9)


def test_rows_are_independent_comparisons_and_controls_broadcast():
    rng = np.random.default_rng(15)
    control = moments_of(draw_units(rng, (), 400))
    treatments = draw_units(rng, (3,), 420, lift=0.05)
    batch = ratio_cuped_test(control, moments_of(treatments), relative=True)
    for row in range(3):
        single = ratio_cuped_test(control, moments_of(treatments[row]), relative=True)
        for name in (*FIELDS, "theta", "variance_reduction"):
            close(np.asarray(getattr(batch, name))[row], getattr(single, name), rtol=1e-12)


# ----------------------------------------------------------------------------- coverage


def test_interval_covers_at_the_nominal_rate_and_the_pre_period_reduces_variance():
    rng = np.random.default_rng(20260904)
    reps, n, lift = 1000, 400, 0.1
    control = moments_of(draw_units(rng, (reps,), n, carry=0.9))
    treatment = moments_of(draw_units(rng, (reps,), n, lift=lift, carry=0.9))
    # E[m]/E[d] = E[propensity] = 1 in control, 1 + lift in treatment
    tolerance = 4 * np.sqrt(0.95 * 0.05 / reps)
    for relative in (False, True):
        for alternative in ("two-sided", "greater"):
            result = ratio_cuped_test(
                control, treatment, relative=relative, alternative=alternative
            )
            assert (result.error == "").all()
            covered = (result.ci_low <= lift) & (lift <= result.ci_high)
            assert abs(covered.mean() - 0.95) < tolerance, (relative, alternative)
    result = ratio_cuped_test(control, treatment)
    # with equal arms gbstats' θ minimises the summed per-unit variance: never worse
    assert (result.variance_reduction > 0).all()
    assert np.median(result.variance_reduction) > 0.3


# ----------------------------------------------------------------------------- bad input


def test_a_batch_flags_only_its_degenerate_rows():
    rng = np.random.default_rng(16)
    control_units, treatment_units = draw_units(rng, (5,), 50), draw_units(rng, (5,), 60)
    control_units[1, 1] = 0.0  # row 1: no sessions in control
    control_units[2, 0] = 0.0  # row 2: no control events, the relative lift is undefined
    treatment_units[3, 2:] = 0.0  # row 3: no pre-period sessions (nor events) in treatment
    control, treatment = moments_of(control_units), moments_of(treatment_units)
    single = np.arange(5) == 4  # row 4: one control unit
    control = CrossMoments(
        np.where(single, 1, control.n),
        control.mean,
        np.where(single[:, None, None], 0.0, control.cov),
    )
    with pytest.warns(DegenerateDataWarning):
        result = ratio_cuped_test(control, treatment, relative=True)
    assert result.error.tolist() == [
        "",
        "denominator mean is zero in control",
        "control ratio is zero; relative lift is undefined",
        "pre-period denominator mean is zero in treatment",
        "n < 2 in control",
    ]
    assert np.isnan(result.effect[1:]).all() and np.isnan(result.theta[1:]).all()
    assert np.isfinite([result.effect[0], result.se[0], result.theta[0]]).all()


def argument_named(error_type: type[InvalidArgumentError], call) -> str:
    with pytest.raises(error_type) as error:
        call()
    return error.value.argument


def test_arguments_are_checked():
    rng = np.random.default_rng(17)
    good = moments_of(draw_units(rng, (), 100))
    three = CrossMoments.from_samples(rng.normal(size=50), rng.normal(size=(2, 50)))
    with pytest.raises(InvalidArgumentError) as error:
        ratio_cuped_test(three, good)
    assert str(error.value).startswith(
        "control: ratio CUPED needs 4 variables "
        "(numerator, denominator, numerator_pre, denominator_pre)"
    )
    proportions = CrossMoments.from_centred(good.n, good.mean, good.m2, ddof=0)
    not_cross = JointMoments(10, 1.0, 1.0, 1.0, 1.0, 0.0)
    checks = [
        ("treatment", lambda: ratio_cuped_difference(good, three, relative=False)),
        ("control", lambda: ratio_cuped_test(not_cross, good)),
        ("treatment", lambda: ratio_cuped_test(good, proportions)),  # ddof 0 with ddof 1
        ("theta", lambda: ratio_cuped_test(good, good, theta=np.nan)),
        ("alpha", lambda: ratio_cuped_test(good, good, alpha=1.5)),
        ("alternative", lambda: ratio_cuped_test(good, good, alternative="bigger")),
        ("relative", lambda: ratio_cuped_difference(good, good, relative="yes")),
        ("cross_products", lambda: ratio_cross_moments(10, np.ones(4), np.ones(4), np.ones(5))),
        ("sums", lambda: ratio_cross_moments(10, np.ones(3), np.ones(4), np.ones(6))),
    ]
    for argument, call in checks:
        assert argument_named(InvalidArgumentError, call) == argument
    wrong_shape = argument_named(
        ShapeMismatchError, lambda: ratio_cuped_test(good, good, theta=[0.1, 0.2])
    )
    assert wrong_shape == "theta"
