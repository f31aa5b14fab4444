from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from conftest import gbstats_cases
from splitlab import EffectResult, Moments
from splitlab.errors import DegenerateDataWarning, InvalidArgumentError, ShapeMismatchError
from splitlab.stats.bayesian import BayesResult, bayes_proportions, bayes_test, prob_best

DRAWS = 10**6


def close(actual, expected, rtol=1e-6, atol=1e-12):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------------------
# independent references


def miller_textbook(alpha_c, beta_c, alpha_t, beta_t):
    """P(p_t > p_c) for integer alpha_t, Evan Miller (2015), "Formulas for Bayesian A/B
    testing": sum_{i<alpha_t} B(alpha_c + i, beta_c + beta_t) /
    ((beta_t + i) B(1 + i, beta_t) B(alpha_c, beta_c)), term by term with log-gamma."""

    def log_beta(a, b):
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)

    return math.fsum(
        math.exp(
            log_beta(alpha_c + i, beta_c + beta_t)
            - math.log(beta_t + i)
            - log_beta(1 + i, beta_t)
            - log_beta(alpha_c, beta_c)
        )
        for i in range(int(alpha_t))
    )


def miller(alpha_c, beta_c, alpha_t, beta_t):
    """Miller's sum with its terms from their ratio, so that huge parameters (n = 10^7,
    where log-gamma differences lose 1e-8) stay exact to rounding: for integer alpha_c,
    T_0 = B(alpha_c, beta_c + beta_t)/B(alpha_c, beta_c)
        = prod_{k<alpha_c} (beta_c + k)/(beta_c + beta_t + k), and
    T_i / T_{i-1} = (alpha_c + i - 1)/(alpha_c + beta_c + beta_t + i - 1) * (beta_t + i - 1)/i."""
    alpha_c, beta_c, alpha_t, beta_t = (int(v) for v in (alpha_c, beta_c, alpha_t, beta_t))
    k = np.arange(alpha_c)
    log_first = math.fsum(np.log1p(-beta_t / (beta_c + beta_t + k)))
    i = np.arange(1, alpha_t)
    log_ratios = np.log((alpha_c + i - 1) / (alpha_c + beta_c + beta_t + i - 1)) + np.log(
        (beta_t + i - 1) / i
    )
    log_terms = log_first + np.concatenate([[0.0], np.cumsum(log_ratios)])
    return math.fsum(np.exp(log_terms))


def posterior_draws(successes_c, n_c, successes_t, n_t, prior=(1, 1), seed=0):
    rng = np.random.default_rng(seed)
    a, b = prior
    p_c = rng.beta(a + successes_c, b + n_c - successes_c, DRAWS)
    p_t = rng.beta(a + successes_t, b + n_t - successes_t, DRAWS)
    return p_c, p_t


def assert_within_monte_carlo(value, samples, sigmas=4.0):
    """``value`` is the expectation of ``samples`` within ``sigmas`` Monte Carlo errors."""
    standard_error = samples.std() / math.sqrt(samples.size)
    assert abs(value - samples.mean()) <= sigmas * standard_error + 1e-12, (
        value,
        samples.mean(),
        standard_error,
    )


def normal_positive_part(mean, sd):
    """E[max(X, 0)] for X ~ N(mean, sd^2) by numerical integration."""
    lower = min(0.0, mean - 12 * sd)
    value, _ = integrate.quad(
        lambda x: x * stats.norm.pdf(x, mean, sd),
        max(0.0, lower),
        max(0.0, mean + 12 * sd),
        epsabs=1e-14,
        epsrel=1e-12,
        limit=200,
        points=[mean] if mean > 0 else None,
    )
    return value


# ----------------------------------------------------------------------------------------
# Gaussian model


