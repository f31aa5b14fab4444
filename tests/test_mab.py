"""Context-free bandit policies: exact probabilities against the algorithms' own sampling,
closed forms, quadrature against scipy, merge/decay/arms/state, bad input, regret."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from splitlab.bandits._kernels import seed_kernels
from splitlab.bandits.mab import (
    EXP3,
    KLUCB,
    UCB1,
    EpsilonGreedy,
    FixedSplit,
    GaussianThompson,
    Softmax,
    ThompsonSampling,
    TopTwoThompson,
    top_two_probabilities,
)
from splitlab.bandits.propensity import student_t_prob_best
from splitlab.errors import InvalidArgumentError

POLICIES = {
    "EpsilonGreedy": lambda: EpsilonGreedy(epsilon=0.3, decay=0.01, n_arms=4),
    "UCB1": lambda: UCB1(n_arms=4),
    "KLUCB": lambda: KLUCB(c=0.5, n_arms=4),
    "Softmax": lambda: Softmax(tau=0.2, n_arms=4),
    "EXP3": lambda: EXP3(gamma=0.3, n_arms=4),
    "FixedSplit": lambda: FixedSplit([1, 2, 3, 4]),
    "ThompsonSampling": lambda: ThompsonSampling(n_arms=4),
    "TopTwoThompson": lambda: TopTwoThompson(beta=0.3, n_arms=4),
    "GaussianThompson": lambda: GaussianThompson(n_arms=4),
}
RATES = np.array([0.3, 0.45, 0.5, 0.4])


def fed(name: str, size: int = 40, seed: int = 0):
    policy = POLICIES[name]()
    rng = np.random.default_rng(seed)
    arms = np.arange(size) % 4
    for arm in arms:
        policy.update(arm, float(rng.random() < RATES[arm]))
    return policy


DRAWS = 10**6
# KL-UCB's choice is deterministic but for ties and its bisections are costly: fewer draws
DRAWS_FOR = {"KLUCB": 2 * 10**5}


def sampled_frequencies(policy, available=None, draws=DRAWS) -> np.ndarray:
    """Choice frequencies of the policy's own select kernel over ``draws`` copies."""
    seed_kernels(123)
    chunk = min(draws, 10**6)
    state = policy.copies(chunk)
    out = np.empty(chunk, dtype=np.int64)
    mask = np.ones(policy.n_arms, dtype=bool) if available is None else np.asarray(available)
    counts = np.zeros(policy.n_arms)
    for _ in range(draws // chunk):
        policy._select_kernel(
            *(state[name] for name in policy._statistics),
            policy._params(), np.zeros((chunk, 0)), mask, out,
        )  # fmt: skip
        counts += np.bincount(out, minlength=policy.n_arms)
    return counts / draws


@pytest.mark.parametrize("name", list(POLICIES))
def test_exact_probabilities_match_a_million_draws_of_the_algorithm(name):
    """1e-3 is ~2 standard errors of a frequency near 0.5 at 10⁶ draws, so the tolerance is
    4.5 standard errors where that is larger (1e-3 holds for probabilities below 0.05)."""
    policy, draws = fed(name), DRAWS_FOR.get(name, DRAWS)
    for mask in (None, np.array([True, False, True, True])):
        exact = policy.probabilities(available=mask)
        tolerance = np.maximum(1e-3, 4.5 * np.sqrt(exact * (1 - exact) / draws))
        assert (np.abs(sampled_frequencies(policy, mask, draws) - exact) <= tolerance).all()


def test_ucb_tie_is_uniform_over_the_tied_arms():
    policy = UCB1(n_arms=4)
    for arm, reward in [(0, 1.0), (1, 1.0), (2, 0.0), (3, 1.0), (0, 0.0), (1, 0.0), (2, 0.0)]:
        policy.update(arm, reward)
    np.testing.assert_array_equal(policy.probabilities(), [0, 0, 0, 1])
    policy.update(3, 0.0)  # now arms 0, 1, 3 have identical statistics
    np.testing.assert_allclose(policy.probabilities(), [1 / 3, 1 / 3, 0, 1 / 3])
    assert UCB1(n_arms=5).probabilities().tolist() == [0.2] * 5  # unplayed arms tie


def test_epsilon_greedy_closed_form():
    policy = EpsilonGreedy(epsilon=0.2, decay=0.5, n_arms=4)
    for arm, reward in [(0, 1.0), (1, 0.2), (2, 1.0), (3, 0.5)]:
        policy.update(arm, reward)
    epsilon = 0.2 / (1 + 0.5 * 4)
    expected = epsilon / 4 + (1 - epsilon) * np.array([0.5, 0, 0.5, 0])
    np.testing.assert_allclose(policy.probabilities(), expected)


def test_top_two_formula_matches_simulated_resampling():
    rng = np.random.default_rng(2)
    pi = np.array([0.5, 0.3, 0.15, 0.05])
    beta, draws = 0.4, 10**6
    leaders = rng.choice(4, size=draws, p=pi)
    challengers = rng.choice(4, size=(draws, 30), p=pi)
    first_other = np.argmax(challengers != leaders[:, None], axis=1)
    chosen = np.where(rng.random(draws) < beta, leaders, challengers[np.arange(draws), first_other])
    np.testing.assert_allclose(
        np.bincount(chosen, minlength=4) / draws, top_two_probabilities(pi, beta), atol=1e-3
    )


def test_beta_quadrature_matches_scipy_quad():
    policy = ThompsonSampling(prior=(0.5, 2.0), n_arms=3)
    policy.arrays["alpha"][0] = [3.5, 40.0, 1.2]
    policy.arrays["beta"][0] = [8.0, 120.0, 3.0]
    policy._touch()
    posteriors = [
        stats.beta(a, b) for a, b in zip([3.5, 40.0, 1.2], [8.0, 120.0, 3.0], strict=True)
    ]
    expected = [
        integrate.quad(
            lambda x, k=k: posteriors[k].pdf(x)
            * np.prod([p.cdf(x) for j, p in enumerate(posteriors) if j != k]),
            0, 1, epsabs=1e-12, epsrel=1e-12, limit=200,
        )[0]
        for k in range(3)
    ]  # fmt: skip
    np.testing.assert_allclose(policy.probabilities(), expected, atol=1e-6)


def test_student_t_quadrature_matches_scipy_quad():
    loc, scale, df = np.array([0.0, 0.3, -0.5]), np.array([1.0, 0.2, 2.0]), np.array([3, 20, 2.5])
    posteriors = [stats.t(d, m, s) for m, s, d in zip(loc, scale, df, strict=True)]
    expected = [
        integrate.quad(
            lambda x, k=k: posteriors[k].pdf(x)
            * np.prod([p.cdf(x) for j, p in enumerate(posteriors) if j != k]),
            -np.inf, np.inf, epsabs=1e-12, limit=200,
        )[0]
        for k in range(3)
    ]  # fmt: skip
    np.testing.assert_allclose(student_t_prob_best(loc, scale, df), expected, atol=1e-6)


@pytest.mark.parametrize("name", list(POLICIES))
def test_merging_two_halves_equals_the_whole(name):
    whole, left, right = POLICIES[name](), POLICIES[name](), POLICIES[name]()
    rng = np.random.default_rng(4)
    for i in range(200):
        arm = i % 4
        reward = float(rng.random() < RATES[arm])
        whole.update(arm, reward)
        (left if i % 2 else right).update(arm, reward)
    left.merge(right)
    if name == "EXP3":  # importance weights came from each half's own probabilities
        np.testing.assert_allclose(left.probabilities(), whole.probabilities(), atol=0.05)
        return
    for key in whole._statistics:
        # atol: GaussianThompson's mean corrections are rounding errors, |c| < ulp(mean) / 2
        np.testing.assert_allclose(left.arrays[key], whole.arrays[key], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(left.probabilities(), whole.probabilities(), atol=1e-12)


def test_discount_weights_each_observation_geometrically():
    policy = ThompsonSampling(prior=(1, 1), n_arms=2, discount=0.9)
    for reward in [1.0, 0.0, 1.0]:
        policy.update(0, reward)
    np.testing.assert_allclose(policy.arrays["alpha"][0, 0], 1 + 0.81 + 1.0)
    np.testing.assert_allclose(policy.arrays["beta"][0, 0], 1 + 0.9)
    policy.decay(0.5)  # halfway back to the prior
    np.testing.assert_allclose(policy.arrays["alpha"][0, 0], 1 + 0.5 * 1.81)
    counts = UCB1(n_arms=2, discount=0.5)
    counts.update(1, 1.0)
    counts.update(0, 1.0)
    np.testing.assert_allclose(counts.arrays["counts"][0], [1.0, 0.5])


def test_add_and_remove_arm():
    policy = fed("ThompsonSampling")
    before = policy.arrays["alpha"][0].copy()
    assert policy.add_arm() == 4
    assert policy.arrays["alpha"][0, 4] == 1.0 and policy.probabilities().shape == (5,)
    policy.remove_arm(1)
    np.testing.assert_array_equal(policy.arrays["alpha"][0], [*before[[0, 2, 3]], 1.0])
    np.testing.assert_allclose(policy.probabilities().sum(), 1.0)
    split = FixedSplit([1, 3])
    split.add_arm()
    np.testing.assert_allclose(split.probabilities(), [1 / 6, 1 / 2, 1 / 3])
    split.remove_arm(0)
    np.testing.assert_allclose(split.probabilities(), [0.6, 0.4])


@pytest.mark.parametrize("name", list(POLICIES))
def test_state_round_trip_gives_identical_next_decisions(name):
    policy = fed(name)
    restored = type(policy).from_state(policy.state())
    first, second = np.random.default_rng(9), np.random.default_rng(9)
    for i in range(20):
        assert policy.choose(rng=first) == restored.choose(rng=second)
        policy.update(i % 4, 1.0)
        restored.update(i % 4, 1.0)
    assert repr(restored) == repr(policy)


def test_choose_fast_path_matches_the_hashed_uniform_path():
    policy = fed("Softmax")
    rng = np.random.default_rng(3)
    uniforms = np.random.default_rng(3).random(50)
    for uniform in uniforms:
        assert policy.choose(rng=rng) == policy.choose_with_uniform(uniform)


@pytest.mark.parametrize("name", list(POLICIES))
def test_bad_input_names_the_argument(name):
    policy = POLICIES[name]()
    cases = [
        (lambda: policy.update(4, 1.0), "arm"),
        (lambda: policy.update("b", 1.0), "arm"),
        (lambda: policy.update(0, float("nan")), "reward"),
        (lambda: policy.update(0, 1.0, context=[1.0]), "contexts"),
        (lambda: policy.probabilities(context=[1.0]), "context"),
        (lambda: policy.choose(context=[1.0]), "context"),
        (lambda: policy.update(0, 1.0, weight=-1.0), "weight"),
    ]
    if policy._reward_range is not None:
        cases.append((lambda: policy.update(0, 1.5), "reward"))
    for call, argument in cases:
        with pytest.raises(InvalidArgumentError) as info:
            call()
        assert info.value.argument == argument


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: EpsilonGreedy(epsilon=1.5), "epsilon"),
        (lambda: UCB1(alpha=-1), "alpha"),
        (lambda: Softmax(tau=0), "tau"),
        (lambda: EXP3(gamma=0), "gamma"),
        (lambda: ThompsonSampling(prior=(0, 1)), "prior"),
        (lambda: GaussianThompson(prior=(0, 1, 1)), "prior"),
        (lambda: TopTwoThompson(beta=2), "beta"),
        (lambda: FixedSplit([1, -1]), "weights"),
        (lambda: FixedSplit([1, 1], n_arms=3), "n_arms"),
    ],
)
def test_bad_hyperparameters_name_the_argument(build, argument):
    with pytest.raises(InvalidArgumentError) as info:
        build()
    assert info.value.argument == argument


