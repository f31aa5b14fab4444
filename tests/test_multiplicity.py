"""adjust_pvalues against statsmodels' multipletests, plus properties every method keeps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from statsmodels.stats.multitest import multipletests

from splitlab.errors import InvalidArgumentError, UnknownOptionError
from splitlab.stats.multiplicity import adjust_pvalues

STATSMODELS_METHOD = {
    "bonferroni": "bonferroni",
    "holm": "holm",
    "bh": "fdr_bh",
    "by": "fdr_by",
    "fdr_bh": "fdr_bh",
    "fdr_by": "fdr_by",
}


def statsmodels_adjusted(p: np.ndarray, method: str) -> np.ndarray:
    """multipletests on the finite p-values of one family; NaN stays NaN."""
    adjusted = np.full(p.shape, np.nan)
    finite = ~np.isnan(p)
    if finite.any():
        adjusted[finite] = multipletests(p[finite], method=STATSMODELS_METHOD[method])[1]
    return adjusted


def random_family(rng: np.random.Generator, size: int) -> np.ndarray:
    """Mixed small and large p-values with deliberate ties and exact 0 and 1."""
    p = np.where(rng.random(size) < 0.4, rng.uniform(0, 0.05, size), rng.random(size))
    if size > 2:
        p[rng.integers(size)] = p[rng.integers(size)]
        p[: size // 3] = np.round(p[: size // 3], 2)
    if size > 5:
        p[rng.integers(size)] = 0.0
        p[rng.integers(size)] = 1.0
    return p


@pytest.mark.parametrize("method", list(STATSMODELS_METHOD))
def test_adjust_pvalues_matches_statsmodels_multipletests(method: str) -> None:
    rng = np.random.default_rng(21)
    for size in [1, 2, 3, 5, 10, 37, 200]:
        for _ in range(4):
            p = random_family(rng, size)
            np.testing.assert_allclose(
                adjust_pvalues(p, method), statsmodels_adjusted(p, method), rtol=1e-12, atol=0
            )


@pytest.mark.parametrize("method", ["bonferroni", "holm", "bh", "by"])
def test_nan_pvalues_stay_nan_and_leave_the_family(method: str) -> None:
    rng = np.random.default_rng(22)
    p = random_family(rng, 30)
    p[rng.choice(30, size=7, replace=False)] = np.nan
    adjusted = adjust_pvalues(p, method)
    np.testing.assert_array_equal(np.isnan(adjusted), np.isnan(p))
    np.testing.assert_allclose(adjusted, statsmodels_adjusted(p, method), rtol=1e-12)


def test_a_family_of_only_nan_stays_nan() -> None:
    assert np.isnan(adjust_pvalues([np.nan, np.nan], "by")).all()


@pytest.mark.parametrize("method", ["bonferroni", "holm", "bh", "by"])
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2])
def test_each_slice_along_axis_is_one_family(method: str, axis: int) -> None:
    rng = np.random.default_rng(23)
    p = rng.random((2, 3, 4)) ** 2
    p[0, 0, 0] = np.nan
    p[1, 2, :] = np.round(p[1, 2, :], 1)
    adjusted = adjust_pvalues(p, method, axis=axis)
    assert adjusted.shape == p.shape
    families = np.moveaxis(p, axis, -1).reshape(-1, p.shape[axis])
    expected = np.stack([statsmodels_adjusted(family, method) for family in families])
    expected = np.moveaxis(expected.reshape(np.moveaxis(p, axis, -1).shape), -1, axis)
    np.testing.assert_allclose(adjusted, expected, rtol=1e-12)


def test_a_single_p_value_is_its_own_family() -> None:
    for method in STATSMODELS_METHOD:
        assert adjust_pvalues(0.03, method) == 0.03
        assert adjust_pvalues([0.03], method).tolist() == [0.03]


def test_aliases_agree_with_short_names() -> None:
    p = np.array([0.001, 0.02, 0.02, 0.3, 0.04])
    np.testing.assert_array_equal(adjust_pvalues(p, "fdr_bh"), adjust_pvalues(p, "bh"))
    np.testing.assert_array_equal(adjust_pvalues(p, "fdr_by"), adjust_pvalues(p, "by"))


@pytest.mark.parametrize(
    ("call", "argument", "error"),
    [
        (lambda: adjust_pvalues([0.1, 1.2]), "p", InvalidArgumentError),
        (lambda: adjust_pvalues([-0.01, 0.2]), "p", InvalidArgumentError),
        (lambda: adjust_pvalues([np.inf, 0.2]), "p", InvalidArgumentError),
        (lambda: adjust_pvalues(["a", "b"]), "p", InvalidArgumentError),
        (lambda: adjust_pvalues([0.1, 0.2], "sidak"), "method", UnknownOptionError),
        (lambda: adjust_pvalues([0.1, 0.2], axis=1), "axis", InvalidArgumentError),
        (lambda: adjust_pvalues([0.1, 0.2], axis=0.5), "axis", InvalidArgumentError),
    ],
)
def test_bad_input_raises_naming_the_argument(call, argument: str, error: type) -> None:
    with pytest.raises(error) as raised:
        call()
    assert raised.value.argument == argument


unit_pvalues = arrays(
    np.float64,
    st.integers(1, 40),
    elements=st.one_of(
        st.floats(0.0, 1.0), st.sampled_from([0.0, 0.01, 0.05, 0.5, 1.0, 1e-300, np.nan])
    ),
)


@settings(max_examples=100, deadline=None)
@given(p=unit_pvalues, method=st.sampled_from(["bonferroni", "holm", "bh", "by"]))
def test_adjusted_pvalues_are_probabilities_at_least_the_raw_ones(
    p: np.ndarray, method: str
) -> None:
    adjusted = adjust_pvalues(p, method)
    finite = ~np.isnan(p)
    np.testing.assert_array_equal(np.isnan(adjusted), ~finite)
    assert np.all(adjusted[finite] >= p[finite])
    assert np.all(adjusted[finite] <= 1.0)


@settings(max_examples=100, deadline=None)
@given(p=unit_pvalues, method=st.sampled_from(["holm", "bh", "by"]))
def test_adjustment_preserves_the_order_of_raw_pvalues(p: np.ndarray, method: str) -> None:
    adjusted = adjust_pvalues(p, method)
    finite = ~np.isnan(p)
    order = np.argsort(p[finite], kind="stable")
    assert np.all(np.diff(adjusted[finite][order]) >= 0)
    # Equal raw p-values get equal adjusted values.
    raw, fixed = p[finite], adjusted[finite]
    for value in np.unique(raw):
        assert np.ptp(fixed[raw == value]) == 0
