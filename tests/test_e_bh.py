"""e_bh: Wang & Ramdas' e-BH procedure against a brute-force reading of its definition,
its structural properties, and its FDR guarantee under dependence by simulation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from simulation_helpers import binomial_tolerance
from splitlab.errors import InvalidArgumentError
from splitlab.sequential.fdr import e_bh


def brute_force_e_bh(e_values: list[float], alpha: float) -> list[bool]:
    """The definition, literally: try every k, keep the largest with e_(k) ≥ m / (k α),
    reject the k* largest (NaN counts in m and ranks last)."""
    m = len(e_values)
    order = sorted(range(m), key=lambda i: np.inf if np.isnan(e_values[i]) else -e_values[i])
    k_star = 0
    for k in range(1, m + 1):
        kth_largest = e_values[order[k - 1]]
        if not np.isnan(kth_largest) and kth_largest >= m / (k * alpha):
            k_star = k
    rejected = [False] * m
    for i in order[:k_star]:
        rejected[i] = True
    return rejected


def test_hand_computed_example() -> None:
    # m = 5, α = 0.1: sorted e-values 60, 30, 20, 12, 0.3 against the bars
    # m / (k α) = 50, 25, 16.67, 12.5, 10: k = 1, 2, 3 clear, 12 < 12.5 and 0.3 < 10,
    # so k* = 3.
    e_values = [12.0, 60.0, 0.3, 20.0, 30.0]
    assert e_bh(e_values, alpha=0.1).tolist() == [False, True, False, True, True]
    assert brute_force_e_bh(e_values, 0.1) == [False, True, False, True, True]


def test_step_up_rejects_all_when_the_last_bar_is_cleared() -> None:
    # Every e-value is 12 ≥ m / (m α) = 10, so all are rejected though none clears 50.
    assert e_bh([12.0] * 5, alpha=0.1).all()
    assert not e_bh([9.99] * 5, alpha=0.1).any()


def test_a_single_hypothesis_is_an_e_value_test_at_level_alpha() -> None:
    # m = 1: reject exactly when e ≥ 1/α (Markov's inequality gives level α).
    assert e_bh([20.0], alpha=0.05).tolist() == [True]
    assert e_bh([19.999], alpha=0.05).tolist() == [False]


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1, 0.2, 0.5])
def test_matches_brute_force_on_random_families(alpha: float) -> None:
    rng = np.random.default_rng(51)
    for _ in range(300):
        m = int(rng.integers(1, 12))
        e_values = np.exp(rng.normal(1.5, 2.0, size=m))
        e_values[rng.random(m) < 0.15] = np.nan
        if rng.random() < 0.3:
            # Ties, including ties exactly at a bar m / (k α).
            e_values = np.round(e_values, 0)
            e_values[: m // 2] = m / (max(m // 2, 1) * alpha)
        assert e_bh(e_values, alpha).tolist() == brute_force_e_bh(e_values.tolist(), alpha)


def test_is_vectorized_along_axis() -> None:
    rng = np.random.default_rng(52)
    e_values = np.exp(rng.normal(2.0, 2.0, size=(4, 7, 3)))
    along_middle = e_bh(e_values, 0.1, axis=1)
    assert along_middle.shape == e_values.shape
    for i, j in itertools.product(range(4), range(3)):
        assert along_middle[i, :, j].tolist() == brute_force_e_bh(e_values[i, :, j].tolist(), 0.1)
    np.testing.assert_array_equal(
        e_bh(e_values, 0.1, axis=-1),
        e_bh(np.moveaxis(e_values, -1, 0), 0.1, axis=0).transpose(1, 2, 0),
    )


def test_nan_is_never_rejected_but_counts_in_m() -> None:
    # Without the NaN, m = 2 and e = 20 clears 2 / (1 · 0.1) = 20; with it, m = 3 and the
    # bar rises to 30: counting missing e-values is the conservative choice.
    assert e_bh([20.0, 1.0], 0.1).tolist() == [True, False]
    assert e_bh([20.0, 1.0, np.nan], 0.1).tolist() == [False, False, False]
    assert e_bh([np.nan, 1e9, np.nan], 0.1).tolist() == [False, True, False]


def test_infinite_e_values_are_rejected() -> None:
    assert e_bh([np.inf, 0.0, 0.0], 0.05).tolist() == [True, False, False]


def test_empty_family_rejects_nothing() -> None:
    assert e_bh(np.empty((3, 0)), 0.05).shape == (3, 0)


def test_is_monotone_in_the_e_values() -> None:
    rng = np.random.default_rng(53)
    for _ in range(300):
        e_values = np.exp(rng.normal(2.0, 2.0, size=10))
        larger = e_values * np.exp(rng.exponential(0.5, size=10) * (rng.random(10) < 0.5))
        before, after = e_bh(e_values, 0.1), e_bh(larger, 0.1)
        assert not np.any(before & ~after)


def test_rejections_grow_with_alpha() -> None:
    rng = np.random.default_rng(54)
    e_values = np.exp(rng.normal(2.0, 2.0, size=(500, 10)))
    previous = np.zeros_like(e_values, dtype=bool)
    for alpha in [0.01, 0.02, 0.05, 0.1, 0.2, 0.5]:
        current = e_bh(e_values, alpha)
        assert not np.any(previous & ~current)
        previous = current
    assert previous.any()


def test_is_invariant_to_permutation() -> None:
    rng = np.random.default_rng(55)
    e_values = np.exp(rng.normal(2.0, 2.0, size=(200, 9)))
    permutation = rng.permutation(9)
    np.testing.assert_array_equal(
        e_bh(e_values, 0.1)[:, permutation], e_bh(e_values[:, permutation], 0.1)
    )


@pytest.mark.validity
@pytest.mark.parametrize("correlation", [0.0, 0.5, 0.9, -0.05])
def test_fdr_holds_under_dependence(correlation: float) -> None:
    # m = 20 equicorrelated normal statistics, 10 nulls (mean 0) and 10 alternatives
    # (mean 3); e_i = exp(3 Z_i − 4.5), the likelihood ratio of N(3, 1) to N(0, 1), which
    # has mean 1 under its null whatever the dependence. FDP lies in [0, 1], so its
    # variance is at most FDR (1 − FDR) and the binomial tolerance is conservative.
    replications, m, nulls, shift, alpha = 20_000, 20, 10, 3.0, 0.1
    rng = np.random.default_rng(56 + int(100 * correlation))
    covariance = np.full((m, m), correlation) + (1.0 - correlation) * np.eye(m)
    means = np.r_[np.zeros(nulls), np.full(m - nulls, shift)]
    statistics = rng.multivariate_normal(means, covariance, size=replications)
    e_values = np.exp(shift * statistics - shift**2 / 2.0)
    rejected = e_bh(e_values, alpha)
    discoveries = rejected.sum(axis=1)
    false_discoveries = rejected[:, :nulls].sum(axis=1)
    fdr = np.mean(false_discoveries / np.maximum(discoveries, 1))
    bound = alpha * nulls / m
    assert fdr <= bound + binomial_tolerance(bound, replications), fdr
    assert np.mean(rejected[:, nulls:]) > 0.3, "the simulation should have power to be meaningful"


@pytest.mark.parametrize(
    ("e_values", "alpha", "options", "argument"),
    [
        ([1.0, -0.5], 0.05, {}, "e_values"),
        ([1.0, -np.inf], 0.05, {}, "e_values"),
        (["a", "b"], 0.05, {}, "e_values"),
        (3.0, 0.05, {}, "e_values"),
        ([1.0, 2.0], 0.0, {}, "alpha"),
        ([1.0, 2.0], 1.0, {}, "alpha"),
        ([1.0, 2.0], -0.1, {}, "alpha"),
        ([1.0, 2.0], np.nan, {}, "alpha"),
        ([1.0, 2.0], 0.05, {"axis": 1}, "axis"),
    ],
)
def test_bad_input_raises_naming_the_argument(e_values, alpha, options, argument) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        e_bh(e_values, alpha, **options)
    assert raised.value.argument == argument
