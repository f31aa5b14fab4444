"""Quantile metrics: GrowthBook's quantile test on summary statistics
(:mod:`splitlab.stats.quantile`) and the engine reduction that feeds it
(:mod:`splitlab.analyzer.quantiles`).

References: gbstats (GrowthBook ``packages/stats`` at commit 8f1db445) through
``tests/data/reference/gbstats_quantile.json`` and the inputs and expected figures of
gbstats' own quantile tests, cited where used; numpy's quantiles of the raw data; hand
computations from numpy order statistics; seeded coverage simulations.
"""

from __future__ import annotations

import warnings

import duckdb
import narwhals as nw
import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import special

from conftest import reference_params
from splitlab.analyzer.quantiles import CLUSTER_COLUMNS, COLUMNS, quantile_statistics
from splitlab.errors import (
    DegenerateDataWarning,
    EngineError,
    InvalidArgumentError,
    UnknownOptionError,
)
from splitlab.sources import open_source
from splitlab.stats.frequentist import Difference
from splitlab.stats.quantile import (
    N_STAR_GRID,
    VARIANCE_FLOOR,
    QuantileSummary,
    choose_n_star,
    interval_levels,
    quantile_difference,
    quantile_test,
)

Z = float(special.ndtri(0.975))
# pyspark 4.x warns on every pandas conversion that it does not yet fully support pandas 3
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support:FutureWarning")


