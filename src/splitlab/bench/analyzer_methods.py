"""The Analyzer's analysis methods on a Parquet file against DuckDB's own SQL: regression
adjustment on many covariates, quantile metrics, clustered (session-level) means and ratio
metrics adjusted by their pre-period ratio (ratio CUPED).

Budgets (the issue): a 10^7-row Parquet file with 5 covariates on each of 3 metrics, end to
end within 2x of DuckDB's own group-by of the same sums; 3 quantile metrics (median, p90,
p99) within 3x of DuckDB's own ``quantile_cont`` of the same quantiles and interval bounds;
3 ratio CUPED metrics within 2x of DuckDB's own group-by of the same sums. The clustered row
is a diagnostic (no budget).

Input (generated once per ``--rows`` and ``--seed`` and cached in ``--data-dir``, outside the
repository, by :func:`splitlab.bench.analyzer.ensure_data` with this suite's generators):

- a unit-level file: the experiments, arms and metrics of ``splitlab.bench.analyzer``
  (revenue, sessions, minutes, with their pre-period values) plus 4 more pre-period
  covariates per metric (:data:`COVARIATES`: floats and BIGINT counts, correlated with the
  pre-period value or independent of everything; no two collinear), ``latency``
  (lognormal, in ms, a few per cent slower in some treatment arms), and for the ratio
  metrics of :data:`RATIOS` ``pageviews`` (Poisson around 3 per session), ``clicks`` and
  ``pre_clicks`` (binomial in the pageviews of their period with a click rate of the unit's
  own, 0.5% higher in some treatment arms) and ``active_days``;
- a session-level file of the same size: ``user`` (BIGINT id), experiment and arm per user,
  1 + Poisson(4) sessions per user and ``minutes`` per session, correlated within a user.

Routes, each timed end to end from the file path (wall time and CPU time, best of
``--repeats`` interleaved rounds after one warm-up call each, by
:func:`splitlab.bench.analyzer.best_times`):

(1) splitlab ``Analyzer(path).analyze([Metric(m, covariate=[x1, ..., x5]) for m in 3 metrics])``
    against (a) DuckDB: one hand-written group-by of count and, per metric, Σy, Σy², Σx_j,
    Σx_j·x_k (j ≤ k) and Σx_j·y, run by ``duckdb.connect().sql(SQL).fetchall()``; budget <= 2x.
(2) splitlab ``Analyzer(path).analyze([Metric("latency_p50", column="latency",
    kind="quantile", quantile=0.5), ...p90, ...p99])`` against (b) DuckDB: one group-by with
    ``count(latency)`` and one ``quantile_cont(latency, [levels])`` holding, for each of the
    three ν, ν itself and the interval levels ν ∓ z·sqrt(ν(1 − ν)/n*) of every n* some group
    uses (:func:`~splitlab.stats.quantile.choose_n_star` and
    :func:`~splitlab.stats.quantile.interval_levels` of the group counts, which the hand SQL
    is given: the levels splitlab's reduction computes); budget <= 3x.
(3) splitlab ``Analyzer(sessions, cluster="user").analyze([Metric("minutes")])`` (the mean per
    session as the ratio of per-user sums) against (c) DuckDB's own two-level group-by: per
    (experiment, variant, user) Σy and the session count m, then per (experiment, variant)
    the users K, Σs, Σs², Σm, Σm², Σs·m. Diagnostic, no budget.
(4) splitlab ``Analyzer(path).analyze([Metric(r, kind="ratio", numerator=m, denominator=d,
    covariate=(m_pre, d_pre)) for r in 3 ratio metrics])`` against (d) DuckDB: one
    hand-written group-by of count and, per metric, the sums, sums of squares and the 6
    cross products of (m, d, m_pre, d_pre); budget <= 2x.

Before timing, the routes are checked to do equal work, to 1e-6 relative: (a)'s sums through
``CrossMoments.from_sums`` and ``regression_test`` give splitlab's effect and p-value; (b)'s
quantiles equal splitlab's point estimates (to 1e-12) and its bounds through
``QuantileSummary`` and ``quantile_test`` give splitlab's effect and p-value; (c)'s sums
through ``JointMoments.from_sums`` and ``ratio_test`` give splitlab's; (d)'s sums through
``ratio_cross_moments`` and ``ratio_cuped_test`` give splitlab's effect, p-value and θ; and
splitlab reduces the unit file in one pass (no shifted second pass, which (a) and (d) would
not do). Diagnostic rows
split splitlab's time: its engine passes alone (open, build, collect to pandas; for
quantiles the count per group and, per metric,
:func:`~splitlab.analyzer.quantiles.quantile_statistics`), ``analyze`` on ready engine
results (everything after the round trips), the SQL ``Analyzer.explain()`` prints run by
DuckDB directly, and for quantiles DuckDB's point estimates alone, (b) written with one
``quantile_cont`` per level (the form narwhals writes) and a count pass alone.

    python benchmarks/analyzer_methods.py [--rows 10000000] [--repeats 3] [--seed 0] \
        [--data-dir /tmp/splitlab-bench] [--out benchmarks/results/analyzer_methods.md] [--busy]
    splitlab bench speed [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from splitlab.bench import analyzer as base
from splitlab.bench.analyzer import best_times, format_seconds
from splitlab.bench.analyzer_routes import route_duckdb_sql
from splitlab.bench.markdown import results_dir, table, write_text
from splitlab.bench.progress import Progress
from splitlab.bench.provenance import Provenance, load_average, script_command, usable_cores

QUICK = ("--rows", "100000", "--repeats", "1")
MAX_RATIO_REGRESSION = 2.0
MAX_RATIO_QUANTILE = 3.0
MAX_RATIO_RATIO_CUPED = 2.0
RTOL = 1e-6
QUANTILE_RTOL = 1e-12
# per file kind; bump when its generator changes, so cached files are not reused
DATA_VERSIONS = {"units": 2, "sessions": 1}

# y -> its 5 covariates; the first is the pre-period value splitlab.bench.analyzer generates
COVARIATES = {
    "revenue": ("pre_revenue", "pre2_revenue", "pre_orders", "tenure_days", "predicted_revenue"),
    "sessions": (
        "pre_sessions", "pre2_sessions", "pre_active_days", "pre_pageviews", "predicted_sessions",
    ),
    "minutes": (
        "pre_minutes", "pre2_minutes", "pre_long_sessions", "pre_idle_minutes",
        "predicted_minutes",
    ),
}  # fmt: skip
QUANTILES = (("latency_p50", 0.5), ("latency_p90", 0.9), ("latency_p99", 0.99))
# ratio metric -> (numerator, denominator, pre-period numerator, pre-period denominator);
# no column is shared between them, so no sum of one metric is another's
RATIOS = {
    "ctr": ("clicks", "pageviews", "pre_clicks", "pre_pageviews"),
    "revenue_per_session": ("revenue", "sessions", "pre_revenue", "pre_sessions"),
    "minutes_per_active_day": ("minutes", "active_days", "pre_minutes", "pre_active_days"),
}
# the four variables' short names in ratio_cross_moments' order, and its 6 cross products
RATIO_VARIABLES = ("m", "d", "m_pre", "d_pre")
RATIO_PRODUCTS = tuple(itertools.combinations(range(4), 2))


# --------------------------------------------------------------------------- data


def unit_chunk(rng: np.random.Generator, rows: int) -> dict[str, np.ndarray]:
    """Unit rows: ``splitlab.bench.analyzer``'s chunk, 4 more covariates per metric and
    ``latency``. The extra covariates depend on pre-period values only (or on nothing), so
    the adjustment stays unbiased; none is a linear combination of the others."""
    chunk = base.make_chunk(rng, rows)
    revenue, sessions, minutes = (chunk[f"pre_{m}"].astype(float) for m in COVARIATES)
    chunk["pre2_revenue"] = np.where(
        rng.random(rows) < 0.5, 0.5 * revenue + rng.lognormal(1.0, 1.0, rows), 0.0
    )
    chunk["pre_orders"] = rng.poisson(revenue / 15.0)
    chunk["tenure_days"] = rng.integers(1, 2000, rows)
    chunk["predicted_revenue"] = 0.4 * revenue + rng.normal(0.0, 8.0, rows)
    chunk["pre2_sessions"] = rng.poisson(0.7 * sessions + 1.0)
    chunk["pre_active_days"] = np.minimum(rng.poisson(sessions), 28)
    chunk["pre_pageviews"] = rng.poisson(3.0 * sessions)
    chunk["predicted_sessions"] = 0.9 * sessions + rng.normal(0.0, 1.5, rows)
    chunk["pre2_minutes"] = 0.6 * minutes + rng.gamma(2.0, 6.0, rows)
    chunk["pre_long_sessions"] = rng.poisson(minutes / 10.0)
    chunk["pre_idle_minutes"] = rng.gamma(2.0, 3.0, rows)
    chunk["predicted_minutes"] = 0.8 * minutes + rng.normal(0.0, 5.0, rows)
    variant = chunk["variant"].astype(str)
    slower = np.char.endswith(variant, "b")
    chunk["latency"] = rng.lognormal(5.0, 0.6, rows) * np.where(slower, 1.03, 1.0)
    # the ratio metrics' columns, drawn last so that every column above keeps its values
    chunk["pageviews"] = rng.poisson(3.0 * chunk["sessions"])
    click_rate = rng.beta(2.0, 18.0, rows)  # a unit's own, in both periods
    chunk["pre_clicks"] = rng.binomial(chunk["pre_pageviews"], click_rate)
    lift = np.where(np.char.endswith(variant, "a"), 1.005, 1.0)
    chunk["clicks"] = rng.binomial(chunk["pageviews"], click_rate * lift)
    chunk["active_days"] = np.minimum(rng.poisson(chunk["sessions"]), 28)
    return chunk


def session_chunk(rng: np.random.Generator, rows: int) -> dict[str, np.ndarray]:
    """Session rows: users with 1 + Poisson(4) sessions each (the last user of a chunk cut
    to fill it), each user's experiment, arm and activity from ``splitlab.bench.analyzer``'s
    unit chunk, and minutes per session around the user's level (so correlated within a
    user). User ids are random 62-bit integers, distinct across chunks in practice."""
    counts = 1 + rng.poisson(4.0, rows // 2 + 10)
    ends = np.cumsum(counts)
    users = int(np.searchsorted(ends, rows)) + 1
    counts = counts[:users]
    counts[-1] -= int(ends[users - 1]) - rows
    per_user = base.make_chunk(rng, users)
    ids = rng.integers(0, 2**62, users)
    level = np.repeat(per_user["minutes"] / 5.0, counts)
    return {
        "user": np.repeat(ids, counts),
        "experiment": np.repeat(per_user["experiment"], counts),
        "variant": np.repeat(per_user["variant"], counts),
        "minutes": level * rng.gamma(4.0, 0.25, rows),
    }


def ensure_data(kind: str, rows: int, seed: int, directory: Path) -> Path:
    """The cached file of ``kind`` ("units" or "sessions"), written once by
    :func:`splitlab.bench.analyzer.ensure_data` (chunked, atomic, same Parquet layout) with
    this suite's generator and file name."""
    make = {"units": unit_chunk, "sessions": session_chunk}[kind]
    version = DATA_VERSIONS[kind]
    path = directory / f"analyzer-methods-{kind}-v{version}-rows{rows}-seed{seed}.parquet"
    return base.ensure_data(rows, seed, directory, make=make, path=path)