@pytest.mark.parametrize("case", gbstats_cases("bayes_gaussian_flat_prior"))
def test_flat_prior_matches_gbstats(case):
    control = Moments.from_sums(**case["control"])
    treatment = Moments.from_sums(**case["treatment"])
    result = bayes_test(control, treatment, relative=case["relative"], alpha=case["alpha"])
    expected = case["expected"]
    close(result.effect, expected["effect"])
    close(result.ci_low, expected["ci_low"])
    close(result.ci_high, expected["ci_high"])
    close(result.chance_to_win, expected["chance_to_win"])
    close(result.risk_control, expected["risk"][0])
    close(result.risk_treatment, expected["risk"][1])
    close(result.risk, expected["risk"])
    assert result.error == ""
    assert result.scale == ("relative" if case["relative"] else "absolute")


def sample_groups(seed, size_c=400, size_t=500):
    rng = np.random.default_rng(seed)
    return rng.gamma(2.0, 2.5, size_c), rng.gamma(2.1, 2.5, size_t)


def lift_estimate(x_c, x_t, relative):
    """The data's lift and standard error, written out: Welch's absolute difference or the
    delta-method relative lift var_t/(m_c^2 n_t) + var_c m_t^2/(m_c^4 n_c)."""
    m_c, m_t = x_c.mean(), x_t.mean()
    v_c, v_t = x_c.var(ddof=1), x_t.var(ddof=1)
    if relative:
        return (m_t - m_c) / abs(m_c), math.sqrt(
            v_t / (m_c**2 * x_t.size) + v_c * m_t**2 / (m_c**4 * x_c.size)
        )
    return m_t - m_c, math.sqrt(v_t / x_t.size + v_c / x_c.size)


@pytest.mark.parametrize("relative", [False, True])
def test_flat_prior_posterior_is_the_normal_likelihood(relative):
    x_c, x_t = sample_groups(1)
    estimate, se = lift_estimate(x_c, x_t, relative)
    result = bayes_test(
        Moments.from_samples(x_c), Moments.from_samples(x_t), relative=relative, alpha=0.1
    )
    posterior = stats.norm(estimate, se)
    close(result.effect, estimate)
    close(result.se, se)
    close([result.ci_low, result.ci_high], posterior.ppf([0.05, 0.95]))
    close(result.chance_to_win, posterior.sf(0.0))
    close(result.risk_control, normal_positive_part(estimate, se))
    close(result.risk_treatment, normal_positive_part(-estimate, se))


@pytest.mark.parametrize("relative", [False, True])
@pytest.mark.parametrize("prior", [(0.0, 0.05), (0.3, 0.2), (-0.1, 1.0)])
def test_proper_prior_matches_numerical_bayes_rule(relative, prior):
    """Posterior ∝ likelihood × prior, normalised and integrated numerically."""
    x_c, x_t = sample_groups(2, 60, 70)
    estimate, se = lift_estimate(x_c, x_t, relative)
    prior_mean, prior_sd = prior

    def unnormalised(lift):
        return stats.norm.pdf(estimate, lift, se) * stats.norm.pdf(lift, prior_mean, prior_sd)

    center, reach = estimate, 12 * max(se, prior_sd)
    limits = (center - reach, center + reach)

    def integral(function, low=limits[0], high=limits[1]):
        points = [p for p in (0.0, estimate, prior_mean) if low < p < high]
        return integrate.quad(
            function, low, high, points=points or None, epsabs=0, epsrel=1e-11, limit=400
        )[0]

    evidence = integral(unnormalised)
    mean = integral(lambda v: v * unnormalised(v)) / evidence
    variance = integral(lambda v: (v - mean) ** 2 * unnormalised(v)) / evidence
    win = integral(unnormalised, 0.0, limits[1]) / evidence
    risk_control = integral(lambda v: v * unnormalised(v), 0.0, limits[1]) / evidence
    risk_treatment = integral(lambda v: -v * unnormalised(v), limits[0], 0.0) / evidence

    def quantile(q):
        return optimize.brentq(
            lambda v: integral(unnormalised, limits[0], v) / evidence - q, *limits, xtol=1e-14
        )

    result = bayes_test(
        Moments.from_samples(x_c),
        Moments.from_samples(x_t),
        relative=relative,
        prior=prior,
        alpha=0.05,
    )
    close(result.effect, mean, rtol=1e-8)
    close(result.se, math.sqrt(variance), rtol=1e-8)
    close(result.chance_to_win, win, rtol=1e-8)
    close(result.risk_control, risk_control, rtol=1e-7, atol=1e-14)
    close(result.risk_treatment, risk_treatment, rtol=1e-7, atol=1e-14)
    close([result.ci_low, result.ci_high], [quantile(0.025), quantile(0.975)], rtol=1e-7)
    assert result.params["prior"] == prior


