"""srm_test against scipy.stats.chisquare and GrowthBook's published example."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from splitlab.errors import DegenerateDataWarning, InvalidArgumentError, ShapeMismatchError
from splitlab.stats.srm import SRMResult, srm_test


def scipy_chisquare(counts: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """scipy's goodness-of-fit test over the arms with positive weight."""
    kept = weights > 0
    expected = counts[kept].sum() * weights[kept] / weights[kept].sum()
    result = stats.chisquare(counts[kept], f_exp=expected)
    return result.statistic, result.pvalue


def test_srm_test_matches_scipy_chisquare_for_unequal_weights() -> None:
    rng = np.random.default_rng(31)
    for arms in [2, 3, 5]:
        weights = rng.dirichlet(np.ones(arms), size=50)
        counts = rng.multinomial(rng.integers(100, 100_000, size=50), weights * 0.98 + 0.02 / arms)
        result = srm_test(counts, weights)
        expected = np.array([scipy_chisquare(c, w) for c, w in zip(counts, weights, strict=True)])
        np.testing.assert_allclose(result.statistic, expected[:, 0], rtol=1e-10)
        np.testing.assert_allclose(result.p_value, expected[:, 1], rtol=1e-9, atol=1e-300)
        np.testing.assert_array_equal(result.df, arms - 1)
        assert (result.error == "").all()


def test_srm_test_defaults_to_an_equal_split() -> None:
    counts = np.array([[480, 520, 510], [500, 500, 500]])
    result = srm_test(counts)
    for row, observed in enumerate(counts):
        expected = stats.chisquare(observed)
        assert result.statistic[row] == pytest.approx(expected.statistic, rel=1e-12)
        assert result.p_value[row] == pytest.approx(expected.pvalue, rel=1e-12)


def test_srm_test_reproduces_growthbooks_example() -> None:
    # GrowthBook's SRM documentation: 1,000 vs 1,100 users on a 50/50 split gives
    # p = 0.029096 (statistic 2 · 50² / 1050).
    result = srm_test([1000, 1100], [0.5, 0.5])
    assert result.p_value == pytest.approx(0.029096, abs=1e-6)
    assert result.statistic == pytest.approx(2 * 50**2 / 1050, rel=1e-12)
    assert result.df == 1 and result.error == ""


def test_leading_axes_are_independent_experiments_sharing_one_weight_vector() -> None:
    rng = np.random.default_rng(32)
    weights = np.array([0.2, 0.3, 0.5])
    counts = rng.multinomial(5000, weights, size=(4, 6))
    result = srm_test(counts, weights)
    assert result.p_value.shape == (4, 6)
    assert result.statistic[2, 3] == pytest.approx(scipy_chisquare(counts[2, 3], weights)[0])
    frame = result.to_frame()
    assert list(frame.columns) == ["statistic", "p_value", "df", "error"]
    assert len(frame) == 24


def test_zero_weight_arms_leave_the_statistic_and_the_degrees_of_freedom() -> None:
    counts = np.array([900, 0, 1100, 1000])
    weights = np.array([1.0, 0.0, 1.0, 1.0])
    result = srm_test(counts, weights)
    expected = stats.chisquare([900, 1100, 1000])
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    assert result.df == 2


def test_untestable_experiments_get_nan_an_error_and_one_warning() -> None:
    counts = np.array(
        [
            [100, 120, 0],  # fine: the zero-weight arm is empty
            [0, 0, 0],  # no units
            [100, 120, 5],  # units in the zero-weight arm
            [130, 100, 0],  # fine
        ]
    )
    weights = np.array([0.5, 0.5, 0.0])
    with pytest.warns(DegenerateDataWarning) as caught:
        result = srm_test(counts, weights)
    assert len(caught) == 1
    assert list(result.error == "") == [True, False, False, True]
    assert "no units" in result.error[1] and "zero weight" in result.error[2]
    assert np.isnan(result.p_value[[1, 2]]).all() and np.isnan(result.df[[1, 2]]).all()
    assert result.p_value[0] == pytest.approx(stats.chisquare([100, 120]).pvalue)

    with pytest.warns(DegenerateDataWarning):
        single_arm = srm_test([[10, 20]], [[1.0, 0.0]])
    assert "fewer than 2" in single_arm.error[0] and np.isnan(single_arm.statistic[0])


def test_scalar_experiment_gives_scalar_fields() -> None:
    result = srm_test([10, 12, 9])
    assert isinstance(result, SRMResult)
    assert isinstance(result.p_value, float) and isinstance(result.error, str)
    assert len(result.to_frame()) == 1


@pytest.mark.parametrize(
    ("counts", "weights", "argument", "error"),
    [
        ([100, -1], None, "counts", InvalidArgumentError),
        ([100, 10.5], None, "counts", InvalidArgumentError),
        ([100, np.nan], None, "counts", InvalidArgumentError),
        (100, None, "counts", InvalidArgumentError),
        ([100, 110], [0.5, -0.5], "weights", InvalidArgumentError),
        ([100, 110], [0.5, np.nan], "weights", InvalidArgumentError),
        ([100, 110], [0.2, 0.3, 0.5], "counts/weights", ShapeMismatchError),
        ([100, 110], 0.5, "counts/weights", ShapeMismatchError),
        (
            [[100, 110], [1, 2], [3, 4]],
            [[0.5, 0.5], [0.4, 0.6]],
            "counts/weights",
            ShapeMismatchError,
        ),
    ],
)
def test_bad_input_raises_naming_the_argument(counts, weights, argument: str, error: type) -> None:
    with pytest.raises(error) as raised:
        srm_test(counts, weights)
    assert raised.value.argument == argument