# --------------------------------------------------------------------------- routes


def regression_metrics():
    from splitlab import Metric

    return [Metric(y, covariate=list(xs)) for y, xs in COVARIATES.items()]


def quantile_metrics():
    from splitlab import Metric

    return [Metric(name, column="latency", kind="quantile", quantile=q) for name, q in QUANTILES]


def ratio_metrics():
    from splitlab import Metric

    return [
        Metric(name, kind="ratio", numerator=m, denominator=d, covariate=(m_pre, d_pre))
        for name, (m, d, m_pre, d_pre) in RATIOS.items()
    ]


def cluster_metrics():
    from splitlab import Metric

    return [Metric("minutes")]


def regression_sums() -> list[tuple[str, str]]:
    """(alias, SQL expression) of (a)'s sums: per metric Σy, Σy², Σx_j, Σx_j·x_k (j ≤ k)
    and Σx_j·y, named ``{y}__y``, ``{y}__y_y``, ``{y}__x{j}``, ``{y}__x{j}_x{k}``,
    ``{y}__x{j}_y``."""
    sums = []
    for y, xs in COVARIATES.items():
        sums += [(f"{y}__y", f"sum({y})"), (f"{y}__y_y", f"sum({y} * {y})")]
        sums += [(f"{y}__x{j}", f"sum({x})") for j, x in enumerate(xs)]
        sums += [
            (f"{y}__x{j}_x{k}", f"sum({a} * {b})")
            for j, a in enumerate(xs)
            for k, b in enumerate(xs)
            if j <= k
        ]
        sums += [(f"{y}__x{j}_y", f"sum({x} * {y})") for j, x in enumerate(xs)]
    return sums


