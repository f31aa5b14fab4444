from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from splitlab import JointMoments, Moments
from splitlab.errors import InvalidArgumentError, ShapeMismatchError

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
samples = hnp.arrays(np.float64, st.integers(1, 40), elements=finite)


def assert_moments_equal(a: Moments, b: Moments, rtol=1e-9, atol=1e-7):
    np.testing.assert_allclose(a.n, b.n)
    np.testing.assert_allclose(a.mean, b.mean, rtol=rtol, atol=atol)
    np.testing.assert_allclose(a.var, b.var, rtol=rtol, atol=atol)


def test_from_samples_matches_numpy_ddof_one():
    x = np.random.default_rng(1).normal(3, 2, size=(4, 50))
    moments = Moments.from_samples(x)
    np.testing.assert_allclose(moments.mean, x.mean(axis=1))
    np.testing.assert_allclose(moments.var, x.var(axis=1, ddof=1))
    np.testing.assert_allclose(Moments.from_samples(x.T, axis=0).var, x.var(axis=1, ddof=1))


def test_from_proportions_uses_bernoulli_variance():
    moments = Moments.from_proportions([30, 0], [100, 10])
    np.testing.assert_allclose(moments.var, [0.3 * 0.7, 0.0])
    np.testing.assert_allclose(moments.mean, [0.3, 0.0])


def test_proportion_moments_merge_exactly():
    merged = Moments.from_proportions(30, 100) + Moments.from_proportions(50, 120)
    assert_moments_equal(merged, Moments.from_proportions(80, 220))


def test_single_unit_has_zero_variance():
    assert float(Moments.from_samples([5.0]).var) == 0.0


@settings(max_examples=200, deadline=None)
@given(samples, samples)
def test_merging_two_halves_equals_the_whole(left, right):
    whole = Moments.from_samples(np.concatenate([left, right]))
    assert_moments_equal(Moments.from_samples(left) + Moments.from_samples(right), whole)


@settings(max_examples=100, deadline=None)
@given(samples, samples, samples)
def test_merge_is_associative(a, b, c):
    ma, mb, mc = (Moments.from_samples(x) for x in (a, b, c))
    assert_moments_equal((ma + mb) + mc, ma + (mb + mc))


@settings(max_examples=200, deadline=None)
@given(samples)
def test_from_samples_equals_from_sums_or_says_the_sums_lost_the_variance(x):
    from_sums = Moments.from_sums(x.size, x.sum(), (x**2).sum())
    exact = Moments.from_samples(x)
    if np.isnan(from_sums.var):
        # lost only where the spread is below what power sums resolve (1e-6 of 8 eps Σx²)
        assert exact.m2 <= 1e6 * 8 * np.finfo(float).eps * (x**2).sum() * 1.01
        return
    assert_moments_equal(exact, from_sums, rtol=1e-7, atol=1e-6)


@settings(max_examples=100, deadline=None)
@given(samples, st.randoms(use_true_random=False))
def test_moments_are_invariant_to_row_order(x, random):
    shuffled = x.copy()
    random.shuffle(shuffled)
    assert_moments_equal(Moments.from_samples(x), Moments.from_samples(shuffled))


paired = st.integers(1, 40).flatmap(
    lambda size: st.tuples(
        hnp.arrays(np.float64, size, elements=finite), hnp.arrays(np.float64, size, elements=finite)
    )
)


def assert_joint_equal(a: JointMoments, b: JointMoments, rtol=1e-8, atol=1e-6):
    for name in ("n", "mean_y", "var_y", "mean_x", "var_x", "cov"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=atol)


@settings(max_examples=150, deadline=None)
@given(paired, paired)
def test_joint_merge_equals_the_whole(left, right):
    (y1, x1), (y2, x2) = left, right
    whole = JointMoments.from_samples(np.concatenate([y1, y2]), np.concatenate([x1, x2]))
    merged = JointMoments.from_samples(y1, x1) + JointMoments.from_samples(y2, x2)
    assert_joint_equal(merged, whole)


