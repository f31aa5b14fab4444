"""Linear contextual policies: LinUCB, LinTS, LogisticTS, SquareCB (splitlab.bandits.linear)."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from splitlab.bandits.linear import LinTS, LinUCB, LogisticTS, SquareCB
from splitlab.errors import InvalidArgumentError

ALL = [LinUCB, LinTS, LogisticTS, SquareCB]
RIDGE = [LinUCB, LinTS, SquareCB]


def stream(size, n_arms=3, d=3, seed=0):
    rng = np.random.default_rng(seed)
    arms = rng.integers(0, n_arms, size)
    contexts = rng.normal(size=(size, d))
    rewards = (rng.random(size) < 0.3 + 0.2 * (contexts[:, 0] > 0) + 0.1 * arms).astype(float)
    return arms, rewards, contexts


def fed(cls, size=300, n_arms=3, d=3, seed=0, **keywords):
    policy = cls(n_arms=n_arms, n_features=d, **keywords)
    arms, rewards, contexts = stream(size, n_arms, d, seed)
    for arm, reward, context in zip(arms, rewards, contexts, strict=True):
        policy.update(arm, reward, context)
    return policy


def ridge_from_data(arms, rewards, contexts, arm, l2=1.0):
    rows = arms == arm
    A = l2 * np.eye(contexts.shape[1]) + contexts[rows].T @ contexts[rows]
    b = contexts[rows].T @ rewards[rows]
    return A, b


@njit
def _seed_numba(seed):
    np.random.seed(seed)  # noqa: NPY002 (numba's own generator, used by the select kernels)


# ---------------------------------------------------------------------- LinUCB


def test_linucb_scores_match_a_direct_solve():
    arms, rewards, contexts = stream(400, seed=1)
    policy = fed(LinUCB, 400, seed=1, alpha=0.7, l2=2.0)
    x = np.array([0.3, -1.2, 0.8])
    scores = []
    for arm in range(3):
        A, b = ridge_from_data(arms, rewards, contexts, arm, l2=2.0)
        np.testing.assert_allclose(policy.arrays["A"][0, arm], A, rtol=1e-12)
        np.testing.assert_allclose(policy.arrays["b"][0, arm], b, rtol=1e-12, atol=1e-12)
        theta = np.linalg.solve(A, b)
        scores.append(x @ theta + 0.7 * np.sqrt(x @ np.linalg.solve(A, x)))
    expected = np.zeros(3)
    expected[int(np.argmax(scores))] = 1.0
    np.testing.assert_array_equal(policy.probabilities(x), expected)


def test_linucb_ties_are_shared_and_broken_at_random():
    policy = LinUCB(n_arms=4, n_features=2)
    np.testing.assert_array_equal(policy.probabilities([1.0, 2.0]), np.full(4, 0.25))
    mask = np.array([True, False, True, True])
    np.testing.assert_allclose(policy.probabilities([1.0, 2.0], mask), [1 / 3, 0, 1 / 3, 1 / 3])
    rng = np.random.default_rng(0)
    arms = [policy.choose([1.0, 2.0], mask, rng=rng)[0] for _ in range(3000)]
    assert set(arms) == {0, 2, 3}


def test_sherman_morrison_inverse_tracks_the_exact_inverse():
    rng = np.random.default_rng(2)
    policy = LinUCB(n_arms=1, n_features=6, l2=0.5)
    assert LinUCB.refresh_every == 100
    worst = 0.0
    for step in range(1, 251):
        policy.update(0, rng.normal(), rng.normal(size=6) * 3, weight=rng.uniform(0.1, 2))
        A, A_inv = policy.arrays["A"][0, 0], policy.arrays["A_inv"][0, 0]
        exact = np.linalg.inv(A)
        drift = np.abs(A_inv - exact).max() / np.abs(exact).max()
        worst = max(worst, drift)
        theta = np.linalg.solve(A, policy.arrays["b"][0, 0])
        np.testing.assert_allclose(policy.arrays["theta"][0, 0], theta, rtol=1e-9, atol=1e-12)
        if step % 100 == 0:  # just refreshed by Cholesky
            assert drift < 1e-13
    assert worst < 1e-9


def test_batch_probabilities_equal_one_at_a_time():
    contexts = np.random.default_rng(3).normal(size=(50, 3))
    for cls in ALL:
        policy = fed(cls, 200)
        mask = np.array([True, True, False])
        batch = policy._probabilities_batch(contexts, mask)
        single = np.stack([policy.probabilities(row, mask) for row in contexts])
        np.testing.assert_allclose(batch, single, atol=1e-9, err_msg=cls.__name__)
        arms, propensities = policy.choose_batch(contexts, mask, rng=0)
        assert (arms != 2).all()
        np.testing.assert_allclose(propensities, single[np.arange(50), arms])


# ---------------------------------------------------------------------- Thompson propensities


def monte_carlo_choice_frequencies(policy, x, scale, draws=1_000_000, seed=0):
    """Agrawal & Goyal's own sampling: θ̃_k ~ N(θ_k, scale² A_k⁻¹), play argmax xᵀθ̃_k."""
    rng = np.random.default_rng(seed)
    scores = np.empty((draws, policy.n_arms))
    for arm in range(policy.n_arms):
        A = policy.arrays["A"][0, arm]
        theta = np.linalg.solve(A, policy.arrays["b"][0, arm])
        factor = np.linalg.cholesky(np.linalg.inv(A))
        sampled = theta + scale * rng.standard_normal((draws, x.size)) @ factor.T
        scores[:, arm] = sampled @ x
    return np.bincount(scores.argmax(axis=1), minlength=policy.n_arms) / draws


