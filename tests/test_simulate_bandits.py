"""Bandit simulation: environments, the replication runner, and regret evidence (issue 5)."""

from __future__ import annotations

import numpy as np
import pytest

from splitlab.bandits.linear import LinTS, LinUCB, SquareCB
from splitlab.bandits.mab import (
    KLUCB,
    UCB1,
    EpsilonGreedy,
    FixedSplit,
    GaussianThompson,
    Softmax,
    ThompsonSampling,
)
from splitlab.errors import InvalidArgumentError
from splitlab.simulate import (
    BernoulliArms,
    DelayedRewards,
    DriftingArms,
    GaussianArms,
    LinearContextual,
    LogisticContextual,
    PiecewiseStationary,
    simulate,
)

ENVIRONMENTS = {
    "bernoulli": BernoulliArms([0.1, 0.5, 0.7]),
    "gaussian": GaussianArms([0.0, 1.0, -0.5], sd=[1.0, 2.0, 0.5]),
    "linear": LinearContextual.random(n_arms=3, n_features=4, sd=0.5, seed=1),
    "linear-pool": LinearContextual(
        np.eye(3, 2), contexts=np.arange(10.0).reshape(5, 2), intercept=[0.0, 1.0, 2.0]
    ),
    "logistic": LogisticContextual.random(n_arms=3, n_features=4, seed=2),
    "piecewise": PiecewiseStationary([[0.9, 0.1, 0.5], [0.1, 0.9, 0.5]], change_points=[40]),
    "random-walk": DriftingArms([0.2, 0.5, 0.8], scale=0.05, seed=3),
    "sinusoid": DriftingArms([0.0, 1.0, 2.0], kind="sinusoid", family="gaussian", period=25),
    "delayed": DelayedRewards(BernoulliArms([0.1, 0.5, 0.7]), 3),
}