def quiet_test(*args, **kwargs):
    """quantile_test without the DegenerateDataWarning of rows that are expected to fail."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        return quantile_test(*args, **kwargs)


# ---------------------------------------------------------------------- gbstats references


def _from_gbstats(arm: dict) -> QuantileSummary:
    fields = dict(
        n=arm["n"],
        nu=arm["nu"],
        quantile=arm["quantile_hat"],
        lower=arm["quantile_lower"],
        upper=arm["quantile_upper"],
        n_star=arm["n_star"],
    )
    if "n_clusters" in arm:
        fields.update(
            n_clusters=arm["n_clusters"],
            sum_below=arm["main_sum"],
            sum_below_sq=arm["main_sum_squares"],
            sum_events=arm["denominator_sum"],
            sum_events_sq=arm["denominator_sum_squares"],
            sum_below_events=arm["main_denominator_sum_product"],
        )
    return QuantileSummary(**fields)


def _number(value) -> float:
    return float(value) if isinstance(value, str) else value


GBSTATS_CASES = reference_params(
    "gbstats_quantile.json",
    "cases",
    lambda case: True,
    lambda i, case: (
        f"{case['kind']}-{case['alternative']}-{'rel' if case['relative'] else 'abs'}-{i}"
    ),
)


@pytest.mark.parametrize("case", GBSTATS_CASES)
def test_matches_gbstats(case):
    control, treatment = _from_gbstats(case["control"]), _from_gbstats(case["treatment"])
    result = quiet_test(
        control,
        treatment,
        alpha=case["alpha"],
        alternative=case["alternative"],
        relative=case["relative"],
    )
    expected = case["expected"]
    if expected["error_message"]:
        assert result.error != ""
        assert np.isnan(result.effect) and np.isnan(result.se)
        return
    assert result.error == ""
    for name in ("effect", "se", "df", "ci_low", "ci_high"):
        np.testing.assert_allclose(getattr(result, name), _number(expected[name]), rtol=1e-12)
    np.testing.assert_allclose(result.p_value, expected["p_value"], rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(control.variance, expected["variance_control"], rtol=1e-12)
    np.testing.assert_allclose(treatment.variance, expected["variance_treatment"], rtol=1e-12)


# Inputs and expected figures of gbstats' own quantile tests, GrowthBook commit 8f1db445:
# packages/stats/tests/bayesian/test_tests.py::TestEffectBayesianABTest::
# test_bayesian_effect_ab_test (the same arms are in tests/test_shared_models.py::TestSumStats).
# Its improper flat prior makes the posterior N(effect, se²), so the expected interval is
# effect ± z₀.₉₇₅·se; the relative case has a proper prior of variance 1e6, which shrinks
# the estimate by a factor 1/(1 + se²/1e6) ≈ 1 − 4e-11.
GB_NU, GB_N_C, GB_N_T = 0.9, 11054, 10861
GB_CONTROL = dict(quantile=7.157987489967789, lower=7.098780136176828, upper=7.217194843758751)
GB_TREATMENT = dict(quantile=7.694499927525767, lower=7.64180598628119, upper=7.747193868770344)


def _gbstats_test_arms():
    control = QuantileSummary(n=GB_N_C, nu=GB_NU, n_star=GB_N_C, **GB_CONTROL)
    treatment = QuantileSummary(n=GB_N_T, nu=GB_NU, n_star=GB_N_T, **GB_TREATMENT)
    return control, treatment


def test_gbstats_bayesian_test_arms_absolute():
    control, treatment = _gbstats_test_arms()
    result = quantile_test(control, treatment)
    expected, (low, high) = 0.5365124375579775, (0.4572559589115422, 0.6157689162044128)
    np.testing.assert_allclose(result.effect, expected, rtol=1e-14)
    np.testing.assert_allclose(result.se, (high - low) / (2 * Z), rtol=1e-12)
    # the t interval (df ≈ 2e4) is a little wider than gbstats' normal posterior
    assert result.ci_low < low < high < result.ci_high
    np.testing.assert_allclose([result.ci_low, result.ci_high], [low, high], rtol=1e-4)


def test_gbstats_bayesian_test_arms_relative():
    control, treatment = _gbstats_test_arms()
    result = quantile_test(control, treatment, relative=True)
    expected, (low, high) = 0.07495297222736319, (0.06341005842481906, 0.08649588602990732)
    np.testing.assert_allclose(result.effect, expected, rtol=1e-9)
    np.testing.assert_allclose(result.se, (high - low) / (2 * Z), rtol=1e-9)


# packages/stats/tests/test_shared_models.py::TestQuantileStatisticZeroVariance (commit
# 8f1db445): collapsed bounds are degenerate at any n; distinct bounds at n = 6e7 are not.
def _zero_variance_arm(n, lower, upper):
    return QuantileSummary(n=n, nu=0.9, quantile=5.0, lower=lower, upper=upper, n_star=n)


@pytest.mark.parametrize(
    ("n", "lower", "upper", "degenerate"),
    [
        (60_000_000, 5.0, 5.0, True),  # test_collapsed_bounds_large_n_has_zero_variance
        (999, 5.0, 5.0, True),  # test_collapsed_bounds_small_n_has_zero_variance
        (60_000_000, 4.99, 5.01, False),  # test_distinct_bounds_no_zero_variance
    ],
)
def test_gbstats_zero_variance_rules(n, lower, upper, degenerate):
    arm = _zero_variance_arm(n, lower, upper)
    fine = _zero_variance_arm(60_000_000, 4.99, 5.01)
    result = quiet_test(arm, fine)
    assert (result.error != "") is degenerate
    if degenerate:
        assert "collapse" in result.error and np.isnan(result.p_value)


def test_gbstats_collapsed_bounds_error():
    # test_collapsed_bounds_returns_error_message: gbstats' ZERO_NEGATIVE_VARIANCE
    collapsed = _zero_variance_arm(60_000_000, 5.0, 5.0)
    fine = _zero_variance_arm(60_000_000, 4.99, 5.01)
    with pytest.warns(DegenerateDataWarning):
        result = quantile_test(collapsed, fine)
    assert result.error.startswith("the interval bounds collapse in control")


# ---------------------------------------------------------------------- levels and n*


def growthbook_n_star(n: float) -> float:
    """GrowthBook's choice (quantile-bounds-from-query-response.ts): the largest grid
    value below n, or the smallest grid value."""
    grid = [100 * 2**k for k in range(20)]
    below = [value for value in grid if value < n]
    return float(max(below) if below else grid[0])


def expected_n_star(n: float, nu: float) -> float:
    """GrowthBook's n*, raised to the smallest grid value whose levels lie inside (0, 1)
    (above z²·max(ν/(1 − ν), (1 − ν)/ν): 100 for 0.5 and 0.9, 400 for 0.99)."""
    minimum = Z * Z * max(nu / (1 - nu), (1 - nu) / nu)
    inside = min(100 * 2**k for k in range(20) if 100 * 2**k > minimum)
    return max(growthbook_n_star(n), float(inside))


@pytest.mark.parametrize("nu", [0.5, 0.9, 0.1])
def test_n_star_is_growthbooks_grid_choice(nu):
    n = np.array([0, 1, 50, 100, 101, 150, 200, 201, 999, 1000, 12_345, 3e6, 1e9])
    assert choose_n_star(n, nu).tolist() == [growthbook_n_star(value) for value in n]
    assert N_STAR_GRID.tolist() == [100 * 2**k for k in range(20)]


def test_n_star_keeps_the_levels_inside_the_unit_interval():
    # p99: GrowthBook takes 200 for 381 <= n <= 400, whose upper level 0.99 + z·0.007 > 1
    n = np.arange(0, 401)
    assert np.all(choose_n_star(n, 0.99) == 400.0)
    assert choose_n_star([401, 801], 0.99).tolist() == [400.0, 800.0]
    low, high = interval_levels(0.99, choose_n_star(n, 0.99))
    assert np.all((low > 0) & (high < 1))
    assert growthbook_n_star(390) == 200.0
    assert float(interval_levels(0.99, 200)[1]) == 1.0  # clipped
    # every ν and n large enough to be tested gets levels strictly inside (0, 1)
    for nu in (0.001, 0.01, 0.05, 0.5, 0.95, 0.999):
        minimum = Z * Z * max(nu / (1 - nu), (1 - nu) / nu)
        n = np.floor(minimum) + np.array([1, 2, 10, 1000])
        low, high = interval_levels(nu, choose_n_star(n, nu))
        assert np.all((low > 0) & (high < 1)), nu


def test_interval_levels_formula():
    nu, n_star = np.array([0.5, 0.9, 0.99]), np.array([400.0, 800.0, 12_800.0])
    low, high = interval_levels(nu, n_star)
    half = Z * np.sqrt(nu * (1 - nu) / n_star)
    np.testing.assert_allclose(low, nu - half, rtol=1e-15)
    np.testing.assert_allclose(high, nu + half, rtol=1e-15)
    low, high = interval_levels(0.5, 400, alpha=0.1)
    np.testing.assert_allclose(high - 0.5, special.ndtri(0.95) * 0.025, rtol=1e-14)


# ---------------------------------------------------------------------- the variance


def _hand_quantile(ordered: np.ndarray, level: float) -> float:
    """Linear interpolation between order statistics x₍ⱼ₎, j = floor((n − 1)p)."""
    position = (len(ordered) - 1) * level
    j = int(np.floor(position))
    fraction = position - j
    if j + 1 >= len(ordered):
        return float(ordered[-1])
    return float(ordered[j] + fraction * (ordered[j + 1] - ordered[j]))


@pytest.mark.parametrize("nu", [0.5, 0.9, 0.99])
def test_variance_by_hand_from_order_statistics(nu):
    rng = np.random.default_rng(11)
    x_c, x_t = rng.lognormal(0, 1, 3000), rng.standard_t(3, 2500) + 2.0
    results = {}
    for name, x in (("c", x_c), ("t", x_t)):
        ordered = np.sort(x)
        n = len(x)
        n_star = growthbook_n_star(n)
        half = Z * np.sqrt(nu * (1 - nu) / n_star)
        lower, upper = _hand_quantile(ordered, nu - half), _hand_quantile(ordered, nu + half)
        variance = n_star / n * (n - 1) * ((upper - lower) / (2 * Z)) ** 2
        results[name] = (n, _hand_quantile(ordered, nu), variance)
    (n_c, q_c, v_c), (n_t, q_t, v_t) = results["c"], results["t"]
    control, treatment = (
        QuantileSummary.from_samples(x_c, nu),
        QuantileSummary.from_samples(x_t, nu),
    )
    np.testing.assert_allclose([control.variance, treatment.variance], [v_c, v_t], rtol=1e-12)
    result = quantile_test(control, treatment)
    np.testing.assert_allclose(result.effect, q_t - q_c, rtol=1e-12)
    np.testing.assert_allclose(result.se, np.sqrt(v_c / n_c + v_t / n_t), rtol=1e-12)
    df = (v_c / n_c + v_t / n_t) ** 2 / (
        (v_c / n_c) ** 2 / (n_c - 1) + (v_t / n_t) ** 2 / (n_t - 1)
    )
    np.testing.assert_allclose(result.df, df, rtol=1e-12)
    relative = quantile_test(control, treatment, relative=True)
    se2 = v_t / (q_c**2 * n_t) + v_c * q_t**2 / (q_c**4 * n_c)
    np.testing.assert_allclose(relative.effect, (q_t - q_c) / abs(q_c), rtol=1e-12)
    np.testing.assert_allclose(relative.se, np.sqrt(se2), rtol=1e-12)


def test_clustered_variance_by_hand():
    rng = np.random.default_rng(5)
    units = 300
    events = rng.poisson(3, units) + 1
    cluster = np.repeat(np.arange(units), events)
    x = np.exp(rng.normal(0, 1, units)[cluster] + rng.normal(0, 0.3, cluster.size))
    nu = 0.9
    summary = QuantileSummary.from_samples(x, nu, clusters=cluster)
    q = np.quantile(x, nu)
    frame = pd.DataFrame({"c": cluster, "below": (x <= q).astype(float)})
    per_unit = frame.groupby("c").agg(s=("below", "sum"), m=("below", "size"))
    s, m = per_unit["s"].to_numpy(), per_unit["m"].to_numpy(float)
    k, n = len(per_unit), float(len(x))
    # gbstats' get_cluster_variance, term by term, with numpy's sample (co)variances
    mu_s, mu_m = s.mean(), m.mean()
    covariance = np.cov(s, m)  # ddof = 1
    share = (
        covariance[0, 0] - 2 * mu_s * covariance[0, 1] / mu_m + mu_s**2 * covariance[1, 1] / mu_m**2
    ) / (k * mu_m**2)
    ordered = np.sort(x)
    n_star = growthbook_n_star(n)
    half = Z * np.sqrt(nu * (1 - nu) / n_star)
    span = _hand_quantile(ordered, nu + half) - _hand_quantile(ordered, nu - half)
    iid = n_star / n * (n - 1) * (span / (2 * Z)) ** 2
    np.testing.assert_allclose(summary.share_variance, share, rtol=1e-10)
    np.testing.assert_allclose(summary.variance_iid, iid, rtol=1e-12)
    np.testing.assert_allclose(summary.variance, iid * share / (nu * (1 - nu) / n), rtol=1e-10)
    assert summary.variance > 1.5 * summary.variance_iid  # the unit effect inflates it
    assert summary.n_clusters == k and summary.sum_events == n


def test_variance_floor_and_small_groups():
    # gbstats: the per-unit variance is floored at 1e-5 from n = 100 on, not below
    tiny = dict(nu=0.5, quantile=1.0, lower=1.0 - 1e-6, upper=1.0 + 1e-6)
    assert QuantileSummary(n=100, n_star=100, **tiny).variance == VARIANCE_FLOOR
    small = QuantileSummary(n=99, n_star=100, **tiny)
    assert 0 < small.variance < VARIANCE_FLOOR and small.variance == small.variance_init


# ---------------------------------------------------------------------- degenerate rows


def test_degenerate_rows_leave_the_others_alone():
    rng = np.random.default_rng(2)
    good_c, good_t = rng.lognormal(size=2000), rng.lognormal(0.1, 1, 2000)
    rows = [
        (good_c, good_t),
        (np.round(good_c), np.round(good_t)),  # integer values: ties at the median
        (good_c, good_t),
    ]
    arms = [QuantileSummary.from_samples(np.stack([pair[i] for pair in rows]), 0.5) for i in (0, 1)]
    with pytest.warns(DegenerateDataWarning, match="1 of 3"):
        result = quantile_test(*arms)
    assert result.error.tolist() == [
        "",
        "the interval bounds collapse in control (lower = upper: ties at the quantile)",
        "",
    ]
    alone = quantile_test(
        QuantileSummary.from_samples(good_c, 0.5), QuantileSummary.from_samples(good_t, 0.5)
    )
    for name in ("effect", "se", "ci_low", "ci_high", "p_value", "df"):
        values = getattr(result, name)
        assert np.isnan(values[1])
        assert values[0] == values[2] == getattr(alone, name)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(n=0, quantile=np.nan, lower=np.nan, upper=np.nan), "no values in treatment"),
        (dict(n=380, nu=0.99, n_star=400), "too few values in treatment"),
        (dict(n=380, nu=0.01, n_star=400), "too few values in treatment"),
        (dict(lower=3.0, upper=3.0), "the interval bounds collapse in treatment"),
        (
            dict(
                n_clusters=1,
                sum_below=500,
                sum_below_sq=250_000,
                sum_events=1000,
                sum_events_sq=1_000_000,
                sum_below_events=500_000,
            ),
            "fewer than 2 clusters in treatment",
        ),
    ],
)
def test_degenerate_groups(changes, message):
    base = dict(n=1000, nu=0.5, quantile=3.0, lower=2.5, upper=3.5, n_star=800)
    control = QuantileSummary(**{**base, "nu": changes.get("nu", 0.5)})
    treatment = QuantileSummary(**{**base, **changes})
    result = quiet_test(control, treatment)
    assert result.error.startswith(message)
    assert np.isnan(result.effect) and np.isnan(result.ci_low)


def test_zero_control_quantile_refuses_only_the_lift():
    control = QuantileSummary(n=1000, nu=0.5, quantile=0.0, lower=-0.5, upper=0.5, n_star=800)
    treatment = QuantileSummary(n=1000, nu=0.5, quantile=1.0, lower=0.5, upper=1.5, n_star=800)
    assert quantile_test(control, treatment).error == ""
    assert "control quantile is zero" in quiet_test(control, treatment, relative=True).error


def test_difference_feeds_sequential_callers():
    rng = np.random.default_rng(4)
    control = QuantileSummary.from_samples(rng.lognormal(size=(3, 1500)), 0.9)
    treatment = QuantileSummary.from_samples(rng.lognormal(0.1, 1, (3, 1500)), 0.9)
    difference = quantile_difference(control, treatment)
    assert isinstance(difference, Difference)
    result = quantile_test(control, treatment)
    np.testing.assert_array_equal(difference.effect, result.effect)
    np.testing.assert_array_equal(difference.se, result.se)
    np.testing.assert_allclose(difference.se2_c, control.variance / control.n, rtol=1e-15)
    assert result.method == "quantile" and result.params["nu"] == 0.9


def test_one_sided_and_alpha():
    rng = np.random.default_rng(8)
    control = QuantileSummary.from_samples(rng.lognormal(size=2000), 0.5)
    treatment = QuantileSummary.from_samples(rng.lognormal(0.05, 1, 2000), 0.5)
    two = quantile_test(control, treatment, alpha=0.1)
    greater = quantile_test(control, treatment, alternative="greater", alpha=0.05)
    less = quantile_test(control, treatment, alternative="less", alpha=0.05)
    np.testing.assert_allclose(greater.ci_low, two.ci_low, rtol=1e-12)
    assert greater.ci_high == np.inf and less.ci_low == -np.inf
    np.testing.assert_allclose(greater.p_value + less.p_value, 1.0, rtol=1e-12)


# ---------------------------------------------------------------------- bad input


def _arm(**changes):
    fields = dict(n=1000, nu=0.5, quantile=3.0, lower=2.5, upper=3.5, n_star=800)
    return {**fields, **changes}


@pytest.mark.parametrize("nu", [0.0, 1.0, -0.1, 1.5, np.nan])
def test_bad_nu_is_refused_everywhere(nu):
    with pytest.raises(InvalidArgumentError, match=r"^nu: ") as info:
        QuantileSummary(**_arm(nu=nu))
    assert info.value.argument == "nu"
    with pytest.raises(InvalidArgumentError, match=r"^nu: "):
        interval_levels(nu, 400)
    with pytest.raises(InvalidArgumentError, match=r"^nu: "):
        choose_n_star(1000, nu)
    frame = nw.from_native(duckdb.sql("SELECT 1.0 AS y"))
    with pytest.raises(InvalidArgumentError, match=r"^nu: "):
        quantile_statistics(frame, keys=[], value="y", nu=nu)


@pytest.mark.parametrize(
    ("changes", "argument"),
    [
        (dict(n=-1), "n"),
        (dict(n=10.5), "n"),
        (dict(n_star=0), "n_star"),
        (dict(quantile=np.nan), "quantile"),
        (dict(lower=np.inf), "lower"),
        (dict(lower=4.0), "lower"),
        (dict(quantile="3"), "quantile"),
        (dict(n_clusters=10), "sum_below"),
        (
            dict(n_clusters=10, sum_below=2000, sum_below_sq=1, sum_events=1000, sum_events_sq=1)
            | dict(sum_below_events=1),
            "sum_below",
        ),
        (
            dict(n_clusters=2000, sum_below=10, sum_below_sq=1, sum_events=1000, sum_events_sq=1)
            | dict(sum_below_events=1),
            "n_clusters",
        ),
        (dict(interval_alpha=1.0), "interval_alpha"),
    ],
)
def test_bad_summaries(changes, argument):
    with pytest.raises(InvalidArgumentError) as info:
        QuantileSummary(**_arm(**changes))
    assert info.value.argument == argument


def test_bad_test_arguments():
    arm = QuantileSummary(**_arm())
    with pytest.raises(InvalidArgumentError, match=r"^control: "):
        quantile_test({"n": 1}, arm)
    with pytest.raises(InvalidArgumentError, match=r"^nu: .*same quantile"):
        quantile_test(arm, QuantileSummary(**_arm(nu=0.9)))
    with pytest.raises(InvalidArgumentError, match=r"^alpha: "):
        quantile_test(arm, arm, alpha=0)
    with pytest.raises(UnknownOptionError):
        quantile_test(arm, arm, alternative="bigger")
    with pytest.raises(InvalidArgumentError, match=r"^relative: "):
        quantile_test(arm, arm, relative="yes")
    wide = QuantileSummary(**_arm(n=[1000, 1000, 1000]))
    with pytest.raises(InvalidArgumentError, match="control/treatment"):
        quantile_test(wide, QuantileSummary(**_arm(n=[1000, 1000])))
    with pytest.raises(InvalidArgumentError, match=r"^n_star: "):
        interval_levels(0.5, 0)
    with pytest.raises(InvalidArgumentError, match=r"^table: "):
        QuantileSummary.from_table({"n": [1]})


# ---------------------------------------------------------------------- engine reduction


def make_events(seed: int = 3) -> pd.DataFrame:
    """Event rows of units (ids with a few missing), in arms (one missing) and segments,
    lognormal values with missing ones; one group has no values at all and one has
    integer-valued (tied) values."""
    rng = np.random.default_rng(seed)
    units = 1500
    events = rng.poisson(2, units) + 1
    unit = np.repeat(np.arange(units), events)
    arm = rng.choice(np.array(["control", "treatment", None], dtype=object), units)[unit]
    segment = rng.choice([1, 2], units)[unit]
    value = np.exp(rng.normal(0, 1, units)[unit] + rng.normal(0, 0.5, unit.size))
    data = pd.DataFrame({"arm": arm, "segment": segment, "unit": unit.astype(float), "y": value})
    data.loc[rng.uniform(size=len(data)) < 0.05, "y"] = np.nan
    data.loc[rng.uniform(size=len(data)) < 0.02, "unit"] = np.nan
    empty = pd.DataFrame({"arm": "empty", "segment": 1, "unit": [1.0, 2.0], "y": np.nan})
    tied = data[data["arm"] == "control"].assign(arm="tied", y=lambda d: np.round(d["y"]))
    return pd.concat([data, empty, tied], ignore_index=True)


def expected_table(data: pd.DataFrame, nu: float, clustered: bool) -> pd.DataFrame:
    """The reduction by hand: pandas groups (missing keys kept), numpy quantiles."""
    rows = []
    for (arm, segment), group in data.groupby(["arm", "segment"], dropna=False, sort=False):
        values = group["y"].dropna().to_numpy()
        n = float(len(values))
        row = {"arm": arm, "segment": segment, "n_missing": len(group) - n, "n": n}
        n_star = expected_n_star(n, nu)
        half = Z * np.sqrt(nu * (1 - nu) / n_star)
        levels = (max(nu - half, 0.0), min(nu + half, 1.0))
        if n:
            row.update(quantile=np.quantile(values, nu))
            row.update(lower=np.quantile(values, levels[0]), upper=np.quantile(values, levels[1]))
        else:
            row.update(quantile=np.nan, lower=np.nan, upper=np.nan)
        row.update(n_star=n_star, lower_level=levels[0], upper_level=levels[1])
        if clustered:
            kept = group.dropna(subset=["y"])
            below = (kept["y"] <= row["quantile"]).astype(float)
            known = kept["unit"].notna()
            per = pd.DataFrame({"u": kept["unit"][known], "b": below[known]}).groupby("u")["b"]
            s, m = per.sum().to_numpy(), per.size().to_numpy(float)
            alone = below[~known].to_numpy()  # clusters of one
            s, m = np.concatenate([s, alone]), np.concatenate([m, np.ones_like(alone)])
            row.update(
                n_clusters=float(len(m)),
                sum_below=s.sum(),
                sum_below_sq=(s * s).sum(),
                sum_events=m.sum(),
                sum_events_sq=(m * m).sum(),
                sum_below_events=(s * m).sum(),
                n_cluster_missing=float(len(alone)),
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _compare(table: pd.DataFrame, data: pd.DataFrame, nu: float, clustered: bool) -> None:
    expected = expected_table(data, nu, clustered)
    columns = COLUMNS + (CLUSTER_COLUMNS if clustered else ())
    assert list(table.columns) == ["arm", "segment", *columns]
    assert len(table) == len(expected)
    for _, want in expected.iterrows():
        arm_match = table["arm"].isna() if pd.isna(want["arm"]) else table["arm"] == want["arm"]
        got = table[arm_match & (table["segment"] == want["segment"])]
        assert len(got) == 1, (want["arm"], want["segment"])
        got = got.iloc[0]
        for name in ("n_missing", "n", "n_star", *(CLUSTER_COLUMNS if clustered else ())):
            assert got[name] == want[name], (name, want["arm"], want["segment"])
        for name in ("quantile", "lower", "upper", "lower_level", "upper_level"):
            np.testing.assert_allclose(got[name], want[name], rtol=1e-12, atol=0, err_msg=name)
        assert got["nu"] == nu


def _source(kind: str, data: pd.DataFrame, request):
    if kind == "duckdb":
        return open_source(data).frame
    if kind == "polars":
        return open_source(pl.from_pandas(data).lazy()).frame
    return open_source(request.getfixturevalue("spark").createDataFrame(data)).frame


ENGINES = ["duckdb", "polars", pytest.param("spark", marks=pytest.mark.spark)]


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_reduction_matches_numpy(engine, request):
    data = make_events()
    settings = [(0.5, True), (0.9, False), (0.99, True)]
    if engine == "spark":  # a Spark query takes seconds: one clustered query, on every group
        data, settings = data.groupby(["arm", "segment"], dropna=False).head(60), [(0.9, True)]
    frame = _source(engine, data, request)
    for nu, clustered in settings:
        table = quantile_statistics(
            frame,
            keys=["arm", "segment"],
            value="y",
            nu=nu,
            cluster="unit" if clustered else None,
        )
        _compare(table, data, nu, clustered)
        # sorted by the keys, missing keys last
        assert table["arm"].isna().to_numpy()[-2:].all()


def test_engine_summary_is_the_numpy_summary():
    data = make_events()
    data = data[(data["arm"] == "control") & (data["segment"] == 1)].dropna(subset=["y"])
    for clustered in (False, True):
        data_units = data.dropna(subset=["unit"])
        table = quantile_statistics(
            open_source(data_units).frame,
            keys=["arm"],
            value="y",
            nu=0.9,
            cluster="unit" if clustered else None,
        )
        engine = QuantileSummary.from_table(table)
        reference = QuantileSummary.from_samples(
            data_units["y"].to_numpy(),
            0.9,
            clusters=data_units["unit"].to_numpy() if clustered else None,
        )
        assert engine.clustered is clustered
        np.testing.assert_allclose(engine.variance, reference.variance, rtol=1e-12)
        for name in ("n", "n_star", "quantile", "lower", "upper", "sum_below", "n_clusters"):
            if getattr(reference, name) is not None:
                np.testing.assert_allclose(
                    getattr(engine, name), getattr(reference, name), rtol=1e-12
                )


def test_engine_edge_cases():
    data = pd.DataFrame(
        {"arm": ["a"] * 6 + ["b"] * 3, "y": [5, 1, 4, 2, 3, 6, 7, 8, 9], "flag": [True] * 9}
    )
    frame = open_source(data).frame
    # no keys: one group; integer values are cast to float
    whole = quantile_statistics(frame, keys=[], value="y", nu=0.5)
    assert list(whole.columns) == list(COLUMNS)
    assert whole["quantile"].tolist() == [5.0] and whole["n"].tolist() == [9.0]
    # a key named like the frame's value column is fine; one named like an output is not
    by_arm = quantile_statistics(frame, keys="arm", value="y", nu=0.25)
    np.testing.assert_allclose(by_arm["quantile"], [np.quantile([1, 2, 3, 4, 5, 6], 0.25), 7.5])
    booleans = quantile_statistics(frame, keys=["arm"], value="flag", nu=0.5)
    assert booleans["quantile"].tolist() == [1.0, 1.0]
    clash = open_source(data.rename(columns={"arm": "n"})).frame
    with pytest.raises(InvalidArgumentError, match=r"^keys: 'n' is the name of an output"):
        quantile_statistics(clash, keys=["n"], value="y", nu=0.5)
    # no rows: no groups; a group whose values are all missing: n = 0, and the test says so
    nothing = nw.from_native(duckdb.sql("SELECT 'a' AS arm, 1.0 AS y, 1 AS u WHERE false"))
    empty = quantile_statistics(nothing, keys=["arm"], value="y", nu=0.5, cluster="u")
    assert empty.empty and list(empty.columns) == ["arm", *COLUMNS, *CLUSTER_COLUMNS]
    missing = nw.from_native(pl.LazyFrame({"arm": ["a", "a"], "y": [None, np.nan], "u": [1, None]}))
    table = quantile_statistics(missing, keys=["arm"], value="y", nu=0.5, cluster="u")
    assert table[["n", "n_missing", "n_clusters", "n_cluster_missing"]].iloc[0].tolist() == [
        0.0,
        2.0,
        0.0,
        0.0,
    ]
    summary = QuantileSummary.from_table(table)
    assert summary.clustered and np.isnan(summary.quantile[0])
    assert quiet_test(summary, summary).error.tolist() == ["no values in control"]
    # a narwhals DataFrame (eager) is made lazy
    eager = nw.from_native(pl.from_pandas(data))
    assert quantile_statistics(eager, keys=["arm"], value="y", nu=0.5)["n"].tolist() == [6, 3]


def test_engine_bad_input():
    data = pd.DataFrame({"arm": ["a", "b"], "y": [1.0, 2.0], "text": ["x", "y"]})
    frame = open_source(data).frame
    for keyword, argument in (
        (dict(value="missing"), "value"),
        (dict(value="text"), "value"),
        (dict(keys=["nope"]), "keys"),
        (dict(keys=["arm", "arm"]), "keys"),
        (dict(cluster="nope"), "cluster"),
        (dict(alpha=2.0), "alpha"),
    ):
        arguments = dict(keys=["arm"], value="y", nu=0.5) | keyword
        with pytest.raises(InvalidArgumentError) as info:
            quantile_statistics(frame, **arguments)
        assert info.value.argument == argument
    with pytest.raises(InvalidArgumentError, match=r"^frame: "):
        quantile_statistics(data, keys=["arm"], value="y", nu=0.5)
    # the schema says DOUBLE, the rows fail only when the engine reads them
    failing = nw.from_native(
        duckdb.sql("SELECT 'a' AS arm, CAST(s AS DOUBLE) AS y FROM (VALUES ('1'), ('abc')) t(s)")
    )
    with pytest.raises(EngineError, match=r"^source: the engine could not compute") as info:
        quantile_statistics(failing, keys=["arm"], value="y", nu=0.5)
    assert "quantile" in info.value.problem or "value counts" in info.value.problem


# ---------------------------------------------------------------------- coverage


def _grid_n_star(n: np.ndarray) -> np.ndarray:
    return np.array([growthbook_n_star(value) for value in n])


def ragged_summaries(values, rep, unit, reps: int, nu: float, clustered: bool):
    """Per replicate (``rep``) the quantile summary of its values, with numpy: sort once by
    (replicate, value), then read the order statistics at each replicate's offsets."""
    order = np.lexsort((values, rep))
    ordered, rep_sorted = values[order], rep[order]
    n = np.bincount(rep_sorted, minlength=reps).astype(float)
    start = np.concatenate([[0.0], np.cumsum(n)[:-1]])

    def at(level):
        position = level * (n - 1)
        below = np.floor(position)
        above = np.minimum(below + 1, n - 1)
        low = ordered[(start + below).astype(int)]
        high = ordered[(start + above).astype(int)]
        return low + (position - below) * (high - low)

    n_star = _grid_n_star(n)
    half = Z * np.sqrt(nu * (1 - nu) / n_star)
    quantile = at(nu)
    fields = dict(
        n=n,
        nu=nu,
        quantile=quantile,
        lower=at(nu - half),
        upper=at(nu + half),
        n_star=n_star,
    )
    if clustered:
        cells = unit.max() + 1
        cell = rep * cells + unit
        below = (values <= quantile[rep]).astype(float)
        s = np.bincount(cell, below, reps * cells).reshape(reps, cells)
        m = np.bincount(cell, minlength=reps * cells).reshape(reps, cells).astype(float)
        fields.update(
            n_clusters=(m > 0).sum(axis=1),
            sum_below=s.sum(axis=1),
            sum_below_sq=(s * s).sum(axis=1),
            sum_events=m.sum(axis=1),
            sum_events_sq=(m * m).sum(axis=1),
            sum_below_events=(s * m).sum(axis=1),
        )
    return QuantileSummary(**fields)


