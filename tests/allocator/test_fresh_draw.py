"""The first choice after an update, drawn by the policy in one step
(``Allocator._draw_fresh``), serves what the draw table serves."""

import numpy as np
import pytest

from splitlab import Allocator
from splitlab.bandits import EXP3, UCB1, EpsilonGreedy, GaussianThompson, Softmax

ARMS = ["a", "b", "c", "d"]
POLICIES = {
    "EpsilonGreedy": lambda: EpsilonGreedy(epsilon=0.2),
    "UCB1": UCB1,
    "Softmax": lambda: Softmax(tau=0.3),
    "EXP3": lambda: EXP3(gamma=0.2),
    "GaussianThompson": GaussianThompson,  # the base class's fresh draw (through its table)
}


@pytest.mark.parametrize("name", list(POLICIES))
def test_fresh_draws_equal_table_draws(name):
    fresh = Allocator(ARMS, POLICIES[name](), seed=5, salt="s", mode="online")
    table = Allocator(ARMS, POLICIES[name](), seed=5, salt="s", mode="online")
    table._served_as_is = lambda: False  # every draw through the table
    rewards = np.random.default_rng(6).random(400).round(1).tolist()
    for step, reward in enumerate(rewards):
        unit = f"user-{step % 13}" if step % 3 == 0 else None
        ours, theirs = fresh.choose(unit), table.choose(unit)
        assert (ours.arm, ours.propensity) == (theirs.arm, theirs.propensity)
        np.testing.assert_array_equal(ours.probabilities, theirs.probabilities)
        assert ours.propensity == ours.probabilities[ours.arm_index]
        assert not ours.probabilities.flags.writeable
        if step % 5 == 0:  # a second choice at the same weights: the table's lists
            again, expected = fresh.choose(), table.choose()
            assert (again.arm, again.propensity) == (expected.arm, expected.propensity)
        fresh.update(ours, reward)
        table.update(theirs, reward)
    np.testing.assert_array_equal(fresh.stats().to_numpy(), table.stats().to_numpy())
    assert fresh.srm().statistic == pytest.approx(table.srm().statistic, rel=1e-12)


def test_burn_in_and_floor_keep_the_table_path():
    alloc = Allocator(ARMS, EpsilonGreedy(), seed=1, burn_in=3, min_weight=0.05)
    assert not alloc._served_as_is()
    decision = alloc.choose()
    assert decision.probabilities.tolist() == [0.25] * 4  # burn-in: uniform
