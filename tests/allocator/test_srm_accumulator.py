"""The SRM accumulator on its own (``splitlab.allocator.srm``)."""

import math

import numpy as np
import pytest
from scipy import stats

from splitlab.allocator.srm import FOLD_EVERY, SRMAccumulator, srm_result

ARMS = ["a", "b", "c"]


def table_draw(srm, index):
    """A draw from the context-free table, as the allocator's hot path counts it."""
    srm.counts[index] += 1
    srm.table_served += 1


def test_table_draws_over_two_periods_equal_scipy_chisquare_summed():
    rng = np.random.default_rng(1)
    srm = SRMAccumulator(3)
    weights = [np.array([0.2, 0.3, 0.5]), np.array([0.6, 0.2, 0.2])]
    draws = [rng.choice(3, size=900, p=weights[0]), rng.choice(3, size=1100, p=weights[1])]
    for period in (0, 1):
        srm.new_table(weights[period], period)
        for index in draws[period]:
            table_draw(srm, int(index))
        srm.settle(period)
    result = srm_result(srm.settled(1), ARMS)
    expected = [
        stats.chisquare(np.bincount(draws[k], minlength=3), weights[k] * len(draws[k]))
        for k in (0, 1)
    ]
    assert result.statistic == pytest.approx(
        expected[0].statistic + expected[1].statistic, rel=1e-12
    )
    assert result.df == 4
    assert result.p_value == pytest.approx(stats.chi2.sf(result.statistic, 4), rel=1e-12)
    assert result.periods["decisions"].tolist() == [900, 1100]
    assert result.periods["n_c"].tolist() == [int(np.sum(draws[k] == 2)) for k in (0, 1)]


def test_draws_with_their_own_probabilities_expect_the_sum_of_them():
    rng = np.random.default_rng(2)
    srm = SRMAccumulator(3)
    probabilities = rng.dirichlet([1, 1, 1], size=2 * FOLD_EVERY + 17)  # folds twice
    counts = np.zeros(3)
    for row in probabilities:
        index = int(rng.choice(3, p=row))
        counts[index] += 1
        srm.served(index, row, period=0)
    counts_settled, expected_settled = srm.settled(0)[0]
    assert counts_settled.tolist() == counts.tolist()
    np.testing.assert_allclose(expected_settled, probabilities.sum(axis=0), rtol=1e-12)
    result = srm_result(srm.settled(0), ARMS)
    reference = stats.chisquare(counts, probabilities.sum(axis=0))
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-8)


def test_a_new_table_keeps_the_old_tables_draws_at_the_old_weights():
    srm = SRMAccumulator(2)
    srm.new_table(np.array([0.5, 0.5]), period=0)
    for _ in range(10):
        table_draw(srm, 0)
    srm.new_table(np.array([0.1, 0.9]), period=0)
    for _ in range(10):
        table_draw(srm, 1)
    counts, expected = srm.settled(0)[0]
    assert counts.tolist() == [10, 10]
    assert expected.tolist() == pytest.approx([5 + 1, 5 + 9])


def test_an_arm_drawn_without_expectation_is_an_infinite_statistic():
    srm = SRMAccumulator(3)
    srm.new_table(np.array([0.5, 0.5, 0.0]), period=0)
    table_draw(srm, 0)
    table_draw(srm, 1)
    srm.counts[2] += 1  # a draw of an arm served with probability 0
    result = srm_result(srm.settled(0), ARMS)
    assert math.isinf(result.statistic) and result.df == 1 and result.p_value == 0.0
    assert result.periods.attrs["flagged"]


def test_no_draws_no_test():
    result = srm_result(SRMAccumulator(2).settled(0), ["a", "b"])
    assert result.statistic == 0.0 and result.df == 0 and math.isnan(result.p_value)
    assert not result.periods.attrs["flagged"]


def test_settled_returns_copies():
    srm = SRMAccumulator(2)
    srm.served(0, np.array([0.5, 0.5]), period=0)
    copy = srm.settled(0)
    copy[0][0][0] = 99
    assert srm.settled(0)[0][0][0] == 1
