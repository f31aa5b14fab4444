"""Many-covariate regression adjustment through the Analyzer (Statsig CURE, Eppo CUPED++):
the engine reduces rows to cross-product sums, θ is pooled over the arms, and the result
equals a Welch test on y − θᵀx computed by hand with numpy and scipy from the raw rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import stats

import splitlab as sl
from splitlab.errors import DegenerateDataWarning

COVARIATES = ["pre_revenue", "pre_sessions", "tenure", "predicted"]


def make_units(seed: int = 7, units: int = 8000, offset: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    variant = rng.choice(["control", "b"], units)
    pre = rng.gamma(2.0, 2.0, units)
    sessions = rng.poisson(3.0, units)
    tenure = rng.exponential(12.0, units)
    noise = rng.normal(0.0, 1.0, units)
    revenue = 0.6 * pre + 0.3 * sessions + 0.05 * tenure + noise + 0.15 * (variant == "b")
    # a model's prediction of revenue from pre-period data only (CUPAC)
    predicted = 0.55 * pre + 0.35 * sessions + rng.normal(0.0, 0.3, units)
    return pd.DataFrame(
        {
            "experiment": "e1",
            "variant": variant,
            "revenue": revenue + offset,
            "pre_revenue": pre + offset,
            "pre_sessions": sessions,
            "tenure": tenure,
            "predicted": predicted,
            "day": pd.Timestamp("2026-05-01") + pd.to_timedelta(rng.integers(0, 4, units), "D"),
            "country": rng.choice(["US", "DE"], units),
        }
    )


def by_hand(frame: pd.DataFrame, y: str, xs: list[str], relative: bool = False):
    """θ = Σxx⁻¹Σxy of both arms as one sample; Welch on the adjusted values (scipy), which
    a common shift of every column leaves unchanged."""
    values = frame[[y, *xs]].to_numpy(float)
    values = values - values.mean(axis=0)  # exact near 1e12 (Sterbenz); the effect is not
    cov = np.cov(values, rowvar=False)
    theta = np.linalg.solve(cov[1:, 1:], cov[1:, 0])
    adjusted = values[:, 0] - values[:, 1:] @ theta
    arm_c = (frame["variant"] == "control").to_numpy()
    test = stats.ttest_ind(adjusted[~arm_c], adjusted[arm_c], equal_var=False)
    interval = test.confidence_interval(0.95)
    effect = adjusted[~arm_c].mean() - adjusted[arm_c].mean()
    unadjusted = (
        np.var(values[~arm_c, 0], ddof=1) / (~arm_c).sum()
        + np.var(values[arm_c, 0], ddof=1) / arm_c.sum()
    )
    reduction = 1 - (effect / test.statistic) ** 2 / unadjusted
    return effect, interval.low, interval.high, test.pvalue, reduction


@pytest.fixture(scope="module")
def units() -> pd.DataFrame:
    return make_units()


def test_many_covariates_match_welch_on_the_adjusted_values(units):
    found = sl.Analyzer(units).analyze([sl.Metric("revenue", covariate=COVARIATES)]).iloc[0]
    effect, low, high, p_value, reduction = by_hand(units, "revenue", COVARIATES)
    np.testing.assert_allclose(
        [found["effect"], found["ci_low"], found["ci_high"], found["p_value"]],
        [effect, low, high, p_value],
        rtol=1e-8,
    )
    np.testing.assert_allclose(found["variance_reduction"], reduction, rtol=1e-8)
    assert found["variance_reduction"] > 0.5 and found["error"] == ""


def test_one_covariate_in_a_list_is_todays_cuped(units):
    listed = sl.Analyzer(units).analyze([sl.Metric("revenue", covariate=["pre_revenue"])])
    named = sl.Analyzer(units).analyze([sl.Metric("revenue", covariate="pre_revenue")])
    columns = ["effect", "se", "ci_low", "ci_high", "p_value", "variance_reduction"]
    np.testing.assert_array_equal(listed[columns].to_numpy(), named[columns].to_numpy())


def test_more_covariates_reduce_variance_more(units):
    results = sl.Analyzer(units).analyze(
        [
            sl.Metric("one", column="revenue", covariate="pre_revenue"),
            sl.Metric("all", column="revenue", covariate=COVARIATES),
        ]
    )
    one, many = results["se"].to_numpy()
    assert many < one


def test_relative_lift_uses_the_unadjusted_control_mean(units):
    found = (
        sl.Analyzer(units)
        .analyze([sl.Metric("revenue", covariate=COVARIATES)], relative=True)
        .iloc[0]
    )
    effect = by_hand(units, "revenue", COVARIATES)[0]
    control_mean = units.loc[units["variant"] == "control", "revenue"].mean()
    np.testing.assert_allclose(found["effect"], effect / abs(control_mean), rtol=1e-9)


@pytest.mark.parametrize("engine", ["polars", "parquet"])
def test_every_engine_gives_the_same_adjustment(units, engine, tmp_path):
    metric = sl.Metric("revenue", covariate=COVARIATES)
    expected = sl.Analyzer(units).analyze([metric])
    if engine == "polars":
        source: object = pl.from_pandas(units)
    else:
        source = tmp_path / "units.parquet"
        units.to_parquet(source)
    found = sl.Analyzer(source).analyze([metric])
    np.testing.assert_allclose(found["effect"], expected["effect"], rtol=1e-10)
    np.testing.assert_allclose(found["se"], expected["se"], rtol=1e-10)


def test_segments_and_timeline_pool_the_cross_products_exactly(units):
    metric = sl.Metric("revenue", covariate=COVARIATES)
    results = sl.Analyzer(units).analyze([metric], segments="country")
    slices = [("all", units), *((f"country={c}", g) for c, g in units.groupby("country"))]
    for label, part in slices:
        found = results[results["segment"] == label].iloc[0]
        np.testing.assert_allclose(
            found["effect"], by_hand(part, "revenue", COVARIATES)[0], rtol=1e-9
        )
    timeline = sl.Analyzer(units, date="day").timeline(metric)
    for _, look in timeline.iterrows():
        part = units[units["day"] <= look["period"]]
        expected = by_hand(part, "revenue", COVARIATES)[0]
        np.testing.assert_allclose(look["effect"], expected, rtol=1e-9)


def test_large_offsets_are_reduced_stably():
    """Revenue and a covariate near 1e12 (raw sums of squares would keep no digit): the
    engine's shifted sums keep the adjustment (numpy centres the raw values first)."""
    shifted = make_units(seed=8, units=4000, offset=1e12)
    found = sl.Analyzer(shifted).analyze([sl.Metric("revenue", covariate=COVARIATES)]).iloc[0]
    effect, low, high, _, _ = by_hand(shifted, "revenue", COVARIATES)
    np.testing.assert_allclose(
        [found["effect"], found["ci_low"], found["ci_high"]], [effect, low, high], rtol=1e-8
    )