def _sums_sql(path: Path, sums: list[tuple[str, str]]) -> str:
    """The count and these (alias, SQL expression) sums in one group-by over the file."""
    parts = ["count(*) AS n"] + [f"{sql} AS {alias}" for alias, sql in sums]
    select = ",\n       ".join(parts)
    return (
        f"SELECT experiment, variant,\n       {select}\n"
        f"FROM read_parquet('{path}')\nGROUP BY experiment, variant"
    )


def regression_sql(path: Path) -> str:
    """(a): count and every sum a regression of each metric on its covariates needs
    (:func:`regression_sums`), in one group-by over the file."""
    return _sums_sql(path, regression_sums())


def ratio_sums() -> list[tuple[str, str]]:
    """(alias, SQL expression) of (d)'s sums: per ratio metric Σv, Σv² of its four columns
    v and their 6 cross products, named ``{metric}__{v}``, ``{metric}__{v}__{v}`` and
    ``{metric}__{v}__{w}`` with v, w among :data:`RATIO_VARIABLES`."""
    sums = []
    for name, columns in RATIOS.items():
        named = list(zip(RATIO_VARIABLES, columns, strict=True))
        sums += [(f"{name}__{v}", f"sum({column})") for v, column in named]
        sums += [(f"{name}__{v}__{v}", f"sum({column} * {column})") for v, column in named]
        sums += [
            (f"{name}__{named[i][0]}__{named[j][0]}", f"sum({named[i][1]} * {named[j][1]})")
            for i, j in RATIO_PRODUCTS
        ]
    return sums


def ratio_sql(path: Path) -> str:
    """(d): count and every sum the ratio CUPED test of each metric needs
    (:func:`ratio_sums`), in one group-by over the file."""
    return _sums_sql(path, ratio_sums())


def quantile_levels(counts) -> list[float]:
    """Every level splitlab's reduction computes for groups of these sizes: per ν of
    :data:`QUANTILES`, ν and the two interval levels of each n* in use."""
    from splitlab.stats.quantile import choose_n_star, interval_levels

    levels = []
    for _, nu in QUANTILES:
        needed = np.unique(choose_n_star(np.asarray(counts, float), nu))
        lower, upper = interval_levels(nu, needed)
        levels += [nu, *lower.tolist(), *upper.tolist()]
    return levels


def quantile_sql(path: Path, levels: list[float]) -> str:
    """(b): the non-missing count and one ``quantile_cont`` over a list of levels (DuckDB
    sorts each group's values once for all of them), per experiment/variant."""
    listed = ", ".join(repr(float(level)) for level in levels)
    return (
        "SELECT experiment, variant, count(latency) AS n,\n"
        f"       quantile_cont(latency, [{listed}]::DOUBLE[]) AS q\n"
        f"FROM read_parquet('{path}')\nGROUP BY experiment, variant"
    )


def point_quantile_sql(path: Path) -> str:
    """Diagnostic: the three point estimates alone, no interval bounds."""
    listed = ", ".join(repr(nu) for _, nu in QUANTILES)
    return (
        f"SELECT experiment, variant, count(latency) AS n, "
        f"quantile_cont(latency, [{listed}]::DOUBLE[]) AS q\n"
        f"FROM read_parquet('{path}')\nGROUP BY experiment, variant"
    )


def separate_quantile_sql(path: Path, levels: list[float]) -> str:
    """Diagnostic: (b) with one ``quantile_cont(latency, level)`` aggregate per level, the
    form narwhals writes (each aggregate keeps and sorts its own copy of a group's values)."""
    listed = ",\n       ".join(
        f"quantile_cont(latency, {float(level)!r}) AS q{index}"
        for index, level in enumerate(levels)
    )
    return (
        f"SELECT experiment, variant, count(latency) AS n,\n       {listed}\n"
        f"FROM read_parquet('{path}')\nGROUP BY experiment, variant"
    )


