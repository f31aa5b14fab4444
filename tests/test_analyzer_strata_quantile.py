"""Post-stratification (``analyze(strata=)``) and quantile metrics through the Analyzer,
against the summary-statistics functions fed by an independent pandas/numpy reduction of
the raw rows, and numpy's quantiles of the raw values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

import splitlab as sl
from splitlab.errors import DegenerateDataWarning, InvalidArgumentError
from splitlab.stats.quantile import QuantileSummary, choose_n_star, interval_levels, quantile_test
from splitlab.stats.stratification import poststratified_test

STRATA = {"US": 10.0, "DE": 5.0, "FR": 1.0}


def make_units(seed: int = 2, units: int = 6000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    country = rng.choice(list(STRATA), units, p=[0.5, 0.3, 0.2])
    base = pd.Series(country).map(STRATA).to_numpy()
    variant = rng.choice(["control", "b"], units)
    treated = variant == "b"
    return pd.DataFrame(
        {
            "experiment": "e1",
            "variant": variant,
            "country": country,
            "platform": rng.choice(["ios", "web"], units),
            "revenue": base + rng.normal(0.0, 1.0, units) + 0.2 * treated,
            "pre_revenue": base + rng.normal(0.0, 1.0, units),
            "converted": (rng.random(units) < 0.2 + 0.02 * treated).astype(int),
            "clicks": rng.poisson(2.0, units).astype(float),
            "pages": rng.poisson(3.0, units) + 1.0,
            "latency": rng.lognormal(3.0, 1.0, units) * (1.0 + 0.1 * treated),
        }
    )


@pytest.fixture(scope="module")
def units() -> pd.DataFrame:
    return make_units()


def strata_moments(frame: pd.DataFrame, y: str, x: str | None = None, kind: str = "mean"):
    """Per-stratum summaries of each arm with pandas (strata in sorted order, last axis)."""
    arms = []
    for arm in ("control", "b"):
        groups = frame[frame["variant"] == arm].groupby("country")
        n = groups.size().to_numpy(float)
        if kind == "proportion":
            arms.append(sl.Moments.from_proportions(groups[y].sum().to_numpy(), n))
        elif x is None:
            arms.append(sl.Moments(n, groups[y].mean().to_numpy(), groups[y].var().to_numpy()))
        else:
            cov = groups[[y, x]].cov().to_numpy().reshape(-1, 2, 2)
            arms.append(
                sl.JointMoments(
                    n, groups[y].mean().to_numpy(), cov[:, 0, 0], groups[x].mean().to_numpy(),
                    cov[:, 1, 1], cov[:, 0, 1],
                )
            )  # fmt: skip
    return arms


def assert_same(found: pd.Series, expected) -> None:
    np.testing.assert_allclose(
        [found["effect"], found["se"], found["ci_low"], found["ci_high"], found["p_value"]],
        np.ravel([expected.effect, expected.se, expected.ci_low, expected.ci_high,
                  expected.p_value]),
        rtol=1e-9,
    )  # fmt: skip


@pytest.mark.parametrize("relative", [False, True])
def test_strata_match_poststratified_test_on_pandas_summaries(units, relative):
    metrics = [
        "revenue",
        sl.Metric("adjusted", column="revenue", covariate="pre_revenue"),
        sl.Metric("converted", kind="proportion"),
        sl.Metric("ctr", kind="ratio", numerator="clicks", denominator="pages"),
    ]
    results = sl.Analyzer(units).analyze(metrics, strata="country", relative=relative)
    cases = {
        "revenue": (strata_moments(units, "revenue"), None),
        "adjusted": (strata_moments(units, "revenue", "pre_revenue"), "cuped"),
        "converted": (strata_moments(units, "converted", kind="proportion"), None),
        "ctr": (strata_moments(units, "clicks", "pages"), "ratio"),
    }
    for name, (arms, kind) in cases.items():
        expected = poststratified_test(*arms, relative=relative, kind=kind)
        found = results[results["metric"] == name].iloc[0]
        assert_same(found, expected)
        assert found["error"] == "" and found["method"].startswith("poststratified")


def test_strata_shrink_the_interval_of_a_stratum_driven_metric(units):
    plain = sl.Analyzer(units).analyze(["revenue"]).iloc[0]
    stratified = sl.Analyzer(units).analyze(["revenue"], strata="country").iloc[0]
    assert stratified["se"] < 0.5 * plain["se"]
    assert stratified["ci_low"] < 0.2 < stratified["ci_high"]


def test_strata_with_segments_analyse_each_slice(units):
    results = sl.Analyzer(units).analyze(["revenue"], strata="country", segments="platform")
    for platform, part in units.groupby("platform"):
        found = results[results["segment"] == f"platform={platform}"].iloc[0]
        assert_same(found, poststratified_test(*strata_moments(part, "revenue")))
    overall = results[results["segment"] == "all"].iloc[0]
    assert_same(overall, poststratified_test(*strata_moments(units, "revenue")))


def test_strata_agree_across_engines(units):
    expected = sl.Analyzer(units).analyze(["revenue"], strata="country")
    found = sl.Analyzer(pl.from_pandas(units)).analyze(["revenue"], strata="country")
    np.testing.assert_allclose(found["effect"], expected["effect"], rtol=1e-10)
    np.testing.assert_allclose(found["se"], expected["se"], rtol=1e-10)


def test_a_stratum_with_one_arm_empty_is_merged_and_noted(units):
    frame = units[~((units["country"] == "FR") & (units["variant"] == "b"))]
    found = sl.Analyzer(frame).analyze(["revenue"], strata="country").iloc[0]
    assert "stratum 'FR' merged into the largest stratum ('US')" in found["note"]
    assert found["error"] == ""
    assert np.isfinite(found["effect"])


def test_srm_with_strata_counts_the_pooled_arms(units):
    results = sl.Analyzer(units).analyze(["revenue"], strata="country")
    plain = sl.Analyzer(units).analyze(["revenue"])
    assert results["srm_p_value"][0] == pytest.approx(plain["srm_p_value"][0], rel=1e-12)
    assert results["n_control"][0] == plain["n_control"][0]


def test_strata_refuse_what_they_cannot_stratify(units):
    with pytest.warns(DegenerateDataWarning, match="2 of 3"):
        results = sl.Analyzer(units).analyze(
            [
                "revenue",
                sl.Metric("many", column="revenue", covariate=["pre_revenue", "pages"]),
                sl.Metric("p50", column="latency", kind="quantile", quantile=0.5),
            ],
            strata="country",
        )
    assert results["error"][0] == ""
    assert "several covariates" in results["error"][1]
    assert "not post-stratified" in results["error"][2]
    with pytest.raises(InvalidArgumentError, match="strata"):
        sl.Analyzer(units).analyze(["revenue"], strata="nope")
    with pytest.raises(InvalidArgumentError, match="strata"):
        sl.Analyzer(units).analyze(["revenue"], strata="platform", segments="platform")


@pytest.mark.parametrize("method", ["cs", "msprt"])
def test_sequential_methods_take_the_poststratified_estimate(units, method):
    options = {"n_star": 3000} if method == "cs" else {"n_plan": 3000}
    found = sl.Analyzer(units).analyze(
        ["revenue"], strata="country", method=method, method_options=options
    )
    fixed = sl.Analyzer(units).analyze(["revenue"], strata="country")
    np.testing.assert_allclose(found["se"], fixed["se"])
    assert found["ci_low"][0] < fixed["ci_low"][0] < fixed["ci_high"][0] < found["ci_high"][0]


# ---------------------------------------------------------------------------- quantiles


def numpy_summary(values: np.ndarray, nu: float) -> QuantileSummary:
    """The order statistics of a quantile summary, by numpy on the raw values."""
    n = float(values.size)
    n_star = choose_n_star(np.array([n]), nu)
    low, high = interval_levels(nu, n_star)
    return QuantileSummary(
        n=np.array([n]),
        nu=np.array([nu]),
        quantile=np.array([np.quantile(values, nu)]),
        lower=np.array([np.quantile(values, float(low[0]))]),
        upper=np.array([np.quantile(values, float(high[0]))]),
        n_star=n_star,
    )


@pytest.mark.parametrize("nu", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("relative", [False, True])
def test_quantile_metrics_match_numpy_order_statistics(units, nu, relative):
    metric = sl.Metric("q", column="latency", kind="quantile", quantile=nu)
    found = sl.Analyzer(units).analyze([metric], relative=relative).iloc[0]
    arms = [numpy_summary(units.loc[units["variant"] == a, "latency"].to_numpy(), nu)
            for a in ("control", "b")]  # fmt: skip
    np.testing.assert_allclose(
        [found["mean_control"], found["mean_variant"]],
        [arms[0].quantile[0], arms[1].quantile[0]],
        rtol=1e-12,
    )
    assert_same(found, quantile_test(*arms, relative=relative))


def test_quantile_of_event_rows_summed_per_unit(units):
    events = units.loc[units.index.repeat(3)].assign(
        user=lambda f: f.index, latency=lambda f: f["latency"] / 3
    )
    metric = sl.Metric("p90", column="latency", kind="quantile", quantile=0.9)
    found = sl.Analyzer(events, unit="user").analyze([metric]).iloc[0]
    expected = sl.Analyzer(units).analyze([metric]).iloc[0]
    np.testing.assert_allclose(found["effect"], expected["effect"], rtol=1e-9)


def test_quantile_segments_and_missing_values(units):
    frame = units.copy()
    frame.loc[frame.index[:100], "latency"] = np.nan
    metric = sl.Metric("p50", column="latency", kind="quantile", quantile=0.5)
    results = sl.Analyzer(frame).analyze([metric], segments="platform")
    kept = frame.dropna(subset=["latency"])
    for label, part in [
        ("all", kept),
        *((f"platform={p}", g) for p, g in kept.groupby("platform")),
    ]:
        found = results[results["segment"] == label].iloc[0]
        control = part.loc[part["variant"] == "control", "latency"]
        assert found["n_control"] == len(control)
        np.testing.assert_allclose(found["mean_control"], np.quantile(control, 0.5), rtol=1e-12)


def test_clustered_quantile_widens_the_interval_for_correlated_events():
    rng = np.random.default_rng(4)
    users = 3000
    level = rng.normal(0.0, 1.0, users)
    count = rng.integers(1, 10, users)
    user = np.repeat(np.arange(users), count)
    frame = pd.DataFrame(
        {
            "experiment": "e1",
            "variant": np.where(user % 2 == 0, "control", "b"),
            "user": user,
            "latency": np.exp(2.0 + level[user] + 0.3 * rng.normal(size=user.size)),
        }
    )
    metric = sl.Metric("p50", column="latency", kind="quantile", quantile=0.5)
    clustered = sl.Analyzer(frame, cluster="user").analyze([metric]).iloc[0]
    naive = sl.Analyzer(frame).analyze([metric]).iloc[0]
    assert clustered["effect"] == pytest.approx(naive["effect"], rel=1e-12)
    assert clustered["se"] > 1.5 * naive["se"] and clustered["error"] == ""


@pytest.mark.parametrize("method", ["cs", "msprt", "bayes"])
def test_quantile_metrics_take_every_method(units, method):
    options = {"cs": {"n_star": 3000}, "msprt": {"n_plan": 3000}, "bayes": None}[method]
    metric = sl.Metric("p90", column="latency", kind="quantile", quantile=0.9)
    found = sl.Analyzer(units).analyze([metric], method=method, method_options=options).iloc[0]
    fixed = sl.Analyzer(units).analyze([metric]).iloc[0]
    assert found["effect"] == pytest.approx(fixed["effect"], rel=1e-12)
    assert found["error"] == ""
    if method != "bayes":
        assert found["ci_low"] < fixed["ci_low"] < fixed["ci_high"] < found["ci_high"]


def test_quantile_levels_outside_the_unit_interval_are_refused():
    for level in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(InvalidArgumentError, match="quantile"):
            sl.Metric("q", column="latency", kind="quantile", quantile=level)
    with pytest.raises(InvalidArgumentError, match="quantile"):
        sl.Metric("q", column="latency", kind="quantile")
    with pytest.raises(InvalidArgumentError, match="quantile"):
        sl.Metric("q", column="latency", quantile=0.5)


def test_quantile_metrics_have_no_timeline(units):
    frame = units.assign(day=pd.Timestamp("2026-01-01"))
    metric = sl.Metric("p90", column="latency", kind="quantile", quantile=0.9)
    with pytest.raises(InvalidArgumentError, match="no timeline"):
        sl.Analyzer(frame, date="day").timeline(metric)


def test_report_shows_quantile_and_stratified_rows(units, tmp_path):
    frame = units.assign(day=pd.Timestamp("2026-03-01") + pd.to_timedelta(units.index % 3, "D"))
    metrics = ["revenue", sl.Metric("p90", column="latency", kind="quantile", quantile=0.9)]
    analyzer = sl.Analyzer(frame, date="day")
    html = analyzer.report(tmp_path / "q.html", metrics).read_text()
    assert "quantile 0.9" in html and "no timeline" in html
    html = analyzer.report(tmp_path / "s.html", ["revenue"], strata="country").read_text()
    assert "<th>strata</th><td><code>&quot;country&quot;" in html
    lacking = frame[~((frame["country"] == "FR") & (frame["variant"] == "b"))]
    html = (
        sl.Analyzer(lacking, date="day")
        .report(tmp_path / "m.html", ["revenue"], strata="country")
        .read_text()
    )
    assert "stratum &#x27;FR&#x27; merged into the largest stratum" in html


def test_clustered_metrics_are_post_stratified_as_ratios_of_cluster_sums(units):
    sessions = units.loc[units.index.repeat(2)].assign(user=lambda f: f.index)
    sessions["revenue"] += np.random.default_rng(9).normal(0.0, 1.0, len(sessions))
    found = sl.Analyzer(sessions, cluster="user").analyze(["revenue"], strata="country").iloc[0]
    per_user = sessions.assign(rows=1.0).groupby(["variant", "country", "user"], as_index=False)
    sums = per_user[["revenue", "rows"]].sum()
    expected = poststratified_test(*strata_moments(sums, "revenue", "rows"), kind="ratio")
    assert_same(found, expected)


def test_a_proportion_with_several_covariates(units):
    metric = sl.Metric("converted", kind="proportion", covariate=["pre_revenue", "pages"])
    found = sl.Analyzer(units).analyze([metric]).iloc[0]
    values = units[["converted", "pre_revenue", "pages"]].to_numpy(float)
    arm_c = (units["variant"] == "control").to_numpy()
    arms = [sl.CrossMoments.from_samples(values[mask, 0], values[mask, 1:].T, axis=-1)
            for mask in (arm_c, ~arm_c)]  # fmt: skip
    arms = [sl.CrossMoments(a.n, a.mean, a.cov * (a.n - 1) / a.n, ddof=0) for a in arms]
    expected = sl.regression_test(*arms)
    assert_same(found, expected)


def test_stratified_timeline_equals_stratified_analyses_of_each_cutoff(units):
    frame = units.assign(day=pd.Timestamp("2026-03-01") + pd.to_timedelta(units.index % 4, "D"))
    analyzer = sl.Analyzer(frame, date="day")
    timeline = analyzer.timeline("revenue", strata="country")
    assert len(timeline) == 4
    for _, look in timeline.iterrows():
        part = frame[frame["day"] <= look["period"]]
        expected = poststratified_test(*strata_moments(part, "revenue"))
        assert_same(look, expected)
    readout = analyzer.readout(["revenue"], strata="country")
    last = readout.timelines["revenue"].iloc[-1]
    assert last["effect"] == pytest.approx(readout.results["effect"][0], rel=1e-12)
