"""Analyzer results against an independent pandas + scipy computation on generated data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

import splitlab as sl
from splitlab.errors import DegenerateDataWarning, InvalidArgumentError, UnknownOptionError

RTOL = 1e-9


def make_units(seed: int = 5, units: int = 6000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    experiment = rng.choice(["checkout", "ranker"], units)
    variant = rng.choice(["control", "b", "c"], units)
    pre = rng.gamma(2.0, 2.0, units)
    lift = np.where(variant == "c", 0.4, 0.0)
    return pd.DataFrame(
        {
            "experiment": experiment,
            "variant": variant,
            "user": np.arange(units),
            "revenue": 0.7 * pre + rng.gamma(2.0, 1.0, units) + lift,
            "pre_revenue": pre,
            "converted": (rng.random(units) < np.where(variant == "b", 0.12, 0.10)).astype(int),
            "clicks": rng.poisson(2.0, units).astype(float),
            "sessions": rng.poisson(3.0, units) + 1.0,
            "country": rng.choice(["US", "DE", "FR"], units),
            "ts": pd.Timestamp("2026-03-01") + pd.to_timedelta(rng.integers(0, 96, units), "h"),
        }
    )


@pytest.fixture(scope="module")
def units() -> pd.DataFrame:
    return make_units()


def welch_by_hand(y_c, y_t, alpha=0.05):
    reference = stats.ttest_ind(y_t, y_c, equal_var=False)
    interval = reference.confidence_interval(1 - alpha)
    return y_t.mean() - y_c.mean(), interval.low, interval.high, reference.pvalue


def row(results, **where) -> pd.Series:
    mask = np.ones(len(results), dtype=bool)
    for column, value in where.items():
        mask &= results[column].to_numpy() == value
    assert mask.sum() == 1, where
    return results[mask].iloc[0]


def assert_row(found: pd.Series, effect, ci_low, ci_high, p_value):
    np.testing.assert_allclose(
        [found["effect"], found["ci_low"], found["ci_high"], found["p_value"]],
        [effect, ci_low, ci_high, p_value],
        rtol=RTOL,
        atol=1e-12,
    )


def arms(frame, experiment, variant, column):
    selected = frame[(frame["experiment"] == experiment)]
    return (
        selected.loc[selected["variant"] == "control", column].to_numpy(float),
        selected.loc[selected["variant"] == variant, column].to_numpy(float),
    )


def test_mean_metric_matches_scipy_welch(units):
    results = sl.Analyzer(units).analyze(["revenue"])
    assert len(results) == 4 and set(results["segment"]) == {"all"}
    for experiment in ("checkout", "ranker"):
        for variant in ("b", "c"):
            found = row(results, experiment=experiment, variant=variant)
            y_c, y_t = arms(units, experiment, variant, "revenue")
            assert_row(found, *welch_by_hand(y_c, y_t))
            assert found["n_control"] == y_c.size and found["n_variant"] == y_t.size
            np.testing.assert_allclose(found["mean_control"], y_c.mean(), rtol=RTOL)


def test_relative_scale_matches_the_delta_method(units):
    results = sl.Analyzer(units).analyze(["revenue"], relative=True)
    y_c, y_t = arms(units, "ranker", "c", "revenue")
    variance = y_t.var(ddof=1) / (y_c.mean() ** 2 * y_t.size) + y_c.var(
        ddof=1
    ) * y_t.mean() ** 2 / (y_c.mean() ** 4 * y_c.size)
    found = row(results, experiment="ranker", variant="c")
    np.testing.assert_allclose(found["effect"], y_t.mean() / y_c.mean() - 1, rtol=RTOL)
    np.testing.assert_allclose(found["se"], np.sqrt(variance), rtol=RTOL)
    assert found["scale"] == "relative"


def test_cuped_metric_matches_welch_on_adjusted_values(units):
    metric = sl.Metric("revenue", covariate="pre_revenue")
    results = sl.Analyzer(units).analyze([metric])
    for experiment in ("checkout", "ranker"):
        data = units[units["experiment"] == experiment]
        for variant in ("b", "c"):
            pair = data[data["variant"].isin(["control", variant])]
            covariance = np.cov(pair["revenue"], pair["pre_revenue"])
            theta = covariance[0, 1] / covariance[1, 1]
            adjusted = pair["revenue"] - theta * pair["pre_revenue"]
            y_c = adjusted[pair["variant"] == "control"].to_numpy()
            y_t = adjusted[pair["variant"] == variant].to_numpy()
            found = row(results, experiment=experiment, variant=variant)
            assert_row(found, *welch_by_hand(y_c, y_t))
            assert found["method"] == "cuped" and found["variance_reduction"] > 0.3


def test_proportion_metric_uses_bernoulli_variance_and_welch_df(units):
    results = sl.Analyzer(units).analyze([sl.Metric("converted", kind="proportion")])
    y_c, y_t = arms(units, "checkout", "b", "converted")
    p_c, p_t = y_c.mean(), y_t.mean()
    se2_c, se2_t = p_c * (1 - p_c) / y_c.size, p_t * (1 - p_t) / y_t.size
    df = (se2_c + se2_t) ** 2 / (se2_c**2 / (y_c.size - 1) + se2_t**2 / (y_t.size - 1))
    se = np.sqrt(se2_c + se2_t)
    half = stats.t.ppf(0.975, df) * se
    p_value = 2 * stats.t.sf(abs(p_t - p_c) / se, df)
    found = row(results, experiment="checkout", variant="b")
    assert_row(found, p_t - p_c, p_t - p_c - half, p_t - p_c + half, p_value)


def test_ratio_metric_matches_the_delta_method_per_unit(units):
    metric = sl.Metric("ctr", kind="ratio", numerator="clicks", denominator="sessions")
    results = sl.Analyzer(units).analyze([metric])
    data = units[units["experiment"] == "ranker"]

    def ratio_and_variance(frame):
        y, x = frame["clicks"].to_numpy(), frame["sessions"].to_numpy()
        gradient = np.array([1 / x.mean(), -y.mean() / x.mean() ** 2])
        return y.mean() / x.mean(), gradient @ np.cov(y, x) @ gradient, y.size

    r_c, v_c, n_c = ratio_and_variance(data[data["variant"] == "control"])
    r_t, v_t, n_t = ratio_and_variance(data[data["variant"] == "b"])
    se = np.sqrt(v_c / n_c + v_t / n_t)
    df = (v_c / n_c + v_t / n_t) ** 2 / (
        (v_c / n_c) ** 2 / (n_c - 1) + (v_t / n_t) ** 2 / (n_t - 1)
    )
    half = stats.t.ppf(0.975, df) * se
    found = row(results, experiment="ranker", variant="b")
    assert_row(
        found,
        r_t - r_c,
        r_t - r_c - half,
        r_t - r_c + half,
        2 * stats.t.sf(abs(r_t - r_c) / se, df),
    )
    np.testing.assert_allclose(found["mean_control"], r_c, rtol=RTOL)


def test_segments_equal_analyses_of_each_slice(units):
    results = sl.Analyzer(units).analyze(["revenue"], segments=["country"])
    assert set(results["segment"]) == {"all", "country=US", "country=DE", "country=FR"}
    overall = sl.Analyzer(units).analyze(["revenue"])
    np.testing.assert_allclose(
        results[results["segment"] == "all"]["p_value"].to_numpy(),
        overall["p_value"].to_numpy(),
        rtol=RTOL,
    )
    for country in ("US", "DE", "FR"):
        slice_ = units[units["country"] == country]
        y_c, y_t = arms(slice_, "checkout", "c", "revenue")
        found = row(results, experiment="checkout", variant="c", segment=f"country={country}")
        assert_row(found, *welch_by_hand(y_c, y_t))


@pytest.mark.parametrize("correction", ["holm", "bh", "bonferroni", "by"])
@pytest.mark.parametrize("scope", ["metric", "experiment"])
def test_corrections_match_statsmodels_within_each_family(units, correction, scope):
    metrics = ["revenue", sl.Metric("converted", kind="proportion"), "clicks"]
    results = sl.Analyzer(units).analyze(metrics, correction=correction, correction_scope=scope)
    family = ["experiment", "segment"] + (["metric"] if scope == "metric" else [])
    statsmodels_name = {"bh": "fdr_bh", "by": "fdr_by"}.get(correction, correction)
    for _, group in results.groupby(family):
        expected = multipletests(group["p_value"], method=statsmodels_name)[1]
        np.testing.assert_allclose(group["p_adjusted"], expected, rtol=1e-12)
        np.testing.assert_array_equal(group["significant"], expected < 0.05)


def test_guardrail_metrics_stay_out_of_the_correction_family(units):
    metrics = ["revenue", sl.Metric("clicks", guardrail=True)]
    results = sl.Analyzer(units).analyze(
        metrics, correction="bonferroni", correction_scope="experiment"
    )
    guardrail = results[results["metric"] == "clicks"]
    np.testing.assert_array_equal(guardrail["p_adjusted"], guardrail["p_value"])
    primary = results[results["metric"] == "revenue"]
    np.testing.assert_allclose(primary["p_adjusted"], np.minimum(primary["p_value"] * 2, 1))


def test_event_level_rows_are_summed_per_unit_first(units):
    rng = np.random.default_rng(9)
    repeats = rng.integers(1, 4, len(units))
    events = units.loc[units.index.repeat(repeats)].copy()
    events["revenue"] = events["revenue"] / events["user"].map(pd.Series(repeats, units["user"]))
    per_unit = events.groupby(["experiment", "variant", "user"], as_index=False)["revenue"].sum()
    results = sl.Analyzer(events, unit="user").analyze(["revenue"])
    y_c, y_t = arms(per_unit, "checkout", "b", "revenue")
    found = row(results, experiment="checkout", variant="b")
    assert_row(found, *welch_by_hand(y_c, y_t))
    assert found["n_control"] == y_c.size


def test_winsorization_clips_at_per_experiment_quantiles(units):
    results = sl.Analyzer(units).analyze([sl.Metric("revenue", winsorize=(0.05, 0.95))])
    data = units[units["experiment"] == "ranker"].copy()
    low, high = data["revenue"].quantile([0.05, 0.95])
    data["revenue"] = data["revenue"].clip(low, high)
    y_c, y_t = arms(data, "ranker", "b", "revenue")
    assert_row(row(results, experiment="ranker", variant="b"), *welch_by_hand(y_c, y_t))


def test_bayes_method_adds_chance_to_win_and_risks(units):
    results = sl.Analyzer(units).analyze(["revenue"], method="bayes")
    y_c, y_t = arms(units, "ranker", "c", "revenue")
    effect = y_t.mean() - y_c.mean()
    se = np.sqrt(y_c.var(ddof=1) / y_c.size + y_t.var(ddof=1) / y_t.size)
    found = row(results, experiment="ranker", variant="c")
    np.testing.assert_allclose(found["chance_to_win"], stats.norm.cdf(effect / se), rtol=RTOL)
    np.testing.assert_allclose(found["ci_low"], effect - stats.norm.ppf(0.975) * se, rtol=RTOL)
    expected_risk = se * stats.norm.pdf(effect / se) - effect * stats.norm.cdf(-effect / se)
    np.testing.assert_allclose(found["risk_variant"], expected_risk, rtol=1e-7)


def test_srm_is_a_chi_square_per_experiment_and_flags_rows():
    frame = make_units(seed=6, units=9000)
    skewed = frame[~((frame["experiment"] == "ranker") & (frame["variant"] == "b"))]
    skewed = pd.concat(
        [skewed, frame[(frame["experiment"] == "ranker") & (frame["variant"] == "b")].iloc[:1200]]
    )
    analyzer = sl.Analyzer(skewed)
    srm = analyzer.srm().set_index("experiment")
    counts = skewed[skewed["experiment"] == "ranker"]["variant"].value_counts().sort_index()
    np.testing.assert_allclose(
        srm.loc["ranker", "p_value"], stats.chisquare(counts).pvalue, rtol=RTOL
    )
    assert srm.loc["ranker", "mismatch"] and not srm.loc["checkout", "mismatch"]
    results = analyzer.analyze(["revenue"])
    assert results.loc[results["experiment"] == "ranker", "srm_mismatch"].all()


def test_srm_uses_planned_weights(units):
    weights = {"control": 0.5, "b": 0.25, "c": 0.25}
    srm = sl.Analyzer(units, weights=weights).srm().set_index("experiment")
    counts = units[units["experiment"] == "checkout"]["variant"].value_counts()
    total = counts.sum()
    expected = stats.chisquare(
        [counts["b"], counts["c"], counts["control"]], [total / 4, total / 4, total / 2]
    )
    np.testing.assert_allclose(srm.loc["checkout", "p_value"], expected.pvalue, rtol=RTOL)


def test_timeline_is_cumulative_by_exposure_day(units):
    timeline = sl.Analyzer(units, date="ts").timeline("revenue")
    days = sorted(units["ts"].dt.normalize().unique())
    path = timeline[(timeline["experiment"] == "checkout") & (timeline["variant"] == "b")]
    assert len(path) == len(days)
    for day, (_, found) in zip(days, path.iterrows(), strict=True):
        seen = units[units["ts"].dt.normalize() <= day]
        y_c, y_t = arms(seen, "checkout", "b", "revenue")
        assert_row(found, *welch_by_hand(y_c, y_t))


def test_one_broken_metric_does_not_fail_the_batch(units):
    frame = units.assign(constant=1.0, zero=0.0)
    metrics = [
        "revenue",
        "constant",
        sl.Metric("per_zero", kind="ratio", numerator="clicks", denominator="zero"),
    ]
    with pytest.warns(DegenerateDataWarning):
        results = sl.Analyzer(frame).analyze(metrics)
    assert (results.loc[results["metric"] == "revenue", "error"] == "").all()
    assert results.loc[results["metric"] == "constant", "error"].str.contains("zero variance").all()
    assert results.loc[results["metric"] == "per_zero", "error"].str.contains("denominator").all()
    assert results.loc[results["error"] != "", "p_value"].isna().all()
    assert (results.loc[results["error"] != "", "decision"] == "error").all()


def test_results_carry_provenance(units):
    results = sl.Analyzer(units).analyze(["revenue"], alpha=0.1)
    attrs = results.attrs
    assert attrs["splitlab_version"] == sl.__version__
    assert attrs["parameters"]["alpha"] == 0.1 and attrs["parameters"]["method"] == "ttest"
    again = sl.Analyzer(units.sample(frac=1.0, random_state=1)).analyze(["revenue"], alpha=0.1)
    assert attrs["input_fingerprint"] == again.attrs["input_fingerprint"]
    changed = sl.Analyzer(units.assign(revenue=units["revenue"] * 2)).analyze(["revenue"])
    assert changed.attrs["input_fingerprint"] != attrs["input_fingerprint"]


def test_design_columns_are_present(units):
    results = sl.Analyzer(units).analyze(["revenue"])
    required = (
        "experiment segment metric variant n_control n_variant mean_control mean_variant effect "
        "se ci_low ci_high p_value p_adjusted significant method scale srm_p_value error"
    ).split()
    assert set(required) <= set(results.columns)


def test_explain_shows_the_pushed_down_sql(units):
    sql = sl.Analyzer(units).explain(["revenue"])
    assert "GROUP BY" in sql.upper() and "revenue" in sql


def null_variant(f):
    return sl.Analyzer(f.assign(variant=f["variant"].where(f["user"] != 3))).analyze(["revenue"])


def control_only(f):
    return sl.Analyzer(f[f["variant"] == "control"]).analyze(["revenue"])


def text_denominator(f):
    metric = sl.Metric("r", kind="ratio", numerator="clicks", denominator="country")
    return sl.Analyzer(f).analyze([metric])


BAD_INPUTS = [
    (lambda f: sl.Analyzer(f).analyze(["missing"]), "metrics", "'missing' is not in the source"),
    (lambda f: sl.Analyzer(f).analyze(["country"]), "metrics", "must be numeric"),
    (lambda f: sl.Analyzer(f, control="base").analyze(["revenue"]), "control", "'base'"),
    (lambda f: sl.Analyzer(f, variant="arm"), "variant", "'arm' is not in the source"),
    (lambda f: sl.Analyzer(f).analyze(["revenue"], segments=["region"]), "segments", "'region'"),
    (null_variant, "variant", "null"),
    (control_only, "source", "no variant besides the control"),
    (lambda f: sl.Analyzer(f.iloc[:0]).analyze(["revenue"]), "source", "no rows"),
    (lambda f: sl.Analyzer(f).analyze(["revenue"], alpha=2), "alpha", "(0, 1)"),
    (lambda f: sl.Analyzer(f).timeline("revenue"), "date", "date="),
    (lambda f: sl.Analyzer(f).analyze([]), "metrics", "at least one"),
    (text_denominator, "metrics", "numeric"),
]


@pytest.mark.parametrize(("build", "argument", "fragment"), BAD_INPUTS)
def test_bad_input_names_the_column_and_experiment(units, build, argument, fragment):
    with pytest.raises(InvalidArgumentError) as info:
        build(units)
    assert info.value.argument == argument
    assert fragment in str(info.value)


def test_null_variant_error_names_the_experiment(units):
    frame = units.assign(variant=units["variant"].where(units["user"] != 0))
    experiment = units.loc[0, "experiment"]
    with pytest.raises(InvalidArgumentError, match=experiment):
        sl.Analyzer(frame).analyze(["revenue"])


def test_unknown_options_are_refused(units):
    with pytest.raises(UnknownOptionError, match="method"):
        sl.Analyzer(units).analyze(["revenue"], method="magic")
    with pytest.raises(UnknownOptionError, match="correction"):
        sl.Analyzer(units).analyze(["revenue"], correction="fdr")
    with pytest.raises(InvalidArgumentError, match="winsorize"):
        sl.Metric("revenue", winsorize=(0.9, 0.1))