def test_vague_prior_approaches_flat_prior():
    x_c, x_t = sample_groups(3)
    control, treatment = Moments.from_samples(x_c), Moments.from_samples(x_t)
    flat = bayes_test(control, treatment)
    vague = bayes_test(control, treatment, prior=(0.0, 1e6))
    for name in ("effect", "se", "ci_low", "ci_high", "chance_to_win", "risk_control"):
        close(getattr(vague, name), getattr(flat, name), rtol=1e-9)


@pytest.mark.parametrize("z", [-3.0, -12.0, -20.0, -30.0])
def test_risk_keeps_relative_accuracy_far_in_the_tail(z):
    n = 10**6
    sd = math.sqrt(2.0 / n)
    result = bayes_test(Moments(n, 0.0, 1.0), Moments(n, z * sd, 1.0))
    t = -z
    if t < 10:
        tail = normal_positive_part(z * sd, sd)
    else:
        # E[max(X, 0)] = φ(t)/t² (1 − 3/t² + 15/t⁴ − ...) for X ~ N(−t, 1) (from the Mills
        # ratio series Φ(−t) = φ(t)/t (1 − 1/t² + 3/t⁴ − ...)); terms shrink
        # until k ≈ t²/2, and 12 of them are exact to double precision for t ≥ 10
        terms = [1.0]
        for k in range(1, 12):
            terms.append(-terms[-1] * (2 * k + 1) / t**2)
        tail = sd * stats.norm.pdf(t) / t**2 * math.fsum(terms)
    close(result.risk_control, tail, rtol=1e-9, atol=0)
    close(result.risk_treatment, -z * sd + tail, rtol=1e-12)


def test_multi_arm_treatment_against_scalar_control_matches_pairwise_calls():
    rng = np.random.default_rng(4)
    control = Moments.from_samples(rng.normal(10.0, 3.0, 300))
    arms = rng.normal(10.2, 3.0, (3, 250))
    treatments = Moments.from_samples(arms)
    together = bayes_test(control, treatments, relative=True, prior=(0.0, 0.1))
    assert together.effect.shape == (3,)
    assert together.risk.shape == (3, 2)
    for arm in range(3):
        alone = bayes_test(
            control, Moments.from_samples(arms[arm]), relative=True, prior=(0.0, 0.1)
        )
        for name in ("effect", "se", "ci_low", "ci_high", "chance_to_win", "risk_control"):
            close(getattr(together, name)[arm], getattr(alone, name), rtol=1e-14)


def test_gaussian_result_is_an_effect_result_with_no_p_value():
    result = bayes_test(Moments(100, 1.0, 1.0), Moments(100, 1.2, 1.0))
    assert isinstance(result, BayesResult)
    assert isinstance(result, EffectResult)
    assert result.p_value is None and result.statistic is None
    frame = bayes_test(Moments([100, 200], 1.0, 1.0), Moments(100, 1.2, 1.0)).to_frame()
    assert {"chance_to_win", "risk_control", "risk_treatment", "error"} <= set(frame.columns)
    assert "p_value" not in frame.columns
    assert len(frame) == 2


