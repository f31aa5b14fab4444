"""Regression adjustment with k covariates (splitlab.stats.regression), checked against
independent computations: statsmodels OLS (HC1, HC2), scipy's Welch test and numpy on the
raw samples, and the one-covariate CUPED test it generalises."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from splitlab.errors import DegenerateDataWarning, InvalidArgumentError, UnknownOptionError
from splitlab.stats.adjustment import cuped_test
from splitlab.stats.frequentist import ttest
from splitlab.stats.moments import LOST_PRECISION, JointMoments, Moments
from splitlab.stats.regression import (
    CrossMoments,
    RegressionResult,
    regression_difference,
    regression_test,
)

FIELDS = ("effect", "se", "ci_low", "ci_high", "p_value", "statistic", "df")


def experiment(rng, n_c, n_t, k, *, effect=0.3, hetero=0.5, shift=None):
    """Raw samples: k correlated covariates (with their own means and scales), an outcome
    linear in them plus heteroskedastic noise; returns (y_c, x_c, y_t, x_t), x as (k, n)."""
    mixing = rng.normal(size=(k, k)) / np.sqrt(k) + np.eye(k)
    scales = rng.uniform(0.5, 3.0, k)
    means = rng.normal(0, 5, k) if shift is None else shift
    beta = rng.normal(0, 1, k)

    def arm(n, treated):
        x = (rng.normal(size=(n, k)) @ mixing) * scales + means
        noise = rng.standard_t(8, size=n) * (1 + hetero * treated)
        y = 10.0 + effect * treated + x @ beta + noise
        return y, x.T

    return (*arm(n_c, 0), *arm(n_t, 1))


def stacked(y_c, x_c, y_t, x_t):
    """The OLS design of the same data: y, T and x (units in rows)."""
    y = np.concatenate([y_c, y_t])
    treated = np.concatenate([np.zeros(y_c.size), np.ones(y_t.size)])
    return y, treated, np.concatenate([x_c, x_t], axis=1).T


def groups(y_c, x_c, y_t, x_t):
    return CrossMoments.from_samples(y_c, x_c), CrossMoments.from_samples(y_t, x_t)


# --- CrossMoments -------------------------------------------------------------------------


def test_cross_moments_from_samples_are_numpys_means_and_covariance():
    rng = np.random.default_rng(10)
    y, x = rng.normal(size=(4, 50)), rng.normal(size=(4, 3, 50))
    cm = CrossMoments.from_samples(y, x)
    assert cm.shape == (4,) and cm.k == 3
    for row in range(4):
        data = np.vstack([y[row], x[row]])
        np.testing.assert_allclose(cm.mean[row], data.mean(axis=1), rtol=1e-13)
        np.testing.assert_allclose(cm.cov[row], np.cov(data), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(cm.var_y[row], np.var(y[row], ddof=1), rtol=1e-12)
        np.testing.assert_allclose(cm.cov_xx[row], np.cov(x[row]), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(
            cm.cov_xy[row], [np.cov(y[row], x[row, j])[0, 1] for j in range(3)], rtol=1e-12
        )
        np.testing.assert_allclose(cm.mean_x[row], x[row].mean(axis=1), rtol=1e-13)
    as_list = CrossMoments.from_samples(y, [x[:, j] for j in range(3)])
    observations_first = CrossMoments.from_samples(y.T, x.transpose(1, 2, 0), axis=0)
    for other in (as_list, observations_first):
        np.testing.assert_allclose(other.cov, cm.cov, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(other.mean, cm.mean, rtol=1e-13)
    assert cm[1:3].shape == (2,) and cm[2].shape == ()
    np.testing.assert_array_equal(cm[2].cov, cm.cov[2])


def test_from_sums_and_from_centred_match_from_samples():
    rng = np.random.default_rng(11)
    y, x = rng.normal(3, 2, size=(5, 80)), rng.normal(-1, 1, size=(5, 2, 80))
    reference = CrossMoments.from_samples(y, x)
    v = np.concatenate([y[:, None, :], x], axis=1)
    sums = v.sum(axis=-1)
    cross = np.einsum("rin,rjn->rij", v, v)
    centred = v - v.mean(axis=-1, keepdims=True)
    m2 = np.einsum("rin,rjn->rij", centred, centred)
    for cm in (
        CrossMoments.from_sums(80, sums, cross),
        CrossMoments.from_centred(80, v.mean(axis=-1), m2),
    ):
        np.testing.assert_allclose(cm.n, reference.n)
        np.testing.assert_allclose(cm.mean, reference.mean, rtol=1e-13)
        np.testing.assert_allclose(cm.cov, reference.cov, rtol=1e-9, atol=1e-12)
    population = CrossMoments.from_centred(80, v.mean(axis=-1), m2, ddof=0)
    np.testing.assert_allclose(population.cov, m2 / 80, rtol=1e-13)


def test_pooling_matches_one_sample():
    rng = np.random.default_rng(12)
    y, x = rng.normal(5, 2, size=130), rng.normal(size=(3, 130)) + np.array([[1.0], [-4.0], [20.0]])
    a = CrossMoments.from_samples(y[:40], x[:, :40])
    b = CrossMoments.from_samples(y[40:], x[:, 40:])
    whole = CrossMoments.from_samples(y, x)
    for pooled in (a + b, b.merge(a)):
        assert float(pooled.n) == 130.0
        np.testing.assert_allclose(pooled.mean, whole.mean, rtol=1e-13)
        np.testing.assert_allclose(pooled.cov, whole.cov, rtol=1e-12, atol=1e-14)
    empty = CrossMoments.from_centred(0, np.zeros(4), np.zeros((4, 4)))
    np.testing.assert_allclose((a + empty).cov, a.cov, rtol=1e-14)
    with pytest.raises(InvalidArgumentError) as excinfo:
        a + CrossMoments.from_samples(y, x[:2])
    assert excinfo.value.argument == "other"
    with pytest.raises(InvalidArgumentError, match="ddof=0"):
        a + CrossMoments.from_centred(130, whole.mean, whole.m2, ddof=0)


def test_impossible_cross_products_are_refused():
    n = 100.0
    mean = np.array([1.0, 2.0, 3.0])
    # every pair is a valid correlation, the three together are not (determinant < 0)
    correlation = np.array([[1.0, 0.9, 0.9], [0.9, 1.0, -0.9], [0.9, -0.9, 1.0]])
    assert np.linalg.eigvalsh(correlation)[0] < 0
    m2 = correlation * (n - 1)
    cross = m2 + n * np.outer(mean, mean)
    with pytest.raises(InvalidArgumentError, match="negative eigenvalue") as excinfo:
        CrossMoments.from_sums(n, n * mean, cross)
    assert excinfo.value.argument == "cross"
    with pytest.raises(InvalidArgumentError) as excinfo:
        CrossMoments.from_centred(n, mean, m2)
    assert excinfo.value.argument == "m2"
    with pytest.raises(InvalidArgumentError) as excinfo:
        CrossMoments(n, mean, correlation)
    assert excinfo.value.argument == "cov"
    # Σy² below (Σy)²/n: a negative variance
    bad_diagonal = cross.copy()
    bad_diagonal[0, 0] = n * mean[0] ** 2 * (1 - 1e-6)
    with pytest.raises(InvalidArgumentError, match="negative variance") as excinfo:
        CrossMoments.from_sums(n, n * mean, bad_diagonal)
    assert excinfo.value.argument == "cross"
    # only one row of a batch is wrong: the message points at it
    batch = np.stack([np.eye(3) * 50 + n * np.outer(mean, mean), cross])
    with pytest.raises(InvalidArgumentError, match=r"1 row\(s\) \(first at index \(1,\)\)"):
        CrossMoments.from_sums([n, n], [n * mean, n * mean], batch)
    asymmetric = cross.copy()
    asymmetric[0, 1] += 1.0
    with pytest.raises(InvalidArgumentError, match="not symmetric"):
        CrossMoments.from_sums(n, n * mean, asymmetric)
    with pytest.raises(InvalidArgumentError) as excinfo:
        CrossMoments.from_sums(0, [0.0, 1.0], np.zeros((2, 2)))
    assert excinfo.value.argument == "sums"


def test_sums_of_exactly_collinear_data_are_accepted_and_reported_as_collinear():
    # x_3 = x_1 + x_2 and large means: the centred matrix's zero eigenvalue comes out as
    # rounding, about ±1e-10 on the correlation scale, either side of zero: below zero it
    # must not read as impossible data, above it not as a direction θ can be fitted in
    rng = np.random.default_rng(13)
    negative = 0
    for _ in range(20):
        arms = []
        for _arm in range(2):
            x1, x2 = rng.normal(1e3, 1, size=(2, 500))
            v = np.vstack([x1 + rng.normal(size=500), x1, x2, x1 + x2])
            sums, cross = v.sum(axis=1), v @ v.T
            centred = cross - np.outer(sums, sums) / 500
            scale = np.sqrt(np.diag(centred))
            negative += np.linalg.eigvalsh(centred / np.outer(scale, scale))[0] < 0
            arms.append(CrossMoments.from_sums(500, sums, cross))
        with pytest.warns(DegenerateDataWarning):
            result = regression_test(*arms)
        assert result.error == "covariates are collinear: the covariate matrix has rank 2 of 3"
    assert 0 < negative < 40
    # the rounding bounds travel with pooling and indexing
    pooled = arms[0] + arms[1]
    np.testing.assert_array_equal(pooled.rounding, arms[0].rounding + arms[1].rounding)
    assert (arms[0].rounding > 0).all()
    assert (CrossMoments.from_samples(v[0], v[1:]).rounding == 0).all()


def test_sums_that_no_longer_resolve_a_variance_mark_only_their_row():
    rng = np.random.default_rng(14)
    y, x = rng.normal(10, 2, size=(2, 3, 1000)), rng.normal(size=(2, 3, 2, 1000))
    y[:, 1] += 1e9  # Σy² − (Σy)²/n keeps no correct digit
    v = np.concatenate([y[:, :, None, :], x], axis=2)
    sums = v.sum(axis=-1)
    cross = np.einsum("arin,arjn->arij", v, v)
    control = CrossMoments.from_sums(1000, sums[0], cross[0])
    treatment = CrossMoments.from_sums(1000, sums[1], cross[1])
    assert np.isnan(control.var_y[1]) and np.isnan(control.cov_xy[1]).all()
    assert np.isfinite(control.cov_xx[1]).all()
    with pytest.warns(DegenerateDataWarning):
        result = regression_test(control, treatment)
    assert result.error[1] == f"control {LOST_PRECISION}"
    assert np.isnan(result.effect[1]) and np.isnan(result.theta[1]).all()
    fine = regression_test(
        CrossMoments.from_samples(y[0, [0, 2]], x[0, [0, 2]]),
        CrossMoments.from_samples(y[1, [0, 2]], x[1, [0, 2]]),
    )
    np.testing.assert_allclose(result.effect[[0, 2]], fine.effect, rtol=1e-9)
    np.testing.assert_allclose(result.se[[0, 2]], fine.se, rtol=1e-9)


# --- one covariate: CUPED -----------------------------------------------------------------


def random_pair(rng, size, mean_y):
    """The same random (valid) one-covariate moments as JointMoments and CrossMoments, with
    row 0 a covariate without variance anywhere and row 1 one whose arms differ only in
    their (constant) x."""
    n = rng.integers(20, 5000, size).astype(float)
    my, mx = rng.normal(mean_y, 0.05, size), rng.normal(3.0, 0.05, size)
    vy, vx = rng.uniform(0.5, 4.0, size), rng.uniform(0.1, 3.0, size)
    cov = rng.uniform(-0.95, 0.95, size) * np.sqrt(vy * vx)
    vx[:2] = cov[:2] = 0.0
    mx[0] = 3.0
    joint = JointMoments(n, my, vy, mx, vx, cov)
    matrix = np.stack([np.stack([vy, cov], -1), np.stack([cov, vx], -1)], -2)
    return joint, CrossMoments(n, np.stack([my, mx], -1), matrix)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize(("relative", "origin"), [(False, 0.0), (True, 0.0), (True, 250.0)])
def test_one_covariate_reproduces_cuped_test(seed, relative, origin):
    rng = np.random.default_rng(seed)
    joint_c, cross_c = random_pair(rng, 30, 10.0)
    joint_t, cross_t = random_pair(rng, 30, 10.02)
    expected = cuped_test(joint_c, joint_t, relative=relative, origin=origin)
    actual = regression_test(cross_c, cross_t, relative=relative, origin=origin)
    assert isinstance(actual, RegressionResult) and actual.method == "regression"
    # the effect sums the same terms in another order (x̄t − x̄c first): an absolute rounding
    # of ε·|θ x̄|, all there is of row 1's effect (its x explains the whole difference)
    assert abs(actual.effect[1]) < 1e-13 and abs(expected.effect[1]) < 1e-13
    rows = np.arange(30) != 1
    for name in FIELDS:
        np.testing.assert_allclose(
            getattr(actual, name)[rows], getattr(expected, name)[rows], rtol=1e-12, err_msg=name
        )
    for name in ("se", "df", "p_value"):
        np.testing.assert_allclose(getattr(actual, name)[1], getattr(expected, name)[1], 1e-12)
    np.testing.assert_allclose(actual.theta[:, 0], expected.theta, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        actual.variance_reduction, expected.variance_reduction, rtol=1e-12, atol=1e-14
    )
    assert actual.theta[0, 0] == 0.0
    assert actual.note[0] == expected.note[0] == "var(x) is zero: unadjusted test"
    assert (actual.note[1:] == "").all()
    assert (actual.error == "").all()
    difference, theta, reduction = regression_difference(
        cross_c, cross_t, relative=relative, origin=origin
    )
    np.testing.assert_array_equal(difference.effect, actual.effect)
    np.testing.assert_array_equal(theta, actual.theta)
    np.testing.assert_array_equal(reduction, actual.variance_reduction)


def test_one_constant_covariate_is_the_unadjusted_welch_test():
    rng = np.random.default_rng(20)
    y_c, y_t = rng.normal(5, 1, 300), rng.normal(5.2, 2, 400)
    control = CrossMoments.from_samples(y_c, [np.full(300, 7.0)])
    treatment = CrossMoments.from_samples(y_t, [np.full(400, 7.0)])
    result = regression_test(control, treatment)
    reference = stats.ttest_ind(y_t, y_c, equal_var=False)
    np.testing.assert_allclose(result.p_value, reference.pvalue, rtol=1e-12)
    np.testing.assert_allclose(result.statistic, reference.statistic, rtol=1e-12)
    assert result.theta.tolist() == [0.0] and result.variance_reduction == 0.0
    assert result.note == "var(x) is zero: unadjusted test" and result.error == ""


# --- many covariates against OLS ----------------------------------------------------------


@pytest.mark.parametrize("seed", [30, 31, 32])
def test_within_theta_matches_statsmodels_ols(seed):
    rng = np.random.default_rng(seed)
    data = experiment(rng, 300, 450, 4)
    y, treated, x = stacked(*data)
    design = np.column_stack([np.ones(y.size), treated, x - x.mean(axis=0)])
    fit = sm.OLS(y, design).fit()
    result = regression_test(*groups(*data), theta="within")
    np.testing.assert_allclose(result.effect, fit.params[1], rtol=1e-9)
    np.testing.assert_allclose(result.theta, fit.params[2:], rtol=1e-9)


def test_pooled_theta_is_the_least_squares_slope_of_both_groups_as_one_sample():
    rng = np.random.default_rng(33)
    data = experiment(rng, 200, 260, 3, effect=2.0)
    y, _, x = stacked(*data)
    slope = np.linalg.lstsq(np.column_stack([np.ones(y.size), x]), y, rcond=None)[0][1:]
    result = regression_test(*groups(*data))
    np.testing.assert_allclose(result.theta, slope, rtol=1e-9)
    adjusted = y - x @ slope
    expected = adjusted[200:].mean() - adjusted[:200].mean()
    np.testing.assert_allclose(result.effect, expected, rtol=1e-9)


@pytest.mark.parametrize("theta", ["pooled", "within"])
@pytest.mark.parametrize("seed", [40, 41])
def test_se_matches_statsmodels_hc2_of_adjusted_outcome(theta, seed):
    rng = np.random.default_rng(seed)
    data = experiment(rng, 250, 400, 3, hetero=1.0)
    y, treated, x = stacked(*data)
    result = regression_test(*groups(*data), theta=theta)
    adjusted = y - x @ result.theta
    fit = sm.OLS(adjusted, np.column_stack([np.ones(y.size), treated])).fit(cov_type="HC2")
    np.testing.assert_allclose(result.se, fit.bse[1], rtol=1e-9)
    np.testing.assert_allclose(result.effect, fit.params[1], rtol=1e-9)
    # and the whole test is Welch's on the adjusted outcome (θ fixed)
    welch = stats.ttest_ind(adjusted[treated == 1], adjusted[treated == 0], equal_var=False)
    np.testing.assert_allclose(result.p_value, welch.pvalue, rtol=1e-9)
    np.testing.assert_allclose(result.df, welch.df, rtol=1e-9)
    interval = welch.confidence_interval(0.95)
    np.testing.assert_allclose([result.ci_low, result.ci_high], interval, rtol=1e-9)


@pytest.mark.parametrize("theta", ["pooled", "within"])
def test_sandwich_hc1_differs_by_order_one_over_n(theta):
    # the documented variant: the sandwich se of T in y ~ 1 + T + (x − x̄) also counts θ's
    # estimation; the gap to the θ-known Welch se is O(k/n), here bounded by 4(k + 2)/n
    rng = np.random.default_rng(50)
    k = 3
    for n in (500, 2000, 8000):
        data = experiment(rng, n, n, k, hetero=1.0)
        y, treated, x = stacked(*data)
        design = np.column_stack([np.ones(y.size), treated, x - x.mean(axis=0)])
        sandwich = sm.OLS(y, design).fit(cov_type="HC1").bse[1]
        gap = abs(regression_test(*groups(*data), theta=theta).se / sandwich - 1)
        assert gap < 4 * (k + 2) / n
        if n == 2000:
            assert gap < 0.01


def test_relative_lift_is_the_delta_method_on_raw_samples():
    rng = np.random.default_rng(60)
    y_c, x_c, y_t, x_t = experiment(rng, 700, 500, 3)
    origin = 4.0
    result = regression_test(*groups(y_c - origin, x_c, y_t - origin, x_t),
                             relative=True, origin=origin)  # fmt: skip
    theta = result.theta
    level_c, ratio = y_c.mean(), y_t.mean() / y_c.mean()
    # gradients of ((ȳt − θᵀx̄t) − (ȳc − θᵀx̄c)) / ȳc in (ȳ, x̄) of each arm, with gbstats'
    # r = ȳt/ȳc for the derivative in ȳc
    gradient_t = np.concatenate([[1.0], -theta]) / level_c
    gradient_c = np.concatenate([[-ratio], theta]) / level_c
    sigma_c, sigma_t = np.cov(np.vstack([y_c, x_c])), np.cov(np.vstack([y_t, x_t]))
    variance = gradient_c @ sigma_c @ gradient_c / 700 + gradient_t @ sigma_t @ gradient_t / 500
    adjusted_effect = (y_t - theta @ x_t).mean() - (y_c - theta @ x_c).mean()
    np.testing.assert_allclose(result.effect, adjusted_effect / level_c, rtol=1e-9)
    np.testing.assert_allclose(result.se, np.sqrt(variance), rtol=1e-9)
    absolute = regression_test(*groups(y_c, x_c, y_t, x_t))
    np.testing.assert_allclose(result.variance_reduction, absolute.variance_reduction, rtol=1e-9)


def test_origin_and_covariate_shifts_do_not_change_the_result():
    rng = np.random.default_rng(61)
    y_c, x_c, y_t, x_t = experiment(rng, 300, 300, 2)
    plain = regression_test(*groups(y_c, x_c, y_t, x_t), relative=True)
    shift = np.array([[1e6], [-3e4]])
    moved = regression_test(*groups(y_c - 8.0, x_c + shift, y_t - 8.0, x_t + shift),
                            relative=True, origin=8.0)  # fmt: skip
    for name in (*FIELDS, "theta", "variance_reduction"):
        np.testing.assert_allclose(getattr(moved, name), getattr(plain, name), rtol=1e-7)


def test_variance_reduction_compares_the_adjusted_and_unadjusted_se():
    rng = np.random.default_rng(62)
    x_c, x_t = rng.normal(size=(2, 2, 400))
    y_c, y_t = [x @ [2.0, -1.0] + rng.normal(size=400) for x in (x_c.T, x_t.T)]
    result = regression_test(*groups(y_c, x_c, y_t, x_t))
    unadjusted = ttest(Moments.from_samples(y_c), Moments.from_samples(y_t))
    np.testing.assert_allclose(result.variance_reduction, 1 - result.se**2 / unadjusted.se**2)
    # a unit-variance residual of a variance-6 outcome: about 5/6 of the variance goes
    assert 0.75 < result.variance_reduction < 0.9


# --- degenerate rows, batches and arguments -----------------------------------------------


def test_collinear_covariates_give_a_row_error():
    rng = np.random.default_rng(70)
    n = 200
    y, x = rng.normal(size=(2, 4, n)), rng.normal(size=(2, 4, 3, n))
    y += x[:, :, 0]
    x[:, 1, 2] = x[:, 1, 0] + 2 * x[:, 1, 1]  # row 1: x_3 a combination of x_1 and x_2
    x[:, 3, 1] = 5.0  # row 3: a constant covariate among several
    control = CrossMoments.from_samples(y[0], x[0])
    treatment = CrossMoments.from_samples(y[1], x[1])
    for theta in ("pooled", "within"):
        with pytest.warns(DegenerateDataWarning, match="2 of 4 comparisons"):
            result = regression_test(control, treatment, theta=theta)
        assert result.error.tolist() == [
            "",
            "covariates are collinear: the covariate matrix has rank 2 of 3",
            "",
            "covariates are collinear: the covariate matrix has rank 2 of 3",
        ]
        for name in (*FIELDS, "variance_reduction"):
            assert np.isnan(getattr(result, name)[[1, 3]]).all()
        assert np.isnan(result.theta[[1, 3]]).all()
        for row in (0, 2):
            alone = regression_test(control[row], treatment[row], theta=theta)
            for name in (*FIELDS, "theta", "variance_reduction"):
                np.testing.assert_allclose(
                    getattr(result, name)[row], getattr(alone, name), rtol=1e-14
                )
    # the criterion is relative: covariates of very different scales are not collinear
    scaled = x.copy()
    scaled[:, 0, 1] *= 1e-7
    result = regression_test(
        CrossMoments.from_samples(y[0, 0], scaled[0, 0]),
        CrossMoments.from_samples(y[1, 0], scaled[1, 0]),
    )
    assert result.error == ""
    two = CrossMoments.from_samples(y[0, 0], np.vstack([x[0, 0, 0], 3 * x[0, 0, 0]]))
    difference, theta, _ = regression_difference(two, two, relative=False)
    assert difference.errors.messages[()] == (
        "covariates are collinear: the covariate matrix has rank 1 of 2"
    )
    assert np.isnan(theta).all()


def test_small_and_constant_groups_give_the_usual_row_errors():
    rng = np.random.default_rng(71)
    y, x = rng.normal(size=(2, 3, 30)), rng.normal(size=(2, 3, 2, 30))
    y[:, 2] = 1.0  # no variance in either arm
    control = CrossMoments.from_samples(y[0], x[0])
    treatment = CrossMoments.from_samples(y[1], x[1])
    single = CrossMoments.from_samples(y[0, 0, :1], x[0, 0, :, :1])  # one unit
    mixed = CrossMoments(
        [1, 30, 30],
        np.stack([single.mean, *control.mean[1:]]),
        np.stack([single.cov, *control.cov[1:]]),
    )
    with pytest.warns(DegenerateDataWarning):
        result = regression_test(mixed, treatment)
    assert result.error.tolist() == ["n < 2 in control", "", "zero variance in both groups"]
    assert np.isfinite(result.effect[1]) and np.isnan(result.effect[[0, 2]]).all()
    # zero control mean on the relative scale
    centred = CrossMoments.from_samples(y[0, 1] - y[0, 1].mean(), x[0, 1])
    with pytest.warns(DegenerateDataWarning):
        lift = regression_test(centred, treatment[1], relative=True)
    assert lift.error == "control mean is zero; relative lift is undefined"


def test_results_broadcast_over_leading_dims():
    rng = np.random.default_rng(72)
    y_c, x_c = rng.normal(size=300), rng.normal(size=(2, 300))
    y_t, x_t = rng.normal(0.1, 1, size=(2, 3, 300)), rng.normal(size=(2, 3, 2, 300))
    control = CrossMoments.from_samples(y_c, x_c)
    treatment = CrossMoments.from_samples(y_t, x_t)
    result = regression_test(control, treatment, alternative="greater")
    assert result.effect.shape == (2, 3) and result.theta.shape == (2, 3, 2)
    for i in range(2):
        for j in range(3):
            alone = regression_test(control, treatment[i, j], alternative="greater")
            for name in (*FIELDS, "theta"):
                np.testing.assert_allclose(
                    getattr(result, name)[i, j], getattr(alone, name), rtol=1e-13
                )
    assert np.isinf(result.ci_high).all()
    frame = result.to_frame()
    assert len(frame) == 6 and {"theta_1", "theta_2", "note"} <= set(frame.columns)
    np.testing.assert_allclose(frame["theta_2"], result.theta[..., 1].ravel())


def test_bad_arguments_are_refused_naming_the_argument():
    rng = np.random.default_rng(73)
    good = CrossMoments.from_samples(rng.normal(size=20), rng.normal(size=(2, 20)))
    other_k = CrossMoments.from_samples(rng.normal(size=20), rng.normal(size=(3, 20)))
    joint = JointMoments.from_samples(rng.normal(size=20), rng.normal(size=20))
    cases = [
        (lambda: regression_test(joint, good), "control", InvalidArgumentError),
        (lambda: regression_test(good, other_k), "treatment", InvalidArgumentError),
        (lambda: regression_test(good, good, theta="ols"), "theta", UnknownOptionError),
        (lambda: regression_test(good, good, alpha=1.5), "alpha", InvalidArgumentError),
        (lambda: regression_test(good, good, relative=1), "relative", InvalidArgumentError),
        (lambda: regression_test(good, good, origin=[1.0, 2.0]), "origin", InvalidArgumentError),
        (lambda: regression_difference(good, 3.0, relative=False), "treatment",
         InvalidArgumentError),
        (lambda: CrossMoments(10, [1.0], [[1.0]]), "mean", InvalidArgumentError),
        (lambda: CrossMoments(10, [1.0, 2.0], np.eye(3)), "mean/cov", InvalidArgumentError),
        (lambda: CrossMoments(10, [1.0, 2.0], [[1.0, 0.0], [0.0, -1.0]]), "cov",
         InvalidArgumentError),
        (lambda: CrossMoments([10, 20], np.zeros((3, 2)), np.eye(2)), "n/mean/cov",
         InvalidArgumentError),
        (lambda: CrossMoments(10, [1.0, 2.0], np.eye(2), ddof=2), "ddof", InvalidArgumentError),
        (lambda: CrossMoments(-1, [1.0, 2.0], np.eye(2)), "n", InvalidArgumentError),
        (lambda: CrossMoments(10, [np.nan, 2.0], np.eye(2)), "mean", InvalidArgumentError),
        (lambda: CrossMoments.from_samples([1.0, 2.0], [[1.0, 2.0, 3.0]]), "covariates",
         InvalidArgumentError),
        (lambda: CrossMoments.from_samples([1.0, 2.0], []), "covariates", InvalidArgumentError),
        (lambda: CrossMoments.from_samples([1.0, 2.0], [[1.0, 2.0]], axis=1), "axis",
         InvalidArgumentError),
        (lambda: CrossMoments.from_centred(0, [0.0, 0.0], np.eye(2)), "m2",
         InvalidArgumentError),
    ]  # fmt: skip
    for call, argument, kind in cases:
        with pytest.raises(kind) as excinfo:
            call()
        assert excinfo.value.argument == argument, (argument, str(excinfo.value))


@pytest.mark.validity
def test_interval_covers_at_the_nominal_rate_with_five_covariates():
    # 2000 seeded replications of 150 + 150 units, 5 covariates: the 95% interval covers the
    # true effect within 4 binomial standard errors of 0.95 (θ-known se on finite samples)
    rng = np.random.default_rng(80)
    replications, n, k, effect = 2000, 150, 5, 0.4
    mixing = rng.normal(size=(k, k)) / np.sqrt(k) + np.eye(k)
    beta = rng.normal(size=k)

    def arm(treated):
        x = rng.normal(size=(replications, n, k)) @ mixing + 2.0
        noise = rng.exponential(1.0, size=(replications, n)) - 1.0  # skewed errors
        y = 1.0 + effect * treated + x @ beta + (1 + treated) * noise
        return CrossMoments.from_samples(y, np.swapaxes(x, -1, -2))

    control, treatment = arm(0), arm(1)
    bound = 4 * np.sqrt(0.95 * 0.05 / replications)
    for theta in ("pooled", "within"):
        result = regression_test(control, treatment, theta=theta)
        covered = (result.ci_low <= effect) & (effect <= result.ci_high)
        assert abs(covered.mean() - 0.95) < bound, (theta, covered.mean())
