"""Every input kind gives the same readout.

One seeded dataset is analysed through each kind of source the Analyzer accepts — in-memory
frames (pandas, polars, pyarrow), lazy engines (polars LazyFrame, DuckDB relation, PySpark
DataFrame) and files (Parquet file, glob, directory; CSV) — and every numeric result must
agree to 1e-9: the sufficient-statistics group-by is one narwhals query, whichever engine
runs it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from splitlab import Analyzer, Metric
from splitlab.errors import InvalidArgumentError
from splitlab.sources import open_source

EXPERIMENTS = ("checkout", "search")
VARIANTS = ("control", "b", "c")
PLATFORMS = ("ios", "android", "web")
METRICS = [
    Metric("revenue", covariate="pre_revenue"),
    Metric("converted", kind="proportion"),
    Metric("clicks_per_session", kind="ratio", numerator="clicks", denominator="sessions"),
]
WINSORIZED = [
    Metric("revenue_winsorized", column="revenue", winsorize=(0.01, 0.99)),
    Metric("revenue_winsorized_cuped", column="revenue", covariate="pre_revenue",
           winsorize=(0.05, 0.95)),
]  # fmt: skip
SORT_KEYS = ["experiment", "segment", "metric", "variant"]

# pyspark 4.x warns on every pandas conversion that it does not yet fully support pandas 3
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support:FutureWarning")


def make_events(seed: int = 20240301, n_units: int = 480) -> pd.DataFrame:
    """Event rows, one to three per unit. Unit-level quantities (the pre-period covariate,
    conversion) sit on the unit's first event only and are missing (NaN) on the others,
    so that summing events per unit gives the unit's value."""
    rng = np.random.default_rng(seed)
    units = pd.DataFrame(
        {
            "user_id": np.arange(n_units) * 7 + 1000,
            "experiment": rng.choice(EXPERIMENTS, n_units),
            "variant": rng.choice(VARIANTS, n_units),
            "platform": rng.choice(PLATFORMS, n_units),
            "pre_revenue": rng.gamma(2.0, 5.0, n_units).round(2),
            "converted": rng.binomial(1, 0.3, n_units),
            "first_seen": pd.Timestamp("2024-03-01")
            + pd.to_timedelta(rng.integers(0, 6 * 86_400, n_units), unit="s"),
        }
    )
    repeats = rng.integers(1, 4, n_units)
    events = units.loc[units.index.repeat(repeats)].reset_index(drop=True)
    first = ~events["user_id"].duplicated()
    size = len(events)
    lift = events["variant"].map({"control": 0.0, "b": 0.8, "c": -0.3}).to_numpy()
    events["revenue"] = (
        rng.gamma(1.5, 4.0, size) + 0.4 * events["pre_revenue"].to_numpy() + lift
    ).round(4)
    events["clicks"] = rng.poisson(3.0, size)
    events["sessions"] = rng.integers(1, 5, size)
    events["pre_revenue"] = events["pre_revenue"].where(first)
    events["converted"] = events["converted"].where(first, 0)
    seconds = np.where(first, 0, rng.integers(1, 3 * 86_400, size))
    events["exposed_at"] = events.pop("first_seen") + pd.to_timedelta(seconds, unit="s")
    return events


EVENTS = make_events()
UNITS = (
    EVENTS.groupby(["experiment", "variant", "platform", "user_id"], as_index=False)
    .agg(
        pre_revenue=("pre_revenue", "sum"),
        converted=("converted", "sum"),
        revenue=("revenue", "sum"),
        clicks=("clicks", "sum"),
        sessions=("sessions", "sum"),
        exposed_at=("exposed_at", "min"),
    )
    .sample(frac=1.0, random_state=1)
    .reset_index(drop=True)
)
DATASETS = {"units": UNITS, "events": EVENTS}


# ---------------------------------------------------------------------- sources
# (Spark frames come from the session-wide ``spark`` fixture of conftest.py)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Each dataset written once as one Parquet file, three Parquet parts and one CSV."""
    root = tmp_path_factory.mktemp("sources")
    for name, frame in DATASETS.items():
        folder = root / name
        parts = folder / "parts"
        parts.mkdir(parents=True)
        frame.to_parquet(folder / "data.parquet", index=False)
        for index, part in enumerate(np.array_split(np.arange(len(frame)), 3)):
            frame.iloc[part].to_parquet(parts / f"part-{index}.parquet", index=False)
        frame.to_csv(folder / "data.csv", index=False)
    return {name: root / name for name in DATASETS}


def _spark_frame(frame: pd.DataFrame, folder: Path, request) -> object:
    return request.getfixturevalue("spark").createDataFrame(frame)