def test_collinear_covariates_are_a_row_error_and_other_metrics_are_unaffected(units):
    frame = units.assign(twice=2.0 * units["pre_revenue"])
    with pytest.warns(DegenerateDataWarning, match="1 of 2"):
        results = sl.Analyzer(frame).analyze(
            [sl.Metric("revenue", covariate=["pre_revenue", "twice"]), "tenure"]
        )
    assert "collinear" in results["error"][0] and np.isnan(results["effect"][0])
    assert results["error"][1] == ""


@pytest.mark.parametrize("method", ["cs", "msprt"])
def test_sequential_methods_take_the_adjusted_estimate(units, method):
    options = {"n_star": 4000} if method == "cs" else {"n_plan": 4000}
    metric = sl.Metric("revenue", covariate=COVARIATES)
    found = sl.Analyzer(units).analyze([metric], method=method, method_options=options)
    fixed = sl.Analyzer(units).analyze([metric])
    np.testing.assert_allclose(found["effect"], fixed["effect"])
    np.testing.assert_allclose(found["se"], fixed["se"])
    assert found["ci_low"][0] < fixed["ci_low"][0] < fixed["ci_high"][0] < found["ci_high"][0]


def test_cuped_mapping_takes_a_list_of_columns(units):
    found = sl.Analyzer(units).analyze(["revenue"], cuped={"revenue": COVARIATES}).iloc[0]
    np.testing.assert_allclose(found["effect"], by_hand(units, "revenue", COVARIATES)[0])