REPS = 1000
TOLERANCE = 4 * np.sqrt(0.95 * 0.05 / REPS)
LOGNORMAL_SIGMA = 1.0
T_SHIFT = 0.3
LOG_SHIFT = 0.1


def _unit_level(rng, distribution: str, shift: bool, units: int):
    if distribution == "lognormal":
        values = rng.lognormal(0.0, LOGNORMAL_SIGMA, (REPS, units))
        return values * np.exp(LOG_SHIFT) if shift else values
    values = rng.standard_t(3, (REPS, units))
    return values + T_SHIFT if shift else values


def _true_difference(distribution: str, nu: float, sigma: float) -> float:
    if distribution == "lognormal":
        return (np.exp(LOG_SHIFT) - 1) * np.exp(sigma * special.ndtri(nu))
    return T_SHIFT


def _coverage(result, truth) -> float:
    assert np.all(result.error == "")
    return float(np.mean((result.ci_low <= truth) & (truth <= result.ci_high)))


@pytest.mark.validity
@pytest.mark.parametrize("distribution", ["lognormal", "student_t3"])
@pytest.mark.parametrize("nu", [0.5, 0.9])
def test_coverage_unit_level(distribution, nu):
    rng = np.random.default_rng(1000 + int(100 * nu) + len(distribution))
    units = 1000
    rep = np.repeat(np.arange(REPS), units)
    arms = [
        ragged_summaries(
            _unit_level(rng, distribution, shift, units).ravel(), rep, None, REPS, nu, False
        )
        for shift in (False, True)
    ]
    truth = _true_difference(distribution, nu, LOGNORMAL_SIGMA)
    coverage = _coverage(quantile_test(*arms), truth)
    assert abs(coverage - 0.95) < TOLERANCE, coverage
    if distribution == "lognormal":  # a scale change: the lift is exp(0.1) − 1 at every ν
        lift = _coverage(quantile_test(*arms, relative=True), np.exp(LOG_SHIFT) - 1)
        assert abs(lift - 0.95) < TOLERANCE, lift