def count_sql(path: Path) -> str:
    """The non-missing latencies per group: the pass splitlab's reduction runs first (once
    per quantile metric) to choose each group's n*."""
    return (
        "SELECT experiment, variant, count(latency) AS n\n"
        f"FROM read_parquet('{path}')\nGROUP BY experiment, variant"
    )


def cluster_sql(path: Path) -> str:
    """(c): per (experiment, variant, user) the sum s of minutes and the sessions m; then
    per (experiment, variant) the users K and Σs, Σs², Σm, Σm², Σs·m (the delta method's
    sums of a ratio of per-user sums)."""
    return (
        "WITH per_user AS (\n"
        '    SELECT experiment, variant, "user", sum(minutes) AS s, count(*) AS m\n'
        f"    FROM read_parquet('{path}')\n"
        '    GROUP BY experiment, variant, "user")\n'
        "SELECT experiment, variant, count(*) AS n, sum(s) AS s, sum(s * s) AS s_s,\n"
        "       sum(m) AS m, sum(m * m) AS m_m, sum(s * m) AS s_m\n"
        "FROM per_user\nGROUP BY experiment, variant"
    )


def route_analyze(path: Path, metrics: Callable[[], list], **options):
    """The whole public call, from the path to the tidy results table."""
    from splitlab import Analyzer

    return Analyzer(str(path), **options).analyze(metrics())


def _engine_passes(analyzer, metrics: list) -> tuple[object, dict[str, object]]:
    """What ``analyze`` asks the engine for: the statistics table of the moment metrics (a
    count per group when there are none: the SRM check's) and, per quantile metric, its
    quantile summaries (``quantile_tables``: on DuckDB one group-by per column whose list
    ``quantile_cont`` gives every level of its metrics)."""
    moments = [metric for metric in metrics if metric.kind != "quantile"]
    statistics = analyzer._statistics(moments, [])
    quantiles = analyzer._quantile_statistics(
        [metric for metric in metrics if metric.kind == "quantile"], []
    )
    return statistics, quantiles


def route_query(path: Path, metrics: Callable[[], list], **options):
    """Diagnostic: splitlab's engine passes alone (open the source, build, collect to
    pandas; on this data the first reduction pass is the only one), without the tests."""
    from splitlab import Analyzer
    from splitlab.analyzer.metrics import as_metrics

    return _engine_passes(Analyzer(str(path), **options), as_metrics(metrics()))


def post_aggregation(path: Path, metrics: Callable[[], list], **options) -> Callable[[], object]:
    """Diagnostic: ``analyze`` on ready engine results (checks, SRM, tests, tidy frame,
    provenance), i.e. everything after the engine round trips."""
    from splitlab import Analyzer
    from splitlab.analyzer.metrics import as_metrics

    analyzer = Analyzer(str(path), **options)
    statistics, quantiles = _engine_passes(analyzer, as_metrics(metrics()))
    analyzer._statistics = lambda *_, **__: statistics.copy()
    analyzer._quantile_statistics = lambda *_: {name: t.copy() for name, t in quantiles.items()}
    return lambda: analyzer.analyze(metrics())


# --------------------------------------------------------------------------- checks


def _frame(rows: list[tuple], columns: list[str]):
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


def _pairs(sums):
    """(control, treatment) rows of every comparison, side by side (suffixes _c, _t)."""
    control = sums[sums["variant"] == "control"]
    treatment = sums[sums["variant"] != "control"]
    return treatment.merge(control, on="experiment", suffixes=("_t", "_c"))


def _compare(ours, reference, name: str, worst: dict[str, float], columns=("effect", "p_value")):
    """splitlab's rows of one metric against a reference frame (experiment, variant, ...)."""
    merged = ours.merge(
        reference, on=["experiment", "variant"], suffixes=("", "_duckdb"), validate="1:1"
    )
    if len(merged) != len(reference) or len(merged) == 0:
        raise AssertionError(f"{name}: comparisons do not match splitlab's")
    for column in columns:
        mine, theirs = merged[column].to_numpy(float), merged[f"{column}_duckdb"].to_numpy(float)
        tolerance = QUANTILE_RTOL if column.startswith("quantile") else RTOL
        np.testing.assert_allclose(mine, theirs, rtol=tolerance, atol=0, err_msg=f"{name} {column}")
        key = f"{name.split()[0]} {column}"
        worst[key] = max(worst.get(key, 0.0), float(np.max(np.abs(mine / theirs - 1.0))))


def _no_errors(result, name: str) -> None:
    if (result["error"] != "").any():
        raise AssertionError(f"{name}: splitlab flagged rows: {result['error'].unique()}")


def _one_pass(path: Path, metrics: Callable[[], list], method: str, label: str, sums):
    """splitlab's results of ``metrics`` — checked to be ``method``, error-free and reduced
    in one pass (no shifted second pass, so the hand-written SQL is the same work) — and
    DuckDB's ``sums`` of the same file, control beside treatment."""
    from splitlab import Analyzer
    from splitlab.analyzer.metrics import as_metrics

    ours = route_analyze(path, metrics)
    _no_errors(ours, label)
    statistics = Analyzer(str(path))._statistics(as_metrics(metrics()), [])
    origins = statistics[[c for c in statistics.columns if ".origin_" in c]].to_numpy()
    if np.any(origins != 0):
        raise AssertionError(
            f"{label}: splitlab shifted a column (a second pass): not {label}'s work"
        )
    if not ours["method"].eq(method).all():
        raise AssertionError(f"{label}: splitlab ran {ours['method'].unique()}, not {method}")
    names = ["experiment", "variant", "n"] + [alias for alias, _ in sums]
    return ours, _pairs(_frame(route_duckdb_sql(_sums_sql(path, sums)), names))


