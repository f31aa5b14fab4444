"""Every statistic the Analyzer reduces is within 1e-9 of an exact reference, on data whose
raw power sums cancel catastrophically: means of 1e9 with a spread of 2, 1e12 with a spread
of 1, epoch milliseconds, int64 values near 2⁶², segments whose levels differ by 1e11.

The references are exact: ``fractions.Fraction`` over the very float (or int) values the
engine reads, two-pass, so nothing in them shares splitlab's arithmetic.
"""

from __future__ import annotations

import warnings
from fractions import Fraction
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest

import splitlab as sl

RTOL = 1e-9
UNITS = 4000  # per variant and segment: exact Fraction references stay quick


def exactly(reference: float):
    """Equal to ``reference`` within RTOL relative, with no absolute slack (pytest.approx
    would otherwise accept anything within 1e-12 of a tiny reference)."""
    return pytest.approx(reference, rel=RTOL, abs=0.0)


def exact_moments(y, x=None):
    """(mean, variance, [mean_x, var_x, cov]) in exact rational arithmetic, two-pass."""
    ys = [Fraction(int(v)) if isinstance(v, (int, np.integer)) else Fraction(v) for v in y]
    n = len(ys)
    mean_y = sum(ys) / n
    var_y = sum((v - mean_y) ** 2 for v in ys) / (n - 1)
    if x is None:
        return float(mean_y), float(var_y)
    xs = [Fraction(v) for v in x]
    mean_x = sum(xs) / n
    var_x = sum((v - mean_x) ** 2 for v in xs) / (n - 1)
    cov = sum((a - mean_y) * (b - mean_x) for a, b in zip(ys, xs, strict=True)) / (n - 1)
    return float(mean_y), float(var_y), float(mean_x), float(var_x), float(cov)


def _frame(values: dict[str, np.ndarray], segments: int = 1) -> pd.DataFrame:
    size = 2 * UNITS * segments
    frame = pd.DataFrame(
        {
            "experiment": "e",
            "variant": np.tile(np.repeat(["control", "treatment"], UNITS), segments),
            "segment": np.repeat([f"s{i}" for i in range(segments)], 2 * UNITS),
        }
    )
    for name, column in values.items():
        assert len(column) == size
        frame[name] = column
    return frame


def _datasets() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(20261203)
    size = 2 * UNITS
    revenue = 1e9 + rng.normal(10.0, 2.0, size)
    large = 1e12 + rng.normal(0.0, 1.0, size)
    epoch_ms = 1.7e12 + rng.normal(0.0, 3.6e6, size).round()
    ints = (2**62 + rng.integers(-(10**6), 10**6, size)).astype(np.int64)
    pre = 1e12 + rng.normal(0.0, 1.0, size)
    post = pre + rng.normal(0.3, 0.5, size)
    sessions = 1e9 + rng.integers(0, 5, size).astype(float)
    clicks = 0.1 * sessions + rng.normal(0.0, 0.2, size)
    mixed = np.concatenate([rng.normal(10.0, 2.0, size), 1e11 + rng.normal(10.0, 2.0, size)])
    return {
        "revenue 1e9 + N(10, 2)": _frame({"y": revenue}),
        "1e12 + N(0, 1)": _frame({"y": large}),
        "epoch milliseconds": _frame({"y": epoch_ms}),
        "int64 near 2^62": _frame({"y": ints}),
        "cuped at 1e12": _frame({"y": post, "x": pre}),
        "ratio at 1e9": _frame({"y": clicks, "x": sessions}),
        "segments 1e11 apart": _frame({"y": mixed}, segments=2),
    }


DATASETS = _datasets()


def _source(kind: str, frame: pd.DataFrame, tmp_path: Path, request):
    if kind == "pandas":
        return frame
    if kind == "parquet":
        path = tmp_path / "data.parquet"
        frame.to_parquet(path, index=False)
        return str(path)
    if kind == "duckdb":
        return duckdb.connect().from_df(frame)
    if kind == "polars":
        return pl.from_pandas(frame)
    if kind == "spark":
        return request.getfixturevalue("spark").createDataFrame(frame)
    raise AssertionError(kind)