def test_gaussian_row_without_data_is_nan_with_an_error_and_others_survive():
    control = Moments([1, 100], [1.0, 1.0], [0.0, 1.0])
    treatment = Moments([50, 100], [1.1, 1.2], [1.0, 1.0])
    with pytest.warns(DegenerateDataWarning):
        result = bayes_test(control, treatment)
    assert np.isnan(result.chance_to_win[0]) and np.isnan(result.risk[0]).all()
    assert "n < 2" in result.error[0]
    assert result.error[1] == ""
    close(result.chance_to_win[1], stats.norm.sf(0, 0.2, math.sqrt(0.02)))


@pytest.mark.parametrize(
    ("kwargs", "argument", "error"),
    [
        ({"alpha": 0.0}, "alpha", InvalidArgumentError),
        ({"alpha": 1.5}, "alpha", InvalidArgumentError),
        ({"prior": (0.0, 0.0)}, "prior", InvalidArgumentError),
        ({"prior": (0.0, -1.0)}, "prior", InvalidArgumentError),
        ({"prior": (0.0, float("nan"))}, "prior", InvalidArgumentError),
        ({"prior": 1.0}, "prior", InvalidArgumentError),
        ({"prior": (np.zeros(4), 1.0)}, "prior", ShapeMismatchError),
    ],
)
def test_gaussian_bad_arguments_are_named(kwargs, argument, error):
    with pytest.raises(error, match=argument):
        bayes_test(Moments([100, 90], 1.0, 1.0), Moments(100, 1.2, 1.0), **kwargs)


def test_gaussian_bad_groups_are_named():
    with pytest.raises(InvalidArgumentError, match="control"):
        bayes_test([1.0, 2.0], Moments(100, 1.2, 1.0))
    with pytest.raises(InvalidArgumentError, match="treatment"):
        bayes_test(Moments(100, 1.2, 1.0), None)
    with pytest.raises(ShapeMismatchError, match="control"):
        bayes_test(Moments([100, 90], 1.0, 1.0), Moments([100, 90, 80], 1.2, 1.0))


# ----------------------------------------------------------------------------------------
# Beta-binomial model


def test_miller_recurrence_equals_the_textbook_sum():
    for parameters in [(11, 91, 16, 86), (1, 1, 1, 1), (4, 20, 30, 7), (101, 901, 131, 871)]:
        assert abs(miller(*parameters) - miller_textbook(*parameters)) < 1e-12


def test_miller_sum_is_p_treatment_beats_control():
    """Direction check against simulation (the sum with the arms' roles exchanged is
    P(p_c > p_t))."""
    rng = np.random.default_rng(5)
    p_c, p_t = rng.beta(4, 20, DRAWS), rng.beta(6, 18, DRAWS)
    assert_within_monte_carlo(miller(4, 20, 6, 18), (p_t > p_c).astype(float))


MILLER_CASES = [
    (10, 100, 15, 100),
    (100, 1000, 130, 1000),
    (3, 10, 1, 50),
    (0, 0, 0, 0),
    (500, 1000, 1, 10),
    (5, 10**6, 0, 10),
    (50, 100, 20, 10**6),
    (1000, 10**7, 1100, 10**7),
    (10**4, 10**7, 10**4 + 300, 10**7),
    (0, 10**7, 3, 10**7),
]


@pytest.mark.parametrize(("s_c", "n_c", "s_t", "n_t"), MILLER_CASES)
def test_chance_to_win_matches_evan_miller_closed_form(s_c, n_c, s_t, n_t):
    result = bayes_proportions(s_c, n_c, s_t, n_t)
    expected = miller(s_c + 1, n_c - s_c + 1, s_t + 1, n_t - s_t + 1)
    assert abs(result.chance_to_win - expected) < 1e-8


