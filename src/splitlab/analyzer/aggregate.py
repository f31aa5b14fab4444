"""The sufficient-statistics group-by, written once in narwhals and run by the engine that
holds the data (DuckDB, polars, Spark).

Per ``(experiment, variant[, segment][, period])`` it returns n and, for every metric, centred
moments: the mean of y, M2 = Σ(y − ȳ)² and — for CUPED covariates and ratio denominators —
the same of x and the co-moment C = Σ(y − ȳ)(x − x̄). With ``unit`` given, rows are events
and are first summed per unit inside the engine (the unit is the randomization unit, so
variances are per unit). Winsorization quantiles are computed in the engine too, per
experiment and metric, on the unit-level values.

Stability. Engines sum in floating point, and Σy² − (Σy)²/n loses every digit when the
mean is large against the spread (revenue 1e9 + N(10, 2), epoch milliseconds, int64 ids
near 2⁶²); DuckDB's own ``var_samp`` (Welford) keeps about 1e-5 at a mean/sd of 1e12. So
the reduction is by *shifted* sums, Σ(y − K) and Σ(y − K)², whose cancellation is only
(ȳ − K)²/var. A first pass takes K = 0, which is exact for most metrics; where a group's
sums show a mean/sd ratio above ``sqrt(CONDITION_LIMIT)``, a second pass shifts each
experiment by its own mean, and a third (rarely) each remaining group by its own; integer
columns are shifted in integer arithmetic, so int64 values lose nothing before the cast.
Every row carries its ``origin`` (the K it was reduced about) and its mean as an offset from
it, so that differences of means stay exact too. Groups, segments, weeks and timeline
periods are then pooled with the Chan–Golub–LeVeque update (:func:`merge_groups`,
:func:`cumulate`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import narwhals as nw
import numpy as np
import pandas as pd

from splitlab.analyzer.metrics import Metric
from splitlab.errors import EngineError, InvalidArgumentError, SplitlabError

PERIOD = "period"
EXPERIMENT, VARIANT = "experiment", "variant"
COUNT = "n"
# the engine groups by day; weeks and months are pooled from days in Query.collect, because
# narwhals has no weekly truncate for DuckDB and Spark, and Spark truncates a month of a
# session-time-zone timestamp to a local midnight that comes back shifted
FREQUENCIES = {"D": "day", "W": "week", "M": "month"}
# Σ(y−K)² / M2 above this loses more than ~1e-12 relative to the engine's float sums
# (rounding grows like sqrt(rows)·ε·ratio): such groups are reduced again about their mean
CONDITION_LIMIT = 1e3
MAX_GROUP_SHIFTS = 256  # branches of the per-group CASE of the last pass
_INT64_SPAN = 2**62
_ROUNDING_BOUND = 8 * np.finfo(float).eps
_INTEGER_TYPES = (nw.Int8, nw.Int16, nw.Int32, nw.Int64, nw.UInt8, nw.UInt16, nw.UInt32)


def by_column(index: int) -> str:
    """Name of the ``index``-th segment key in the statistics table."""
    return f"by{index}"


@dataclass(frozen=True)
class Value:
    """One column the engine reduces: its alias in the prepared frame and whether it holds
    integers (shifted in integer arithmetic)."""

    alias: str
    integer: bool


def _label(value: object) -> object:
    """An engine key as a Python literal narwhals can compare with."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class Query:
    """The prepared lazy frame (one row per unit, canonical column names) and how to reduce
    it; nothing runs until :meth:`collect`."""

    prepared: nw.LazyFrame
    keys: list[str]
    metrics: list[Metric]
    values: dict[str, tuple[Value, tuple[Value, ...]]]
    frequency: str | None = None
    engine_keys: list[str] = field(default_factory=list)
    # aggregations counting the rows without a unit or cluster id (refused by the Analyzer)
    null_counts: tuple[nw.Expr, ...] = ()
    # a proportion's 0/1 check reads these columns' min and max (clustered rows: the
    # smallest and largest row value of each cluster, not the cluster's sum)
    bounds: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def frame(self) -> nw.LazyFrame:
        """The first (unshifted) pass as a lazy aggregation."""
        return self._aggregate({})

    # ---------------------------------------------------------------- engine passes

    def _aggregate(self, shifts: dict[str, nw.Expr]) -> nw.LazyFrame:
        first_pass = not shifts
        aggregations = [nw.len().alias(COUNT), *self.null_counts]
        deviations: dict[str, nw.Expr] = {}
        # the 0/1 check of proportion metrics needs each group's smallest and largest value
        bounded = {self.values[m.name][0].alias for m in self.metrics if m.kind == "proportion"}
        for metric in self.metrics:
            for value in _values(self.values[metric.name]):
                if value.alias in deviations:
                    continue
                column = nw.col(value.alias)
                shift = shifts.get(value.alias)
                if shift is None:
                    deviation = column.cast(nw.Float64)
                else:
                    deviation = (column - shift).cast(nw.Float64)
                deviations[value.alias] = deviation
                aggregations += [
                    deviation.sum().alias(f"{value.alias}_s1"),
                    (deviation * deviation).sum().alias(f"{value.alias}_s2"),
                ]
                if first_pass and value.alias in bounded:
                    low, high = self.bounds.get(value.alias, (value.alias, value.alias))
                    aggregations += [
                        nw.col(low).min().alias(f"{value.alias}_min"),
                        nw.col(high).max().alias(f"{value.alias}_max"),
                    ]
        products: set[str] = set()
        for metric in self.metrics:
            for a, b, _ in _alias_pairs(self.values[metric.name]):
                name = _product(a, b)
                if a != b and name not in products:
                    products.add(name)
                    aggregations.append((deviations[a] * deviations[b]).sum().alias(name))
        return self.prepared.group_by(*self.engine_keys).agg(*aggregations)

    def _run(self, shifts: dict[str, nw.Expr]) -> pd.DataFrame:
        lazy = self._aggregate(shifts)
        try:
            table = lazy.collect().to_pandas()
        except SplitlabError:
            raise
        except Exception as exc:  # the engine's own error, whatever its library
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise EngineError(
                "source", f"the engine could not reduce the data: {first_line}", sql=_sql(lazy)
            ) from exc
        table = table.rename(columns=dict(zip(self.engine_keys, self.keys, strict=True)))
        return table.sort_values(self.keys, na_position="last", kind="stable").reset_index(
            drop=True
        )

    def collect(self) -> pd.DataFrame:
        """Run the reduction (one pass for well-conditioned data, see the module docstring)
        and return the statistics table."""
        table = self._run({})
        aliases = self._aliases()
        origins = {alias: np.zeros(len(table)) for alias in aliases}
        shifts: dict[str, nw.Expr] = {}
        reduced = table
        for stage in ("experiment", "group"):
            ill = {alias: _ill_conditioned(reduced, alias, origins[alias]) for alias in aliases}
            if not any(flags.any() for flags in ill.values()):
                break
            added = self._shift_stage(table, reduced, origins, ill, shifts, stage)
            if not added:
                break
            refined = self._run(shifts)
            if not refined[self.keys].equals(reduced[self.keys]):
                raise EngineError("source", "the engine returned different groups on a second pass")
            reduced = refined
        ill = {alias: _ill_conditioned(reduced, alias, origins[alias]) for alias in aliases}
        return self._statistics_table(table, reduced, origins, ill)

    # ---------------------------------------------------------------- shifts

    def _aliases(self) -> list[str]:
        seen: dict[str, None] = {}
        for metric in self.metrics:
            for value in _values(self.values[metric.name]):
                seen[value.alias] = None
        return list(seen)

    def _value(self, alias: str) -> Value:
        for pair in self.values.values():
            for value in _values(pair):
                if value.alias == alias:
                    return value
        raise KeyError(alias)

    def _shift_stage(self, first, reduced, origins, ill, shifts, stage) -> bool:
        """Add this stage's shifts (in place: ``shifts`` expressions, ``origins`` per row) for
        the ill-conditioned values: one K per experiment, then one per remaining group."""
        n = first[COUNT].to_numpy(float)
        added = False
        for alias, flags in ill.items():
            if not flags.any():
                continue
            value = self._value(alias)
            levels = origins[alias] + _centred(reduced, alias)[0]
            branches: list[tuple[nw.Expr, np.ndarray, float]] = []
            if stage == "experiment":
                for label in pd.unique(first.loc[flags, EXPERIMENT]):
                    rows = (first[EXPERIMENT] == label).to_numpy()
                    level = np.sum(n[rows] * levels[rows]) / max(np.sum(n[rows]), 1.0)
                    condition = nw.col("__e") == _label(label)
                    branches.append((condition, rows, level))
            else:
                for row in np.flatnonzero(flags)[:MAX_GROUP_SHIFTS]:
                    rows = np.zeros(len(first), bool)
                    rows[row] = True
                    branches.append((self._group_condition(first, row), rows, levels[row]))
            branches = [branch for branch in branches if np.isfinite(branch[2])]
            if not branches:
                continue
            as_integers = value.integer and all(
                _fits_int64(first, alias, rows, level) for _, rows, level in branches
            )
            dtype = nw.Int64 if as_integers else nw.Float64
            expression = None
            for condition, rows, level in branches:
                shift = int(np.float64(round(level))) if as_integers else float(level)
                origins[alias][rows] = float(shift)
                literal = nw.lit(shift, dtype)
                expression = (
                    nw.when(condition).then(literal)
                    if expression is None
                    else expression.when(condition).then(literal)
                )
            previous = shifts.get(alias, nw.lit(0, dtype))
            if not as_integers:
                previous = previous.cast(nw.Float64)
            shifts[alias] = expression.otherwise(previous)  # type: ignore[union-attr]
            added = True
        return added

    def _group_condition(self, table: pd.DataFrame, row: int) -> nw.Expr:
        condition = None
        for key, engine_key in zip(self.keys, self.engine_keys, strict=True):
            label = table.at[row, key]
            part = (
                nw.col(engine_key).is_null()
                if _is_missing(label)
                else nw.col(engine_key) == _label(label)
            )
            condition = part if condition is None else condition & part
        return condition  # type: ignore[return-value]

    # ---------------------------------------------------------------- result table

    def _statistics_table(self, first, reduced, origins, ill) -> pd.DataFrame:
        out = first[[*self.keys, COUNT]].copy()
        out[COUNT] = out[COUNT].astype(float)
        for flag in ("__null_units", "__null_clusters"):
            if flag in first:
                out[flag] = first[flag].astype(float)
        added: dict[str, np.ndarray] = {}
        for metric in self.metrics:
            prefix = f"{metric.name}."
            y, xs = self.values[metric.name]
            columns: dict[str, np.ndarray] = {}
            imprecise = np.zeros(len(first), bool)
            for variable, value in zip(variables(len(xs)), (y, *xs), strict=True):
                mean, m2 = _centred(reduced, value.alias)
                columns[f"origin_{variable}"] = origins[value.alias]
                columns[f"mean_{variable}"] = mean
                columns[f"m2_{variable}"] = m2
                imprecise |= ill[value.alias]
            if metric.kind == "proportion":
                columns["min_y"] = first[f"{y.alias}_min"].to_numpy(float)
                columns["max_y"] = first[f"{y.alias}_max"].to_numpy(float)
            for a, b, name in _alias_pairs((y, xs)):
                columns[name] = _co_moment(reduced, a, b)
            columns["imprecise"] = imprecise
            added.update((prefix + name, values) for name, values in columns.items())
        # one concat: a column at a time fragments the frame with many metrics
        out = pd.concat([out, pd.DataFrame(added, index=out.index)], axis=1)
        if PERIOD in out:
            # engines return dates as date objects (DuckDB, Spark) or datetime64 (polars)
            out[PERIOD] = pd.to_datetime(out[PERIOD])
            if self.frequency in ("W", "M"):
                day = out[PERIOD]
                out[PERIOD] = (
                    day - pd.to_timedelta(day.dt.day_of_week, unit="D")
                    if self.frequency == "W"
                    else day.dt.to_period("M").dt.start_time
                )
                out = merge_groups(out, self.keys, self.metrics)
        return out.sort_values(self.keys, na_position="last", kind="stable").reset_index(drop=True)