def check_regression(path: Path, worst: dict[str, float]) -> None:
    """(a)'s sums through ``CrossMoments.from_sums`` + ``regression_test`` vs splitlab; and
    the data is reduced in one pass (no shifted second pass, so (a) is the same work)."""
    import pandas as pd

    from splitlab.stats.regression import CrossMoments, regression_test

    ours, pairs = _one_pass(path, regression_metrics, "regression", "(a)", regression_sums())
    for y, xs in COVARIATES.items():
        p = len(xs) + 1
        variables = ["y"] + [f"x{j}" for j in range(len(xs))]
        arms = []
        for side in ("c", "t"):
            n = pairs[f"n_{side}"].to_numpy(float)
            sums = np.stack([pairs[f"{y}__{v}_{side}"].to_numpy(float) for v in variables], -1)
            cross = np.empty((len(pairs), p, p))
            for i, a in enumerate(variables):
                for j, b in enumerate(variables):
                    first, second = sorted((a, b), key=lambda v: (v == "y", v))
                    column = f"{y}__{first}_{second}_{side}"
                    cross[:, i, j] = pairs[column].to_numpy(float)
            arms.append(CrossMoments.from_sums(n, sums, cross))
        result = regression_test(*arms)
        reference = pd.DataFrame(
            {
                "experiment": pairs["experiment"],
                "variant": pairs["variant_t"],
                "effect": result.effect,
                "p_value": result.p_value,
            }
        )
        _compare(ours[ours["metric"] == y], reference, f"(a) {y}", worst)


def check_ratio_cuped(path: Path, worst: dict[str, float]) -> None:
    """(d)'s sums through ``ratio_cross_moments`` + ``ratio_cuped_test`` vs splitlab's
    effect, p-value and θ; and the data is reduced in one pass, as for (a)."""
    import pandas as pd

    from splitlab.stats.ratio_adjustment import ratio_cross_moments, ratio_cuped_test

    ours, pairs = _one_pass(path, ratio_metrics, "ratio-cuped", "(d)", ratio_sums())
    squares = [f"{v}__{v}" for v in RATIO_VARIABLES]
    products = [f"{RATIO_VARIABLES[i]}__{RATIO_VARIABLES[j]}" for i, j in RATIO_PRODUCTS]
    for name in RATIOS:
        arms = []
        for side in ("c", "t"):
            sums, sum_squares, cross_products = (
                np.stack([pairs[f"{name}__{a}_{side}"].to_numpy(float) for a in aliases], -1)
                for aliases in (RATIO_VARIABLES, squares, products)
            )
            n = pairs[f"n_{side}"].to_numpy(float)
            arms.append(ratio_cross_moments(n, sums, sum_squares, cross_products))
        result = ratio_cuped_test(*arms)
        reference = pd.DataFrame(
            {
                "experiment": pairs["experiment"],
                "variant": pairs["variant_t"],
                "effect": result.effect,
                "p_value": result.p_value,
                "theta": result.theta,
            }
        )
        _compare(
            ours[ours["metric"] == name], reference, f"(d) {name}", worst,
            columns=("effect", "p_value", "theta"),
        )  # fmt: skip


def quantile_tables(path: Path, levels: list[float]):
    """(b)'s rows as one frame per ν: experiment, variant, n, n_star, quantile, lower, upper
    (each group's bounds are those of its own n*)."""
    from splitlab.stats.quantile import choose_n_star, interval_levels

    rows = route_duckdb_sql(quantile_sql(path, levels))
    frame = _frame(rows, ["experiment", "variant", "n", "q"])
    n = frame["n"].to_numpy(float)
    values = np.array(frame["q"].tolist(), dtype=float)
    position = {level: index for index, level in enumerate(levels)}
    tables = {}
    for name, nu in QUANTILES:
        n_star = choose_n_star(n, nu)
        lower, upper = interval_levels(nu, n_star)
        rows_index = np.arange(len(frame))
        table_ = frame[["experiment", "variant", "n"]].copy()
        table_["n_star"] = n_star
        table_["quantile"] = values[:, position[nu]]
        table_["lower"] = values[rows_index, [position[level] for level in lower.tolist()]]
        table_["upper"] = values[rows_index, [position[level] for level in upper.tolist()]]
        tables[name] = table_
    return tables


def check_quantiles(path: Path, levels: list[float], worst: dict[str, float]) -> None:
    """(b)'s quantiles equal splitlab's point estimates; its bounds through
    ``QuantileSummary`` + ``quantile_test`` give splitlab's effect and p-value."""
    import pandas as pd

    from splitlab.stats.quantile import QuantileSummary, quantile_test

    ours = route_analyze(path, quantile_metrics)
    _no_errors(ours, "(b)")
    tables = quantile_tables(path, levels)
    for name, nu in QUANTILES:
        pairs = _pairs(tables[name])
        arms = [
            QuantileSummary(
                pairs[f"n_{s}"], nu, pairs[f"quantile_{s}"], pairs[f"lower_{s}"],
                pairs[f"upper_{s}"], pairs[f"n_star_{s}"],
            )
            for s in ("c", "t")
        ]  # fmt: skip
        result = quantile_test(*arms)
        reference = pd.DataFrame(
            {
                "experiment": pairs["experiment"],
                "variant": pairs["variant_t"],
                "quantile_control": pairs["quantile_c"],
                "quantile_variant": pairs["quantile_t"],
                "effect": result.effect,
                "p_value": result.p_value,
            }
        )
        mine = ours[ours["metric"] == name].rename(
            columns={"mean_control": "quantile_control", "mean_variant": "quantile_variant"}
        )
        _compare(
            mine, reference, f"(b) {name}", worst,
            columns=("quantile_control", "quantile_variant", "effect", "p_value"),
        )  # fmt: skip