def _metric(name: str) -> sl.Metric:
    if name.startswith("cuped"):
        return sl.Metric("y", covariate="x")
    if name.startswith("ratio"):
        return sl.Metric("y", kind="ratio", numerator="y", denominator="x")
    return sl.Metric("y")


def _check_summary(frame: pd.DataFrame, summary: pd.DataFrame, joint: bool) -> None:
    groups = [("all", None)] + [
        (f"segment={s}", s) for s in frame["segment"].unique() if frame["segment"].nunique() > 1
    ]
    for segment, value in groups:
        for variant in ("control", "treatment"):
            rows = frame["variant"] == variant
            if value is not None:
                rows &= frame["segment"] == value
            expected = exact_moments(
                frame.loc[rows, "y"].tolist(), frame.loc[rows, "x"].tolist() if joint else None
            )
            got = summary[(summary["segment"] == segment) & (summary["variant"] == variant)]
            assert len(got) == 1, (segment, variant)
            got = got.iloc[0]
            names = ["mean", "var", "mean_x", "var_x", "cov"] if joint else ["mean", "var"]
            for name, reference in zip(names, expected, strict=True):
                assert got[name] == exactly(reference), (segment, variant, name)


SOURCES = ["pandas", "parquet", "duckdb", "polars"]


@pytest.mark.parametrize("kind", SOURCES)
@pytest.mark.parametrize("name", list(DATASETS))
def test_group_moments_match_exact_arithmetic(name, kind, tmp_path, request):
    frame = DATASETS[name]
    segments = ["segment"] if frame["segment"].nunique() > 1 else None
    analyzer = sl.Analyzer(_source(kind, frame, tmp_path, request))
    summary = analyzer.summary([_metric(name)], segments=segments)
    _check_summary(frame, summary, joint="x" in frame)


@pytest.mark.spark
@pytest.mark.parametrize("name", ["1e12 + N(0, 1)", "int64 near 2^62", "cuped at 1e12"])
def test_group_moments_match_exact_arithmetic_on_spark(name, tmp_path, request):
    frame = DATASETS[name]
    summary = sl.Analyzer(_source("spark", frame, tmp_path, request)).summary([_metric(name)])
    _check_summary(frame, summary, joint="x" in frame)


def _exact_effect(frame: pd.DataFrame) -> float:
    control = frame.loc[frame["variant"] == "control", "y"].tolist()
    treatment = frame.loc[frame["variant"] == "treatment", "y"].tolist()

    def as_fraction(value):
        return Fraction(int(value)) if isinstance(value, (int, np.integer)) else Fraction(value)

    mean_t = sum(map(as_fraction, treatment)) / len(treatment)
    mean_c = sum(map(as_fraction, control)) / len(control)
    return float(mean_t - mean_c)


@pytest.mark.parametrize(
    "name", ["revenue 1e9 + N(10, 2)", "1e12 + N(0, 1)", "epoch milliseconds", "int64 near 2^62"]
)
def test_effect_and_standard_error_are_exact_on_large_values(name):
    frame = DATASETS[name]
    row = sl.Analyzer(frame).analyze(["y"]).iloc[0]
    assert row["error"] == ""
    assert row["effect"] == exactly(_exact_effect(frame))
    _, var_c = exact_moments(frame.loc[frame["variant"] == "control", "y"].tolist())
    _, var_t = exact_moments(frame.loc[frame["variant"] == "treatment", "y"].tolist())
    assert row["se"] == exactly(np.sqrt(var_c / UNITS + var_t / UNITS))


def test_relative_lift_on_large_values_is_exact():
    frame = DATASETS["int64 near 2^62"]
    row = sl.Analyzer(frame).analyze(["y"], relative=True).iloc[0]
    mean_c = exact_moments(frame.loc[frame["variant"] == "control", "y"].tolist())[0]
    assert row["error"] == ""
    assert row["effect"] == exactly(_exact_effect(frame) / mean_c)


