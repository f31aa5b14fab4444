from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from splitlab import JointMoments, Moments
from splitlab.errors import InvalidArgumentError
from splitlab.sequential.confseq import confidence_sequence
from splitlab.sequential.msprt import (
    msprt,
    msprt_from_estimate,
    msprt_mixing_ratio,
    msprt_tau2,
)
from splitlab.stats.adjustment import cuped_test
from splitlab.stats.frequentist import ratio_test, ttest


def close(actual, expected, rtol=1e-6, atol=1e-12):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def mixture_likelihood_ratio(effect, variance, tau2, null=0.0):
    """Λ by quadrature: the N(θ, V) likelihood of θ̂ averaged over θ ~ N(null, τ²), over the
    likelihood at θ = null (Johari et al. 2017, the mSPRT definition)."""

    def integrand(theta):
        return (
            stats.norm.pdf(effect, theta, np.sqrt(variance))
            * stats.norm.pdf(theta, null, np.sqrt(tau2))
            / stats.norm.pdf(effect, null, np.sqrt(variance))
        )

    scale = np.sqrt(tau2)
    return integrate.quad(integrand, null - 40 * scale, null + 40 * scale, epsabs=0, epsrel=1e-12)[
        0
    ]


def half_width(se, tau2, alpha):
    variance = se * se
    return np.sqrt(
        variance
        * (variance + tau2)
        / tau2
        * (2 * np.log(1 / alpha) + np.log((variance + tau2) / variance))
    )


def test_issue_example():
    low, high, p = msprt_from_estimate(0.1, np.sqrt(0.0025), tau2=0.01)
    assert round(float(p), 6) == 0.451454
    assert (round(float(low), 6), round(float(high), 6)) == (-0.054119, 0.254119)
    control = Moments(100, 0.0, 0.125)
    treatment = Moments(100, 0.1, 0.125)  # se² = 0.125/100 + 0.125/100 = 0.0025
    result = msprt(control, treatment, tau2=0.01)
    assert round(float(result.e_value), 6) == 2.215063
    assert round(float(result.p_value), 6) == 0.451454
    assert (round(float(result.ci_low), 6), round(float(result.ci_high), 6)) == (
        -0.054119,
        0.254119,
    )
    assert result.method == "msprt" and result.params["tau2"] == 0.01


@pytest.mark.parametrize(
    ("effect", "se", "tau2"),
    [(0.1, 0.05, 0.01), (-0.3, 0.2, 0.5), (0.02, 0.01, 1e-4), (0.0, 0.1, 0.02)],
)
def test_likelihood_ratio_equals_the_mixture_integral(effect, se, tau2):
    result = msprt(Moments(2, 0.0, se**2), Moments(2, effect, se**2), tau2=tau2)
    close(result.e_value, mixture_likelihood_ratio(effect, se**2, tau2), rtol=1e-9)
    close(result.p_value, min(1.0, 1 / mixture_likelihood_ratio(effect, se**2, tau2)), rtol=1e-9)


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.2])
def test_interval_endpoints_are_where_the_shifted_test_reaches_one_over_alpha(alpha):
    effect, se, tau2 = 0.07, 0.03, 0.004
    low, high, _ = msprt_from_estimate(effect, se, alpha=alpha, tau2=tau2)
    for endpoint in (low, high):
        close(mixture_likelihood_ratio(effect, se**2, tau2, null=endpoint), 1 / alpha, rtol=1e-8)


def test_confidence_sequence_is_the_msprt_with_tau2_rho2_n_se2():
    control = Moments(3000, 5.0, 9.0)
    treatment = Moments(3500, 5.2, 11.0)
    alpha, n_star = 0.05, 4000.0
    cs = confidence_sequence(control, treatment, alpha=alpha, n_star=n_star)
    rho2 = (-2 * np.log(alpha) + np.log(-2 * np.log(alpha) + 1)) / n_star
    tau2 = rho2 * 6500 * cs.se**2  # ρ² times the per-unit variance σ̂² = N se²
    low, high, p = msprt_from_estimate(cs.effect, cs.se, alpha=alpha, tau2=tau2)
    close([cs.ci_low, cs.ci_high, cs.p_value], [low, high, p], rtol=1e-12)


def test_p_value_and_interval_are_more_conservative_than_the_z_test():
    rng = np.random.default_rng(0)
    effect = rng.normal(0, 0.05, 3000)
    se = rng.uniform(0.005, 0.05, 3000)
    tau2 = rng.uniform(1e-5, 1e-1, 3000)
    low, high, p = msprt_from_estimate(effect, se, tau2=tau2)
    assert np.all(p >= 2 * stats.norm.sf(np.abs(effect / se)))
    assert np.all(high - effect > stats.norm.ppf(0.975) * se)
    np.testing.assert_array_equal(p < 0.05, (low > 0) | (high < 0))


def test_vectorized_over_replications_and_looks():
    rng = np.random.default_rng(2)
    n = np.cumsum(rng.integers(50, 150, (40, 25)), axis=1)
    se = 2 / np.sqrt(n)
    effect = rng.normal(0, 1, n.shape) * se
    low, high, p = msprt_from_estimate(effect, se, tau2=0.01)
    assert low.shape == high.shape == p.shape == (40, 25)
    one = msprt_from_estimate(effect[3, 7], se[3, 7], tau2=0.01)
    close([low[3, 7], high[3, 7], p[3, 7]], one, rtol=1e-14)