@pytest.mark.parametrize(
    ("cls", "keywords", "scale"), [(LinTS, {"v": 0.8}, 0.8), (LogisticTS, {}, 1.0)]
)
def test_thompson_propensities_match_monte_carlo_of_the_sampler(cls, keywords, scale):
    policy = fed(cls, 60, seed=5, **keywords)
    x = np.array([0.5, -0.4, 1.0])
    probabilities = policy.probabilities(x)
    assert 0.05 < probabilities.min()  # a case where every arm matters
    frequencies = monte_carlo_choice_frequencies(policy, x, scale)
    np.testing.assert_allclose(probabilities, frequencies, atol=1e-3)


@pytest.mark.parametrize("cls", [LinUCB, LinTS, LogisticTS, SquareCB])
def test_select_kernel_draws_follow_the_probabilities(cls):
    policy = fed(cls, 60, seed=5)
    x = np.array([0.5, -0.4, 1.0])
    copies = 100_000
    arrays = policy.copies(copies)
    out = np.empty(copies, dtype=np.int64)
    _seed_numba(1)
    mask = np.array([True, True, True])
    policy._select_kernel(
        *(arrays[name] for name in cls._statistics),
        policy._params(), np.repeat(x[None], copies, axis=0), mask, out,
    )  # fmt: skip
    frequencies = np.bincount(out, minlength=3) / copies
    probabilities = policy.probabilities(x)
    tolerance = 4.5 * np.sqrt(probabilities * (1 - probabilities) / copies) + 1e-12
    assert (np.abs(frequencies - probabilities) <= tolerance).all()


# ---------------------------------------------------------------------- SquareCB


def test_squarecb_inverse_gap_weighting_closed_form():
    policy = SquareCB(gamma=4.0, gamma_exponent=0.5, n_arms=4, n_features=2)
    for arm, reward, context in [(0, 1.0, [1, 0]), (1, 0.5, [1, 0]), (2, 0.5, [1, 0])] * 2:
        policy.update(arm, reward, context)
    x = np.array([1.0, 0.0])
    predictions = policy.arrays["theta"][0] @ x  # (2/3, 1/3, 1/3, 0)
    gamma = 4.0 * np.sqrt(6)
    assert policy.learning_rate() == pytest.approx(gamma)
    expected = 1 / (4 + gamma * (predictions[0] - predictions))
    expected[0] = 1 - expected[1:].sum()
    np.testing.assert_allclose(policy.probabilities(x), expected, rtol=1e-12)
    # arms 1 and 2 tie for best among {1, 2, 3}: they share what arm 3 leaves
    masked = policy.probabilities(x, available=[1, 2, 3])
    third = 1 / (3 + gamma * (predictions[1] - predictions[3]))
    np.testing.assert_allclose(masked, [0, (1 - third) / 2, (1 - third) / 2, third], rtol=1e-12)


# ---------------------------------------------------------------------- merge, state, decay


