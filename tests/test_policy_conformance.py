"""One battery of checks that every bandit policy passes (the scikit-learn `check_estimator`
idea): a policy is done when it passes this module."""

from __future__ import annotations

import numpy as np
import pytest

from splitlab import bandits
from splitlab.errors import InvalidArgumentError

N_ARMS, N_FEATURES = 4, 3

# name, constructor keywords, contextual, merge is exact (sums) or approximate
POLICIES = [
    ("EpsilonGreedy", {"epsilon": 0.2}, False, True),
    ("UCB1", {}, False, True),
    ("KLUCB", {}, False, True),
    ("ThompsonSampling", {}, False, True),
    ("GaussianThompson", {}, False, True),
    ("EXP3", {"gamma": 0.2}, False, False),
    ("Softmax", {"tau": 0.5}, False, True),
    ("TopTwoThompson", {}, False, True),
    ("FixedSplit", {"weights": [1, 2, 3, 4]}, False, True),
    ("LinUCB", {"alpha": 1.0}, True, True),
    ("LinTS", {}, True, True),
    ("LogisticTS", {}, True, False),
    ("SquareCB", {"gamma": 10.0}, True, True),
]


def build(name, keywords, contextual):
    cls = getattr(bandits, name)
    sizes = {"n_arms": N_ARMS, "n_features": N_FEATURES} if contextual else {"n_arms": N_ARMS}
    return cls(**keywords, **sizes)


def stream(contextual, size, seed):
    """A reproducible stream of (arm, reward in [0, 1], context) observations."""
    rng = np.random.default_rng(seed)
    arms = rng.integers(0, N_ARMS, size)
    rewards = (rng.random(size) < 0.2 + 0.15 * arms).astype(float)
    contexts = rng.normal(size=(size, N_FEATURES)) if contextual else None
    return arms, rewards, contexts


def fed(name, keywords, contextual, size=200, seed=0):
    policy = build(name, keywords, contextual)
    arms, rewards, contexts = stream(contextual, size, seed)
    for i in range(size):
        policy.update(arms[i], rewards[i], None if contexts is None else contexts[i])
    return policy


def context_for(contextual, seed=5):
    return np.random.default_rng(seed).normal(size=N_FEATURES) if contextual else None


parametrized = pytest.mark.parametrize(
    ("name", "keywords", "contextual", "exact_merge"),
    POLICIES,
    ids=[p[0] for p in POLICIES],
)


@parametrized
def test_probabilities_sum_to_one_and_respect_the_mask(name, keywords, contextual, exact_merge):
    policy = fed(name, keywords, contextual)
    context = context_for(contextual)
    probabilities = policy.probabilities(context)
    assert probabilities.shape == (N_ARMS,)
    np.testing.assert_allclose(probabilities.sum(), 1.0, atol=1e-9)
    assert (probabilities >= 0).all()
    mask = np.array([True, False, True, False])
    masked = policy.probabilities(context, available=mask)
    np.testing.assert_allclose(masked.sum(), 1.0, atol=1e-9)
    assert (masked[~mask] == 0).all()


@parametrized
def test_choices_follow_the_reported_probabilities(name, keywords, contextual, exact_merge):
    policy = fed(name, keywords, contextual)
    context = context_for(contextual)
    probabilities = policy.probabilities(context)
    rng = np.random.default_rng(11)
    draws = 20_000
    counts = np.zeros(N_ARMS)
    for _ in range(draws):
        arm, propensity = policy.choose(context, rng=rng)
        counts[arm] += 1
        assert propensity == pytest.approx(probabilities[arm])
    tolerance = 4 * np.sqrt(probabilities * (1 - probabilities) / draws) + 1e-12
    assert (np.abs(counts / draws - probabilities) <= tolerance).all()