def test_cuped_theta_matches_exact_pooled_regression_slope():
    frame = DATASETS["cuped at 1e12"]
    row = sl.Analyzer(frame).analyze([_metric("cuped")]).iloc[0]
    _, _, _, var_x, cov = exact_moments(frame["y"].tolist(), frame["x"].tolist())
    assert row["theta"] == exactly(cov / var_x)
    assert row["error"] == ""


def test_timeline_periods_pool_exactly():
    frame = DATASETS["1e12 + N(0, 1)"].copy()
    frame["day"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(len(frame)) % 5, unit="D")
    summary_rows = sl.Analyzer(frame, date="day").timeline("y")
    for day, row in zip(range(5), summary_rows.itertuples(), strict=True):
        seen = frame[frame["day"] <= pd.Timestamp("2026-01-01") + pd.Timedelta(days=day)]
        control = seen.loc[seen["variant"] == "control", "y"].tolist()
        treatment = seen.loc[seen["variant"] == "treatment", "y"].tolist()
        _, var_c = exact_moments(control)
        _, var_t = exact_moments(treatment)
        se = np.sqrt(var_c / len(control) + var_t / len(treatment))
        assert row.se == exactly(se)


def test_event_rows_summed_per_unit_keep_integer_precision():
    rng = np.random.default_rng(7)
    units = np.arange(2 * UNITS)
    events = pd.DataFrame(
        {
            "experiment": "e",
            "user": np.repeat(units, 2),
            "variant": np.repeat(np.where(units < UNITS, "control", "treatment"), 2),
            "y": (2**60 + rng.integers(0, 1000, 4 * UNITS)).astype(np.int64),
        }
    )
    per_unit = events.groupby(["user", "variant"], as_index=False)["y"].sum()
    summary = sl.Analyzer(events, unit="user").summary("y")
    for variant in ("control", "treatment"):
        values = per_unit.loc[per_unit["variant"] == variant, "y"].tolist()
        mean, var = exact_moments(values)
        got = summary[summary["variant"] == variant].iloc[0]
        assert got["mean"] == exactly(mean)
        assert got["var"] == exactly(var)


def test_ordinary_data_takes_one_engine_pass(monkeypatch):
    from splitlab.analyzer import aggregate

    passes = []
    original = aggregate.Query._run
    monkeypatch.setattr(
        aggregate.Query,
        "_run",
        lambda self, shifts: passes.append(shifts) or original(self, shifts),
    )
    rng = np.random.default_rng(3)
    frame = _frame({"y": rng.exponential(20.0, 2 * UNITS)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sl.Analyzer(frame).analyze(["y"])
    assert len(passes) == 1
    passes.clear()
    sl.Analyzer(DATASETS["1e12 + N(0, 1)"]).analyze(["y"])
    assert len(passes) == 2  # one more pass, about the experiment's mean


@pytest.mark.parametrize("kind", ["pandas", "polars"])
def test_segments_at_levels_1e11_apart_get_their_own_shift(kind, tmp_path, request):
    """Segment k's values sit near k·1e11 (segment 0 near 10): one shift per experiment
    cannot serve every segment, so the last pass shifts single (experiment, variant,
    segment) groups; the segment is a date, compared in the engine as a date."""
    rng = np.random.default_rng(17)
    rows = 2 * UNITS
    day = np.arange(rows) % 4
    frame = pd.DataFrame(
        {
            "experiment": "e",
            "variant": np.where(rng.random(rows) < 0.5, "treatment", "control"),
            "y": np.where(day == 0, 0.0, 1e11 * day) + rng.normal(10.0, 2.0, rows),
            "day": pd.Timestamp("2026-01-01") + pd.to_timedelta(day, unit="D"),
        }
    )
    source = _source(kind, frame, tmp_path, request)
    summary = sl.Analyzer(source).summary("y", segments="day")
    for value, group in frame.groupby("day"):
        for variant in ("control", "treatment"):
            mean, var = exact_moments(group.loc[group["variant"] == variant, "y"].tolist())
            got = summary[
                (summary["segment"] == f"day={value}") & (summary["variant"] == variant)
            ].iloc[0]
            assert (got["mean"], got["var"]) == (exactly(mean), exactly(var)), (value, variant)