BUILDERS: dict[str, Callable] = {
    "pandas": lambda frame, folder, request: frame,
    "polars": lambda frame, folder, request: pl.from_pandas(frame),
    "polars-lazy": lambda frame, folder, request: pl.from_pandas(frame).lazy(),
    "pyarrow": lambda frame, folder, request: pa.Table.from_pandas(frame, preserve_index=False),
    "duckdb-relation": lambda frame, folder, request: duckdb.connect().from_df(frame),
    "duckdb-read-parquet": lambda frame, folder, request: duckdb.connect().read_parquet(
        str(folder / "data.parquet")
    ),
    "parquet-file": lambda frame, folder, request: str(folder / "data.parquet"),
    "parquet-glob": lambda frame, folder, request: str(folder / "parts" / "part-*.parquet"),
    "parquet-directory": lambda frame, folder, request: folder / "parts",
    "csv-file": lambda frame, folder, request: str(folder / "data.csv"),
    "spark": _spark_frame,
}
KINDS = [
    pytest.param(kind, marks=pytest.mark.spark) if kind == "spark" else kind for kind in BUILDERS
]


@pytest.fixture
def make_source(files, request) -> Callable[[str, str], object]:
    def make(kind: str, dataset: str) -> object:
        return BUILDERS[kind](DATASETS[dataset], files[dataset], request)

    return make


# ---------------------------------------------------------------------- scenarios


def _unit_level(source):
    return Analyzer(source).analyze(METRICS)


def _event_level(source):
    return Analyzer(source, unit="user_id").analyze(METRICS)


def _segments(source):
    return Analyzer(source).analyze(METRICS, segments=["platform"], correction="holm")


def _winsorized(source):
    return Analyzer(source, unit="user_id").analyze(WINSORIZED, segments="platform")


def _timeline(freq: str) -> Callable:
    def run(source):
        return Analyzer(source, unit="user_id", date="exposed_at").timeline(METRICS[0], freq=freq)

    return run


SCENARIOS = {
    "unit-level": ("units", _unit_level),
    "event-level": ("events", _event_level),
    "segments": ("units", _segments),
    "winsorized": ("events", _winsorized),
    "timeline-daily": ("events", _timeline("D")),
    "timeline-weekly": ("events", _timeline("W")),
    "timeline-monthly": ("events", _timeline("M")),
}


