"""Serving modes on their own (``splitlab.allocator.serving``): burn-in, floor, winner."""

import numpy as np
import pytest

from splitlab.allocator import serving
from splitlab.bandits import UCB1, EpsilonGreedy, GaussianThompson, LinUCB, ThompsonSampling
from splitlab.errors import InvalidArgumentError

POLICY = np.array([0.7, 0.2, 0.1, 0.0])


def test_nothing_to_apply_serves_the_policys_own_array():
    assert serving.served_probabilities(POLICY, None, False, None, 0.0) is POLICY


def test_burn_in_is_uniform_over_the_available_arms():
    assert serving.served_probabilities(POLICY, None, True, None, 0.0).tolist() == [0.25] * 4
    mask = np.array([True, False, True, False])
    assert serving.served_probabilities(POLICY, mask, True, None, 0.1).tolist() == [0.5, 0, 0.5, 0]


def test_the_floor_mixes_with_the_uniform_distribution():
    floor = 0.05
    served = serving.served_probabilities(POLICY, None, False, None, floor)
    # each arm: floor + (1 - 4 * floor) * p (hand-computed)
    assert served.tolist() == pytest.approx([0.61, 0.21, 0.13, 0.05], abs=1e-15)
    assert served.sum() == pytest.approx(1.0, abs=1e-15) and served.min() == floor
    mask = np.array([True, True, False, False])
    masked = serving.served_probabilities(np.array([0.9, 0.1, 0.0, 0.0]), mask, False, None, floor)
    assert masked.tolist() == pytest.approx([0.86, 0.14, 0.0, 0.0], abs=1e-15)


def test_the_winner_takes_all_traffic_while_available_and_precedes_burn_in():
    winner = serving.served_probabilities(POLICY, None, True, 2, 0.1)
    assert winner.tolist() == [0, 0, 1, 0]
    # the winner unavailable: the (masked) policy's probabilities, floored
    unavailable = np.array([True, True, False, True])
    masked_policy = np.array([0.8, 0.2, 0.0, 0.0])
    fallback = serving.served_probabilities(masked_policy, unavailable, False, 2, 0.1)
    assert fallback.tolist() == pytest.approx([0.66, 0.24, 0.0, 0.1], abs=1e-15)


def test_find_winner_agrees_with_a_monte_carlo_probability_of_being_best():
    policy = ThompsonSampling()
    policy.resize(3)
    policy.arrays["alpha"][0] = [20.0, 60.0, 25.0]
    policy.arrays["beta"][0] = [80.0, 40.0, 75.0]
    policy._touch()
    draws = np.random.default_rng(0).beta(
        policy.arrays["alpha"][0], policy.arrays["beta"][0], size=(200_000, 3)
    )
    prob_best = np.bincount(draws.argmax(axis=1), minlength=3) / len(draws)
    assert prob_best[1] > 0.999
    assert serving.find_winner(policy, 0.99) == 1
    assert serving.find_winner(policy, 1.0) is None  # never certain


def test_find_winner_is_none_for_a_close_race():
    policy = ThompsonSampling()
    policy.resize(2)
    policy.arrays["alpha"][0] = [11.0, 12.0]
    policy.arrays["beta"][0] = [91.0, 90.0]
    policy._touch()
    assert serving.find_winner(policy, 0.95) is None


def test_draw_table_freezes_and_lists_the_cdf():
    table = serving.draw_table(np.array([0.25, 0.5, 0.25, 0.0]))
    cumulative, total, propensities, last, frozen = table
    assert cumulative == [0.25, 0.75, 1.0, 1.0] and total == 1.0 and last == 2
    assert propensities == [0.25, 0.5, 0.25, 0.0] and not frozen.flags.writeable


def test_default_mode_is_periodic_for_thompson_type_policies():
    assert serving.serving_mode(None, ThompsonSampling()) == "periodic"
    assert serving.serving_mode(None, GaussianThompson()) == "periodic"
    assert serving.serving_mode(None, EpsilonGreedy()) == "online"
    assert serving.serving_mode("online", ThompsonSampling()) == "online"
    with pytest.raises(InvalidArgumentError, match="mode"):
        serving.serving_mode("batch", UCB1())


def test_periodic_refresh_copies_the_learners_statistics():
    learner = ThompsonSampling()
    learner.resize(2)
    served = serving.copy_policy(learner)
    learner.update(0, 1.0)
    assert served.arrays["alpha"][0].tolist() == [1.0, 1.0]  # frozen until the refresh
    serving.serve_learned(learner, served)
    assert served.arrays["alpha"][0].tolist() == learner.arrays["alpha"][0].tolist()
    learner.update(0, 1.0)
    assert served.arrays["alpha"][0][0] != learner.arrays["alpha"][0][0]  # a copy
    again = serving.copy_policy(served)
    np.testing.assert_array_equal(served.probabilities(), again.probabilities())


def test_settings_are_checked():
    assert serving.check_min_weight(0.25, 4) == 0.25
    with pytest.raises(InvalidArgumentError, match="min_weight"):
        serving.check_min_weight(0.3, 4)
    assert serving.check_winner_threshold(None, LinUCB()) is None
    assert serving.check_winner_threshold(0.95, ThompsonSampling()) == 0.95
    with pytest.raises(InvalidArgumentError, match="Bayesian context-free"):
        serving.check_winner_threshold(0.95, EpsilonGreedy())
    with pytest.raises(InvalidArgumentError, match=r"\[0.5, 1\]"):
        serving.check_winner_threshold(0.4, ThompsonSampling())