@parametrized
def test_state_round_trip_continues_with_identical_decisions(
    name, keywords, contextual, exact_merge
):
    policy = fed(name, keywords, contextual)
    restored = type(policy).from_state(policy.state())
    arms, rewards, contexts = stream(contextual, 30, seed=3)
    first, second = np.random.default_rng(7), np.random.default_rng(7)
    for i in range(30):
        context = None if contexts is None else contexts[i]
        assert policy.choose(context, rng=first) == restored.choose(context, rng=second)
        policy.update(arms[i], rewards[i], context)
        restored.update(arms[i], rewards[i], context)


@parametrized
def test_merging_two_halves_equals_one_policy_fed_the_whole(
    name, keywords, contextual, exact_merge
):
    arms, rewards, contexts = stream(contextual, 300, seed=4)
    whole, left, right = (build(name, keywords, contextual) for _ in range(3))
    for i in range(300):
        context = None if contexts is None else contexts[i]
        whole.update(arms[i], rewards[i], context)
        (left if i % 2 else right).update(arms[i], rewards[i], context)
    left.merge(right)
    context = context_for(contextual)
    if exact_merge:
        for key in type(whole)._statistics:
            np.testing.assert_allclose(left.arrays[key], whole.arrays[key], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(
            left.probabilities(context), whole.probabilities(context), atol=1e-9
        )
    else:  # documented approximation: the merged policy decides like the whole one
        np.testing.assert_allclose(
            left.probabilities(context), whole.probabilities(context), atol=0.1
        )


@parametrized
def test_adding_a_replicas_increments_equals_merging_it(name, keywords, contextual, exact_merge):
    # the Allocator's deltas: differences of additive_statistics, added with add_statistics
    left, right = fed(name, keywords, contextual, seed=1), fed(name, keywords, contextual, seed=2)
    prior = build(name, keywords, contextual).additive_statistics()
    increments = {k: v - prior[k] for k, v in right.additive_statistics().items()}
    assert set(increments) == set(left.additive_statistics())
    merged = fed(name, keywords, contextual, seed=1)
    merged.merge(right)
    version = left.version
    left.add_statistics(increments)
    assert left.version > version
    for key in type(left)._statistics:
        np.testing.assert_allclose(left.arrays[key], merged.arrays[key], rtol=1e-9, atol=1e-9)
    context = context_for(contextual)
    np.testing.assert_allclose(
        left.probabilities(context), merged.probabilities(context), atol=1e-9
    )
    with pytest.raises(InvalidArgumentError) as error:
        left.add_statistics({})
    assert error.value.argument == "increments"


@parametrized
def test_bad_input_raises_naming_the_argument(name, keywords, contextual, exact_merge):
    policy = build(name, keywords, contextual)
    context = context_for(contextual)
    cases = [
        (lambda: policy.update(N_ARMS, 1.0, context), "arm"),
        (lambda: policy.update(0, float("nan"), context), "reward"),
        (lambda: policy.probabilities(context, available=[False] * N_ARMS), "available"),
    ]
    if contextual:
        cases.append((lambda: policy.probabilities(np.ones(N_FEATURES + 1)), "context"))
        cases.append((lambda: policy.update(0, 1.0, None), "context"))
    else:
        cases.append((lambda: policy.probabilities(np.ones(2)), "context"))
    if policy._reward_range is not None:
        cases.append((lambda: policy.update(0, 2.0, context), "reward"))
    for call, argument in cases:
        with pytest.raises(InvalidArgumentError) as info:
            call()
        assert info.value.argument == argument


@parametrized
def test_add_and_remove_arm_keep_the_protocol(name, keywords, contextual, exact_merge):
    if name == "FixedSplit":
        pytest.skip("a fixed split's arms are its weights")
    policy = fed(name, keywords, contextual)
    new = policy.add_arm()
    assert new == N_ARMS and policy.probabilities(context_for(contextual)).shape == (N_ARMS + 1,)
    policy.update(new, 1.0, context_for(contextual))
    policy.remove_arm(0)
    probabilities = policy.probabilities(context_for(contextual))
    assert probabilities.shape == (N_ARMS,)
    np.testing.assert_allclose(probabilities.sum(), 1.0, atol=1e-9)