def check_cluster(path: Path, worst: dict[str, float]) -> None:
    """(c)'s sums through ``JointMoments.from_sums`` + ``ratio_test`` vs splitlab."""
    import pandas as pd

    from splitlab import JointMoments, ratio_test

    ours = route_analyze(path, cluster_metrics, cluster="user")
    _no_errors(ours, "(c)")
    columns = ["experiment", "variant", "n", "s", "s_s", "m", "m_m", "s_m"]
    pairs = _pairs(_frame(route_duckdb_sql(cluster_sql(path)), columns))
    arms = [
        JointMoments.from_sums(
            *(pairs[f"{c}_{side}"].to_numpy(float) for c in ("n", "s", "s_s", "m", "m_m", "s_m"))
        )
        for side in ("c", "t")
    ]
    result = ratio_test(*arms)
    reference = pd.DataFrame(
        {
            "experiment": pairs["experiment"],
            "variant": pairs["variant_t"],
            "effect": result.effect,
            "p_value": result.p_value,
        }
    )
    _compare(ours, reference, "(c) minutes", worst)


# --------------------------------------------------------------------------- report

BUDGETED = {
    "splitlab_regression": "duckdb_regression",
    "splitlab_quantile": "duckdb_quantile",
    "splitlab_ratio_cuped": "duckdb_ratio_cuped",
}
BUDGETS = {
    "splitlab_regression": MAX_RATIO_REGRESSION,
    "splitlab_quantile": MAX_RATIO_QUANTILE,
    "splitlab_ratio_cuped": MAX_RATIO_RATIO_CUPED,
}
# (route, its baseline, label), in table order; sections are the four methods
SECTIONS = {
    "Regression adjustment: 3 metrics x 5 covariates": [
        ("splitlab_regression", "duckdb_regression",
         "(1) splitlab `Analyzer(path).analyze(3 metrics, covariate=[5 columns])`"),
        ("duckdb_regression", "duckdb_regression",
         "(a) DuckDB hand-written group-by: n, Σy, Σy², Σx_j, Σx_j·x_k, Σx_j·y (82 aggregates)"),
        ("explain_regression", "duckdb_regression",
         "diagnostic: the SQL `Analyzer.explain()` prints, run by DuckDB directly"),
        ("query_regression", "duckdb_regression",
         "diagnostic: splitlab engine pass only (open, build, collect -> pandas)"),
        ("post_regression", "duckdb_regression",
         "diagnostic: after the aggregation (checks, SRM, 3 `regression_test`s, tidy frame)"),
    ],
    "Quantile metrics: median, p90, p99 of latency": [
        ("splitlab_quantile", "duckdb_quantile",
         "(2) splitlab `Analyzer(path).analyze([latency_p50, latency_p90, latency_p99])`"),
        ("duckdb_quantile", "duckdb_quantile",
         "(b) DuckDB `count` + `quantile_cont(latency, [ν, bounds' levels of each n*])`"),
        ("duckdb_point_quantile", "duckdb_quantile",
         "diagnostic: DuckDB `quantile_cont(latency, [0.5, 0.9, 0.99])` (no bounds)"),
        ("duckdb_separate_quantile", "duckdb_quantile",
         "diagnostic: (b) with one `quantile_cont(latency, level)` per level (narwhals' form)"),
        ("duckdb_count", "duckdb_quantile",
         "diagnostic: DuckDB `count(latency)` per group (the pass that chooses n*)"),
        ("query_quantile", "duckdb_quantile",
         "diagnostic: splitlab engine passes only (a count per group; per metric a count, "
         "then the quantile and bounds)"),
        ("post_quantile", "duckdb_quantile",
         "diagnostic: after the engine passes (checks, SRM, 3 `quantile_test`s, tidy frame)"),
    ],
    "Clustered mean: session rows, cluster=\"user\" (diagnostic, no budget)": [
        ("splitlab_cluster", "duckdb_cluster",
         "(3) splitlab `Analyzer(sessions, cluster=\"user\").analyze([Metric(\"minutes\")])`"),
        ("duckdb_cluster", "duckdb_cluster",
         "(c) DuckDB two-level group-by: per user Σy, m; per arm K, Σs, Σs², Σm, Σm², Σs·m"),
        ("query_cluster", "duckdb_cluster",
         "diagnostic: splitlab engine pass only (open, build, collect -> pandas)"),
        ("post_cluster", "duckdb_cluster",
         "diagnostic: after the aggregation (checks, SRM, `ratio_test`, tidy frame)"),
    ],
    "Ratio CUPED: 3 ratio metrics adjusted by their pre-period ratio": [
        ("splitlab_ratio_cuped", "duckdb_ratio_cuped",
         "(4) splitlab `Analyzer(path).analyze(3 ratio metrics, covariate=(m_pre, d_pre))`"),
        ("duckdb_ratio_cuped", "duckdb_ratio_cuped",
         "(d) DuckDB hand-written group-by: n, Σv, Σv², Σv·w of (m, d, m_pre, d_pre) "
         "(43 aggregates)"),
        ("explain_ratio_cuped", "duckdb_ratio_cuped",
         "diagnostic: the SQL `Analyzer.explain()` prints, run by DuckDB directly"),
        ("query_ratio_cuped", "duckdb_ratio_cuped",
         "diagnostic: splitlab engine pass only (open, build, collect -> pandas)"),
        ("post_ratio_cuped", "duckdb_ratio_cuped",
         "diagnostic: after the aggregation (checks, SRM, 3 `ratio_cuped_test`s, tidy frame)"),
    ],
}  # fmt: skip