@settings(max_examples=150, deadline=None)
@given(paired)
def test_joint_from_samples_equals_from_sums(pair):
    y, x = pair
    from_sums = JointMoments.from_sums(
        y.size, y.sum(), (y * y).sum(), x.sum(), (x * x).sum(), (x * y).sum()
    )
    exact = JointMoments.from_samples(y, x)
    resolution = 1e6 * 8 * np.finfo(float).eps * 1.01
    lost_y, lost_x = np.isnan(from_sums.var_y), np.isnan(from_sums.var_x)
    if lost_y:
        assert exact.y.m2 <= resolution * (y * y).sum()
    if lost_x:
        assert exact.x.m2 <= resolution * (x * x).sum()
    if lost_y or lost_x:
        assert np.isnan(from_sums.cov)
        return
    assert_joint_equal(exact, from_sums, rtol=1e-6, atol=1e-5)


def test_joint_covariance_matches_numpy():
    rng = np.random.default_rng(2)
    y, x = rng.normal(size=(2, 3, 30))
    joint = JointMoments.from_samples(y, x)
    expected = [np.cov(y[i], x[i])[0, 1] for i in range(3)]
    np.testing.assert_allclose(joint.cov, expected)


def test_sums_round_trip():
    joint = JointMoments.from_sums(10, 20.0, 50.0, 5.0, 4.0, 12.0)
    np.testing.assert_allclose(
        [joint.sum_y, joint.sum_y2, joint.sum_x, joint.sum_x2, joint.sum_xy],
        [20.0, 50.0, 5.0, 4.0, 12.0],
    )


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: Moments(-1, 0.0, 1.0), "n"),
        (lambda: Moments(2.5, 0.0, 1.0), "n"),
        (lambda: Moments(10, np.nan, 1.0), "mean"),
        (lambda: Moments(10, 0.0, -1.0), "var"),
        (lambda: Moments(10, 0.0, np.inf), "var"),
        (lambda: Moments.from_sums([10, 20], [1.0, 2.0, 3.0], 4.0), "n/sum/sum_sq"),
        (lambda: Moments.from_proportions(11, 10), "successes"),
        (lambda: Moments.from_proportions(-1, 10), "successes"),
        (lambda: Moments.from_samples(["a", "b"]), "x"),
        (lambda: JointMoments.from_samples([1.0, 2.0], [1.0]), "x"),
        (lambda: JointMoments.from_sums(5, 1.0, 1.0, 1.0, 1.0, np.nan), "sum_xy"),
    ],
)
def test_bad_input_names_the_argument(build, argument):
    with pytest.raises(InvalidArgumentError) as info:
        build()
    assert info.value.argument == argument
    assert argument in str(info.value)
    assert isinstance(info.value, ValueError)


def test_shape_mismatch_is_its_own_error():
    with pytest.raises(ShapeMismatchError):
        Moments([1, 2], [0.0, 0.0, 0.0], 1.0)


def test_merging_proportions_with_samples_is_refused():
    with pytest.raises(InvalidArgumentError, match="other"):
        Moments.from_proportions(3, 10) + Moments.from_samples([1.0, 2.0])


def test_sums_of_subnormal_squares_are_not_called_impossible():
    # x² = 1.3e-315 is subnormal: Σx² and (Σx)²/n round at the absolute scale 5e-324, so
    # a constant sample can show Σx² < (Σx)²/n by that much (hypothesis found this one)
    x = np.array([3.56951257e-158, 3.56951257e-158])
    moments = Moments.from_sums(x.size, x.sum(), (x * x).sum())
    assert np.isnan(moments.var) or moments.var == 0.0  # the true variance is 0
    joint = JointMoments.from_sums(2, 0.0, 0.0, x.sum(), (x * x).sum(), 0.0)
    assert np.isnan(joint.var_x) or joint.var_x == 0.0
    with pytest.raises(InvalidArgumentError, match="smaller than"):
        Moments.from_sums(2, 2.0, 1.0)  # a real impossibility still raises