UNIT_SD, EVENT_SD = 1.0, 0.3


def _events(rng, distribution: str, shift: bool, units: int):
    """Event-level data: Poisson(3) + 1 events per unit and a strong unit effect."""
    events = rng.poisson(3, (REPS, units)) + 1
    rep = np.repeat(np.repeat(np.arange(REPS), units), events.ravel())
    unit = np.repeat(np.tile(np.arange(units), REPS), events.ravel())
    if distribution == "lognormal":
        effect = rng.normal(0, UNIT_SD, (REPS, units))[rep, unit]
        values = np.exp(effect + rng.normal(0, EVENT_SD, rep.size))
        values = values * np.exp(LOG_SHIFT) if shift else values
    else:
        effect = rng.standard_t(3, (REPS, units))[rep, unit]
        values = effect + 0.3 * rng.standard_t(3, rep.size)
        values = values + T_SHIFT if shift else values
    return values, rep, unit


@pytest.mark.validity
@pytest.mark.parametrize("distribution", ["lognormal", "student_t3"])
@pytest.mark.parametrize("nu", [0.5, 0.9])
def test_coverage_event_level_clustered(distribution, nu):
    rng = np.random.default_rng(2000 + int(100 * nu) + len(distribution))
    units = 300
    data = [_events(rng, distribution, shift, units) for shift in (False, True)]
    clustered = [ragged_summaries(*d, REPS, nu, True) for d in data]
    # the same quantiles and bounds without the cluster sums: the iid variance
    iid = [QuantileSummary(a.n, a.nu, a.quantile, a.lower, a.upper, a.n_star) for a in clustered]
    # event counts do not depend on the unit: every event is lognormal(0, sqrt(1 + 0.09))
    truth = _true_difference(distribution, nu, np.hypot(UNIT_SD, EVENT_SD))
    coverage = _coverage(quantile_test(*clustered), truth)
    naive = _coverage(quantile_test(*iid), truth)
    assert abs(coverage - 0.95) < TOLERANCE, coverage
    assert naive < 0.95 - 3 * TOLERANCE, naive