def test_chance_to_win_is_vectorized_over_rows_with_integer_priors():
    s_c, n_c, s_t, n_t = (np.array(column) for column in zip(*MILLER_CASES, strict=True))
    result = bayes_proportions(s_c, n_c, s_t, n_t, prior=(2, 3))
    expected = [miller(2 + sc, 3 + nc - sc, 2 + st, 3 + nt - st) for sc, nc, st, nt in MILLER_CASES]
    close(result.chance_to_win, expected, rtol=0, atol=1e-8)


MONTE_CARLO_CASES = [
    (100, 1000, 130, 1000),
    (12, 40, 9, 35),
    (3, 200, 40, 5000),
    (10**6, 10**7, 1001000, 10**7),
]


@pytest.mark.parametrize(("s_c", "n_c", "s_t", "n_t"), MONTE_CARLO_CASES)
@pytest.mark.parametrize("relative", [False, True])
def test_beta_binomial_matches_monte_carlo(s_c, n_c, s_t, n_t, relative):
    p_c, p_t = posterior_draws(s_c, n_c, s_t, n_t, seed=s_c + n_t)
    lift = p_t / p_c - 1.0 if relative else p_t - p_c
    result = bayes_proportions(s_c, n_c, s_t, n_t, relative=relative, alpha=0.1)
    assert abs(result.chance_to_win - (lift > 0).mean()) < 1e-3
    assert_within_monte_carlo(result.chance_to_win, (lift > 0).astype(float))
    assert_within_monte_carlo(result.risk_control, np.maximum(lift, 0.0))
    assert_within_monte_carlo(result.risk_treatment, np.maximum(-lift, 0.0))
    assert_within_monte_carlo(result.effect, lift)
    if not relative or s_c >= 10:  # else 1/p_c has no fourth moment: sample sd is erratic
        close(result.se, lift.std(), rtol=5e-3)
    sd = lift.std()
    close([result.ci_low, result.ci_high], np.quantile(lift, [0.05, 0.95]), rtol=0, atol=0.01 * sd)


def beta_cdf_of_lift(parameters, value, relative):
    """P(lift ≤ value) = ∫ f_c(x) F_t(x + value) dx (or F_t((1 + value) x)), by scipy."""
    a_c, b_c, a_t, b_t = parameters
    low, high = stats.beta.ppf([1e-14, 1 - 1e-14], a_c, b_c)

    def integrand(x):
        y = (1.0 + value) * x if relative else x + value
        return stats.beta.pdf(x, a_c, b_c) * stats.beta.cdf(y, a_t, b_t)

    edges = np.linspace(low, high, 40)
    return math.fsum(
        integrate.quad(integrand, lo, hi, epsabs=1e-14, epsrel=1e-12, limit=200)[0]
        for lo, hi in itertools.pairwise(edges)
    )


@pytest.mark.parametrize(
    ("s_c", "n_c", "s_t", "n_t", "relative"),
    [
        (10, 100, 15, 100, False),
        (10, 100, 15, 100, True),
        (2, 50, 9, 40, True),
        (0, 30, 4, 30, False),
        (300, 1000, 2, 10, True),
        (1000, 10**6, 1100, 10**6, False),
    ],
)
def test_credible_interval_inverts_the_exact_cdf(s_c, n_c, s_t, n_t, relative):
    result = bayes_proportions(s_c, n_c, s_t, n_t, relative=relative, alpha=0.1)
    parameters = (s_c + 1, n_c - s_c + 1, s_t + 1, n_t - s_t + 1)
    assert abs(beta_cdf_of_lift(parameters, result.ci_low, relative) - 0.05) < 1e-9
    assert abs(beta_cdf_of_lift(parameters, result.ci_high, relative) - 0.95) < 1e-9


