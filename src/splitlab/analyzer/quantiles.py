"""The engine reduction for quantile metrics (median, p90, p99): per group, the sample
quantile and the two interval bounds that :func:`splitlab.stats.quantile.quantile_test`
needs, computed in narwhals by the engine that holds the data (DuckDB, polars, Spark), so
that only one row per group comes back.

GrowthBook computes the same statistics in SQL (back end, commit 8f1db445:
``integrations/sql/columns/quantile-grid-columns.ts`` for the bounds, a grid of n* values,
and ``integrations/sql/ctes/experiment-fact-metric-statistics-cte.ts`` for the counts and
the cluster sums of event-level quantiles); here the levels are chosen from the data first,
so that only the bounds a group uses are computed.

Passes (each one group-by in the engine):

1. counts: per group the rows and the non-missing values n;
2. quantiles: one group-by with the ν-quantile and, for every n* that some group uses
   (:func:`~splitlab.stats.quantile.choose_n_star`: GrowthBook's grid 100·2^k below n), the
   two :func:`~splitlab.stats.quantile.interval_levels` — for every level of the column at
   once (:func:`quantile_tables`: the median, p90 and p99 of a column share the pass). On
   DuckDB it is one ``quantile_cont(value, [levels])``, which sorts each group once for
   all levels; other engines get one narwhals quantile per level. Groups of similar size share n*,
   so there are few distinct levels (at most two per power of two between the smallest and
   the largest group). Each group keeps the bounds of its own n*; the variance formula's
   factor n*/n rescales their span to the group's n (see :mod:`splitlab.stats.quantile`);
3. with ``cluster`` (event-level data, clustered by unit): the group's ν-quantile is put
   beside every value (a window over the group keys, which keeps missing keys as a group
   of their own), the values at or below it and the values are counted per (group,
   cluster), and these counts are summed per group: K, Σs, Σs², Σn, Σn², Σs·n.

Quantiles are linear interpolation between order statistics (``numpy.quantile``'s default,
DuckDB ``quantile_cont``, polars ``interpolation="linear"``, Spark's exact ``percentile``).

Missing values: a null or NaN value is missing, and a quantile of missing values is
undefined, so they are left out of every quantile and count and reported per group as
``n_missing`` (the sum-based metrics of :mod:`splitlab.analyzer.aggregate` count them as
0, which would put an atom at zero into a quantile). A group whose values are all missing
has n = 0 and NaN quantiles, and the test reports it as degenerate. With ``cluster``, a
cluster counts when it has at least one value; values whose cluster id is missing are each
taken as a cluster of their own (nothing says they belong together) and counted in
``n_cluster_missing``, so that a caller can refuse them.
"""

from __future__ import annotations

from collections.abc import Sequence

import narwhals as nw
import numpy as np
import pandas as pd

from splitlab._validation import check_alpha
from splitlab.errors import EngineError, InvalidArgumentError, SplitlabError, engine_message
from splitlab.stats.quantile import choose_n_star, interval_levels

__all__ = ["CLUSTER_COLUMNS", "COLUMNS", "quantile_statistics", "quantile_tables"]

COLUMNS = (
    "n_missing",
    "n",
    "nu",
    "n_star",
    "lower_level",
    "upper_level",
    "quantile",
    "lower",
    "upper",
)
CLUSTER_COLUMNS = (
    "n_clusters",
    "sum_below",
    "sum_below_sq",
    "sum_events",
    "sum_events_sq",
    "sum_below_events",
    "n_cluster_missing",
)
_VALUE, _CLUSTER, _ALL = "__qv", "__qc", "__qall"


def _sql(lazy: nw.LazyFrame) -> str | None:
    try:
        return lazy.to_native().sql_query()
    except Exception:  # not a DuckDB relation: there is no SQL to show
        return None


def _collect(lazy: nw.LazyFrame, what: str) -> pd.DataFrame:
    try:
        return lazy.collect().to_pandas()
    except SplitlabError:
        raise
    except Exception as exc:  # the engine's own error, whatever its library
        raise EngineError(
            "source",
            f"the engine could not compute the {what}: {engine_message(exc)}",
            sql=_sql(lazy),
        ) from exc


