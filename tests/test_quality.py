"""Data-quality checks: each against an independent pandas/scipy computation on data with a
planted problem, a clean dataset that flags nothing, and DuckDB and polars agreeing.

False flags on the clean dataset: it holds no missing values and no shared units, so those
checks cannot fire; the others are one SRM test (p < 0.001), one family of daily split
tests (0.001 split over the days by Bonferroni), one extreme-value test of revenue (exact,
so at most 0.001) and one balance test of pre (p < 0.001, or |SMD| > 0.1, a 7-standard-error
event at 10,000 units per arm). By the union bound a fresh seed flags something with
probability below 4 × 0.001 = 0.4%; the seed is fixed, so the test is deterministic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import stats

import splitlab as sl
from splitlab.analyzer.quality import COLUMNS, EXTREME_QUANTILE, QUALITY_ALPHA, SMD_LIMIT
from splitlab.errors import InvalidArgumentError

START = pd.Timestamp("2024-03-01")
DAYS = 10
BROKEN_DAY = START + pd.Timedelta(days=4)
METRICS = [
    sl.Metric("revenue", covariate="pre"),
    sl.Metric("converted", kind="proportion"),
]


def clean(seed: int = 11, units: int = 20_000) -> pd.DataFrame:
    """One experiment, two arms, one row per user over ten days, nothing wrong."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "experiment": "e1",
            "variant": rng.choice(["control", "b"], units),
            "user": np.arange(units),
            "revenue": rng.gamma(2.0, 5.0, units),
            "converted": (rng.random(units) < 0.1).astype(int),
            "pre": rng.normal(10.0, 2.0, units),
            "ts": START + pd.to_timedelta(rng.integers(0, DAYS * 86400, units), unit="s"),
        }
    )


def planted(problem: str, seed: int = 5) -> pd.DataFrame:
    data = clean(seed)
    rng = np.random.default_rng(seed + 1)
    b = data["variant"] == "b"
    if problem == "double":
        # 40 users get a second row in the other arm
        twice = data.sample(40, random_state=seed).copy()
        twice["variant"] = np.where(twice["variant"] == "b", "control", "b")
        data = pd.concat([data, twice], ignore_index=True)
    elif problem == "missing":
        data.loc[b & (rng.random(len(data)) < 0.10), "revenue"] = np.nan
    elif problem == "day":
        on_day = data["ts"].dt.normalize() == BROKEN_DAY
        data = data[~(on_day & b & (rng.random(len(data)) < 0.8))].reset_index(drop=True)
    elif problem == "outliers":
        chosen = b & (rng.random(len(data)) < 0.003)
        data.loc[chosen, "revenue"] = 1000.0 * (1.0 + rng.random(int(chosen.sum())))
    elif problem == "imbalance":
        data.loc[b, "pre"] += 0.3
    else:  # pragma: no cover - a typo in a test
        raise ValueError(problem)
    return data


def check(table: pd.DataFrame, name: str) -> pd.DataFrame:
    return table[table["check"] == name].reset_index(drop=True)


def per_unit(data: pd.DataFrame, column: str) -> pd.DataFrame:
    """Each user's summed value per (experiment, variant), NaN when none of its rows has one."""
    return (
        data.groupby(["experiment", "variant", "user"])[column]
        .sum(min_count=1)
        .rename("value")
        .reset_index()
    )


def exact_p(k_t: int, n_t: int, k_c: int, n_c: int) -> float:
    """Doubled smaller one-sided Fisher p-value (scipy), the test the checks use."""
    table = [[k_t, n_t - k_t], [k_c, n_c - k_c]]
    less = stats.fisher_exact(table, alternative="less").pvalue
    greater = stats.fisher_exact(table, alternative="greater").pvalue
    return min(1.0, 2.0 * min(less, greater))


@pytest.fixture(scope="module")
def clean_table() -> pd.DataFrame:
    return sl.Analyzer(clean(), unit="user", date="ts").quality(METRICS)