def _values(pair: tuple[Value, tuple[Value, ...]]) -> tuple[Value, ...]:
    y, xs = pair
    return (y, *xs)


def variables(k: int) -> list[str]:
    """The variables of a metric with ``k`` columns beside y in the statistics table: y,
    then x (one second column: a covariate, a ratio's or a cluster's denominator) or x0,
    x1, ... (several covariates)."""
    return ["y"] + (["x"] if k == 1 else [f"x{i}" for i in range(k)])


def co_moments(k: int) -> list[tuple[str, str, str]]:
    """(variable, variable, column) of every co-moment the table holds for a metric with
    ``k`` second columns: ``c_xy`` for one; ``c_y_x0``, ... and ``c_x0_x1``, ... for
    several."""
    names = variables(k)
    if k == 1:
        return [("y", "x", "c_xy")]
    return [(a, b, f"c_{a}_{b}") for i, a in enumerate(names) for b in names[i + 1 :]]


def second_columns(table: pd.DataFrame, metric: Metric) -> int:
    """How many columns beside y the statistics table holds for ``metric``."""
    prefix = f"{metric.name}.origin_x"
    return sum(1 for column in table.columns if column.startswith(prefix))


def _alias_pairs(pair: tuple[Value, tuple[Value, ...]]):
    values = _values(pair)
    aliases = dict(zip(variables(len(pair[1])), (v.alias for v in values), strict=True))
    return [(aliases[a], aliases[b], name) for a, b, name in co_moments(len(pair[1]))]


