"""sequential_srm: Lindon & Malek's Dirichlet-multinomial Bayes factor, checked against
independent computations of the mixture, its martingale property and by simulation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import integrate, special, stats

from simulation_helpers import binomial_tolerance
from splitlab.errors import DegenerateDataWarning, InvalidArgumentError, ShapeMismatchError
from splitlab.sequential.srm import SequentialSRMResult, sequential_srm
from splitlab.stats.srm import srm_test


def test_reproduces_the_issues_known_value() -> None:
    # Issue 4: 1,000 vs 1,100 units at 50/50 with concentration 100.
    result = sequential_srm([1000, 1100], [0.5, 0.5], concentration=100.0)
    assert result.bayes_factor == pytest.approx(2.0681, abs=5e-5)
    assert result.p_value == pytest.approx(0.4835, abs=5e-5)
    assert result.log_bayes_factor == pytest.approx(np.log(result.bayes_factor), rel=1e-12)
    assert result.error == ""


@pytest.mark.parametrize(
    ("counts", "weights", "concentration"),
    [([1000, 1100], [0.5, 0.5], 100.0), ([300, 900], [0.2, 0.8], 100.0), ([7, 2], [1, 3], 2.5)],
)
def test_matches_numerical_integration_over_the_beta_prior(counts, weights, concentration) -> None:
    # Two arms: BF = ∫ θ^x1 (1-θ)^x2 Beta(θ; c p1, c p2) dθ / (p1^x1 p2^x2), integrated by
    # quadrature in log space around the posterior mode.
    x1, x2 = counts
    p1 = weights[0] / sum(weights)
    a1, a2 = concentration * p1, concentration * (1.0 - p1)

    def integrand(theta: float) -> float:
        return np.exp(
            stats.beta.logpdf(theta, a1, a2)
            + x1 * np.log(theta)
            + x2 * np.log1p(-theta)
            - x1 * np.log(p1)
            - x2 * np.log1p(-p1)
        )

    mode = (x1 + a1 - 1.0) / (x1 + x2 + a1 + a2 - 2.0)
    expected, _ = integrate.quad(integrand, 0.0, 1.0, points=[mode], epsabs=0.0, epsrel=1e-11)
    result = sequential_srm(counts, weights, concentration=concentration)
    assert result.bayes_factor == pytest.approx(expected, rel=1e-8)


def test_matches_the_polya_urn_product_at_every_unit() -> None:
    # The Dirichlet-multinomial predictive probability of the next unit's arm is
    # (a_i + x_i) / (c + n), so the Bayes factor of a stream is a running product of
    # predictive / null probabilities — computed here without any gamma function.
    rng = np.random.default_rng(41)
    weights = np.array([0.5, 0.3, 0.2])
    concentration = 7.0
    arms = rng.choice(3, size=400, p=[0.4, 0.35, 0.25])
    counts = np.zeros(3)
    bayes_factor = 1.0
    cumulative, products = [], []
    for arm in arms:
        predictive = (concentration * weights[arm] + counts[arm]) / (concentration + counts.sum())
        bayes_factor *= predictive / weights[arm]
        counts[arm] += 1
        cumulative.append(counts.copy())
        products.append(bayes_factor)
    result = sequential_srm(np.array(cumulative), weights, concentration=concentration)
    np.testing.assert_allclose(result.bayes_factor, products, rtol=1e-10)


def test_matches_monte_carlo_over_the_dirichlet_prior_for_small_counts() -> None:
    rng = np.random.default_rng(42)
    weights = np.array([0.25, 0.25, 0.5])
    counts = np.array([4, 1, 2])
    theta = rng.dirichlet(5.0 * weights, size=400_000)
    likelihood_ratio = np.prod((theta / weights) ** counts, axis=1)
    standard_error = likelihood_ratio.std() / np.sqrt(likelihood_ratio.size)
    result = sequential_srm(counts, weights, concentration=5.0)
    assert abs(result.bayes_factor - likelihood_ratio.mean()) < 5.0 * standard_error


def test_is_a_martingale_under_the_null() -> None:
    # E[BF(x + one unit) | x] = Σ p_i BF(x + e_i) = BF(x) under the configured split.
    weights = np.array([0.6, 0.3, 0.1])
    for counts in ([0, 0, 0], [120, 40, 3], [5000, 5200, 900]):
        counts = np.array(counts)
        after = sequential_srm(counts + np.eye(3, dtype=int), weights).bayes_factor
        before = sequential_srm(counts, weights).bayes_factor
        assert np.dot(weights, after) == pytest.approx(before, rel=1e-10)


def test_stays_accurate_for_counts_up_to_a_billion() -> None:
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    counts = [1_000_000_000, 1_000_040_000, 499_990_000]
    weights = [0.4, 0.4, 0.2]
    prior = [mpmath.mpf(100) * mpmath.mpf(w) for w in weights]
    expected = (
        sum(
            mpmath.loggamma(a + x) - mpmath.loggamma(a) - x * mpmath.log(mpmath.mpf(w))
            for a, x, w in zip(prior, counts, weights, strict=True)
        )
        - mpmath.loggamma(100 + sum(counts))
        + mpmath.loggamma(100)
    )
    result = sequential_srm(counts, weights)
    assert result.log_bayes_factor == pytest.approx(float(expected), abs=1e-6)


def test_overwhelming_evidence_gives_an_infinite_bayes_factor_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = sequential_srm([1_000_000_000, 2_000_000_000])
    assert np.isinf(result.bayes_factor) and result.p_value == 0.0
    assert np.isfinite(result.log_bayes_factor) and result.log_bayes_factor > 1e8


def test_no_units_give_no_evidence() -> None:
    result = sequential_srm([0, 0, 0], [0.2, 0.3, 0.5])
    assert result.bayes_factor == 1.0 and result.p_value == 1.0
    assert result.log_bayes_factor == 0.0 and result.error == ""


def test_larger_imbalance_gives_a_larger_bayes_factor() -> None:
    treatment = np.arange(1000, 1301, 25)
    counts = np.stack([np.full_like(treatment, 1000), treatment], axis=-1)
    log_bf = sequential_srm(counts).log_bayes_factor
    assert np.all(np.diff(log_bf) > 0)


def test_weights_are_respected_and_only_their_ratio_matters() -> None:
    counts = [2000, 8000]
    at_configured_split = sequential_srm(counts, [0.2, 0.8])
    assert at_configured_split.bayes_factor < 1.0 and at_configured_split.p_value == 1.0
    assert sequential_srm(counts, [0.5, 0.5]).p_value < 1e-100
    rescaled = sequential_srm(counts, [20.0, 80.0])
    assert rescaled.log_bayes_factor == pytest.approx(at_configured_split.log_bayes_factor)


def test_zero_weight_arms_are_skipped_like_the_chi_square_test() -> None:
    with_empty_arm = sequential_srm([500, 0, 520], [1.0, 0.0, 1.0])
    without = sequential_srm([500, 520], [1.0, 1.0])
    assert with_empty_arm.log_bayes_factor == pytest.approx(without.log_bayes_factor, rel=1e-12)

    counts = np.array([[500, 0, 520], [500, 3, 520], [10, 0, 0]])
    weights = np.array([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    with pytest.warns(DegenerateDataWarning, match="2 of 3"):
        result = sequential_srm(counts, weights, alpha=0.05)
    assert result.error.tolist() == [
        "",
        "an arm with zero weight has units",
        "fewer than 2 arms have positive weight",
    ]
    assert np.isnan(result.p_value[1:]).all() and np.isnan(result.bayes_factor[1:]).all()
    assert result.reject.tolist() == [False, False, False]


def test_leading_axes_are_independent_experiments() -> None:
    rng = np.random.default_rng(43)
    weights = np.array([0.2, 0.3, 0.5])
    counts = rng.multinomial(5000, weights, size=(4, 6))
    result = sequential_srm(counts, weights, concentration=30.0)
    assert result.p_value.shape == (4, 6)
    single = sequential_srm(counts[2, 3], weights, concentration=30.0)
    assert result.log_bayes_factor[2, 3] == pytest.approx(single.log_bayes_factor, rel=1e-12)
    assert isinstance(single, SequentialSRMResult) and isinstance(single.error, str)
    frame = result.to_frame()
    assert list(frame.columns) == ["bayes_factor", "p_value", "log_bayes_factor", "error"]
    assert len(frame) == 24


def test_alpha_adds_the_decision() -> None:
    result = sequential_srm([[1000, 1100], [1000, 1300]], alpha=0.05)
    np.testing.assert_array_equal(result.reject, result.p_value <= 0.05)
    assert result.reject.tolist() == [False, True]
    assert list(result.to_frame().columns)[-1] == "reject"


@pytest.mark.validity
def test_type_one_error_holds_under_continuous_peeking_while_chi_square_inflates() -> None:
    replications, looks, batch, alpha = 2000, 200, 50, 0.05
    weights = np.array([0.5, 0.3, 0.2])
    rng = np.random.default_rng(44)
    counts = np.cumsum(rng.multinomial(batch, weights, size=(replications, looks)), axis=1)

    sequential_p = sequential_srm(counts, weights).p_value
    ever_sequential = np.mean(np.any(sequential_p <= alpha, axis=1))
    assert ever_sequential <= alpha + binomial_tolerance(alpha, replications), ever_sequential

    chi_square_p = srm_test(counts, weights).p_value
    ever_chi_square = np.mean(np.any(chi_square_p <= alpha, axis=1))
    assert ever_chi_square > 3 * alpha, ever_chi_square


@pytest.mark.validity
def test_detects_a_real_mismatch() -> None:
    replications, looks, batch = 500, 100, 200
    rng = np.random.default_rng(45)
    counts = np.cumsum(rng.multinomial(batch, [0.52, 0.48], size=(replications, looks)), axis=1)
    p_value = sequential_srm(counts, [0.5, 0.5]).p_value
    assert np.mean(np.any(p_value <= 0.05, axis=1)) > 0.9


@pytest.mark.parametrize(
    ("counts", "weights", "options", "argument", "error"),
    [
        ([100, -1], None, {}, "counts", InvalidArgumentError),
        ([100, np.nan], None, {}, "counts", InvalidArgumentError),
        ([100, 10.5], None, {}, "counts", InvalidArgumentError),
        (100, None, {}, "counts", InvalidArgumentError),
        ([100, 110], [0.5, -0.5], {}, "weights", InvalidArgumentError),
        ([100, 110], [0.5, np.nan], {}, "weights", InvalidArgumentError),
        ([100, 110], [0.2, 0.3, 0.5], {}, "counts/weights", ShapeMismatchError),
        ([[1, 2], [3, 4], [5, 6]], [[0.5, 0.5]] * 2, {}, "counts/weights", ShapeMismatchError),
        ([100, 110], None, {"concentration": 0.0}, "concentration", InvalidArgumentError),
        ([100, 110], None, {"concentration": -5.0}, "concentration", InvalidArgumentError),
        ([100, 110], None, {"concentration": np.inf}, "concentration", InvalidArgumentError),
        ([100, 110], None, {"concentration": "lots"}, "concentration", InvalidArgumentError),
        ([100, 110], None, {"alpha": 0.0}, "alpha", InvalidArgumentError),
        ([100, 110], None, {"alpha": 1.5}, "alpha", InvalidArgumentError),
    ],
)
def test_bad_input_raises_naming_the_argument(counts, weights, options, argument, error) -> None:
    with pytest.raises(error) as raised:
        sequential_srm(counts, weights, **options)
    assert raised.value.argument == argument


def test_gammaln_formula_is_the_multivariate_beta_ratio() -> None:
    # Guard against a sign or constant slip in the Stirling-cancelled evaluation: the
    # direct gammaln formula is exact enough at moderate counts.
    rng = np.random.default_rng(46)
    weights = rng.dirichlet(np.ones(4), size=200)
    counts = rng.multinomial(rng.integers(0, 50_000, size=200), weights)
    concentration = 10.0 ** rng.uniform(-2, 3, size=(200, 1))
    prior = concentration * weights
    direct = (
        np.sum(special.gammaln(prior + counts) - special.gammaln(prior), axis=-1)
        - special.gammaln(concentration[:, 0] + counts.sum(axis=-1))
        + special.gammaln(concentration[:, 0])
        - np.sum(counts * np.log(weights), axis=-1)
    )
    for row in range(200):
        result = sequential_srm(counts[row], weights[row], concentration=concentration[row, 0])
        assert result.log_bayes_factor == pytest.approx(direct[row], rel=1e-9, abs=1e-8)