def test_the_table_has_one_row_per_check_and_the_documented_columns(clean_table):
    assert list(clean_table.columns) == COLUMNS
    counts = clean_table["check"].value_counts()
    # revenue, converted and pre are checked for missing values; revenue for extremes
    assert counts.to_dict() == {
        "daily_exposure": DAYS, "missing_values": 3, "multiple_exposure": 1,
        "extreme_values": 1, "covariate_balance": 1, "srm": 1,
    }  # fmt: skip
    assert clean_table["detail"].str.len().gt(20).all()
    assert clean_table.attrs["call"] == "quality"


def test_a_clean_dataset_flags_nothing(clean_table):
    assert not clean_table["flag"].any(), clean_table.loc[clean_table["flag"], "detail"].tolist()


def test_units_exposed_to_two_variants_are_counted_and_flagged():
    data = planted("double")
    row = check(sl.Analyzer(data, unit="user").quality(), "multiple_exposure").iloc[0]
    variants = data.groupby("user")["variant"].nunique()
    assert row["flag"] and row["threshold"] == 0
    assert row["value"] == pytest.approx((variants > 1).mean(), rel=1e-12)
    assert f"{int((variants > 1).sum()):,} of {len(variants):,} units" in row["detail"]


def test_missing_values_per_variant_match_pandas_and_the_gap_is_flagged():
    data = planted("missing")
    table = check(sl.Analyzer(data, unit="user").quality(METRICS), "missing_values")
    row = table[table["metric"] == "revenue"].iloc[0]
    units = per_unit(data, "revenue")
    missing = units.groupby("variant")["value"].apply(lambda v: int(v.isna().sum()))
    n = units.groupby("variant").size()
    assert row["variant"] == "b"
    assert row["value"] == pytest.approx(missing["b"] / n["b"], rel=1e-12)
    assert row["control_value"] == pytest.approx(missing["control"] / n["control"], rel=1e-12)
    expected = exact_p(missing["b"], n["b"], missing["control"], n["control"])
    assert row["p_value"] == pytest.approx(expected, rel=1e-9, abs=1e-300)
    assert row["flag"] and 0.08 < row["value"] < 0.12
    assert not table.loc[table["metric"] != "revenue", "flag"].any()


def test_daily_exposures_match_pandas_and_only_the_broken_day_is_flagged():
    data = planted("day")
    table = check(sl.Analyzer(data, date="ts").quality(), "daily_exposure")
    counts = pd.crosstab(data["ts"].dt.normalize(), data["variant"])[["b", "control"]]
    assert list(table["day"]) == list(counts.index)
    assert table["value"].tolist() == counts.sum(axis=1).tolist()
    expected = [stats.chisquare(row).pvalue for row in counts.to_numpy()]
    np.testing.assert_allclose(table["p_value"], expected, rtol=1e-9)
    assert (table["threshold"] == QUALITY_ALPHA / DAYS).all()
    assert table.loc[table["flag"], "day"].tolist() == [BROKEN_DAY]


def test_a_day_without_exposures_in_one_arm_is_flagged():
    data = clean()
    on_day = data["ts"].dt.normalize() == BROKEN_DAY
    data = data[~(on_day & (data["variant"] == "b"))]
    table = check(sl.Analyzer(data, date="ts").quality(), "daily_exposure")
    row = table[table["day"] == BROKEN_DAY].iloc[0]
    assert row["flag"] and "no exposures in 'b'" in row["detail"]
    assert table["flag"].sum() == 1


def test_extreme_values_match_a_pandas_quantile_and_planted_outliers_are_flagged():
    data = planted("outliers")
    analyzer = sl.Analyzer(data, unit="user")
    row = check(analyzer.quality(METRICS), "extreme_values").iloc[0]
    units = per_unit(data, "revenue")
    limit = units["value"].quantile(EXTREME_QUANTILE, interpolation="linear")
    above = units.assign(above=units["value"] > limit).groupby("variant")["above"]
    share, count, n = above.mean(), above.sum(), above.size()
    assert row["metric"] == "revenue" and f"{limit:.4g}" in row["detail"]
    assert row["value"] == pytest.approx(share["b"], rel=1e-12)
    assert row["control_value"] == pytest.approx(share["control"], rel=1e-12)
    expected = exact_p(count["b"], n["b"], count["control"], n["control"])
    assert row["p_value"] == pytest.approx(expected, rel=1e-9, abs=1e-300)
    assert row["flag"]