def route_functions(
    units: Path, sessions: Path, levels: list[float]
) -> dict[str, Callable[[], object]]:
    """Every timed function, from the paths."""
    from splitlab import Analyzer

    explain = Analyzer(str(units)).explain(regression_metrics())
    explain_ratio = Analyzer(str(units)).explain(ratio_metrics())
    sql = {
        "regression": regression_sql(units),
        "ratio_cuped": ratio_sql(units),
        "quantile": quantile_sql(units, levels),
        "point": point_quantile_sql(units),
        "separate": separate_quantile_sql(units, levels),
        "count": count_sql(units),
        "cluster": cluster_sql(sessions),
    }
    functions: dict[str, Callable[[], object]] = {
        "splitlab_regression": lambda: route_analyze(units, regression_metrics),
        "duckdb_regression": lambda: route_duckdb_sql(sql["regression"]),
        "explain_regression": lambda: route_duckdb_sql(explain),
        "query_regression": lambda: route_query(units, regression_metrics),
        "post_regression": post_aggregation(units, regression_metrics),
    }
    functions.update(
        {
            "splitlab_quantile": lambda: route_analyze(units, quantile_metrics),
            "duckdb_quantile": lambda: route_duckdb_sql(sql["quantile"]),
            "duckdb_point_quantile": lambda: route_duckdb_sql(sql["point"]),
            "duckdb_separate_quantile": lambda: route_duckdb_sql(sql["separate"]),
            "duckdb_count": lambda: route_duckdb_sql(sql["count"]),
            "query_quantile": lambda: route_query(units, quantile_metrics),
            "post_quantile": post_aggregation(units, quantile_metrics),
            "splitlab_cluster": lambda: route_analyze(sessions, cluster_metrics, cluster="user"),
            "duckdb_cluster": lambda: route_duckdb_sql(sql["cluster"]),
            "query_cluster": lambda: route_query(sessions, cluster_metrics, cluster="user"),
            "post_cluster": post_aggregation(sessions, cluster_metrics, cluster="user"),
            "splitlab_ratio_cuped": lambda: route_analyze(units, ratio_metrics),
            "duckdb_ratio_cuped": lambda: route_duckdb_sql(sql["ratio_cuped"]),
            "explain_ratio_cuped": lambda: route_duckdb_sql(explain_ratio),
            "query_ratio_cuped": lambda: route_query(units, ratio_metrics),
            "post_ratio_cuped": post_aggregation(units, ratio_metrics),
        }
    )
    return functions


def verdict(route: str, wall: dict[str, float]) -> str:
    if route not in BUDGETED:
        return "—"
    ratio = wall[route] / wall[BUDGETED[route]]
    return f"{'PASS' if ratio <= BUDGETS[route] else 'FAIL'} (<= {BUDGETS[route]:g}x)"


def section_table(rows, wall: dict[str, float], cpu: dict[str, float]) -> str:
    body = []
    for route, baseline, label in rows:
        body.append(
            [
                label,
                format_seconds(wall[route]),
                f"{wall[route] / wall[baseline]:.2f}x",
                format_seconds(cpu[route]),
                f"{cpu[route] / cpu[baseline]:.2f}x",
                verdict(route, wall),
            ]
        )
    headers = ["route", "wall time", "ratio vs DuckDB", "CPU time", "CPU ratio", "budget"]
    return table(headers, body, align="lrrrrc")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows in each file")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds; the best is kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "splitlab-bench",
        help="where the generated Parquet files are cached",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=results_dir() / "analyzer_methods.md")
    return parser