@pytest.mark.parametrize("kind", ["cuped", "ratio"])
def test_joint_moments_plug_in_the_cuped_and_ratio_estimates(kind):
    rng = np.random.default_rng(4)
    x = rng.gamma(3.0, 2.0, size=(2, 2000)) + 1
    y = 0.9 * x + rng.normal(0, 1, size=(2, 2000)) + np.array([[0.0], [0.2]])
    control, treatment = (
        JointMoments.from_samples(y[0], x[0]),
        JointMoments.from_samples(y[1], x[1]),
    )
    fixed = (cuped_test if kind == "cuped" else ratio_test)(control, treatment)
    result = msprt(control, treatment, tau2=0.01, kind=kind)
    close(result.effect, fixed.effect)
    close(
        [result.ci_low, result.ci_high],
        np.array(msprt_from_estimate(fixed.effect, fixed.se, tau2=0.01)[:2]),
    )


def test_relative_scale_uses_the_delta_method_estimate():
    control, treatment = Moments(4000, 10.0, 20.0), Moments(4000, 10.3, 22.0)
    reference = ttest(control, treatment, relative=True)
    result = msprt(control, treatment, tau2=0.001, relative=True)
    close(result.effect, reference.effect)
    close(result.ci_low, reference.effect - half_width(reference.se, 0.001, 0.05))
    assert result.scale == "relative"


@pytest.mark.parametrize("alpha", [0.001, 0.01, 0.05, 0.1, 0.3])
def test_mixing_ratio_minimises_the_half_width_at_the_planned_look(alpha):
    ratio = msprt_mixing_ratio(alpha)
    close(ratio, -2 * np.log(alpha) + np.log1p(ratio), rtol=1e-12)  # the first-order condition
    best = optimize.minimize_scalar(
        lambda log_r: half_width(1.0, np.exp(log_r), alpha),
        bounds=(-5, 8),
        method="bounded",
        options={"xatol": 1e-10},
    )
    close(np.log(ratio), best.x, rtol=1e-4)
    howard = -2 * np.log(alpha) + np.log(-2 * np.log(alpha) + 1)
    assert howard < ratio < 1.15 * howard


def test_planned_tau2_maximises_the_rejection_probability_at_the_planned_look():
    n_per_arm, sd, alpha = 5000, 3.0, 0.05
    tau2 = msprt_tau2(n_per_arm, sd, alpha=alpha)
    se = np.sqrt(2 * sd**2 / n_per_arm)
    close(tau2, msprt_mixing_ratio(alpha) * se**2)

    def rejection_probability(tau2_choice, effect):
        threshold = half_width(se, tau2_choice, alpha) / se  # reject when |z| exceeds it
        shift = effect / se
        return stats.norm.sf(threshold - shift) + stats.norm.cdf(-threshold - shift)

    for effect in (0.0, 0.05, 0.1, 0.2):
        best = rejection_probability(tau2, effect)
        for factor in (0.25, 0.5, 0.9, 1.1, 2.0, 4.0):
            assert rejection_probability(tau2 * factor, effect) < best


def test_planned_tau2_is_vectorized_and_scales_with_variance():
    tau2 = msprt_tau2(np.array([1000, 4000]), 2.0)
    close(tau2[0] / tau2[1], 4.0)
    assert isinstance(msprt_tau2(1000, 2.0), float)


def test_tau2_is_required():
    with pytest.raises(InvalidArgumentError, match=r"tau2.*msprt_tau2"):
        msprt(Moments(100, 1.0, 1.0), Moments(100, 1.1, 1.0))


@pytest.mark.parametrize("tau2", [0.0, -1.0, np.inf, "big"])
def test_tau2_must_be_positive(tau2):
    with pytest.raises(InvalidArgumentError, match="tau2"):
        msprt(Moments(100, 1.0, 1.0), Moments(100, 1.1, 1.0), tau2=tau2)
    with pytest.raises(InvalidArgumentError, match="tau2"):
        msprt_from_estimate(0.1, 0.1, tau2=tau2)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0])
def test_alpha_outside_unit_interval_is_refused(alpha):
    with pytest.raises(InvalidArgumentError, match="alpha"):
        msprt(Moments(100, 1.0, 1.0), Moments(100, 1.1, 1.0), tau2=0.1, alpha=alpha)
    with pytest.raises(InvalidArgumentError, match="alpha"):
        msprt_tau2(100, 1.0, alpha=alpha)


def test_bad_planning_inputs_and_missing_kind_are_refused():
    with pytest.raises(InvalidArgumentError, match="n_per_arm"):
        msprt_tau2(0, 1.0)
    with pytest.raises(InvalidArgumentError, match="sd"):
        msprt_tau2(100, -1.0)
    joint = JointMoments(100, 1.0, 1.0, 2.0, 1.0, 0.5)
    with pytest.raises(InvalidArgumentError, match="kind"):
        msprt(joint, joint, tau2=0.1)
    with pytest.raises(InvalidArgumentError, match="se"):
        msprt_from_estimate(0.1, -1.0, tau2=0.1)