def test_duckdb_computes_every_level_of_a_column_in_one_list_quantile(monkeypatch):
    """On DuckDB the median, p90 and p99 of a column come from one list ``quantile_cont``
    (one sort per group), equal to numpy; the per-level narwhals path is not used."""
    from splitlab.analyzer import quantiles

    def refuse(*_, **__):
        raise AssertionError("the per-level path ran on a DuckDB relation")

    monkeypatch.setattr(quantiles, "_generic_bounds", refuse)
    rng = np.random.default_rng(8)
    data = pd.DataFrame({"arm": np.repeat(["a", "b"], 3000), "y": rng.lognormal(size=6000)})
    frame = nw.from_native(duckdb.from_df(data))
    levels = [0.5, 0.9, 0.99]
    tables = quantiles.quantile_tables(frame, keys=["arm"], value="y", nus=levels)
    for level, table in zip(levels, tables, strict=True):
        expected = data.groupby("arm")["y"].quantile(level).to_numpy()
        np.testing.assert_allclose(table["quantile"], expected, rtol=1e-12, atol=0)
        for bound, column in (("lower_level", "lower"), ("upper_level", "upper")):
            by_numpy = [
                np.quantile(data.loc[data["arm"] == arm, "y"], at)
                for arm, at in zip(table["arm"], table[bound], strict=True)
            ]
            np.testing.assert_allclose(table[column], by_numpy, rtol=1e-12, atol=0)