def _normalized(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    keys = [key for key in [*SORT_KEYS, "period"] if key in table]
    if "period" in table:
        table["period"] = pd.to_datetime(table["period"])
    for column in table.columns:
        if not pd.api.types.is_numeric_dtype(table[column]) and column != "period":
            table[column] = table[column].astype(str)
    return table.sort_values(keys, kind="stable").reset_index(drop=True)


def assert_same_results(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    actual, expected = _normalized(actual), _normalized(expected)
    assert list(actual.columns) == list(expected.columns)
    numeric = [c for c in expected.columns if pd.api.types.is_numeric_dtype(expected[c])]
    labels = [c for c in expected.columns if c not in numeric]
    pd.testing.assert_frame_equal(actual[labels], expected[labels], check_dtype=False)
    np.testing.assert_allclose(
        actual[numeric].to_numpy(dtype=float),
        expected[numeric].to_numpy(dtype=float),
        rtol=1e-9,
        atol=1e-12,
        equal_nan=True,
        err_msg=f"numeric columns {numeric}",
    )


_REFERENCES: dict[str, pd.DataFrame] = {}


def reference(scenario: str) -> pd.DataFrame:
    """The scenario run on the pandas frame (through DuckDB, the embedded engine)."""
    if scenario not in _REFERENCES:
        dataset, run = SCENARIOS[scenario]
        _REFERENCES[scenario] = run(DATASETS[dataset])
    return _REFERENCES[scenario]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("kind", KINDS)
def test_every_source_kind_gives_the_same_results(kind, scenario, make_source):
    dataset, run = SCENARIOS[scenario]
    expected = reference(scenario)
    assert (expected["error"] == "").all() and len(expected) > 0
    assert_same_results(run(make_source(kind, dataset)), expected)


# ---------------------------------------------------------------------- the reference is right


def test_events_are_summed_per_unit_in_the_engine():
    by_engine = Analyzer(EVENTS, unit="user_id").analyze(METRICS)
    summed_in_pandas = Analyzer(UNITS).analyze(METRICS)
    assert_same_results(by_engine, summed_in_pandas)
    n = UNITS.groupby(["experiment", "variant"]).size()
    for row in by_engine.itertuples():
        assert row.n_variant == n[(row.experiment, row.variant)]


def test_winsorization_clips_at_linearly_interpolated_quantiles_per_experiment():
    results = reference("winsorized").set_index(["experiment", "segment", "metric", "variant"])
    for experiment, units in UNITS.groupby("experiment"):
        for metric in WINSORIZED:
            low, high = np.quantile(units["revenue"], metric.winsorize, method="linear")
            clipped = units["revenue"].clip(low, high)
            for variant in ("b", "c"):
                row = results.loc[(experiment, "all", metric.name, variant)]
                if metric.covariate is None:
                    assert row["mean_control"] == pytest.approx(
                        clipped[units["variant"] == "control"].mean(), rel=1e-12
                    )
                    assert row["mean_variant"] == pytest.approx(
                        clipped[units["variant"] == variant].mean(), rel=1e-12
                    )


def test_weekly_timeline_is_monday_weeks_summed_from_days():
    daily, weekly = reference("timeline-daily"), reference("timeline-weekly")
    periods = pd.to_datetime(weekly["period"])
    assert (periods.dt.day_of_week == 0).all() and periods.nunique() == 2
    last = ["experiment", "variant"]
    final_daily = daily.groupby(last).tail(1).set_index(last)
    final_weekly = weekly.groupby(last).tail(1).set_index(last)
    numeric = ["n_control", "n_variant", "effect", "se", "p_value"]
    pd.testing.assert_frame_equal(final_weekly[numeric], final_daily[numeric], rtol=1e-12)


# ---------------------------------------------------------------------- NaN is missing


def _with_nan(kind: str, folder: Path, request) -> object:
    """UNITS with NaN (not null) revenue and covariate in a fifth of the rows, as polars,
    Arrow, Parquet and Spark can hold them."""
    frame = pl.from_pandas(UNITS).with_columns(
        pl.when(pl.col("user_id") % 5 == 0)
        .then(float("nan"))
        .otherwise(pl.col(column))
        .alias(column)
        for column in ("revenue", "pre_revenue")
    )
    if kind == "polars-lazy":
        return frame.lazy()
    if kind == "pyarrow":
        return frame.to_arrow()
    if kind in ("parquet-file", "duckdb-read-parquet"):
        path = folder / "with-nan.parquet"
        frame.write_parquet(path)
        return path if kind == "parquet-file" else duckdb.connect().read_parquet(str(path))
    from pyspark.sql import functions

    spark_frame = request.getfixturevalue("spark").createDataFrame(UNITS)
    return spark_frame.withColumns(
        {
            column: functions.when(functions.col("user_id") % 5 == 0, float("nan")).otherwise(
                functions.col(column)
            )
            for column in ("revenue", "pre_revenue")
        }
    )


@pytest.mark.parametrize(
    "kind",
    [
        "polars-lazy",
        "pyarrow",
        "parquet-file",
        pytest.param(
            "duckdb-read-parquet",
            marks=pytest.mark.xfail(
                strict=True,
                reason="DuckDB 2.0.1 statistics propagation folds isnan() of a Parquet column "
                "to false in a connection splitlab does not own",
            ),
        ),
        pytest.param("spark", marks=pytest.mark.spark),
    ],
)
def test_nan_counts_as_missing_like_pandas_nan(kind, files, request):
    source = _with_nan(kind, files["units"], request)
    values = pl.from_pandas(UNITS)["revenue"].to_pandas()
    assert Analyzer(source).source.frame.select("revenue").collect()["revenue"].is_nan().sum() > 0
    in_pandas = UNITS.assign(
        revenue=values.where(UNITS["user_id"] % 5 != 0),
        pre_revenue=UNITS["pre_revenue"].where(UNITS["user_id"] % 5 != 0),
    )
    expected = Analyzer(in_pandas).analyze(METRICS)
    assert (expected["error"] == "").all()
    assert_same_results(Analyzer(source).analyze(METRICS), expected)


# ---------------------------------------------------------------------- explain


@pytest.mark.parametrize(
    "kind", ["pandas", "polars", "pyarrow", "duckdb-relation", "parquet-glob", "csv-file"]
)
def test_explain_is_sql_for_duckdb_sources(kind, make_source):
    text = Analyzer(make_source(kind, "units")).explain(METRICS, segments=["platform"])
    assert isinstance(text, str)
    assert "GROUP BY" in text.upper() and "SELECT" in text.upper()


def test_explain_is_the_polars_plan_for_a_lazy_frame(make_source):
    text = Analyzer(make_source("polars-lazy", "units")).explain(METRICS)
    assert "AGGREGATE" in text.upper() and "GROUP BY" not in text


@pytest.mark.spark
def test_explain_is_the_spark_plan_for_a_spark_frame(make_source):
    text = Analyzer(make_source("spark", "events"), unit="user_id").explain(METRICS)
    assert "Aggregate" in text and "Physical Plan" in text


# ---------------------------------------------------------------------- bad input


def test_path_matching_nothing_names_source(tmp_path):
    for missing in (tmp_path / "nothing-*.parquet", tmp_path / "absent.parquet", tmp_path):
        with pytest.raises(InvalidArgumentError, match="source") as caught:
            open_source(missing)
        assert caught.value.argument == "source"


def test_mixture_of_csv_and_parquet_names_source(files):
    folder = files["units"]
    mixed = folder / "mixed"
    mixed.mkdir(exist_ok=True)
    shutil.copy(folder / "data.csv", mixed / "a.csv")
    shutil.copy(folder / "data.parquet", mixed / "b.parquet")
    for source in ([folder / "data.csv", folder / "data.parquet"], mixed):
        with pytest.raises(InvalidArgumentError, match="mixture") as caught:
            Analyzer(source)
        assert caught.value.argument == "source"


@pytest.mark.parametrize("source", [[1, 2, 3], 42, {"revenue": object()}, None])
def test_unsupported_object_names_source(source):
    with pytest.raises(InvalidArgumentError, match="source") as caught:
        Analyzer(source)
    assert caught.value.argument == "source"