def cumulative_regret(policy, means, horizon, copies, seed):
    """Mean cumulative regret of ``copies`` runs of the policy's own select/update kernels."""
    seed_kernels(seed)
    rng = np.random.default_rng(seed)
    state = policy.copies(copies)
    arrays = [state[name] for name in policy._statistics]
    params, contexts = policy._params(), np.zeros((copies, 0))
    every, weights, rows = np.ones(means.size, dtype=bool), np.ones(copies), np.arange(copies)
    arms = np.empty(copies, dtype=np.int64)
    regret = 0.0
    for _ in range(horizon):
        policy._select_kernel(*arrays, params, contexts, every, arms)
        rewards = (rng.random(copies) < means[arms]).astype(float)
        regret += (means.max() - means[arms]).sum()
        policy._update_kernel(*arrays, params, rows, arms, rewards, contexts, weights)
    return regret / copies


def test_thompson_kl_ucb_and_ucb1_beat_epsilon_greedy_on_ten_bernoulli_arms():
    means = np.random.default_rng(1).uniform(0, 1, 10)
    regret = {
        policy: cumulative_regret(policy(n_arms=10), means, 10_000, 10, seed=5)
        for policy in (EpsilonGreedy, UCB1, KLUCB, ThompsonSampling)
    }
    assert regret[ThompsonSampling] < regret[KLUCB] < regret[UCB1] < regret[EpsilonGreedy]