@pytest.mark.parametrize("relative", [False, True])
def test_risks_match_nested_numerical_integration(relative):
    a_c, b_c, a_t, b_t = 7.5, 30.5, 11.5, 28.5  # Jeffreys prior, 7/37 against 11/39

    def expected_excess(sign):
        def inner(x):
            weight = (lambda y: 1.0 / x) if relative else (lambda y: 1.0)
            low, high = (x, 1.0) if sign > 0 else (0.0, x)
            return integrate.quad(
                lambda y: sign * (y - x) * weight(y) * stats.beta.pdf(y, a_t, b_t),
                low,
                high,
                epsabs=1e-13,
                epsrel=1e-11,
            )[0]

        return integrate.quad(
            lambda x: stats.beta.pdf(x, a_c, b_c) * inner(x), 0.0, 1.0, epsabs=1e-13, epsrel=1e-11
        )[0]

    result = bayes_proportions(7, 37, 11, 39, prior=(0.5, 0.5), relative=relative)
    close(result.risk_control, expected_excess(+1), rtol=1e-8)
    close(result.risk_treatment, expected_excess(-1), rtol=1e-8)


@pytest.mark.parametrize("relative", [False, True])
def test_risks_differ_by_the_posterior_mean(relative):
    """E[max(L, 0)] − E[max(−L, 0)] = E[L], including heavy-tailed relative lifts (one
    control success under a Jeffreys prior: 1/p_c has a finite mean only)."""
    successes_c = np.array([1, 1, 3, 40, 2000])
    n_c = np.array([20, 500, 30, 400, 10**6])
    successes_t = np.array([3, 1, 2, 52, 2100])
    result = bayes_proportions(
        successes_c, n_c, successes_t, n_c, prior=(0.5, 0.5), relative=relative
    )
    close(result.risk_control - result.risk_treatment, result.effect, rtol=1e-9, atol=1e-15)


def test_posterior_moments_of_the_lift_match_numerical_expectations():
    a_c, b_c, a_t, b_t = 13.0, 90.0, 21.0, 80.0
    control, treatment = stats.beta(a_c, b_c), stats.beta(a_t, b_t)
    inverse_mean = control.expect(lambda x: 1.0 / x)
    inverse_second = control.expect(lambda x: 1.0 / x**2)
    relative = bayes_proportions(12, 101, 20, 99, relative=True)
    close(relative.effect, treatment.mean() * inverse_mean - 1.0, rtol=1e-9)
    variance = treatment.moment(2) * inverse_second - (treatment.mean() * inverse_mean) ** 2
    close(relative.se, math.sqrt(variance), rtol=1e-8)
    absolute = bayes_proportions(12, 101, 20, 99)
    close(absolute.effect, treatment.mean() - control.mean(), rtol=1e-12)
    close(absolute.se, math.sqrt(treatment.var() + control.var()), rtol=1e-12)


def test_exchanging_arms_mirrors_the_result():
    forward = bayes_proportions(30, 300, 45, 320, alpha=0.2)
    backward = bayes_proportions(45, 320, 30, 300, alpha=0.2)
    close(forward.chance_to_win, 1.0 - backward.chance_to_win, rtol=1e-10)
    close(forward.risk, backward.risk[::-1], rtol=1e-9)
    close([forward.ci_low, forward.ci_high], [-backward.ci_high, -backward.ci_low], rtol=1e-9)


def test_prior_acts_as_pseudo_counts():
    with_prior = bayes_proportions([4, 40], 90, [9, 30], 80, prior=(3, 5), relative=True)
    counted = bayes_proportions([6, 42], 96, [11, 32], 86, prior=(1, 1), relative=True)
    for name in ("effect", "se", "ci_low", "ci_high", "chance_to_win", "risk_control"):
        close(getattr(with_prior, name), getattr(counted, name), rtol=1e-12)


def test_proportions_broadcast_multi_arm_and_leading_shapes():
    successes_t = np.array([[90, 100, 130], [10, 200, 0]])
    together = bayes_proportions(100, 1000, successes_t, 1000, relative=True)
    assert together.effect.shape == (2, 3)
    assert together.risk.shape == (2, 3, 2)
    for index in np.ndindex(successes_t.shape):
        alone = bayes_proportions(100, 1000, successes_t[index], 1000, relative=True)
        for name in ("effect", "se", "ci_low", "ci_high", "chance_to_win", "risk_treatment"):
            close(getattr(together, name)[index], getattr(alone, name), rtol=1e-13)