def uniform_policy():
    return FixedSplit(weights=[1.0, 1.0, 1.0])


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_regret_is_best_expected_reward_minus_the_chosen_arms(name):
    env = ENVIRONMENTS[name]
    result = simulate(
        uniform_policy(), env, 80, 40, seed=7, record=("regret", "choices", "contexts")
    )
    steps = np.arange(80)
    for r in range(40):
        expected = env.expected_rewards(steps, result.contexts[r] if env.contextual else None)
        reference = expected.max(axis=1) - expected[steps, result.choices[r]]
        np.testing.assert_allclose(result.regret[r], reference, rtol=1e-12, atol=1e-12)
    cumulative = np.cumsum(result.regret, axis=1)
    np.testing.assert_allclose(result.final_regret, cumulative[:, -1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result.mean_cumulative_regret, cumulative.mean(axis=0), atol=1e-9)
    summary = result.summary()
    np.testing.assert_allclose(
        summary["band"], 1.96 * cumulative.std(axis=0, ddof=1) / np.sqrt(40), rtol=1e-3, atol=1e-9
    )


def test_rewards_follow_each_arms_law():
    bernoulli = BernoulliArms([0.1, 0.5, 0.7])
    result = simulate(uniform_policy(), bernoulli, 2000, 64, seed=1)
    for arm, mean in enumerate(bernoulli.means):
        rewards = result.rewards[result.choices == arm]
        assert set(np.unique(rewards)) <= {0.0, 1.0}
        assert abs(rewards.mean() - mean) < 4 * np.sqrt(mean * (1 - mean) / rewards.size)

    gaussian = ENVIRONMENTS["gaussian"]
    result = simulate(uniform_policy(), gaussian, 2000, 64, seed=1)
    for arm in range(3):
        rewards = result.rewards[result.choices == arm]
        assert abs(rewards.mean() - gaussian.means[arm]) < 4 * gaussian.sd[arm] / np.sqrt(
            rewards.size
        )
        assert abs(rewards.std() / gaussian.sd[arm] - 1) < 0.03


def test_contexts_are_standard_normal_or_rows_of_the_pool():
    linear = ENVIRONMENTS["linear"]
    result = simulate(
        uniform_policy(), linear, 500, 64, seed=2, record=("contexts", "rewards", "choices")
    )
    flat = result.contexts.reshape(-1, 4)
    np.testing.assert_allclose(flat.mean(axis=0), 0.0, atol=0.02)
    np.testing.assert_allclose(np.cov(flat.T), np.eye(4), atol=0.03)
    # reward − x·θ_a is the N(0, sd²) noise
    noise = result.rewards - np.einsum("rtd,rtd->rt", result.contexts, linear.theta[result.choices])
    assert abs(noise.std() / 0.5 - 1) < 0.02

    pooled = ENVIRONMENTS["linear-pool"]
    result = simulate(uniform_policy(), pooled, 500, 16, seed=2, record=("contexts",))
    rows, counts = np.unique(result.contexts.reshape(-1, 2), axis=0, return_counts=True)
    np.testing.assert_array_equal(rows, pooled.contexts)
    assert counts.min() > 0.8 * counts.mean()


def test_logistic_rewards_are_bernoulli_with_sigmoid_means():
    env = ENVIRONMENTS["logistic"]
    result = simulate(
        uniform_policy(), env, 1000, 64, seed=3, record=("contexts", "choices", "rewards")
    )
    chosen = np.take_along_axis(
        env.expected_rewards(np.zeros(1), result.contexts.reshape(-1, 4)),
        result.choices.reshape(-1, 1),
        axis=1,
    ).ravel()
    rewards = result.rewards.ravel()
    assert set(np.unique(rewards)) <= {0.0, 1.0}
    # calibration: within bins of σ(η), the observed rate matches the bin's mean σ(η)
    bins = np.digitize(chosen, np.linspace(0, 1, 6)[1:-1])
    for b in range(5):
        inside = bins == b
        p = chosen[inside].mean()
        assert abs(rewards[inside].mean() - p) < 4 * np.sqrt(p * (1 - p) / inside.sum()) + 1e-3


def test_piecewise_and_drifting_means():
    piecewise = ENVIRONMENTS["piecewise"]
    np.testing.assert_array_equal(
        piecewise.expected_rewards([0, 39, 40, 79])[:, 0], [0.9, 0.9, 0.1, 0.1]
    )
    walk = ENVIRONMENTS["random-walk"].expected_rewards(np.arange(5000))
    assert walk.min() >= 0.0 and walk.max() <= 1.0
    assert np.abs(np.diff(walk, axis=0)).max() <= 0.05 * 6
    sinusoid = ENVIRONMENTS["sinusoid"].expected_rewards(np.arange(50))
    np.testing.assert_allclose(sinusoid[:25], sinusoid[25:], atol=1e-12)
    np.testing.assert_allclose(sinusoid.mean(axis=0), [0.0, 1.0, 2.0], atol=1e-12)


def test_same_seed_gives_identical_runs_whatever_the_thread_count():
    env = ENVIRONMENTS["linear"]
    runs = [
        simulate(LinTS(), env, 200, 70, seed=11, threads=threads, record=("choices", "rewards"))
        for threads in (1, 2, 2)
    ]
    for run in runs[1:]:
        np.testing.assert_array_equal(run.choices, runs[0].choices)
        np.testing.assert_array_equal(run.rewards, runs[0].rewards)
    other = simulate(LinTS(), env, 200, 70, seed=12, record=("choices",))
    assert not np.array_equal(other.choices, runs[0].choices)


def test_the_policy_object_is_sized_but_not_trained():
    policy = ThompsonSampling()
    result = simulate(policy, BernoulliArms([0.2, 0.8]), 100, 8, seed=0)
    assert policy.n_arms == 2
    np.testing.assert_array_equal(policy.arrays["alpha"], 1.0)
    # each copy's posterior counts exactly the rewards it saw
    np.testing.assert_allclose(
        result.state["alpha"].sum(axis=1), 2.0 + result.rewards.sum(axis=1), rtol=1e-12
    )


@pytest.mark.parametrize("delay", [0, 1, 3])
def test_delayed_rewards_reach_the_policy_exactly_delay_steps_later(delay):
    # UCB1 plays unplayed arms first (index +inf, ties at random): with more arms than steps,
    # the arm chosen at step t is never one whose reward the policy has already seen, while
    # it may repeat one whose reward is still in flight.
    horizon, n_arms = 30, 60
    env = DelayedRewards(BernoulliArms(np.linspace(0, 1, n_arms)), delay)
    result = simulate(UCB1(), env, horizon, 200, seed=4)
    choices = result.choices
    repeat_at = np.zeros(horizon, dtype=int)  # how many copies repeat the choice of t − lag
    for t in range(horizon):
        for lag in range(1, t + 1):
            same = choices[:, t] == choices[:, t - lag]
            if lag > delay:
                assert not same.any(), f"step {t} repeated an arm seen {lag} steps earlier"
            repeat_at[lag] += same.sum()
    if delay > 0:
        assert repeat_at[delay] > 0  # the reward of t − delay was not seen before step t
    # the policy saw every reward but the last `delay` ones, each once
    seen = horizon - delay
    np.testing.assert_allclose(result.state["counts"].sum(axis=1), seen)
    np.testing.assert_allclose(
        result.state["reward_sums"].sum(axis=1), result.rewards[:, :seen].sum(axis=1)
    )


def test_bad_arguments_raise():
    bernoulli = BernoulliArms([0.2, 0.8])
    with pytest.raises(InvalidArgumentError, match="needs contexts"):
        simulate(LinUCB(), bernoulli, 10, 2)
    with pytest.raises(InvalidArgumentError, match="Gaussian rewards"):
        simulate(ThompsonSampling(), GaussianArms([0.0, 1.0]), 10, 2)
    with pytest.raises(InvalidArgumentError, match="arms"):
        simulate(UCB1(n_arms=3), bernoulli, 10, 2)
    with pytest.raises(InvalidArgumentError, match="record"):
        simulate(UCB1(), bernoulli, 10, 2, record=("regrets",))
    with pytest.raises(InvalidArgumentError, match="horizon"):
        simulate(UCB1(), bernoulli, 0, 2)
    with pytest.raises(InvalidArgumentError, match="means"):
        BernoulliArms([0.5, 1.5])
    with pytest.raises(InvalidArgumentError, match="change_points"):
        PiecewiseStationary([[0.1, 0.2], [0.3, 0.4]], change_points=[])


# ------------------------------------------------------------------------- regret evidence

TESTBED = BernoulliArms.testbed(n_arms=10, seed=0)
HORIZON = 10_000


@pytest.fixture(scope="module")
def testbed_regret():
    policies = {
        "ThompsonSampling": (ThompsonSampling(), 60),
        "KLUCB": (KLUCB(), 30),  # 40 bisections per arm per decision: the slowest kernel
        "UCB1": (UCB1(), 60),
        "EpsilonGreedy": (EpsilonGreedy(epsilon=0.1), 60),
    }
    return {
        name: simulate(policy, TESTBED, HORIZON, replications, seed=5, record=())
        for name, (policy, replications) in policies.items()
    }


@pytest.mark.parametrize("name", ["ThompsonSampling", "KLUCB", "UCB1"])
def test_index_and_posterior_policies_have_sublinear_regret_on_the_bernoulli_testbed(
    name, testbed_regret
):
    curve = testbed_regret[name].mean_cumulative_regret
    # linear regret would grow 10x from T/10 to T; logarithmic regret grows by ~ln(10x)
    assert curve[HORIZON - 1] < 4.0 * curve[HORIZON // 10 - 1]
    greedy = testbed_regret["EpsilonGreedy"]
    result = testbed_regret[name]
    assert result.mean_cumulative_regret[-1] + result.band[-1] < (
        greedy.mean_cumulative_regret[-1] - greedy.band[-1]
    )


def test_epsilon_greedy_regret_is_linear(testbed_regret):
    curve = testbed_regret["EpsilonGreedy"].mean_cumulative_regret
    assert curve[HORIZON - 1] > 7.0 * curve[HORIZON // 10 - 1]


def test_linear_policies_beat_every_context_free_policy_on_a_linear_environment():
    env = LinearContextual.random(n_arms=5, n_features=5, sd=0.5, seed=0)
    horizon, replications = 2000, 20
    contextual = {
        name: simulate(policy, env, horizon, replications, seed=6, record=()).final_regret
        for name, policy in [("LinUCB", LinUCB()), ("LinTS", LinTS()), ("SquareCB", SquareCB())]
    }
    context_free = {
        name: simulate(policy, env, horizon, replications, seed=6, record=()).final_regret
        for name, policy in [
            ("UCB1", UCB1()),
            ("EpsilonGreedy", EpsilonGreedy(epsilon=0.1)),
            ("GaussianThompson", GaussianThompson()),
            ("Softmax", Softmax(tau=0.1)),
        ]
    }
    best_context_free = min(regret.mean() for regret in context_free.values())
    for name, regret in contextual.items():
        assert regret.mean() < 0.5 * best_context_free, name


def test_a_discounted_thompson_sampler_recovers_after_a_change_point():
    env = PiecewiseStationary([[0.8, 0.2], [0.2, 0.8]], change_points=[2000])
    regret_after = {}
    for discount in (1.0, 0.99):
        result = simulate(ThompsonSampling(discount=discount), env, 3000, 50, seed=8)
        regret_after[discount] = result.regret[:, 2000:].sum(axis=1).mean()
    # 1000 steps after the change: the undiscounted posterior still trusts the old best arm
    assert regret_after[1.0] > 200
    assert regret_after[0.99] < 0.25 * regret_after[1.0]
