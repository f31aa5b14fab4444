"""Policy statistics that stay exact on adversarial rewards (issue 17, "numbers a user can
trust on any data"): large offsets with a small spread, where Σr² − (Σr)²/n cancels.

Every reference is computed independently of splitlab: exact rational arithmetic
(``fractions.Fraction``) over the very float64 rewards the policy saw.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from splitlab import bandits
from splitlab.bandits import GaussianThompson, LinTS, LinUCB, SquareCB
from splitlab.errors import InvalidArgumentError
from splitlab.simulate import GaussianArms, simulate

# (offset, mean of the spread, sd of the spread)
DATASETS = {
    "1e9+N(10,2)": (1e9, 10.0, 2.0),
    "1e12+N(0,1)": (1e12, 0.0, 1.0),
    "ordinary N(3,2)": (0.0, 3.0, 2.0),
}
TOLERANCE = 1e-9


def rewards_for(dataset: str, size: int, seed: int) -> np.ndarray:
    offset, mean, sd = DATASETS[dataset]
    return offset + np.random.default_rng(seed).normal(mean, sd, size)


def exact_moments(values, weights=None) -> tuple[Fraction, Fraction, Fraction]:
    """(Σw, weighted mean, Σw (y − ȳ)²) in exact rational arithmetic."""
    ys = [Fraction(float(v)) for v in values]
    ws = [Fraction(1)] * len(ys) if weights is None else [Fraction(float(w)) for w in weights]
    total = sum(ws)
    mean = sum(w * y for w, y in zip(ws, ys, strict=True)) / total
    return total, mean, sum(w * (y - mean) ** 2 for w, y in zip(ws, ys, strict=True))


def relative_error(value: float, exact: Fraction) -> float:
    return float(abs(Fraction(float(value)) - exact) / abs(exact))


def assert_arm_matches(policy: GaussianThompson, arm: int, values, weights=None) -> None:
    total, mean, m2 = exact_moments(values, weights)
    counts, means, variances = policy.moments()
    assert relative_error(counts[arm], total) < TOLERANCE
    assert relative_error(means[arm], mean) < TOLERANCE
    assert relative_error(variances[arm], m2 / (total - 1)) < TOLERANCE


def fed(values_by_arm: dict[int, np.ndarray], **keywords) -> GaussianThompson:
    policy = GaussianThompson(n_arms=len(values_by_arm), **keywords)
    for arm, values in values_by_arm.items():
        for value in values:
            policy.update(arm, value)
    return policy


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_sequential_updates_give_exact_mean_and_variance(dataset):
    values = {arm: rewards_for(dataset, 400, seed=arm) for arm in range(3)}
    policy = fed(values)
    for arm in range(3):
        assert_arm_matches(policy, arm, values[arm])


def test_the_textbook_sum_formula_fails_on_this_data():
    # the reason for the centred state: the test data really is adversarial
    values = rewards_for("1e12+N(0,1)", 400, seed=0)
    total, _, m2 = exact_moments(values)
    sums, sums_sq = values.sum(), (values * values).sum()
    naive = (sums_sq - sums * sums / values.size) / (values.size - 1)
    assert relative_error(naive, m2 / (total - 1)) > 1e-3


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_weighted_updates_give_the_exact_weighted_moments(dataset):
    values = rewards_for(dataset, 300, seed=5)
    weights = np.random.default_rng(6).uniform(0.1, 3.0, values.size)
    policy = GaussianThompson(n_arms=1)
    for value, weight in zip(values, weights, strict=True):
        policy.update(0, value, weight=weight)
    total, mean, m2 = exact_moments(values, weights)
    counts, means, _ = policy.moments()
    assert relative_error(counts[0], total) < TOLERANCE
    assert relative_error(means[0], mean) < TOLERANCE
    assert relative_error(policy.arrays["m2"][0, 0], m2) < TOLERANCE


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_update_batch_equals_the_sequential_path(dataset):
    values = rewards_for(dataset, 300, seed=2)
    arms = np.random.default_rng(3).integers(0, 3, values.size)
    sequential = GaussianThompson(n_arms=3)
    for arm, value in zip(arms, values, strict=True):
        sequential.update(arm, value)
    batch = GaussianThompson(n_arms=3)
    batch.update_batch(arms, values)
    for name in GaussianThompson._statistics:
        np.testing.assert_array_equal(batch.arrays[name], sequential.arrays[name])


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_merged_replicas_give_the_exact_moments_of_the_union(dataset):
    values = rewards_for(dataset, 600, seed=7)
    arms = np.random.default_rng(8).integers(0, 2, values.size)
    replicas = [GaussianThompson(n_arms=2) for _ in range(3)]
    whole = GaussianThompson(n_arms=2)
    for i, (arm, value) in enumerate(zip(arms, values, strict=True)):
        replicas[i % 3].update(arm, value)
        whole.update(arm, value)
    merged = replicas[0]
    merged.merge(replicas[1])
    merged.merge(replicas[2])
    for arm in range(2):
        assert_arm_matches(merged, arm, values[arms == arm])
    np.testing.assert_allclose(merged.probabilities(), whole.probabilities(), atol=1e-9)


def test_merging_into_an_arm_without_data_takes_the_other_arm_whole():
    left, right = GaussianThompson(n_arms=2), GaussianThompson(n_arms=2)
    values = rewards_for("1e12+N(0,1)", 50, seed=1)
    for value in values:
        right.update(1, value)
    left.merge(right)
    assert left.arrays["counts"][0].tolist() == [0.0, 50.0]
    assert_arm_matches(left, 1, values)


@pytest.mark.parametrize("prior_mean", [0.0, 1e9])
def test_allocator_style_deltas_over_several_rounds_match_the_union(prior_mean):
    # replicas ship differences of additive_statistics since their last exchange, as the
    # Allocator's delta() does, and fold the others' in with add_statistics
    prior = (prior_mean, 1.0, 1.0, 1.0)
    replicas = [GaussianThompson(prior=prior, n_arms=2) for _ in range(2)]
    bases = [replica.additive_statistics() for replica in replicas]
    rng = np.random.default_rng(11)
    seen: dict[int, list[float]] = {0: [], 1: []}
    offset = prior_mean if prior_mean else 0.0
    for _round in range(3):
        for replica in replicas:
            for _ in range(100):
                arm = int(rng.integers(0, 2))
                value = offset + rng.normal(10.0, 2.0)
                replica.update(arm, value)
                seen[arm].append(value)
        deltas = []
        for k, replica in enumerate(replicas):
            current = replica.additive_statistics()
            deltas.append({name: current[name] - bases[k][name] for name in current})
            bases[k] = current
        for k, replica in enumerate(replicas):
            other = deltas[1 - k]
            replica.add_statistics(other)
            bases[k] = {name: bases[k][name] + other[name] for name in other}
    for replica in replicas:
        for arm in range(2):
            assert_arm_matches(replica, arm, seen[arm])


def test_additive_statistics_are_sums_about_the_prior_mean():
    policy = GaussianThompson(prior=(100.0, 1.0, 1.0, 1.0), n_arms=1)
    policy.update_batch([0, 0, 0], [101.0, 103.0, 96.0])
    shipped = policy.additive_statistics()
    assert set(shipped) == {"counts", "deviation_sums", "deviation_sums_sq"}
    np.testing.assert_allclose(shipped["counts"], [3.0])
    np.testing.assert_allclose(shipped["deviation_sums"], [1.0 + 3.0 - 4.0], atol=1e-12)
    np.testing.assert_allclose(shipped["deviation_sums_sq"], [1.0 + 9.0 + 16.0])


def test_add_statistics_rejects_bad_increments():
    policy = GaussianThompson(n_arms=2)
    good = {name: np.zeros(2) for name in ("counts", "deviation_sums", "deviation_sums_sq")}
    for bad in (
        {},
        {**good, "counts": np.array([-1.0, 0.0])},
        {**good, "deviation_sums": np.array([np.nan, 0.0])},
        {**good, "deviation_sums_sq": np.zeros(3)},
    ):
        with pytest.raises(InvalidArgumentError) as error:
            policy.add_statistics(bad)
        assert error.value.argument == "increments"


def test_decay_shrinks_count_and_m2_and_keeps_the_mean():
    values = rewards_for("1e9+N(10,2)", 200, seed=4)
    policy = fed({0: values})
    total, mean, m2 = exact_moments(values)
    policy.decay(0.25)
    assert relative_error(policy.arrays["counts"][0, 0], total / 4) < TOLERANCE
    assert relative_error(policy.moments()[1][0], mean) < TOLERANCE
    assert relative_error(policy.arrays["m2"][0, 0], m2 / 4) < TOLERANCE


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_discount_equals_exactly_weighted_moments(dataset):
    # discount d: the i-th of n observations carries weight d^(n−1−i)
    values = rewards_for(dataset, 150, seed=9)
    policy = GaussianThompson(n_arms=1, discount=0.97)
    for value in values:
        policy.update(0, value)
    weights = 0.97 ** np.arange(values.size - 1, -1, -1)
    total, mean, m2 = exact_moments(values, weights)
    assert relative_error(policy.arrays["counts"][0, 0], total) < TOLERANCE
    assert relative_error(policy.moments()[1][0], mean) < TOLERANCE
    assert relative_error(policy.arrays["m2"][0, 0], m2) < TOLERANCE


def test_posterior_matches_murphys_formulas_in_exact_arithmetic():
    values = rewards_for("1e12+N(0,1)", 300, seed=12)
    mu0, kappa0, alpha0, beta0 = 1e12 + 0.5, 2.0, 1.5, 0.5
    policy = fed({0: values}, prior=(mu0, kappa0, alpha0, beta0))
    n, mean, m2 = exact_moments(values)
    mu0_, kappa0_, alpha0_, beta0_ = (Fraction(v) for v in (mu0, kappa0, alpha0, beta0))
    kappa = kappa0_ + n
    alpha = alpha0_ + n / 2
    mu = (kappa0_ * mu0_ + n * mean) / kappa
    beta = beta0_ + m2 / 2 + kappa0_ * n * (mean - mu0_) ** 2 / (2 * kappa)
    loc, scale, df = policy.posterior()
    assert relative_error(loc[0], mu) < 1e-15
    assert relative_error(scale[0] ** 2, beta / (alpha * kappa)) < TOLERANCE
    assert df[0] == float(2 * alpha)


def test_sum_based_states_of_earlier_versions_still_load():
    values = {arm: rewards_for("ordinary N(3,2)", 100, seed=arm) for arm in range(2)}
    current = fed(values)
    old_state = current.state()
    old_state["arrays"] = {
        "counts": np.array([100.0, 100.0]),
        "reward_sums": np.array([values[0].sum(), values[1].sum()]),
        "reward_sums_sq": np.array([(values[0] ** 2).sum(), (values[1] ** 2).sum()]),
    }
    restored = GaussianThompson.from_state(old_state)
    counts, means, variances = restored.moments()
    np.testing.assert_allclose(counts, [100.0, 100.0])
    np.testing.assert_allclose(means, [values[0].mean(), values[1].mean()], rtol=1e-12)
    np.testing.assert_allclose(
        variances, [values[0].var(ddof=1), values[1].var(ddof=1)], rtol=1e-10
    )
    np.testing.assert_allclose(restored.probabilities(), current.probabilities(), atol=1e-9)
    broken = {**old_state, "arrays": {**old_state["arrays"], "reward_sums": "x"}}
    with pytest.raises(InvalidArgumentError) as error:
        GaussianThompson.from_state(broken)
    assert error.value.argument == "state"


def test_a_discounted_gaussian_thompson_simulates_with_its_means_kept():
    env = GaussianArms([1e9, 1e9 + 1.0], sd=[1.0, 1.0])
    policy = GaussianThompson(prior=(1e9, 1.0, 1.0, 1.0), discount=0.9)
    result = simulate(policy, env, 300, 4, seed=1, record=("choices", "rewards"))
    counts = result.state["counts"]
    # the discount caps the effective count at 1 / (1 − 0.9) = 10 per copy
    assert np.all(counts.sum(axis=1) <= 10.0 + 1e-9)
    means = result.state["means"] + result.state["mean_corrections"]
    assert np.all(np.abs(means - 1e9) < 10.0)  # a decayed mean would have fallen toward 0


def test_every_other_policy_keeps_no_sum_of_squares():
    # the audit: only GaussianThompson models a variance; the others keep counts and sums
    # (or Beta pseudo-counts, importance-weighted sums, A and b)
    for name in bandits.__all__:
        cls = getattr(bandits, name)
        if name in ("Policy", "GaussianThompson"):
            continue
        assert not any("sq" in statistic for statistic in cls._statistics), name


# ---------------------------------------------------------------------- linear policies


def _exact_ridge(contexts, rewards, l2) -> tuple[np.ndarray, float]:
    """θ solving (λI + XᵀX) θ = Xᵀr in exact arithmetic (Gauss–Jordan over Fractions), and
    the 2-norm condition number of that A."""
    d = contexts.shape[1]
    xs = [[Fraction(float(v)) for v in row] for row in contexts]
    rs = [Fraction(float(v)) for v in rewards]
    matrix = [
        [Fraction(l2) * (i == j) + sum(x[i] * x[j] for x in xs) for j in range(d)]
        + [sum(r * x[i] for x, r in zip(xs, rs, strict=True))]
        for i in range(d)
    ]
    for i in range(d):
        pivot = max(range(i, d), key=lambda row: abs(matrix[row][i]))
        matrix[i], matrix[pivot] = matrix[pivot], matrix[i]
        for row in range(d):
            if row != i:
                factor = matrix[row][i] / matrix[i][i]
                matrix[row] = [a - factor * b for a, b in zip(matrix[row], matrix[i], strict=True)]
    theta = np.array([float(matrix[i][d] / matrix[i][i]) for i in range(d)])
    gram = l2 * np.eye(d) + contexts.T @ contexts
    return theta, float(np.linalg.cond(gram))


@pytest.mark.parametrize("policy_class", [LinUCB, LinTS, SquareCB])
@pytest.mark.parametrize("offset", [0.0, 1e9, 1e12])
@pytest.mark.parametrize("intercept", [True, False], ids=["intercept", "shifted-features"])
def test_ridge_theta_is_accurate_to_the_condition_of_the_problem(policy_class, offset, intercept):
    # ridge without an intercept is not translation invariant in r, so rewards are not
    # centred; the sums A, b and the Cholesky solve are backward stable, so θ has a
    # normwise error of a small multiple of cond(A)·u whatever the offset
    rng = np.random.default_rng(13)
    size, d = 1_050, 3  # 50 recursive-least-squares steps after the last Cholesky refresh
    contexts = rng.normal(size=(size, d))
    if intercept:
        contexts[:, 0] = 1.0
    else:
        contexts += 0.5
    rewards = offset + contexts @ np.array([1.0, -2.0, 0.5]) + rng.normal(size=size)
    policy = policy_class(n_arms=1, n_features=d)
    for x, r in zip(contexts, rewards, strict=True):
        policy.update(0, r, x)
    exact, condition = _exact_ridge(contexts, rewards, policy.l2)
    error = np.abs(policy.arrays["theta"][0, 0] - exact).max() / np.abs(exact).max()
    assert error < 100 * condition * np.finfo(float).eps


LINEAR = [
    lambda: bandits.LinUCB(alpha=1.0, n_arms=2, n_features=2),
    lambda: bandits.LinTS(n_arms=2, n_features=2),
    lambda: bandits.SquareCB(n_arms=2, n_features=2),
]


@pytest.mark.parametrize("build", LINEAR)
@pytest.mark.parametrize(
    "context", [[1e200, 1.0], [-1e101, 0.0], ["1", "2"], [np.nan, 1.0], [1.0, np.inf]]
)
def test_contexts_that_would_overflow_the_design_matrix_are_refused(build, context):
    policy = build()
    before = {name: value.copy() for name, value in policy.state()["arrays"].items()}
    with pytest.raises(InvalidArgumentError) as info:
        policy.update(0, 1.0, context=context)
    assert info.value.argument == "context"
    after = policy.state()["arrays"]
    assert all(np.array_equal(before[name], after[name]) for name in before)


@pytest.mark.parametrize(
    "build",
    [
        lambda: bandits.GaussianThompson(n_arms=2),
        lambda: bandits.EpsilonGreedy(n_arms=2),
        lambda: bandits.UCB1(n_arms=2),
    ],
)
def test_rewards_whose_squares_would_overflow_are_refused(build):
    policy = build()
    with pytest.raises(InvalidArgumentError) as info:
        policy.update(0, 1e308)
    assert info.value.argument == "reward"
    policy.update(0, 1e100)  # the limit itself is accepted
    assert np.isfinite(policy.probabilities()).all()
