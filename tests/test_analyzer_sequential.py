"""Sequential methods in the Analyzer: always-valid intervals from the same estimates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import splitlab as sl
from splitlab.errors import InvalidArgumentError


@pytest.fixture(scope="module")
def units() -> pd.DataFrame:
    rng = np.random.default_rng(21)
    size = 8000
    variant = rng.choice(["control", "b"], size)
    return pd.DataFrame(
        {
            "experiment": "e1",
            "variant": variant,
            "revenue": rng.gamma(2.0, 2.0, size) + np.where(variant == "b", 0.35, 0.0),
            "ts": pd.Timestamp("2026-05-01") + pd.to_timedelta(rng.integers(0, 10 * 24, size), "h"),
        }
    )


def welch_estimate(frame):
    y_c = frame.loc[frame["variant"] == "control", "revenue"].to_numpy()
    y_t = frame.loc[frame["variant"] == "b", "revenue"].to_numpy()
    se = np.sqrt(y_c.var(ddof=1) / y_c.size + y_t.var(ddof=1) / y_t.size)
    return y_t.mean() - y_c.mean(), se, y_c.size + y_t.size


def test_confidence_sequence_rows_follow_waudby_smith_eq_9(units):
    row = sl.Analyzer(units).analyze(["revenue"], method="cs").iloc[0]
    effect, se, n = welch_estimate(units)
    alpha, n_star = 0.05, 5000.0
    rho2 = (-2 * np.log(alpha) + np.log(-2 * np.log(alpha) + 1)) / n_star
    half = (
        se
        * np.sqrt(n)
        * np.sqrt(2 * (n * rho2 + 1) / (n**2 * rho2) * np.log(np.sqrt(n * rho2 + 1) / alpha))
    )
    np.testing.assert_allclose([row["ci_low"], row["ci_high"]], [effect - half, effect + half])
    assert row["method"] == "cs/welch"
    assert row["ci_high"] - row["ci_low"] > 2 * stats.norm.ppf(0.975) * se


def test_msprt_rows_follow_johari_et_al(units):
    tau2 = 0.04
    row = (
        sl.Analyzer(units)
        .analyze(["revenue"], method="msprt", method_options={"tau2": tau2})
        .iloc[0]
    )
    effect, se, _ = welch_estimate(units)
    v = se**2
    likelihood_ratio = np.sqrt(v / (v + tau2)) * np.exp(tau2 * effect**2 / (2 * v * (v + tau2)))
    half = np.sqrt(v * (v + tau2) / tau2 * (2 * np.log(1 / 0.05) + np.log((v + tau2) / v)))
    np.testing.assert_allclose(row["p_value"], min(1.0, 1 / likelihood_ratio))
    np.testing.assert_allclose([row["ci_low"], row["ci_high"]], [effect - half, effect + half])


@pytest.mark.parametrize(("method", "options"), [("cs", None), ("msprt", {"n_plan": 4000})])
def test_timeline_bands_are_running_intersections(units, method, options):
    path = sl.Analyzer(units, date="ts").timeline("revenue", method=method, method_options=options)
    assert (np.diff(path["ci_low"]) >= 0).all() and (np.diff(path["ci_high"]) <= 0).all()
    assert (np.diff(path["p_value"]) <= 0).all()
    final = sl.Analyzer(units).analyze(["revenue"], method=method, method_options=options)
    assert path["ci_low"].iloc[-1] >= final["ci_low"].iloc[0] - 1e-12


def test_group_sequential_rows_use_the_design_boundaries(units):
    analyzer = sl.Analyzer(units, date="ts")
    options = {"planned_n": 16000}
    path = analyzer.timeline("revenue", method="gst", method_options=options)
    first = path.iloc[0]
    fraction = (first["n_control"] + first["n_variant"]) / 16000
    # Lan-DeMets O'Brien-Fleming-type spending, each side f(t; α/2) = 2 − 2Φ(z_{1−α/4}/√t)
    per_side = 2 * stats.norm.sf(stats.norm.isf(0.05 / 4) / np.sqrt(fraction))
    np.testing.assert_allclose(first["boundary"], stats.norm.isf(per_side), rtol=1e-6)
    assert (np.diff(path["boundary"]) < 0).all()
    excludes_zero = (path["ci_low"] > 0) | (path["ci_high"] < 0)
    np.testing.assert_array_equal(excludes_zero, path["statistic"].abs() >= path["boundary"])
    rows = analyzer.analyze(["revenue"], method="gst", method_options=options)
    assert rows["p_value"].isna().all() and "boundary" in rows
    np.testing.assert_allclose(rows["ci_low"].iloc[0], path["ci_low"].iloc[-1])
    assert rows["significant"].iloc[0] == (path["gst_decision"] == "reject").any()


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda a: a.analyze(["revenue"], method="msprt"), "tau2"),
        (lambda a: a.analyze(["revenue"], method="cs", method_options={"tau2": 1}), "unknown"),
        (lambda a: a.analyze(["revenue"], method="gst"), "planned_n"),
        (
            lambda a: a.analyze(["revenue"], method="gst", method_options={"planned_n": -5}),
            "positive",
        ),
    ],
)
def test_bad_method_options_are_named(units, call, fragment):
    with pytest.raises(InvalidArgumentError, match=fragment) as info:
        call(sl.Analyzer(units, date="ts"))
    assert info.value.argument == "method_options"


def test_group_sequential_needs_dates_and_no_segments(units):
    with pytest.raises(InvalidArgumentError) as info:
        sl.Analyzer(units).analyze(["revenue"], method="gst", method_options={"planned_n": 10})
    assert info.value.argument == "date"
    with pytest.raises(InvalidArgumentError) as info:
        sl.Analyzer(units.assign(country="US"), date="ts").analyze(
            ["revenue"], method="gst", method_options={"planned_n": 10}, segments=["country"]
        )
    assert info.value.argument == "segments"


def test_report_draws_always_valid_bands(units, tmp_path):
    path = sl.Analyzer(units, date="ts").report(
        tmp_path / "r.html", metrics=["revenue"], method="cs"
    )
    text = path.read_text()
    assert "valid however often" in text and text.count("data:image/png;base64,") == 2