def _product(a: str, b: str) -> str:
    first, second = sorted((a, b))
    return f"{first}_{second}_sxy"


def _fits_int64(table: pd.DataFrame, alias: str, rows: np.ndarray, level: float) -> bool:
    """Whether every value of these rows minus round(level) surely fits in int64.

    No value lies further from its group's mean than sqrt(M2) (one squared deviation is at
    most their sum), and the first pass's M2 is off by at most 8·ε·n·Σy² (recursive
    summation), so the bound needs no min/max aggregate.
    """
    shift = int(np.float64(round(level)))
    mean, m2 = _centred(table, alias)
    n = table[COUNT].to_numpy(float)[rows]
    s2 = table[f"{alias}_s2"].to_numpy(float)[rows]
    with np.errstate(over="ignore", invalid="ignore"):
        spread = np.sqrt(m2[rows] + _ROUNDING_BOUND * n * s2) + np.abs(mean[rows] - shift)
    return bool(np.all(spread < _INT64_SPAN / 2))


def _centred(table: pd.DataFrame, alias: str) -> tuple[np.ndarray, np.ndarray]:
    """(mean offset from the shift, M2) of one value from its shifted sums."""
    n = table[COUNT].to_numpy(float)
    s1 = table[f"{alias}_s1"].to_numpy(float)
    s2 = table[f"{alias}_s2"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mean = np.where(n > 0, s1 / np.where(n > 0, n, 1.0), 0.0)
        # the engine summed real data: M2 below zero is rounding, not an impossible input
        return mean, np.maximum(s2 - s1 * mean, 0.0)


def _co_moment(table: pd.DataFrame, y: str, x: str) -> np.ndarray:
    if y == x:  # a metric adjusted by its own column
        return _centred(table, y)[1]
    n = table[COUNT].to_numpy(float)
    s1y = table[f"{y}_s1"].to_numpy(float)
    s1x = table[f"{x}_s1"].to_numpy(float)
    sxy = table[_product(y, x)].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return np.where(n > 0, sxy - s1y * s1x / np.where(n > 0, n, 1.0), 0.0)


def _ill_conditioned(table: pd.DataFrame, alias: str, origin: np.ndarray) -> np.ndarray:
    """Rows whose M2 lost digits to the shift: Σ(y−K)²/M2 above CONDITION_LIMIT, unless the
    offset from K is already within rounding of K (constant data; a shift at the mean)."""
    mean, m2 = _centred(table, alias)
    s2 = table[f"{alias}_s2"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ratio = np.where(m2 > 0, s2 / np.where(m2 > 0, m2, 1.0), np.where(s2 > 0, np.inf, 1.0))
    resolved = np.abs(mean) <= 16 * np.finfo(float).eps * np.abs(origin)
    # sums that overflowed cannot be mended by a shift: the tests flag them
    finite = np.isfinite(s2) & np.isfinite(mean)
    return (ratio > CONDITION_LIMIT) & ~resolved & finite


def _sql(lazy: nw.LazyFrame) -> str | None:
    native = lazy.to_native()
    try:
        return native.sql_query()
    except Exception:  # not a DuckDB relation: there is no SQL to show
        return None


def _numeric(column: str, dtype) -> tuple[nw.Expr, bool]:
    """A metric column ready to sum, and whether it stays integer. Missing values count as
    0; NaN is missing too (pandas NaN reaches DuckDB as NULL, while polars, Arrow and Spark
    keep NaN as a value, so both must become 0 for every engine to agree)."""
    if dtype == nw.Boolean or any(dtype == kind for kind in _INTEGER_TYPES):
        return nw.col(column).cast(nw.Int64).fill_null(0), True
    return nw.col(column).cast(nw.Float64).fill_nan(0.0).fill_null(0.0), False


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
    cluster: str | None = None,
) -> Query:
    """The lazy sufficient-statistics query; nothing runs until :meth:`Query.collect`.

    User columns are selected under internal aliases, so any column name works (``n``,
    ``segment``, ``__y0``, the experiment column used as a segment, ...); the statistics
    table has canonical key columns ``experiment``, ``variant``, ``by0``… and ``period``.

    With ``cluster``, rows (or, with ``unit``, units) are analysis units grouped in
    clusters, the randomization units: the engine sums each column per cluster and counts
    the cluster's rows, and every mean or proportion metric is reduced as the ratio of its
    cluster sum to the cluster's row count (so ``n`` counts clusters).
    """
    metrics = list(metrics)
    schema = frame.collect_schema()
    columns = list(dict.fromkeys(column for metric in metrics for column in metric.columns))
    aliases = {column: f"__c{index}" for index, column in enumerate(columns)}
    engine_keys = ["__e", "__v", *(f"__b{index}" for index in range(len(by)))]
    keys = [EXPERIMENT, VARIANT, *(by_column(index) for index in range(len(by)))]
    selection = [
        nw.col(experiment).alias("__e"),
        nw.col(variant).alias("__v"),
        *(nw.col(column).alias(f"__b{index}") for index, column in enumerate(by)),
    ]
    if unit:
        selection.append(nw.col(unit).alias("__u"))
    if cluster and cluster != unit:
        selection.append(nw.col(cluster).alias("__k"))
    if date:
        selection.append(nw.col(date).alias("__d"))
    integer = {}
    for column in columns:
        expression, integer[column] = _numeric(column, schema[column])
        selection.append(expression.alias(aliases[column]))
    lazy = frame.select(*selection)
    proportions = {aliases[m.y] for m in metrics if m.kind == "proportion"}
    null_counts: list[nw.Expr] = []
    first_seen = [nw.col("__d").min()] if date else []
    if unit:
        sums = [
            nw.col(aliases[c]).sum().cast(nw.Int64 if integer[c] else nw.Float64) for c in columns
        ]
        lazy = _missing_as_null(lazy, "__u", schema[unit])
        within = ["__k"] if cluster and cluster != unit else []
        lazy = lazy.group_by(*engine_keys, *within, "__u").agg(
            *sums, *first_seen, nw.len().alias("__events")
        )
        null_units = nw.when(nw.col("__u").is_null()).then(nw.col("__events")).otherwise(0)
        null_counts.append(null_units.sum().alias("__null_units"))
    bounds: dict[str, tuple[str, str]] = {}
    if cluster:
        if cluster == unit:
            raise InvalidArgumentError("cluster", f"column {cluster!r} is the unit column")
        lazy = _missing_as_null(lazy, "__k", schema[cluster])
        sums = [
            nw.col(aliases[c]).sum().cast(nw.Int64 if integer[c] else nw.Float64) for c in columns
        ]
        extremes = [
            part
            for alias in sorted(proportions)
            for part in (
                nw.col(alias).min().alias(f"{alias}_lo"),
                nw.col(alias).max().alias(f"{alias}_hi"),
            )
        ]
        bounds = {alias: (f"{alias}_lo", f"{alias}_hi") for alias in proportions}
        # the unit stage's null count is summed per cluster first
        carried = [null_counts.pop().alias("__null_units")] if unit else []
        lazy = lazy.group_by(*engine_keys, "__k").agg(
            *sums, *extremes, *first_seen, *carried, nw.len().alias("__rows")
        )
        if unit:
            null_counts.append(nw.col("__null_units").sum().alias("__null_units"))
        null_rows = nw.when(nw.col("__k").is_null()).then(nw.col("__rows")).otherwise(0)
        null_counts.append(null_rows.sum().alias("__null_clusters"))
    if date:
        lazy = lazy.with_columns(nw.col("__d").cast(nw.Date).alias("__p"))
        engine_keys.append("__p")
        keys.append(PERIOD)

    winsorized = [(i, m) for i, m in enumerate(metrics) if m.winsorize is not None]
    if winsorized:
        quantiles = lazy.group_by("__e").agg(
            *(
                nw.col(aliases[metric.y])
                .cast(nw.Float64)
                .quantile(q, interpolation="linear")
                .alias(f"__w{i}_{side}")
                for i, metric in winsorized
                for side, q in zip(("low", "high"), metric.winsorize, strict=True)  # type: ignore[arg-type]
            )
        )
        lazy = lazy.join(quantiles, on="__e", how="left")

    rows = Value("__rows", integer=True)
    values: dict[str, tuple[Value, tuple[Value, ...]]] = {}
    derived = []
    for index, metric in enumerate(metrics):
        if metric.winsorize is not None:
            clipped = (
                nw.col(aliases[metric.y])
                .cast(nw.Float64)
                .clip(nw.col(f"__w{index}_low"), nw.col(f"__w{index}_high"))
            )
            derived.append(clipped.alias(f"__y{index}"))
            y = Value(f"__y{index}", integer=False)
        else:
            y = Value(aliases[metric.y], integer[metric.y])
        xs = tuple(Value(aliases[column], integer[column]) for column in metric.xs)
        if cluster and metric.kind in ("mean", "proportion"):
            # the ratio of cluster sums to cluster sizes, adjusted by the covariate's ratio
            xs = (rows, *xs, rows) if xs else (rows,)
        values[metric.name] = (y, xs)
    if derived:
        lazy = lazy.with_columns(*derived)
    return Query(lazy, keys, metrics, values, frequency, engine_keys, tuple(null_counts), bounds)


def _missing_as_null(lazy: nw.LazyFrame, alias: str, dtype) -> nw.LazyFrame:
    """A NaN id is a missing id, not one unit: counted (and refused) with the nulls."""
    if dtype in (nw.Float32, nw.Float64):
        return lazy.with_columns(
            nw.when(nw.col(alias).is_nan()).then(None).otherwise(nw.col(alias)).alias(alias)
        )
    return lazy


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


def merge_groups(table: pd.DataFrame, keys: Sequence[str], metrics: Sequence[Metric]):
    """Pool the rows that share ``keys`` (segments into the overall row, days into weeks):
    counts add, centred moments combine exactly — M2 = Σ M2ᵢ + Σ nᵢ (ȳᵢ − ȳ)², and the
    co-moment likewise (Chan, Golub & LeVeque 1979, in its k-way form) — each group about
    the origin of its largest row."""
    keys = list(keys)
    grouped = table.groupby(keys, sort=False, dropna=False)
    group = grouped.ngroup().to_numpy()
    size = int(group.max()) + 1 if len(group) else 0
    _, first = np.unique(group, return_index=True)
    out = table.iloc[first][keys].reset_index(drop=True)
    n = table[COUNT].to_numpy(float)
    total = np.bincount(group, n, size)
    out[COUNT] = total
    for flag in ("__null_units", "__null_clusters"):
        if flag in table:
            out[flag] = np.bincount(group, table[flag].to_numpy(float), size)
    largest = (
        pd.Series(n).groupby(group).idxmax().reindex(range(size)).to_numpy()
        if size
        else np.array([], int)
    )
    safe_total = np.where(total > 0, total, 1.0)
    added: dict[str, np.ndarray] = {}
    for metric in metrics:
        prefix = f"{metric.name}."
        deviations = {}
        k = second_columns(table, metric)
        for variable in variables(k):
            origin = table[f"{prefix}origin_{variable}"].to_numpy(float)
            mean = table[f"{prefix}mean_{variable}"].to_numpy(float)
            group_origin = origin[largest]
            rebased = (origin - group_origin[group]) + mean
            pooled = np.bincount(group, n * rebased, size) / safe_total
            deviation = rebased - pooled[group]
            deviations[variable] = deviation
            m2 = table[f"{prefix}m2_{variable}"].to_numpy(float)
            added[f"{prefix}origin_{variable}"] = group_origin
            added[f"{prefix}mean_{variable}"] = pooled
            added[f"{prefix}m2_{variable}"] = np.bincount(group, m2, size) + np.bincount(
                group, n * deviation * deviation, size
            )
        for a, b, name in co_moments(k) if k else []:
            within = table[prefix + name].to_numpy(float)
            between = n * deviations[a] * deviations[b]
            added[prefix + name] = np.bincount(group, within, size) + np.bincount(
                group, between, size
            )
        if f"{prefix}min_y" in table:
            added[f"{prefix}min_y"] = grouped[f"{prefix}min_y"].min().to_numpy()
            added[f"{prefix}max_y"] = grouped[f"{prefix}max_y"].max().to_numpy()
        imprecise = table[f"{prefix}imprecise"].to_numpy(bool).astype(float)
        added[f"{prefix}imprecise"] = np.bincount(group, imprecise, size) > 0
    return pd.concat([out, pd.DataFrame(added, index=out.index)], axis=1)


def cumulate(
    table: pd.DataFrame, keys: Sequence[str], order: str, metrics: Sequence[Metric]
) -> pd.DataFrame:
    """Running pooled statistics along ``order`` within each ``keys`` group (a timeline's
    row k pools periods 1..k), by the pairwise Chan–Golub–LeVeque update; ``table`` must
    hold every (group, period) row already sorted by ``order``."""
    out = table.copy()
    n_all = table[COUNT].to_numpy(float)
    running_n = np.empty(len(table))
    columns: dict[str, np.ndarray] = {}
    shapes = {metric.name: second_columns(table, metric) for metric in metrics}
    for metric in metrics:
        prefix = f"{metric.name}."
        k = shapes[metric.name]
        for variable in variables(k):
            for part in ("origin", "mean", "m2"):
                name = f"{prefix}{part}_{variable}"
                columns[name] = table[name].to_numpy(float).copy()
        for _, _, name in co_moments(k) if k else []:
            columns[prefix + name] = table[prefix + name].to_numpy(float).copy()
        if f"{prefix}min_y" in table:
            for part in ("min_y", "max_y"):
                columns[prefix + part] = table[prefix + part].to_numpy(float).copy()
        columns[f"{prefix}imprecise"] = table[f"{prefix}imprecise"].to_numpy(bool).copy()
    for rows in table.groupby(list(keys), sort=False, dropna=False).indices.values():
        total = 0.0
        for step, row in enumerate(rows):
            n = n_all[row]
            if step == 0:
                total = n
                running_n[row] = total
                continue
            before = rows[step - 1]
            pooled = total + n
            weight = total * n / pooled if pooled > 0 else 0.0
            for metric in metrics:
                prefix = f"{metric.name}."
                deltas = {}
                k = shapes[metric.name]
                for variable in variables(k):
                    origin = columns[f"{prefix}origin_{variable}"]
                    mean = columns[f"{prefix}mean_{variable}"]
                    m2 = columns[f"{prefix}m2_{variable}"]
                    if total == 0:  # nothing yet: this row's own origin
                        deltas[variable] = 0.0
                        continue
                    rebased = (origin[row] - origin[before]) + mean[row]
                    delta = rebased - mean[before]
                    deltas[variable] = delta
                    origin[row] = origin[before]
                    mean[row] = mean[before] + delta * n / pooled
                    m2[row] = m2[before] + m2[row] + delta * delta * weight
                for a, b, name in co_moments(k) if k and total > 0 else []:
                    moment = columns[prefix + name]
                    moment[row] = moment[before] + moment[row] + deltas[a] * deltas[b] * weight
                if f"{prefix}min_y" in columns:
                    low, high = columns[f"{prefix}min_y"], columns[f"{prefix}max_y"]
                    if total > 0:
                        low[row] = min(low[row], low[before]) if n > 0 else low[before]
                        high[row] = max(high[row], high[before]) if n > 0 else high[before]
                imprecise = columns[f"{prefix}imprecise"]
                imprecise[row] = imprecise[row] or imprecise[before]
            total = pooled
            running_n[row] = total
    out[COUNT] = running_n
    for name, values in columns.items():
        out[name] = values
    return out