def main(
    argv: list[str] | None = None, *, command: str | None = None, progress: Progress | None = None
) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.rows < 10_000 or args.repeats < 1:
        parser.error("--rows must be >= 10000 and --repeats positive")
    provenance = Provenance.start(
        command=command or script_command(argv, "benchmarks/analyzer_methods.py"),
        seed=args.seed,
        parameters={"rows": args.rows, "repeats": args.repeats, "data_dir": args.data_dir},
        libraries=("duckdb", "narwhals", "pandas", "numpy", "scipy"),
    )
    progress = progress or Progress()
    progress.start("analyzer_methods", total=4)

    import duckdb

    units = ensure_data("units", args.rows, args.seed, args.data_dir)
    sessions = ensure_data("sessions", args.rows, args.seed, args.data_dir)
    progress.step("data")

    levels = quantile_levels([row[2] for row in route_duckdb_sql(count_sql(units))])
    worst: dict[str, float] = {}
    check_regression(units, worst)
    check_quantiles(units, levels, worst)
    check_cluster(sessions, worst)
    check_ratio_cuped(units, worst)
    print("equal work: " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    progress.step("equal work checked")

    functions = route_functions(units, sessions, levels)
    load = load_average()[0]
    wall, cpu = best_times(functions, args.repeats)
    load_after = load_average()[0]
    print({name: (round(wall[name], 3), round(cpu[name], 3)) for name in functions})
    progress.step("timed")
    threads = duckdb.connect().sql("SELECT current_setting('threads')").fetchall()[0][0]
    users = route_duckdb_sql(
        f"SELECT count(DISTINCT \"user\") FROM read_parquet('{sessions}')"
    )[0][0]  # fmt: skip
    progress.step("report")
    progress.finish()

    tables = "\n\n".join(
        f"## {title}\n\n{section_table(rows, wall, cpu)}" for title, rows in SECTIONS.items()
    )
    worst_text = ", ".join(f"{k} {v:.1e}" for k, v in worst.items())

    def difference(plus: str, minus: str, *, absolute: bool = False) -> str:
        """``plus`` − ``minus`` (or ``plus`` alone), in ms and as a share of ``minus``."""
        value = wall[plus] - (0.0 if absolute else wall[minus])
        return f"{value * 1e3:+,.0f} ms ({value / wall[minus]:+.0%})"

    methods = (
        ("regression", "(1) − (a)"),
        ("quantile", "(2) − (b)"),
        ("cluster", "(3) − (c)"),
        ("ratio_cuped", "(4) − (d)"),
    )
    breakdown = table(
        ["method", "splitlab − DuckDB", "engine passes − DuckDB", "after the engine passes"],
        [
            [
                f"{name} {label}",
                difference(f"splitlab_{name}", f"duckdb_{name}"),
                difference(f"query_{name}", f"duckdb_{name}"),
                difference(f"post_{name}", f"duckdb_{name}", absolute=True),
            ]
            for name, label in methods
        ],
        align="lrrr",
    )
    budgets = "; ".join(
        f"{name} {wall[f'splitlab_{name}'] / wall[f'duckdb_{name}']:.2f}x "
        f"({verdict(f'splitlab_{name}', wall) if name != 'cluster' else 'no budget'})"
        for name, _ in methods
    )
    separate = wall["duckdb_separate_quantile"] / wall["duckdb_quantile"]
    count = wall["duckdb_count"] / wall["duckdb_quantile"]
    size_units = units.stat().st_size / 2**20
    size_sessions = sessions.stat().st_size / 2**20
    level_text = ", ".join(f"{level:.6g}" for level in levels)
    ratios_text = ", ".join(
        f"{name} = {m}/{d} adjusted by {m_pre}/{d_pre}"
        for name, (m, d, m_pre, d_pre) in RATIOS.items()
    )
    report = f"""# Analysis methods: regression, ratio CUPED, quantiles and clusters vs DuckDB

Budgets (the issue): {args.rows:,}-row Parquet, 3 metrics with 5 covariates each, end to end
within {MAX_RATIO_REGRESSION:g}x of DuckDB's own group-by of the same sums; median, p90 and
p99 within {MAX_RATIO_QUANTILE:g}x of DuckDB's own `quantile_cont` of the same quantiles and
interval bounds; 3 ratio metrics adjusted by their pre-period ratio (ratio CUPED) within
{MAX_RATIO_RATIO_CUPED:g}x of DuckDB's own group-by of the same sums.
Measured (wall-time ratios): {budgets}.

Input: `{units.name}` ({args.rows:,} unit rows, {size_units:,.0f} MiB: 5 experiments, 8
(control, treatment) comparisons, revenue/sessions/minutes each with 5 covariates
({", ".join(f"{y}: {', '.join(xs)}" for y, xs in COVARIATES.items())}; sessions and the count
covariates BIGINT, the rest DOUBLE; no nulls), latency (DOUBLE, ms) and the ratio metrics'
columns ({ratios_text}; pageviews, clicks and active days BIGINT)) and `{sessions.name}`
({args.rows:,} session rows of {users:,} users, {size_sessions:,.0f} MiB: user, experiment,
variant, minutes). Wall time from the path to the result and CPU time (user + system,
DuckDB's threads included), best of {args.repeats} interleaved rounds after one warm-up call
each, in one process; DuckDB runs with {threads} threads in every route; 1-minute load
average before / after timing: {load:.2f} / {load_after:.2f} on {usable_cores()} cores (other
processes share the machine: wall times are inflated, CPU times much less so; the budget
verdicts use wall time).
Equal work checked before timing, to {RTOL:g} relative: (a)'s sums through
`CrossMoments.from_sums` + `regression_test`, (b)'s bounds through `QuantileSummary` +
`quantile_test` and (c)'s sums through `JointMoments.from_sums` + `ratio_test` give
splitlab's effect and p-value, (d)'s sums through `ratio_cross_moments` + `ratio_cuped_test`
its effect, p-value and θ, and (b)'s quantiles splitlab's point estimates (to
{QUANTILE_RTOL:g}); splitlab reduced the unit file in one pass (no shifted second pass) for
(1) and (4).
Largest relative differences: {worst_text}.
Quantile levels of (b) (ν and the interval levels of each n* splitlab's reduction uses for
these group sizes; the hand SQL is given them): {level_text}.

{provenance.block()}

{tables}

## Where splitlab's time goes

Differences of rows above, percentages of DuckDB's time (1 + 2 = total, up to the rounds'
noise): 1. splitlab's engine passes alone (open, build, run, collect to pandas) − DuckDB;
2. everything after them.

{breakdown}

Regression: the SQL splitlab generates (`Analyzer.explain()`: casts, `fill_nan`/`fill_null`
of every column, each sum over the cleaned columns), run by DuckDB directly, costs
{difference("explain_regression", "duckdb_regression")} over the hand SQL; for ratio CUPED
(the same cleaning, then the 14 sums of each metric's 4 columns; splitlab centres them after
the round trip) {difference("explain_ratio_cuped", "duckdb_ratio_cuped")}.
Quantiles: splitlab asks the engine for a count per group (the SRM check's), then per metric
a count pass (to choose n*) and a pass with one `quantile_cont` per level; in DuckDB one
aggregate per level instead of one list costs {separate:.2f}x (b) (each aggregate gathers its
own copy of a group's values), and a count pass {count:.2f}x (b).

<details><summary>SQL of (a)</summary>

```sql
{regression_sql(units)}
```
</details>

<details><summary>SQL of (b)</summary>

```sql
{quantile_sql(units, levels)}
```
</details>

<details><summary>SQL of (c)</summary>

```sql
{cluster_sql(sessions)}
```
</details>

<details><summary>SQL of (d)</summary>

```sql
{ratio_sql(units)}
```
</details>
"""
    print(report)
    write_text(args.out, report)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