@pytest.mark.parametrize("cls", RIDGE)
def test_merging_two_halves_equals_the_whole_exactly(cls):
    arms, rewards, contexts = stream(500, seed=7)
    whole, left, right = (cls(n_arms=3, n_features=3) for _ in range(3))
    for i in range(500):
        whole.update(arms[i], rewards[i], contexts[i])
        (left if i % 2 else right).update(arms[i], rewards[i], contexts[i])
    left.merge(right)
    for name in ("A", "b", "updates"):
        np.testing.assert_allclose(left.arrays[name], whole.arrays[name], rtol=1e-12, atol=1e-12)
    for name in ("A_inv", "theta"):  # caches rebuilt from the merged sums
        np.testing.assert_allclose(left.arrays[name], whole.arrays[name], rtol=1e-9, atol=1e-12)
    x = contexts[0]
    np.testing.assert_allclose(left.probabilities(x), whole.probabilities(x), atol=1e-9)


def test_logistic_merge_is_the_documented_approximation():
    arms, rewards, contexts = stream(2000, seed=8)
    whole, left, right = (LogisticTS(n_arms=3, n_features=3) for _ in range(3))
    for i in range(2000):
        whole.update(arms[i], rewards[i], contexts[i])
        (left if i % 2 else right).update(arms[i], rewards[i], contexts[i])
    left.merge(right)
    for arm in range(3):
        gap = left.arrays["theta"][0, arm] - whole.arrays["theta"][0, arm]
        sd = np.sqrt(np.diag(whole.arrays["A_inv"][0, arm]))
        assert (np.abs(gap) < 0.25 * sd).all()
        precision_gap = left.arrays["A"][0, arm] - whole.arrays["A"][0, arm]
        assert np.linalg.norm(precision_gap) < 0.05 * np.linalg.norm(whole.arrays["A"][0, arm])
    for x in contexts[:20]:
        np.testing.assert_allclose(left.probabilities(x), whole.probabilities(x), atol=0.05)


def test_logistic_online_laplace_is_close_to_the_batch_posterior_mode():
    arms, rewards, contexts = stream(3000, seed=9)
    policy = LogisticTS(n_arms=3, n_features=3)
    policy.update_batch(arms, rewards, contexts)
    for arm in range(3):
        x, r = contexts[arms == arm], rewards[arms == arm]
        mode = np.zeros(3)
        for _ in range(50):  # Newton on the penalized log-likelihood (prior N(0, I))
            p = 1 / (1 + np.exp(-x @ mode))
            hessian = np.eye(3) + x.T @ (x * (p * (1 - p))[:, None])
            mode += np.linalg.solve(hessian, x.T @ (r - p) - mode)
        sd = np.sqrt(np.diag(np.linalg.inv(hessian)))
        assert (np.abs(policy.arrays["theta"][0, arm] - mode) < 0.25 * sd).all()


@pytest.mark.parametrize("cls", ALL)
def test_state_round_trip_continues_with_identical_decisions(cls):
    policy = fed(cls, 250)
    restored = cls.from_state(policy.state())
    for name, array in policy.arrays.items():
        np.testing.assert_array_equal(restored.arrays[name], array)
    arms, rewards, contexts = stream(40, seed=3)
    first, second = np.random.default_rng(7), np.random.default_rng(7)
    for i in range(40):
        assert policy.choose(contexts[i], rng=first) == restored.choose(contexts[i], rng=second)
        policy.update(arms[i], rewards[i], contexts[i])
        restored.update(arms[i], rewards[i], contexts[i])


def test_state_with_only_the_sums_rebuilds_the_caches():
    policy = fed(LinTS, 250)
    state = policy.state()
    state["arrays"] = {name: state["arrays"][name] for name in ("A", "b", "updates")}
    restored = LinTS.from_state(state)
    np.testing.assert_allclose(restored.arrays["A_inv"], policy.arrays["A_inv"], rtol=1e-9)
    x = np.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(restored.probabilities(x), policy.probabilities(x), atol=1e-9)
    stale = policy.state()
    stale["arrays"]["theta"] = stale["arrays"]["theta"] + 1.0  # caches that disagree
    np.testing.assert_allclose(LinTS.from_state(stale).arrays["theta"], policy.arrays["theta"])


def test_corrupt_state_raises():
    state = fed(LinUCB, 50).state()
    broken = {**state, "arrays": {"A": state["arrays"]["A"]}}
    with pytest.raises(InvalidArgumentError, match="lacks"):
        LinUCB.from_state(broken)
    bad_a = {**state, "arrays": {**state["arrays"], "A": -state["arrays"]["A"]}}
    with pytest.raises(InvalidArgumentError, match="positive definite"):
        LinUCB.from_state(bad_a)
    nan_b = {**state, "arrays": {**state["arrays"], "b": state["arrays"]["b"] * np.nan}}
    with pytest.raises(InvalidArgumentError, match="NaN"):
        LinUCB.from_state(nan_b)


