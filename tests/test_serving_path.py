"""The single-call serving path of the context-free policies (``update`` of one observation,
the first ``choose`` after it) gives exactly what the general path gives."""

import numpy as np
import pytest

from splitlab.bandits import (
    EXP3,
    KLUCB,
    UCB1,
    EpsilonGreedy,
    FixedSplit,
    GaussianThompson,
    LinUCB,
    Softmax,
    ThompsonSampling,
    TopTwoThompson,
)
from splitlab.bandits.base import draw_from
from splitlab.errors import InvalidArgumentError

POLICIES = {
    "EpsilonGreedy": lambda: EpsilonGreedy(epsilon=0.2, decay=0.01, n_arms=5),
    "UCB1": lambda: UCB1(n_arms=5),
    "KLUCB": lambda: KLUCB(n_arms=5),
    "Softmax": lambda: Softmax(tau=0.2, n_arms=5),
    "EXP3": lambda: EXP3(gamma=0.2, n_arms=5),
    "FixedSplit": lambda: FixedSplit([1, 2, 3, 1, 1]),
    "ThompsonSampling": lambda: ThompsonSampling(n_arms=5),
    "TopTwoThompson": lambda: TopTwoThompson(n_arms=5),
    "GaussianThompson": lambda: GaussianThompson(n_arms=5),
}


@pytest.mark.parametrize("name", list(POLICIES))
def test_alternating_choose_and_update_match_the_general_path(name):
    served, reference = POLICIES[name](), POLICIES[name]()
    rng = np.random.default_rng(4)
    uniforms = np.random.default_rng(4)
    rewards = np.random.default_rng(5).random(300).round(1)  # ties among the means
    for step, reward in enumerate(rewards.tolist()):
        arm, propensity = served.choose(rng=rng)
        expected = reference.choose_with_uniform(uniforms.random())
        assert (arm, propensity) == expected
        assert propensity == reference.probabilities()[arm]
        if step % 7 == 0:  # a second choice at the same version uses the draw table
            assert served.choose(rng=rng) == reference.choose_with_uniform(uniforms.random())
        served.update(arm, reward)
        reference.update_batch([arm], [reward])
        for key, array in reference.arrays.items():
            np.testing.assert_array_equal(served.arrays[key], array, err_msg=key)


def test_weighted_and_discounted_single_updates_match_update_batch():
    for make in POLICIES.values():
        served, reference = make(), make()
        for arm, reward, weight in [(0, 1.0, 2.5), (3, 0.0, 0.5), (3, 1.0, 1.0), (1, 0.5, 0.0)]:
            served.update(arm, reward, weight=weight)
            reference.update_batch([arm], [reward], weights=[weight])
        for key, array in reference.arrays.items():
            np.testing.assert_array_equal(served.arrays[key], array, err_msg=key)
    served, reference = UCB1(n_arms=3, discount=0.9), UCB1(n_arms=3, discount=0.9)
    for arm in [0, 1, 1, 2]:
        served.update(arm, 1.0)
        reference.update_batch([arm], [1.0])
    np.testing.assert_array_equal(served.arrays["counts"], reference.arrays["counts"])


@pytest.mark.parametrize("name", list(POLICIES))
def test_single_update_accepts_numpy_and_integer_inputs(name):
    policy, reference = POLICIES[name](), POLICIES[name]()
    policy.update(np.int64(1), np.float64(1.0))
    policy.update(True, 0)  # an arm given as a bool is arm 1, an int reward a float
    policy.update(2.0, 1)
    reference.update_batch([1, 1, 2], [1.0, 0.0, 1.0])
    for key, array in reference.arrays.items():
        np.testing.assert_array_equal(policy.arrays[key], array, err_msg=key)


@pytest.mark.parametrize("name", list(POLICIES))
def test_single_update_refuses_what_the_checks_refuse(name):
    policy = POLICIES[name]()
    bad_arms = [5, -1, 2.5, "b", None, 10**30]
    bad_rewards = [float("nan"), float("inf"), -float("inf"), 1e101, "x", None]
    if policy._reward_range is not None:
        bad_rewards += [1.5, -0.5]
    for arm in bad_arms:
        with pytest.raises(InvalidArgumentError) as info:
            policy.update(arm, 1.0)
        assert info.value.argument == "arm"
    for reward in bad_rewards:
        with pytest.raises(InvalidArgumentError) as info:
            policy.update(0, reward)
        assert info.value.argument == "reward"
    with pytest.raises(InvalidArgumentError) as info:
        policy.update(0, 1.0, weight=float("nan"))
    assert info.value.argument == "weight"
    fresh = POLICIES[name]()  # nothing refused changed the state
    assert policy.version == fresh.version
    for key, array in fresh.arrays.items():
        np.testing.assert_array_equal(policy.arrays[key], array, err_msg=key)


def test_unsized_policy_refuses_update_and_choose():
    policy = EpsilonGreedy()
    for call in (lambda: policy.update(0, 1.0), lambda: policy.choose(rng=0)):
        with pytest.raises(InvalidArgumentError) as info:
            call()
        assert info.value.argument == "n_arms"


def test_linucb_choose_draws_from_its_probabilities_and_update_equals_update_batch():
    rng = np.random.default_rng(8)
    served, reference = (
        LinUCB(alpha=0.5, n_arms=4, n_features=3),
        LinUCB(alpha=0.5, n_arms=4, n_features=3),
    )
    chooser, uniforms = np.random.default_rng(2), np.random.default_rng(2)
    contexts = rng.normal(size=(300, 3))
    contexts[::5] = np.round(contexts[::5])  # rows with ties among the arms
    # rows of a Fortran-ordered array: non-contiguous contexts
    for row, reward in zip(np.asfortranarray(contexts), rng.random(300).tolist(), strict=True):
        arm, propensity = served.choose(row, rng=chooser)
        probabilities = reference.probabilities(row)
        assert arm == draw_from(probabilities, uniforms.random())
        assert propensity == probabilities[arm]
        served.update(arm, reward, row)
        reference.update_batch([arm], [reward], row[None])
    for key, array in reference.arrays.items():
        np.testing.assert_array_equal(served.arrays[key], array, err_msg=key)


def test_linucb_single_calls_refuse_bad_contexts():
    policy = LinUCB(n_arms=3, n_features=2)
    bad = [[np.nan, 0.0], [np.inf, 0.0], [1e101, 0.0], [1.0], [[1.0, 2.0]], ["a", "b"], None]
    for context in bad:
        with pytest.raises(InvalidArgumentError) as info:
            policy.choose(context, rng=0)
        assert info.value.argument == "context"
        with pytest.raises(InvalidArgumentError) as info:
            policy.update(0, 1.0, context)
        assert info.value.argument == "context"
    assert policy.choose([1, 2], rng=0)[0] in range(3)  # integer contexts are converted
    policy.update(1, 1, np.array([1, 2], dtype=np.int32))
    np.testing.assert_array_equal(policy.arrays["b"][0, 1], [1.0, 2.0])