def _check_name(argument: str, name: object, schema: dict) -> str:
    if not isinstance(name, str):
        raise InvalidArgumentError(argument, f"must be a column name, got {name!r}")
    if name not in schema:
        raise InvalidArgumentError(argument, f"no column {name!r} in the frame")
    return name


def _sorted(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return table.sort_values(keys, na_position="last", kind="stable").reset_index(drop=True)


def quantile_statistics(
    frame: nw.LazyFrame,
    *,
    keys: Sequence[str],
    value: str,
    nu: float,
    alpha: float = 0.05,
    cluster: str | None = None,
) -> pd.DataFrame:
    """Per group of ``keys``, the quantile summary of ``value`` (one row per group); the
    summaries of several levels of one column come from one reduction with
    :func:`quantile_tables`.

    Parameters
    ----------
    frame : narwhals.LazyFrame
        The data, in its engine (a :class:`~splitlab.sources.Source`'s ``frame``, or the
        Analyzer's prepared frame); a narwhals DataFrame is made lazy.
    keys : sequence of str
        Group key columns (none: one group).
    value : str
        The numeric column whose quantile is taken: one row per unit, or per event with
        ``cluster``.
    nu : float
        Quantile level in (0, 1): 0.5 for the median, 0.9 for p90.
    alpha : float, default 0.05
        The α of the interval levels (GrowthBook's 0.05); pass the same ``interval_alpha``
        to :class:`~splitlab.stats.quantile.QuantileSummary`. Not the test's α.
    cluster : str, optional
        The randomization-unit column of event-level rows: adds the cluster sums.

    Returns
    -------
    pandas.DataFrame
        Sorted by the keys (missing keys last): the key columns, then ``n_missing``, ``n``,
        ``nu``, ``n_star``, ``lower_level``, ``upper_level``, ``quantile``, ``lower``,
        ``upper`` (:data:`COLUMNS`) and with ``cluster`` ``n_clusters``, ``sum_below``,
        ``sum_below_sq``, ``sum_events``, ``sum_events_sq``, ``sum_below_events``,
        ``n_cluster_missing`` (:data:`CLUSTER_COLUMNS`), all floats.
        :meth:`splitlab.stats.quantile.QuantileSummary.from_table` reads it.

    Raises
    ------
    InvalidArgumentError
        A column that is missing or not numeric, ν outside (0, 1), a key named like an
        output column.
    EngineError
        The engine refused a query (its first line in the message, the SQL on ``sql``).

    Examples
    --------
    >>> import duckdb, numpy as np, pandas as pd
    >>> rng = np.random.default_rng(3)
    >>> data = pd.DataFrame({"arm": np.repeat(["a", "b"], 500), "y": rng.lognormal(size=1000)})
    >>> frame = nw.from_native(duckdb.from_df(data))
    >>> table = quantile_statistics(frame, keys=["arm"], value="y", nu=0.5)
    >>> table[["arm", "n", "n_star"]].to_dict("list")
    {'arm': ['a', 'b'], 'n': [500.0, 500.0], 'n_star': [400.0, 400.0]}
    >>> expected = data.groupby("arm")["y"].quantile(0.5).to_numpy()
    >>> bool(np.allclose(table["quantile"], expected, rtol=1e-12, atol=0))
    True
    """
    if isinstance(frame, nw.DataFrame):
        frame = frame.lazy()
    if not isinstance(frame, nw.LazyFrame):
        raise InvalidArgumentError(
            "frame", f"must be a narwhals LazyFrame (Source.frame), got {type(frame).__name__}"
        )
    return quantile_tables(frame, keys=keys, value=value, nus=[nu], alpha=alpha, cluster=cluster)[0]


def quantile_tables(
    frame: nw.LazyFrame,
    *,
    keys: Sequence[str],
    value: str,
    nus: Sequence[float],
    alpha: float = 0.05,
    cluster: str | None = None,
) -> list[pd.DataFrame]:
    """:func:`quantile_statistics` of ``value`` at every level of ``nus`` (one table per
    level, in order), from one set of engine passes: the median, p90 and p99 of a column
    cost one sort of it, not three.

    >>> import duckdb, numpy as np, pandas as pd
    >>> data = pd.DataFrame({"arm": ["a", "b"] * 500, "y": np.arange(1000.0)})
    >>> median, p90 = quantile_tables(
    ...     nw.from_native(duckdb.from_df(data)), keys=["arm"], value="y", nus=[0.5, 0.9]
    ... )
    >>> median["quantile"].tolist(), p90["quantile"].tolist()
    ([499.0, 500.0], [898.2, 899.2])
    """
    if isinstance(frame, nw.DataFrame):
        frame = frame.lazy()
    if not isinstance(frame, nw.LazyFrame):
        raise InvalidArgumentError(
            "frame", f"must be a narwhals LazyFrame (Source.frame), got {type(frame).__name__}"
        )
    if isinstance(nus, (int, float, np.number)):
        nus = [nus]  # type: ignore[list-item]
    levels = []
    for nu in nus:
        try:
            level = float(nu)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError("nu", f"must be a number in (0, 1), got {nu!r}") from exc
        if not 0.0 < level < 1.0:
            raise InvalidArgumentError("nu", f"must be in (0, 1), got {nu!r}")
        levels.append(level)
    if not levels:
        raise InvalidArgumentError("nu", "at least one quantile level is needed")
    alpha = check_alpha(alpha)
    if isinstance(keys, str):
        keys = [keys]
    keys = list(keys)
    try:
        schema = dict(frame.collect_schema())
    except SplitlabError:
        raise
    except Exception as exc:
        raise EngineError("source", f"cannot read the schema: {engine_message(exc)}") from exc
    for key in keys:
        _check_name("keys", key, schema)
    if len(set(keys)) != len(keys):
        raise InvalidArgumentError("keys", f"has a column twice: {keys}")
    clashes = [key for key in keys if key in COLUMNS or key in CLUSTER_COLUMNS]
    if clashes:
        raise InvalidArgumentError("keys", f"{clashes[0]!r} is the name of an output column")
    _check_name("value", value, schema)
    dtype = schema[value]
    if not (dtype.is_numeric() or dtype == nw.Boolean):
        raise InvalidArgumentError("value", f"column {value!r} is not numeric ({dtype})")
    if cluster is not None:
        _check_name("cluster", cluster, schema)

    engine_keys = [f"__qk{index}" for index in range(len(keys))] or [_ALL]
    numeric = nw.col(value).cast(nw.Float64)
    selection = [nw.col(key).alias(alias) for key, alias in zip(keys, engine_keys, strict=False)]
    if not keys:
        selection.append(nw.lit(0).alias(_ALL))
    # NaN is missing too (pandas NaN reaches DuckDB as NULL, polars and Spark keep NaN)
    selection.append(nw.when(numeric.is_nan()).then(None).otherwise(numeric).alias(_VALUE))
    if cluster is not None:
        selection.append(nw.col(cluster).alias(_CLUSTER))
    prepared = frame.select(*selection)

    bounds = _duckdb_bounds(prepared, engine_keys, levels, alpha)
    if bounds is None:
        bounds = _generic_bounds(prepared, engine_keys, levels, alpha)
    table, quantiles, lowers, uppers, n_stars = bounds
    n = table["__n"].to_numpy(float)
    tables = []
    for index, level in enumerate(levels):
        n_star = n_stars[index]
        lower_level, upper_level = interval_levels(level, n_star, alpha) if len(table) else ([], [])
        out = table[engine_keys].copy()
        out["n_missing"] = table["__rows"].to_numpy(float) - n
        out["n"] = n
        out["nu"] = level
        out["n_star"] = n_star
        out["lower_level"] = lower_level
        out["upper_level"] = upper_level
        out["quantile"] = quantiles[index]
        out["lower"] = lowers[index]
        out["upper"] = uppers[index]
        if cluster is not None:
            sums = _sorted(
                _collect(_cluster_sums(prepared, engine_keys, level), "cluster sums"),
                engine_keys,
            )
            if not sums[engine_keys].equals(out[engine_keys]):
                raise EngineError(
                    "source", "the engine returned different groups on the cluster pass"
                )
            for name in CLUSTER_COLUMNS:
                out[name] = sums[name].fillna(0).to_numpy(float)
        if not keys:
            out = out.drop(columns=[_ALL])
        else:
            out = out.rename(columns=dict(zip(engine_keys, keys, strict=True)))
        tables.append(out)
    return tables


def _needed(prepared: nw.LazyFrame, engine_keys: list[str], levels, alpha: float):
    """The count pass: per group the non-missing values, and for each level the n* values
    some group uses (so that only their interval levels are computed)."""
    counts = _collect(
        prepared.group_by(*engine_keys).agg(nw.col(_VALUE).count().alias("__n")), "value counts"
    )
    n = counts["__n"].to_numpy(float)
    needed = [
        np.unique(choose_n_star(n, level, alpha)) if len(counts) else np.array([])
        for level in levels
    ]
    return len(counts), needed


def _pick(table: pd.DataFrame, levels, alpha: float, needed, columns):
    """Each group's quantiles and the bounds of its own n*, from ``columns(index, j)``:
    the value columns of level ``index`` (j = -1 the quantile, else the j-th n* in use)."""
    n = table["__n"].to_numpy(float)
    rows = np.arange(len(table))
    quantiles, lowers, uppers, n_stars = [], [], [], []
    for index, level in enumerate(levels):
        n_star = choose_n_star(n, level, alpha) if len(table) else np.array([])
        grid = needed[index]
        column = np.searchsorted(grid, n_star)
        last = max(grid.size - 1, 0)
        if np.any((column >= grid.size) | (grid[np.minimum(column, last)] != n_star)):
            raise EngineError("source", "the engine returned different groups on a second pass")
        lows = np.column_stack([columns(index, j)[0] for j in range(grid.size)] or [rows * 0.0])
        highs = np.column_stack([columns(index, j)[1] for j in range(grid.size)] or [rows * 0.0])
        quantiles.append(columns(index, -1))
        lowers.append(lows[rows, column] if len(table) else np.array([]))
        uppers.append(highs[rows, column] if len(table) else np.array([]))
        n_stars.append(n_star)
    return quantiles, lowers, uppers, n_stars


def _generic_bounds(prepared: nw.LazyFrame, engine_keys: list[str], levels, alpha: float):
    """Any engine: the count pass, then one group-by with every level's quantile and the
    bounds of every n* in use (one aggregate per level)."""
    values = nw.col(_VALUE)
    groups, needed = _needed(prepared, engine_keys, levels, alpha)
    aggregations = [nw.len().alias("__rows"), values.count().alias("__n")]
    for index, level in enumerate(levels):
        aggregations.append(values.quantile(level, interpolation="linear").alias(f"__q{index}"))
        if not needed[index].size:
            continue
        low_levels, high_levels = interval_levels(level, needed[index], alpha)
        for j, (low, high) in enumerate(zip(low_levels, high_levels, strict=True)):
            aggregations += [
                values.quantile(float(low), interpolation="linear").alias(f"__lo{index}_{j}"),
                values.quantile(float(high), interpolation="linear").alias(f"__hi{index}_{j}"),
            ]
    table = _sorted(
        _collect(prepared.group_by(*engine_keys).agg(*aggregations), "quantiles"), engine_keys
    )
    if len(table) != groups:
        raise EngineError("source", "the engine returned different groups on a second pass")

    def columns(index: int, j: int):
        if j < 0:
            return table[f"__q{index}"].to_numpy(float)
        return (
            table[f"__lo{index}_{j}"].to_numpy(float),
            table[f"__hi{index}_{j}"].to_numpy(float),
        )

    return (table, *_pick(table, levels, alpha, needed, columns))


def _duckdb_bounds(prepared: nw.LazyFrame, engine_keys: list[str], levels, alpha: float):
    """DuckDB: the count pass, then ONE group-by whose ``quantile_cont(value, [levels])``
    sorts each group once for all the levels of all the metrics of the column (one
    aggregate per level sorts it once per level: ~6× slower at 10⁷ rows); None where the
    frame is not a DuckDB relation (the generic passes then run)."""
    try:
        import duckdb
    except ImportError:  # pragma: no cover - DuckDB is a dependency
        return None
    native = prepared.to_native()
    if not isinstance(native, duckdb.DuckDBPyRelation):
        return None
    groups, needed = _needed(prepared, engine_keys, levels, alpha)
    flat: list[float] = []
    position: dict[tuple[int, int], tuple[int, int] | int] = {}
    for index, level in enumerate(levels):
        position[(index, -1)] = len(flat)
        flat.append(level)
        if needed[index].size:
            lows, highs = interval_levels(level, needed[index], alpha)
            for j, (low, high) in enumerate(zip(lows, highs, strict=True)):
                position[(index, j)] = (len(flat), len(flat) + 1)
                flat += [float(low), float(high)]
    listed = ", ".join(f"{value:.17e}" for value in flat)
    group = ", ".join(f'"{key}"' for key in engine_keys)
    aggregate = (
        f'{group}, count(*) AS "__rows", count("{_VALUE}") AS "__n", '
        f'quantile_cont("{_VALUE}", [{listed}]) AS "__levels"'
    )
    try:
        relation = native.aggregate(aggregate, group)
        # read back as every other pass is, so that the key columns compare equal
        table = _sorted(nw.from_native(relation).collect().to_pandas(), engine_keys)
    except SplitlabError:
        raise
    except Exception as exc:  # the engine's own error
        raise EngineError(
            "source",
            f"the engine could not compute the quantiles: {engine_message(exc)}",
            sql=_sql(prepared),
        ) from exc
    if len(table) != groups:
        raise EngineError("source", "the engine returned different groups on a second pass")
    values = np.full((len(table), len(flat)), np.nan)
    for row, found in enumerate(table["__levels"]):
        if found is not None and not (isinstance(found, float) and np.isnan(found)):
            values[row] = np.asarray(found, dtype=float)

    def columns(index: int, j: int):
        where = position[(index, j)]
        if j < 0:
            return values[:, where]
        return values[:, where[0]], values[:, where[1]]  # type: ignore[index]

    return (table, *_pick(table, levels, alpha, needed, columns))


def _cluster_sums(prepared: nw.LazyFrame, engine_keys: list[str], level: float) -> nw.LazyFrame:
    """Pass 3: per (group, cluster) the values at or below the group's quantile (s) and the
    values (m); then per group K, Σs, Σs², Σm, Σm², Σs·m, a missing cluster id's values
    counted as clusters of one."""
    values = nw.col(_VALUE)
    quantile = values.quantile(level, interpolation="linear").over(*engine_keys)
    below = (values <= nw.col("__qhat")).cast(nw.Int64)
    per_cluster = (
        prepared.with_columns(quantile.alias("__qhat"))
        .group_by(*engine_keys, _CLUSTER)
        .agg(below.sum().alias("__s"), values.count().alias("__m"))
        .with_columns(nw.col("__s").fill_null(0).cast(nw.Int64), nw.col("__m").cast(nw.Int64))
    )
    s, m = nw.col("__s"), nw.col("__m")
    alone = nw.col(_CLUSTER).is_null()

    def singletons(clustered: nw.Expr, single: nw.Expr) -> nw.Expr:
        return nw.when(alone).then(single).otherwise(clustered).sum()

    return per_cluster.group_by(*engine_keys).agg(
        singletons(nw.when(m > 0).then(1).otherwise(0), m).alias("n_clusters"),
        s.sum().alias("sum_below"),
        singletons(s * s, s).alias("sum_below_sq"),
        m.sum().alias("sum_events"),
        singletons(m * m, m).alias("sum_events_sq"),
        singletons(s * m, s).alias("sum_below_events"),
        singletons(nw.lit(0), m).alias("n_cluster_missing"),
    )
