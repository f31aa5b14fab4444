"""The sufficient-statistics group-by, written once in narwhals and run by the engine that
holds the data (DuckDB, polars, Spark).

Per (experiment, variant[, segment][, period]) it returns n and, for every metric, Σy, Σy²
and — for CUPED covariates and ratio denominators — Σx, Σx², Σxy. With ``unit`` given, rows
are events and are first summed per unit inside the engine (the unit is the randomization
unit, so variances are per unit). Winsorization quantiles are computed in the engine too,
per experiment and metric, on the unit-level values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import narwhals as nw
import pandas as pd

from splitlab.analyzer.metrics import Metric

PERIOD = "period"
# the engine groups by day; weeks and months are summed from days in Query.collect, because
# narwhals has no weekly truncate for DuckDB and Spark, and Spark truncates a month of a
# session-time-zone timestamp to a local midnight that comes back shifted
FREQUENCIES = {"D": "day", "W": "week", "M": "month"}


@dataclass(frozen=True)
class Query:
    """The lazy group-by and the names of what it returns."""

    frame: nw.LazyFrame
    keys: list[str]
    metrics: list[Metric]
    frequency: str | None = None

    def collect(self) -> pd.DataFrame:
        table = self.frame.collect().to_pandas()
        renames = {}
        for index, metric in enumerate(self.metrics):
            for part in ("sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy"):
                renames[f"__m{index}_{part}"] = f"{metric.name}.{part}"
        table = table.rename(columns=renames)
        table["n"] = table["n"].astype(float)
        if PERIOD in table:
            # engines return dates as date objects (DuckDB, Spark) or datetime64 (polars)
            table[PERIOD] = pd.to_datetime(table[PERIOD])
            if self.frequency in ("W", "M"):
                # daily sums add up to Monday-based weeks and calendar months
                day = table[PERIOD]
                table[PERIOD] = (
                    day - pd.to_timedelta(day.dt.day_of_week, unit="D")
                    if self.frequency == "W"
                    else day.dt.to_period("M").dt.start_time
                )
                table = table.groupby(self.keys, sort=False, dropna=False).sum().reset_index()
        return table.sort_values(self.keys, na_position="last", kind="stable").reset_index(
            drop=True
        )


def _period(date: str) -> nw.Expr:
    return nw.col(date).cast(nw.Date).alias(PERIOD)


def build_query(
    frame: nw.LazyFrame,
    *,
    experiment: str,
    variant: str,
    metrics: Sequence[Metric],
    unit: str | None = None,
    by: Sequence[str] = (),
    date: str | None = None,
    frequency: str | None = None,
) -> Query:
    """The lazy sufficient-statistics query; nothing runs until :meth:`Query.collect`."""
    metrics = list(metrics)
    group_keys = [experiment, variant, *by]
    values = list(dict.fromkeys(column for metric in metrics for column in metric.columns))
    selected = list(dict.fromkeys([*group_keys, *([unit] if unit else []), *values]))
    if date:
        selected.append(date)
    lazy = frame.select(*selected)
    if values:
        lazy = lazy.with_columns(
            # NaN is a missing value too: pandas NaN reaches DuckDB as NULL, while polars,
            # Arrow and Spark keep NaN as a value, so both must become 0 for every engine
            # to agree
            nw.col(column).cast(nw.Float64).fill_nan(0.0).fill_null(0.0)
            for column in values
        )
    if unit:
        sums = [nw.col(column).sum() for column in values]
        first_seen = [nw.col(date).min()] if date else []
        lazy = lazy.group_by(*group_keys, unit).agg(*sums, *first_seen)
    keys = list(group_keys)
    if date:
        lazy = lazy.with_columns(_period(date))
        keys.append(PERIOD)

    winsorized = [(i, m) for i, m in enumerate(metrics) if m.winsorize is not None]
    if winsorized:
        bounds = lazy.group_by(experiment).agg(
            *(
                nw.col(metric.y).quantile(q, interpolation="linear").alias(f"__m{i}_{side}")
                for i, metric in winsorized
                for side, q in zip(("low", "high"), metric.winsorize, strict=True)  # type: ignore[arg-type]
            )
        )
        lazy = lazy.join(bounds, on=experiment, how="left")

    per_metric = []
    for index, metric in enumerate(metrics):
        y = nw.col(metric.y)
        if metric.winsorize is not None:
            y = y.clip(nw.col(f"__m{index}_low"), nw.col(f"__m{index}_high"))
        per_metric.append(y.alias(f"__y{index}"))
        if metric.x is not None:
            per_metric.append(nw.col(metric.x).alias(f"__x{index}"))
    if per_metric:
        lazy = lazy.with_columns(*per_metric)

    aggregations = [nw.len().alias("n")]
    for index, metric in enumerate(metrics):
        y = nw.col(f"__y{index}")
        aggregations += [
            y.sum().alias(f"__m{index}_sum_y"),
            (y * y).sum().alias(f"__m{index}_sum_y2"),
        ]
        if metric.x is not None:
            x = nw.col(f"__x{index}")
            aggregations += [
                x.sum().alias(f"__m{index}_sum_x"),
                (x * x).sum().alias(f"__m{index}_sum_x2"),
                (x * y).sum().alias(f"__m{index}_sum_xy"),
            ]
    return Query(lazy.group_by(*keys).agg(*aggregations), keys, metrics, frequency)


def explain(query: Query, engine: str) -> str:
    """The query as the engine will run it: SQL for DuckDB, the plan for polars and Spark."""
    native = query.frame.to_native()
    if engine == "duckdb":
        return native.sql_query()
    if engine == "polars":
        return native.explain()
    if engine == "spark":
        return native._jdf.queryExecution().simpleString()
    return repr(native)