@pytest.mark.parametrize("cls", ALL)
def test_decay_shrinks_toward_the_prior_and_rebuilds_the_caches(cls):
    policy = fed(cls, 200, l2=2.0)
    A, b = policy.arrays["A"].copy(), policy.arrays["b"].copy()
    prior = 2.0 * np.eye(3)
    policy.decay(0.25)
    np.testing.assert_allclose(policy.arrays["A"], prior + 0.25 * (A - prior), rtol=1e-12)
    np.testing.assert_allclose(policy.arrays["b"], 0.25 * b, rtol=1e-12)
    np.testing.assert_allclose(
        policy.arrays["A_inv"], np.linalg.inv(policy.arrays["A"]), rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(
        policy.arrays["theta"][..., None],
        np.linalg.solve(policy.arrays["A"], policy.arrays["b"][..., None]),
        rtol=1e-9, atol=1e-12,
    )  # fmt: skip
    policy.decay(0.0)
    np.testing.assert_allclose(policy.arrays["A"][0], np.broadcast_to(prior, (3, 3, 3)))


def test_discount_weights_older_observations_geometrically():
    arms, rewards, contexts = stream(120, seed=11)
    discounted = LinUCB(n_arms=3, n_features=3, discount=0.97)
    weighted = LinUCB(n_arms=3, n_features=3)
    for i in range(120):
        discounted.update(arms[i], rewards[i], contexts[i])
    weighted.update_batch(arms, rewards, contexts, weights=0.97 ** np.arange(119, -1, -1))
    prior = np.eye(3)
    expected_A = prior + 0.97**0 * (weighted.arrays["A"] - prior)
    np.testing.assert_allclose(discounted.arrays["A"], expected_A, rtol=1e-10)
    np.testing.assert_allclose(discounted.arrays["b"], weighted.arrays["b"], rtol=1e-10)
    np.testing.assert_allclose(
        discounted.arrays["theta"], weighted.arrays["theta"], rtol=1e-8, atol=1e-12
    )


def test_discounted_policy_recovers_after_a_change_point():
    policy = LinUCB(alpha=0.5, n_arms=2, n_features=1, discount=0.95)
    x = np.ones(1)
    for _ in range(200):
        policy.update(0, 1.0, x)
        policy.update(1, 0.0, x)
    for _ in range(100):  # the arms swap
        policy.update(0, 0.0, x)
        policy.update(1, 1.0, x)
    assert policy.probabilities(x)[1] == 1.0


@pytest.mark.parametrize("cls", ALL)
def test_add_and_remove_arm(cls):
    policy = fed(cls, 150)
    kept = {name: array[:, 1:].copy() for name, array in policy.arrays.items()}
    new = policy.add_arm()
    assert new == 3
    np.testing.assert_array_equal(policy.arrays["A_inv"][0, 3], np.eye(3))
    np.testing.assert_array_equal(policy.arrays["theta"][0, 3], np.zeros(3))
    policy.update(3, 1.0, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(
        policy.arrays["A_inv"][0, 3], np.linalg.inv(policy.arrays["A"][0, 3]), rtol=1e-12
    )
    policy.remove_arm(0)
    for name, array in kept.items():
        np.testing.assert_array_equal(policy.arrays[name][:, :2], array[:, :2])
    probabilities = policy.probabilities([0.2, 0.1, -0.3])
    assert probabilities.shape == (3,)
    assert probabilities.sum() == pytest.approx(1.0)


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize("cls", ALL)
def test_bad_input_raises_naming_the_argument(cls):
    policy = cls(n_arms=3, n_features=3)
    x = np.array([1.0, 0.0, -1.0])
    cases = [
        (lambda: policy.probabilities(np.ones(4)), "context"),
        (lambda: policy.probabilities([1.0, np.nan, 0.0]), "context"),
        (lambda: policy.choose(None), "context"),
        (lambda: policy.update(0, 1.0, np.ones(2)), "context"),
        (lambda: policy.update(0, 1.0, [np.inf, 0, 0]), "context"),
        (lambda: policy.update(3, 1.0, x), "arm"),
        (lambda: policy.update(-1, 1.0, x), "arm"),
        (lambda: policy.update(0, float("nan"), x), "reward"),
        (lambda: policy.update(0, 1.0, x, weight=-1.0), "weight"),
        (lambda: policy.update_batch([0, 5], [1.0, 1.0], [x, x]), "arms"),
        (lambda: policy.choose_batch(np.ones((5, 2))), "context"),
        (lambda: policy.remove_arm(7), "arm"),
        (lambda: policy.merge(cls(n_arms=3, n_features=2)), "other"),
    ]
    if cls is LogisticTS:
        cases.append((lambda: policy.update(0, 1.5, x), "reward"))
        cases.append((lambda: policy.update(0, -0.1, x), "reward"))
    for call, argument in cases:
        with pytest.raises(InvalidArgumentError) as info:
            call()
        assert info.value.argument == argument


def test_bad_hyperparameters_raise_naming_the_argument():
    cases = [
        (lambda: LinUCB(alpha=-1.0), "alpha"),
        (lambda: LinUCB(l2=0.0), "l2"),
        (lambda: LinTS(v=float("nan")), "v"),
        (lambda: LogisticTS(l2=-2.0), "l2"),
        (lambda: SquareCB(gamma=-1.0), "gamma"),
        (lambda: SquareCB(gamma_exponent=float("inf")), "gamma_exponent"),
        (lambda: LinUCB(n_arms=3), "n_features"),
        (lambda: LinUCB(discount=1.5), "discount"),
    ]
    for call, argument in cases:
        with pytest.raises(InvalidArgumentError) as info:
            call()
        assert info.value.argument == argument


# ---------------------------------------------------------------------- regret


def test_contextual_policies_beat_context_free_epsilon_greedy():
    """d = 5, 5 arms, T = 5,000: reward = xᵀθ*_k + N(0, 0.5²); every arm has mean 0 over
    contexts, so a context-free policy cannot do better than chance."""
    d, n_arms, horizon = 5, 5, 5000
    rng = np.random.default_rng(2024)
    true_theta = rng.normal(size=(n_arms, d))
    contexts = rng.normal(size=(horizon, d)) / np.sqrt(d)
    means = contexts @ true_theta.T
    noise = rng.normal(scale=0.5, size=(horizon, n_arms))
    best = means.max(axis=1)

    def run(policy, seed=0):
        choice_rng = np.random.default_rng(seed)
        regret = 0.0
        for t in range(horizon):
            arm, _ = policy.choose(contexts[t], rng=choice_rng)
            policy.update(arm, means[t, arm] + noise[t, arm], contexts[t])
            regret += best[t] - means[t, arm]
        return regret

    sums, counts, greedy_regret = np.zeros(n_arms), np.zeros(n_arms), 0.0
    for t in range(horizon):  # context-free ε-greedy, ε = 0.1
        if rng.random() < 0.1 or counts.min() == 0:
            arm = int(rng.integers(n_arms))
        else:
            arm = int(np.argmax(sums / counts))
        sums[arm] += means[t, arm] + noise[t, arm]
        counts[arm] += 1
        greedy_regret += best[t] - means[t, arm]

    for policy in (
        LinUCB(alpha=1.0, n_arms=n_arms, n_features=d),
        LinTS(v=0.5, n_arms=n_arms, n_features=d),
        SquareCB(n_arms=n_arms, n_features=d),
    ):
        regret = run(policy)
        assert regret < 0.25 * greedy_regret, (type(policy).__name__, regret, greedy_regret)


def test_linucb_fused_batch_decisions_equal_the_generic_path():
    from splitlab.bandits.base import Policy

    rng = np.random.default_rng(31)
    policy = LinUCB(alpha=0.7, n_arms=6, n_features=4)
    policy.update_batch(rng.integers(0, 6, 300), rng.random(300), rng.normal(size=(300, 4)))
    contexts = rng.normal(size=(5000, 4))
    for available in (None, [True, False, True, True, False, True]):
        fused = policy.choose_batch(contexts, available=available, rng=3)
        generic = Policy.choose_batch(policy, contexts, available=available, rng=3)
        np.testing.assert_array_equal(fused[0], generic[0])
        np.testing.assert_allclose(fused[1], generic[1], rtol=0, atol=0)
    fresh = LinUCB(n_arms=3, n_features=2)  # every arm tied: uniform choice
    arms, propensities = fresh.choose_batch(rng.normal(size=(30_000, 2)), rng=4)
    np.testing.assert_allclose(np.bincount(arms) / 30_000, 1 / 3, atol=4 * np.sqrt(2 / 9 / 30_000))
    assert (propensities == 1 / 3).all()
