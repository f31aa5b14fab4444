"""Exact Thompson propensities on a cached grid (splitlab.bandits.propensity and
_argmax_kernels): agreement with the full quadrature of splitlab.stats.bayesian (itself
checked against scipy elsewhere), with scipy's adaptive quadrature and with Monte Carlo, along
whole choose/update paths, after fractional rewards, decay, merges and masks; the t CDF
against scipy; bit-identical probabilities after a state round trip."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import integrate, special, stats

from splitlab.bandits import _argmax_kernels as kernels
from splitlab.bandits.linear import LinTS
from splitlab.bandits.mab import (
    GaussianThompson,
    ThompsonSampling,
    TopTwoThompson,
    top_two_probabilities,
)
from splitlab.bandits.propensity import BetaArgmax, StudentArgmax
from splitlab.errors import InvalidArgumentError
from splitlab.stats.bayesian import _prob_best_chunk, prob_best

# the requirement is 1e-6 absolute; the grid is built for ~1e-8
AGREEMENT = 1e-7


def _full_beta(alpha, beta):
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        return _prob_best_chunk("beta", alpha[None], beta[None], True)[0]


def _quad_student(loc, scale, df):
    """P(best) of t arms by scipy's adaptive quadrature (QUADPACK), on pieces cut at every
    arm's location ± 1, 5, 25 scales, with the tails beyond done by QUADPACK's infinite rule."""
    arms = [stats.t(d, m, s) for m, s, d in zip(loc, scale, df, strict=True)]
    cuts = np.unique(np.concatenate([loc + scale * z for z in (-25, -5, -1, 0, 1, 5, 25)]))
    pieces = [(-np.inf, cuts[0]), *itertools.pairwise(cuts), (cuts[-1], np.inf)]
    result = []
    for k, arm in enumerate(arms):
        others = [other for j, other in enumerate(arms) if j != k]

        def integrand(x, arm=arm, others=others):
            return arm.pdf(x) * np.prod([other.cdf(x) for other in others])

        result.append(
            sum(integrate.quad(integrand, a, b, epsabs=1e-13, limit=200)[0] for a, b in pieces)
        )
    return np.array(result)


def _random_posteriors(rng, n_arms):
    n = np.floor(10 ** rng.uniform(0, 6, n_arms))
    rates = rng.uniform(0, 1, n_arms) if rng.random() < 0.5 else np.full(n_arms, rng.random())
    successes = rng.binomial(n.astype(np.int64), rates)
    prior = 10 ** rng.uniform(-1, 1)
    return prior + successes, prior + n - successes


def test_beta_argmax_matches_the_full_quadrature_on_random_posteriors():
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(300):
        alpha, beta = _random_posteriors(rng, int(rng.integers(2, 40)))
        ours = BetaArgmax().probabilities(alpha, beta)
        worst = max(worst, np.abs(ours - _full_beta(alpha, beta)).max())
        assert ours.sum() == pytest.approx(1.0, abs=1e-12)
    assert worst < AGREEMENT


@pytest.mark.parametrize("n_arms", [2, 10, 100])
def test_thompson_probabilities_match_the_full_quadrature_along_a_bandit_run(n_arms):
    rng = np.random.default_rng(n_arms)
    means = rng.uniform(0, 1, n_arms)
    policy = ThompsonSampling(n_arms=n_arms)
    generator = np.random.default_rng(0)
    worst = 0.0
    for step in range(1500):
        arm, propensity = policy.choose(rng=generator)
        if step % 37 == 0 or step < 20:
            alpha, beta = policy.arrays["alpha"][0], policy.arrays["beta"][0]
            full = _full_beta(alpha, beta)
            worst = max(worst, np.abs(policy.probabilities() - full).max())
            assert propensity == pytest.approx(full[arm], abs=AGREEMENT)
        policy.update(arm, float(rng.random() < means[arm]))
    assert worst < AGREEMENT
    # the grid is placed again only when a posterior outgrows it, not at every update
    assert policy._argmax.rebuilds < 150


def test_fractional_rewards_decay_merge_and_masks_keep_the_agreement():
    rng = np.random.default_rng(7)
    policy = ThompsonSampling(prior=(0.5, 2.0), n_arms=6, discount=0.999)
    other = ThompsonSampling(prior=(0.5, 2.0), n_arms=6, discount=0.999)
    for step in range(600):
        arm, _ = policy.choose(rng=rng)
        policy.update(arm, float(rng.random()) ** 3)  # fractional rewards
        other.update(int(rng.integers(6)), float(rng.random() < 0.3))
        if step % 97 == 0:
            policy.merge(other)
        if step % 23 == 0:
            alpha, beta = policy.arrays["alpha"][0], policy.arrays["beta"][0]
            np.testing.assert_allclose(
                policy.probabilities(), _full_beta(alpha, beta), atol=AGREEMENT
            )
            mask = rng.random(6) < 0.6
            mask[step % 6] = True
            arms = np.flatnonzero(mask)
            expected = np.zeros(6)
            expected[arms] = _full_beta(alpha[arms], beta[arms]) if arms.size > 1 else 1.0
            np.testing.assert_allclose(
                policy.probabilities(available=mask), expected, atol=AGREEMENT
            )


def test_thompson_probabilities_match_a_million_posterior_draws():
    rng = np.random.default_rng(3)
    policy = ThompsonSampling(n_arms=5)
    policy.update_batch([0] * 40 + [1] * 60 + [2] * 5 + [3] * 80, rng.random(185) < 0.4)
    alpha, beta = policy.arrays["alpha"][0], policy.arrays["beta"][0]
    draws = 1_000_000
    winners = np.argmax(rng.beta(alpha, beta, size=(draws, 5)), axis=1)
    frequency = np.bincount(winners, minlength=5) / draws
    probabilities = policy.probabilities()
    error = np.sqrt(probabilities * (1 - probabilities) / draws)
    assert np.all(np.abs(frequency - probabilities) <= 4.5 * error + 1e-12)


def test_top_two_probabilities_follow_the_cached_prob_best():
    rng = np.random.default_rng(5)
    policy = TopTwoThompson(beta=0.3, n_arms=8)
    means = rng.uniform(0.2, 0.6, 8)
    for _ in range(800):
        arm, _ = policy.choose(rng=rng)
        policy.update(arm, float(rng.random() < means[arm]))
    alpha, beta = policy.arrays["alpha"][0], policy.arrays["beta"][0]
    expected = top_two_probabilities(_full_beta(alpha, beta), 0.3)
    np.testing.assert_allclose(policy.probabilities(), expected, atol=AGREEMENT)


def test_student_argmax_matches_the_full_quadrature_along_a_gaussian_run():
    rng = np.random.default_rng(11)
    means = rng.normal(0, 1, 6)
    policy = GaussianThompson(n_arms=6)
    worst = 0.0
    for step in range(1500):
        arm, _ = policy.choose(rng=rng)
        if step % 500 == 0 or step in (1, 3, 7, 12, 40):
            full = _quad_student(*policy.posterior())
            worst = max(worst, np.abs(policy.probabilities() - full).max())
        policy.update(arm, float(rng.normal(means[arm], 1.0)))
    assert worst < AGREEMENT


def test_student_argmax_matches_posterior_draws_with_heavy_tails():
    rng = np.random.default_rng(2)
    loc, scale, df = (
        np.array([0.0, 0.3, -0.2, 1.0]),
        np.array([1.0, 0.5, 2.0, 0.1]),
        np.array([2.0, 3.5, 1.2, 40.0]),
    )
    probabilities = StudentArgmax().probabilities(loc, scale, df)
    np.testing.assert_allclose(probabilities, _quad_student(loc, scale, df), atol=1e-10)
    draws = 1_000_000
    values = loc + scale * rng.standard_t(df, size=(draws, 4))
    frequency = np.bincount(np.argmax(values, axis=1), minlength=4) / draws
    error = np.sqrt(probabilities * (1 - probabilities) / draws)
    assert np.all(np.abs(frequency - probabilities) <= 4.5 * error)


def test_normal_argmax_matches_the_full_normal_quadrature():
    rng = np.random.default_rng(4)
    worst = 0.0
    for trial in range(1000):
        n_arms = int(rng.integers(2, 60))
        means = rng.normal(0, [1.0, 0.05, 3.0][trial % 3], n_arms)
        sds = np.exp(rng.normal(0, [1.0, 2.0, 0.1][trial % 3], n_arms))
        out = np.empty((1, n_arms))
        kernels.normal_argmax(means[None], sds[None], np.ones(n_arms, dtype=bool), out)
        worst = max(worst, np.abs(out[0] - prob_best(mean=means, se=sds)).max())
    assert worst < AGREEMENT


def test_lints_propensities_match_score_draws():
    rng = np.random.default_rng(8)
    policy = LinTS(v=0.7, n_arms=4, n_features=3)
    for _ in range(60):
        x = rng.normal(size=3)
        arm, _ = policy.choose(x, rng=rng)
        policy.update(arm, float(x @ [0.2, -0.1, 0.3] + rng.normal()), x)
    x = rng.normal(size=3)
    probabilities = policy.probabilities(x)
    means, sds = np.empty((1, 4)), np.empty((1, 4))
    from splitlab.bandits import _linear_kernels

    arrays = policy.arrays
    _linear_kernels.score_moments(arrays["A_inv"], arrays["theta"], x, 0.7, means[0], sds[0])
    draws = 1_000_000
    scores = means + sds * rng.standard_normal((draws, 4))
    frequency = np.bincount(np.argmax(scores, axis=1), minlength=4) / draws
    error = np.sqrt(probabilities * (1 - probabilities) / draws)
    assert np.all(np.abs(frequency - probabilities) <= 4.5 * error + 1e-12)
    np.testing.assert_allclose(probabilities, prob_best(mean=means[0], se=sds[0]), atol=AGREEMENT)


@pytest.mark.parametrize("df", [0.5, 1.0, 2.0, 3.7, 10.0, 99.0, 999.0, 1000.0, 1e4, 1e7, 1e12])
def test_student_t_tail_matches_scipy(df):
    z = np.linspace(-60, 60, 2401)
    scale = kernels.log_beta(0.5 * df, 0.5)
    ours = np.array([kernels.student_t_tail(value, df, scale) for value in z])
    # the expansion used from df = 1000 on is accurate in absolute terms (what P(best) needs)
    np.testing.assert_allclose(ours, special.stdtr(df, -np.abs(z)), rtol=1e-9, atol=5e-12)


def test_log_beta_and_trigamma_match_scipy():
    values = np.array([0.05, 0.5, 1.0, 3.0, 9.9, 10.0, 55.5, 1e3])  # scipy loses ~1e-10 beyond
    for a in values:
        for b in values:
            assert kernels.log_beta(a, b) == pytest.approx(
                special.betaln(a, b), rel=1e-12, abs=1e-12
            )
    for b in [1e5, 1e7, 1e12]:  # B(1, b) = 1 / b
        assert kernels.log_beta(1.0, b) == pytest.approx(-np.log(b), rel=1e-15, abs=0)
    for a in [*values, 1e5, 1e7, 1e12]:
        assert kernels.trigamma(a) == pytest.approx(special.polygamma(1, a), rel=1e-13, abs=0)


@pytest.mark.parametrize("a, b", [(10.0, 1e7), (1e3, 1e7), (1e7, 1e12), (0.05, 1e12)])
def test_log_beta_keeps_its_digits_where_lgamma_differences_lose_them(a, b):
    # B(a + 1, b) = B(a, b) a / (a + b); scipy's betaln loses ~1e-8 here
    assert kernels.log_beta(a + 1.0, b) == pytest.approx(
        kernels.log_beta(a, b) + np.log(a / (a + b)), rel=1e-15, abs=1e-12
    )


@pytest.mark.parametrize(
    "make, reward",
    [
        (lambda: ThompsonSampling(n_arms=6), lambda rng: float(rng.random() < 0.4)),
        (lambda: GaussianThompson(n_arms=6), lambda rng: float(rng.normal(1.0, 2.0))),
    ],
    ids=["beta", "student"],
)
def test_a_restored_copy_computes_bit_identical_probabilities(make, reward):
    rng = np.random.default_rng(6)
    policy = make()
    for _ in range(300):
        arm, _ = policy.choose(rng=rng)
        policy.update(arm, reward(rng))
    restored = type(policy).from_state(policy.state())  # state() is a sync point
    for _ in range(300):
        ours, theirs = policy.probabilities(), restored.probabilities()
        np.testing.assert_array_equal(ours, theirs)
        arm = int(np.argmax(ours))
        value = reward(rng)
        policy.update(arm, value)
        restored.update(arm, value)


def test_posteriors_below_the_float64_range_are_refused():
    with pytest.raises(InvalidArgumentError, match="prior"):
        BetaArgmax().probabilities(np.array([1e-3, 1e-3, 5.0]), np.array([50.0, 1e4, 5.0]))


@pytest.mark.parametrize("n_arms", [3, 30, 128])
def test_many_overlapping_normal_arms_keep_the_agreement(n_arms):
    # the maximum of many overlapping arms is much narrower than any one of them
    rng = np.random.default_rng(n_arms)
    out = np.empty((1, n_arms))
    everything = np.ones(n_arms, dtype=bool)
    kernels.normal_argmax(np.zeros((1, n_arms)), np.ones((1, n_arms)), everything, out)
    np.testing.assert_allclose(out[0], 1.0 / n_arms, rtol=0, atol=1e-9)
    means, sds = rng.normal(0, 0.05, n_arms), rng.uniform(0.9, 1.1, n_arms)
    kernels.normal_argmax(means[None], sds[None], everything, out)
    np.testing.assert_allclose(out[0], prob_best(mean=means, se=sds), rtol=0, atol=AGREEMENT)