def test_relative_lift_without_control_successes_is_nan_with_an_error():
    with pytest.warns(DegenerateDataWarning):
        result = bayes_proportions([0, 10], 100, [5, 12], 100, relative=True)
    assert np.isnan(result.effect[0]) and np.isnan(result.chance_to_win[0])
    assert "control posterior alpha" in result.error[0]
    assert result.error[1] == "" and np.isfinite(result.ci_high[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        absolute = bayes_proportions(0, 100, 5, 100)
    assert absolute.error == "" and 0.95 < absolute.chance_to_win < 1.0


def test_empty_groups_give_the_prior():
    result = bayes_proportions(0, 0, 0, 0, prior=(2, 2))
    assert result.effect == 0.0
    close(result.chance_to_win, 0.5, rtol=1e-12)
    close(result.risk_control, result.risk_treatment, rtol=1e-12)


@pytest.mark.parametrize(
    ("args", "kwargs", "argument"),
    [
        ((11, 10, 5, 10), {}, "successes_c"),
        ((5, 10, 11, 10), {}, "successes_t"),
        ((5, -10, 5, 10), {}, "n_c"),
        ((5, 10, -1, 10), {}, "successes_t"),
        ((5.5, 10, 5, 10), {}, "successes_c"),
        ((5, 10, 5, float("nan")), {}, "n_t"),
        ((5, 10, 5, 10), {"prior": (0, 1)}, "prior"),
        ((5, 10, 5, 10), {"prior": (1, -1)}, "prior"),
        ((5, 10, 5, 10), {"prior": 1}, "prior"),
        ((5, 10, 5, 10), {"alpha": 0}, "alpha"),
        ((5, 10, 5, 10), {"alpha": 1}, "alpha"),
    ],
)
def test_proportions_bad_arguments_are_named(args, kwargs, argument):
    with pytest.raises(InvalidArgumentError, match=argument):
        bayes_proportions(*args, **kwargs)


def test_proportions_shape_mismatch_is_named():
    with pytest.raises(ShapeMismatchError, match="successes_c"):
        bayes_proportions([1, 2], [10, 10, 10], 3, 10)
    with pytest.raises(ShapeMismatchError, match="prior"):
        bayes_proportions([1, 2], 10, 3, 10, prior=([1, 1, 1], 1))


# ----------------------------------------------------------------------------------------
# probability of being best


def test_prob_best_beta_matches_monte_carlo():
    successes = np.array([100, 120, 110, 115])
    n = np.array([1000, 1000, 1000, 980])
    rng = np.random.default_rng(6)
    draws = rng.beta(successes + 1, n - successes + 1, (DRAWS, 4))
    for higher, pick in ((True, draws.argmax(axis=1)), (False, draws.argmin(axis=1))):
        result = prob_best(successes=successes, n=n, higher_is_better=higher)
        close(result, np.bincount(pick, minlength=4) / DRAWS, rtol=0, atol=1e-3)


def test_prob_best_gaussian_matches_monte_carlo():
    mean = np.array([1.0, 1.3, 0.2, 1.25, 1.2])
    se = np.array([0.5, 0.2, 0.05, 0.1, 0.3])
    rng = np.random.default_rng(7)
    draws = rng.normal(mean, se, (DRAWS, 5))
    for higher, pick in ((True, draws.argmax(axis=1)), (False, draws.argmin(axis=1))):
        result = prob_best(mean=mean, se=se, higher_is_better=higher)
        close(result, np.bincount(pick, minlength=5) / DRAWS, rtol=0, atol=1e-3)


def test_prob_best_two_gaussian_arms_is_the_normal_cdf_of_the_difference():
    rng = np.random.default_rng(8)
    mean = rng.normal(0.0, 1.0, (50, 2))
    se = rng.uniform(0.01, 2.0, (50, 2))
    result = prob_best(mean=mean, se=se)
    expected = stats.norm.cdf((mean[:, 0] - mean[:, 1]) / np.hypot(se[:, 0], se[:, 1]))
    close(result[:, 0], expected, rtol=1e-9, atol=1e-12)
    close(result.sum(axis=-1), 1.0, rtol=1e-14)


@pytest.mark.parametrize(("s_c", "n_c", "s_t", "n_t"), MILLER_CASES)
def test_prob_best_two_beta_arms_matches_evan_miller(s_c, n_c, s_t, n_t):
    result = prob_best(successes=[s_c, s_t], n=[n_c, n_t])
    expected = miller(s_c + 1, n_c - s_c + 1, s_t + 1, n_t - s_t + 1)
    assert abs(result[1] - expected) < 1e-8


@pytest.mark.parametrize("arms", [1, 2, 3, 7])
def test_prob_best_identical_arms_are_equally_likely(arms):
    result = prob_best(successes=np.full((2, 3, arms), 40), n=np.full(arms, 500))
    assert result.shape == (2, 3, arms)
    close(result, np.full((2, 3, arms), 1.0 / arms), rtol=1e-12)
    close(prob_best(mean=np.zeros(arms), se=2.0), np.full(arms, 1.0 / arms), rtol=1e-12)


def test_prob_best_lower_is_better_mirrors_the_arms():
    mean, se = np.array([0.1, 0.4, 0.3]), np.array([0.2, 0.1, 0.3])
    close(prob_best(mean=mean, se=se, higher_is_better=False), prob_best(mean=-mean, se=se))
    successes, n = np.array([[5, 9, 14], [30, 60, 0]]), np.array([40, 60, 70])
    close(
        prob_best(successes=successes, n=n, prior=(1, 2), higher_is_better=False),
        prob_best(successes=n - successes, n=n, prior=(2, 1)),
        rtol=1e-10,
        atol=1e-14,
    )


def test_prob_best_rows_are_independent_experiments():
    successes = np.array([[10, 14, 9], [300, 290, 310]])
    n = np.array([[100, 100, 100], [3000, 3000, 3000]])
    together = prob_best(successes=successes, n=n)
    for row in range(2):
        close(together[row], prob_best(successes=successes[row], n=n[row]), rtol=1e-13)
    close(together.sum(axis=-1), 1.0, rtol=1e-14)


@pytest.mark.parametrize(
    ("kwargs", "argument", "error"),
    [
        ({"successes": [1, 2], "n": [10, 10], "mean": [0.1, 0.2]}, "mean", InvalidArgumentError),
        ({"successes": [1, 2]}, "n", InvalidArgumentError),
        ({"se": [1.0, 2.0]}, "mean", InvalidArgumentError),
        ({}, "successes", InvalidArgumentError),
        ({"mean": [0.1, 0.2], "se": [0.1, 0.0]}, "se", InvalidArgumentError),
        ({"mean": [0.1, 0.2], "se": [0.1, -1.0]}, "se", InvalidArgumentError),
        ({"successes": [11, 2], "n": [10, 10]}, "successes", InvalidArgumentError),
        ({"successes": [1, 2], "n": [-10, 10]}, "n", InvalidArgumentError),
        ({"successes": [1, 2], "n": [10, 10], "prior": (1, 0)}, "prior", InvalidArgumentError),
        ({"successes": 1, "n": 10}, "successes", InvalidArgumentError),
        ({"mean": [0.1, 0.2, 0.3], "se": [0.1, 0.2]}, "mean", ShapeMismatchError),
        ({"successes": [1, 2], "n": [10, 10, 10]}, "successes", ShapeMismatchError),
    ],
)
def test_prob_best_bad_arguments_are_named(kwargs, argument, error):
    with pytest.raises(error, match=argument):
        prob_best(**kwargs)
