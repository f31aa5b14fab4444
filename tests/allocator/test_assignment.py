"""Assignment on its own: the inverse-CDF draw, arm labels and the sticky store."""

import numpy as np
import pytest

from splitlab.allocator.assignment import BoundedStore, cdf, check_arms, draw
from splitlab.errors import InvalidArgumentError
from splitlab.hashing import unit_uniform


@pytest.mark.parametrize(
    "propensities",
    [[0.2, 0.5, 0.3], [0.0, 1.0], [0.25, 0.0, 0.75, 0.0], [1.0], [0.1] * 10],
)
def test_draw_is_the_inverse_cdf_numpy_computes(propensities):
    uniforms = np.random.default_rng(0).random(2000)
    cumulative = np.cumsum(propensities)
    positive = np.flatnonzero(np.asarray(propensities) > 0)
    for uniform in uniforms:
        expected = int(np.searchsorted(cumulative, uniform * cumulative[-1], side="right"))
        expected = min(expected, int(positive[-1]))
        index, propensity = draw(propensities, float(uniform))
        assert index == expected and propensity == propensities[index]


def test_draw_frequencies_on_an_even_grid_are_the_propensities():
    propensities = [0.125, 0.5, 0.0, 0.375]
    grid = (np.arange(8000) + 0.5) / 8000
    counts = np.bincount([draw(propensities, float(u))[0] for u in grid], minlength=4)
    assert counts.tolist() == [1000, 4000, 0, 3000]


def test_cdf_skips_trailing_arms_that_cannot_be_drawn():
    cumulative, last = cdf([0.5, 0.5, 0.0, 0.0])
    assert cumulative == [0.5, 1.0, 1.0, 1.0] and last == 1
    assert draw([0.5, 0.5, 0.0, 0.0], 1.0) == (1, 0.5)  # u * total == total still lands on 1


def test_hashed_draw_is_stable_and_salted():
    propensities = [0.5, 0.5]
    first = [draw(propensities, unit_uniform("exp", f"u{k}"))[0] for k in range(200)]
    again = [draw(propensities, unit_uniform("exp", f"u{k}"))[0] for k in range(200)]
    other = [draw(propensities, unit_uniform("other", f"u{k}"))[0] for k in range(200)]
    assert first == again and first != other
    assert 70 < sum(first) < 130  # a fair split of 200 units (binomial sd ~7)


def test_bounded_store_evicts_the_least_recently_used_unit():
    store = BoundedStore(capacity=2)
    store.set("a", ("x", 0.5))
    store.set("b", ("y", 0.5))
    assert store.get("a") == ("x", 0.5)  # "a" is now the most recent
    store.set("c", ("x", 0.25))
    assert store.get("b") is None and store.get("a") == ("x", 0.5) and len(store) == 2


@pytest.mark.parametrize("arms", ["ab", [], ["a", "a"], ["a", ""], ["a", 1]])
def test_check_arms_refuses_what_is_not_a_list_of_unique_labels(arms):
    with pytest.raises(InvalidArgumentError, match="arms"):
        check_arms(arms)


def test_check_arms_keeps_the_order():
    assert check_arms(("control", "b", "a")) == ["control", "b", "a"]