def test_covariate_balance_matches_scipy_and_an_imbalance_is_flagged():
    data = planted("imbalance")
    row = check(sl.Analyzer(data).quality(METRICS), "covariate_balance").iloc[0]
    b, c = data.loc[data["variant"] == "b", "pre"], data.loc[data["variant"] == "control", "pre"]
    smd = (b.mean() - c.mean()) / np.sqrt((b.var() + c.var()) / 2)
    assert row["metric"] == "pre" and row["threshold"] == SMD_LIMIT
    assert row["value"] == pytest.approx(smd, rel=1e-9)
    assert row["p_value"] == pytest.approx(
        stats.ttest_ind(b, c, equal_var=False).pvalue, rel=1e-6, abs=1e-300
    )
    assert row["flag"] and abs(row["value"]) > SMD_LIMIT


def test_explicit_covariates_replace_the_metrics_and_are_validated():
    data = planted("imbalance")
    table = check(sl.Analyzer(data).quality(["revenue"], covariates="pre"), "covariate_balance")
    assert table["metric"].tolist() == ["pre"] and table["flag"].all()
    assert check(sl.Analyzer(data).quality(["revenue"]), "covariate_balance").empty
    with pytest.raises(InvalidArgumentError) as raised:
        sl.Analyzer(data).quality(covariates=["nope"])
    assert raised.value.argument == "covariates"


def test_the_srm_row_is_the_analyzers_srm():
    data = planted("day")
    analyzer = sl.Analyzer(data)
    row = check(analyzer.quality(), "srm").iloc[0]
    srm = analyzer.srm().iloc[0]
    assert row["p_value"] == srm["p_value"] and row["value"] == srm["statistic"]
    assert bool(row["flag"]) == bool(srm["mismatch"])


def test_checks_that_need_a_column_say_they_were_not_run():
    table = sl.Analyzer(clean()).quality()
    for name in ("multiple_exposure", "daily_exposure"):
        row = check(table, name).iloc[0]
        assert not row["flag"] and row["detail"].startswith("Not checked")


def test_polars_and_duckdb_give_the_same_table():
    data = planted("missing")
    data.loc[data.index[:30], "user"] = data["user"].iloc[30:60].to_numpy()  # shared units
    data.loc[(data["variant"] == "b") & (data["revenue"] > 40), "revenue"] *= 50
    duck = sl.Analyzer(data, unit="user", date="ts").quality(METRICS)
    lazy = pl.from_pandas(data).lazy()
    polars = sl.Analyzer(lazy, unit="user", date="ts").quality(METRICS)
    assert sl.Analyzer(lazy).source.engine == "polars"
    pd.testing.assert_frame_equal(duck, polars, check_exact=False, rtol=1e-9)
    assert duck["flag"].any()


def test_analyze_carries_the_flagged_checks_only_when_asked():
    data = planted("outliers")
    analyzer = sl.Analyzer(data, unit="user", date="ts")
    assert "quality" not in analyzer.analyze(METRICS).attrs
    flagged = analyzer.analyze(METRICS, quality=True).attrs["quality"]
    assert [item["check"] for item in flagged] == ["extreme_values"]
    assert flagged[0]["variant"] == "b" and flagged[0]["metric"] == "revenue"
    assert sl.Analyzer(clean(), unit="user").analyze(METRICS, quality=True).attrs["quality"] == []


def test_readout_and_report_show_every_check(tmp_path):
    data = planted("imbalance")
    analyzer = sl.Analyzer(data, unit="user", date="ts")
    readout = analyzer.readout(METRICS)
    assert readout.quality is not None and set(readout.flagged["check"]) == {"covariate_balance"}
    assert readout.results.attrs["quality"][0]["check"] == "covariate_balance"
    text = analyzer.report(tmp_path / "r.html", METRICS).read_text(encoding="utf-8")
    section = text[text.index("<h2>Data quality</h2>") : text.index("<h2>Results</h2>")]
    for title in (
        "Units exposed to more than one variant", "Missing metric values", "Exposures per day",
        "Extreme values", "Pre-period covariate balance", "Sample-ratio mismatch",
    ):  # fmt: skip
        assert f"<h3>{title}</h3>" in section
    assert "1 of " in section and 'class="flagged"' in section
    assert section.count("<tr") - section.count("<thead>") == len(readout.quality)
