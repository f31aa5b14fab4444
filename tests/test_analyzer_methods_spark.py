"""The new analysis methods on a Spark DataFrame give the pandas results: regression
adjustment on three covariates, post-stratification (``strata=``), a median quantile
metric, and clustered metrics (``cluster=``), including the clustered median.

Spark's quantile is exact here: narwhals (checked in 2.29) maps
``Expr.quantile(q, "linear")`` to ``pyspark.sql.functions.percentile`` (linear
interpolation between order statistics, as numpy), not to ``percentile_approx``, which
returns one of the data values; only narwhals' ``median()`` on pyspark < 3.4 falls back to
``percentile_approx``, and the quantile reduction does not call it. So the quantile rows
must equal pandas' to rounding, and a narwhals that switched to the approximation would
fail the midpoint test below.

One Spark session for the run (the ``spark`` fixture of conftest.py, skipped without
pyspark or Java); each test is one or two analyses of a few hundred rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import splitlab as sl

pytestmark = [
    pytest.mark.spark,
    # pyspark 4.x warns on every pandas conversion that it does not yet fully support pandas 3
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support:FutureWarning"),
]

KEYS = ["experiment", "segment", "metric", "variant"]
NUMBERS = [
    "n_control", "n_variant", "mean_control", "mean_variant", "effect", "relative_effect",
    "se", "ci_low", "ci_high", "p_value", "p_adjusted", "srm_p_value",
]  # fmt: skip
LABELS = ["method", "scale", "decision", "significant", "error"]
COVARIATES = ["x0", "x1", "x2"]
MEDIAN = sl.Metric("latency_p50", column="latency", kind="quantile", quantile=0.5)


def make_units(seed: int = 8, units: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(5.0, 1.0, (units, len(COVARIATES)))
    # equal arms of an even size: each arm's median is the midpoint of two values
    variant = rng.permutation(np.repeat(["control", "b", "c"], units // 3))
    stratum = rng.choice(["US", "DE", "FR"], units, p=[0.5, 0.3, 0.2])
    level = pd.Series(stratum).map({"US": 10.0, "DE": 5.0, "FR": 1.0}).to_numpy()
    return pd.DataFrame(
        {
            "experiment": "e1",
            "variant": variant,
            "stratum": stratum,
            **{name: x[:, j] for j, name in enumerate(COVARIATES)},
            "y": x @ [1.0, -0.5, 0.25] + rng.normal(0.0, 1.0, units) + 0.3 * (variant == "b"),
            "revenue": level + rng.normal(0.0, 1.0, units),
            "pre_revenue": level + rng.normal(0.0, 1.0, units),
            "converted": rng.binomial(1, 0.3, units),
            "latency": rng.lognormal(3.0, 1.0, units),
        }
    )


def make_sessions(seed: int = 9, users: int = 200) -> pd.DataFrame:
    """Sessions of randomized users (1-5 each) with a shared user effect."""
    rng = np.random.default_rng(seed)
    variant = rng.choice(["control", "b"], users)
    count = rng.integers(1, 6, users)
    user = np.repeat(np.arange(users), count)
    value = rng.normal(0.0, 2.0, users)[user] + rng.normal(0.0, 1.0, user.size)
    return pd.DataFrame(
        {
            "experiment": "e1",
            "variant": variant[user],
            "user": user,
            "value": value + 5.0,
            "clicked": (rng.random(user.size) < 0.4).astype(int),
        }
    )


@pytest.fixture(scope="module")
def units() -> pd.DataFrame:
    return make_units()


@pytest.fixture(scope="module")
def sessions() -> pd.DataFrame:
    return make_sessions()


def both_engines(spark, frame: pd.DataFrame, metrics, cluster=None, **options):
    """The same analysis on pandas and on a Spark DataFrame of the same rows, sorted."""
    results = []
    for source in (frame, spark.createDataFrame(frame)):
        table = sl.Analyzer(source, cluster=cluster).analyze(metrics, **options)
        results.append(table.sort_values(KEYS, kind="stable").reset_index(drop=True))
    return results


def assert_same_results(pandas_rows: pd.DataFrame, spark_rows: pd.DataFrame) -> None:
    assert len(pandas_rows) == len(spark_rows) > 0
    pd.testing.assert_frame_equal(spark_rows[KEYS + LABELS], pandas_rows[KEYS + LABELS])
    # the engines sum in different orders: equal to rounding
    np.testing.assert_allclose(
        spark_rows[NUMBERS].to_numpy(float), pandas_rows[NUMBERS].to_numpy(float), rtol=1e-9
    )
    assert (pandas_rows["error"] == "").all()


@pytest.fixture(scope="module")
def regression_and_median(spark, units):
    return both_engines(spark, units, [sl.Metric("y", covariate=COVARIATES), MEDIAN])


def test_three_covariate_regression_and_median_on_spark_equal_pandas(regression_and_median):
    pandas_rows, spark_rows = regression_and_median
    assert_same_results(pandas_rows, spark_rows)
    assert set(pandas_rows["method"]) == {"regression", "quantile"}
    # the variance reduction (and so θ) of the three covariates agrees too
    np.testing.assert_allclose(
        spark_rows["variance_reduction"], pandas_rows["variance_reduction"], rtol=1e-9
    )


def test_spark_median_is_the_exact_interpolated_median_not_percentile_approx(
    regression_and_median, units, spark
):
    """percentile_approx returns one of the values; the exact median of an even number of
    continuous values is the midpoint of two of them, which no value equals."""
    from pyspark.sql import functions

    _, spark_rows = regression_and_median
    spark_rows = spark_rows[spark_rows["metric"] == MEDIAN.name]
    control = units.loc[units["variant"] == "control", "latency"].to_numpy()
    assert control.size % 2 == 0
    median = spark_rows["mean_control"].iloc[0]
    np.testing.assert_allclose(median, np.quantile(control, 0.5), rtol=1e-12, atol=0)
    assert not np.isin(median, control)
    # the check tells the two apart: Spark's approximate median is a data value
    frame = spark.createDataFrame(units[units["variant"] == "control"][["latency"]])
    approximate = frame.agg(functions.percentile_approx("latency", 0.5)).first()[0]
    assert np.isin(approximate, control) and approximate != median
    for variant, row in spark_rows.set_index("variant").iterrows():
        values = units.loc[units["variant"] == variant, "latency"]
        np.testing.assert_allclose(row["mean_variant"], values.quantile(0.5), rtol=1e-12)


@pytest.mark.parametrize("method", ["ttest", "cs"])
def test_poststratified_metrics_on_spark_equal_pandas(spark, units, method):
    metrics = [
        "revenue",
        sl.Metric("revenue_cuped", column="revenue", covariate="pre_revenue"),
        sl.Metric("converted", kind="proportion"),
    ]
    options = {"method_options": {"n_star": 600.0}} if method == "cs" else {}
    pandas_rows, spark_rows = both_engines(
        spark, units, metrics, strata="stratum", method=method, **options
    )
    assert_same_results(pandas_rows, spark_rows)
    assert (pandas_rows["method"].str.contains("poststratified")).all()
    assert (spark_rows["note"].fillna("") == pandas_rows["note"].fillna("")).all()


def test_clustered_mean_proportion_and_median_on_spark_equal_pandas(spark, sessions):
    """cluster= turns means into ratios of user sums and the median into the clustered
    quantile (a window over each group for the quantile, then per-user counts)."""
    metrics = [
        "value",
        sl.Metric("clicked", kind="proportion"),
        sl.Metric("value_p50", column="value", kind="quantile", quantile=0.5),
    ]
    pandas_rows, spark_rows = both_engines(spark, sessions, metrics, cluster="user")
    assert_same_results(pandas_rows, spark_rows)
    users = sessions.groupby("variant")["user"].nunique()
    mean_rows = pandas_rows[pandas_rows["metric"] == "value"].iloc[0]
    assert (mean_rows["n_control"], mean_rows["n_variant"]) == (users["control"], users["b"])
    assert (spark_rows.loc[spark_rows["metric"] != "value_p50", "method"] == "ratio-delta").all()


def test_ratio_cuped_and_clustered_cuped_on_spark_equal_pandas(spark, units, sessions):
    ratio = sl.Metric(
        "y_per_x0", kind="ratio", numerator="y", denominator="x0", covariate=("x1", "x2")
    )
    pandas_rows, spark_rows = both_engines(spark, units, [ratio])
    assert_same_results(pandas_rows, spark_rows)
    assert (pandas_rows["method"] == "ratio-cuped").all()
    noise = np.random.default_rng(3).normal(0.0, 1.0, len(sessions))
    frame = sessions.assign(pre_value=sessions["value"] + noise)
    clustered = sl.Metric("value", covariate="pre_value")
    pandas_rows, spark_rows = both_engines(spark, frame, [clustered], cluster="user")
    assert_same_results(pandas_rows, spark_rows)
    np.testing.assert_allclose(spark_rows["theta"], pandas_rows["theta"], rtol=1e-9)
