"""The routes of the batch-analysis benchmark (``splitlab.bench.analyzer``), in a module of
their own so that a child process can run one route without importing the splitlab package
(only a route that needs splitlab imports it): the peak-memory measurement runs

    python -c "import runpy ..." analyzer_routes.py ROUTE PATH

and reads its JSON line. Nothing here imports splitlab at the top.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

METRICS = (("revenue", "pre_revenue"), ("sessions", "pre_sessions"), ("minutes", "pre_minutes"))
EXPERIMENTS = {
    "exp_0": ("control", "treatment_a", "treatment_b"),
    "exp_1": ("control", "treatment_a", "treatment_b"),
    "exp_2": ("control", "treatment_a", "treatment_b"),
    "exp_3": ("control", "treatment"),
    "exp_4": ("control", "treatment"),
}
ROUTES = ("splitlab", "duckdb", "pandas")
DIAGNOSTICS = (
    "duckdb_null",
    "duckdb_nan",
    "duckdb_explain_sql",
    "splitlab_query",
    "narwhals_no_nan",
)


# --------------------------------------------------------------------------- routes


def splitlab_metrics():
    from splitlab import Metric

    return [Metric(y, covariate=x) for y, x in METRICS]


def route_splitlab(path: Path):
    """(1) The whole public call, from the path to the tidy results table."""
    from splitlab import Analyzer

    return Analyzer(str(path)).analyze(splitlab_metrics())


def hand_sql(path: Path, *, clean: str = "") -> str:
    """The sufficient statistics in one group-by, as one would write it by hand. ``clean``
    adds splitlab's per-column steps: "null" = ``COALESCE(CAST(c AS DOUBLE), 0)`` (its
    ``cast(Float64).fill_null(0)``), "nan" = that plus ``fill_nan(0)``'s
    ``CASE WHEN isnan(c) THEN 0 ELSE c END``, as narwhals writes them."""

    def column(name: str) -> str:
        value = f"CAST({name} AS DOUBLE)"
        if clean == "nan":
            value = f"(CASE WHEN isnan({value}) THEN 0.0 ELSE {value} END)"
        return f"COALESCE({value}, 0.0)" if clean else name

    parts = ["count(*) AS n"]
    for y_name, x_name in METRICS:
        y, x = column(y_name), column(x_name)
        parts += [
            f"sum({y}) AS {y_name}_sum_y",
            f"sum({y} * {y}) AS {y_name}_sum_y2",
            f"sum({x}) AS {y_name}_sum_x",
            f"sum({x} * {x}) AS {y_name}_sum_x2",
            f"sum({x} * {y}) AS {y_name}_sum_xy",
        ]
    select = ",\n       ".join(parts)
    return (
        f"SELECT experiment, variant,\n       {select}\n"
        f"FROM read_parquet('{path}')\nGROUP BY experiment, variant"
    )


def route_duckdb(path: Path, *, clean: str = ""):
    """(a) DuckDB's own group-by over the file."""
    import duckdb

    return duckdb.connect().sql(hand_sql(path, clean=clean)).fetchall()


def route_duckdb_sql(sql: str):
    """Diagnostic: the SQL splitlab generates, run by DuckDB directly."""
    import duckdb

    return duckdb.connect().sql(sql).fetchall()


def route_splitlab_query(path: Path):
    """Diagnostic: the narwhals query alone (open source, build, collect to pandas)."""
    from splitlab.analyzer.aggregate import build_query
    from splitlab.sources import open_source

    source = open_source(str(path))
    assert source.columns  # the schema look-up Analyzer.__init__ does
    query = build_query(
        source.frame, experiment="experiment", variant="variant", metrics=splitlab_metrics()
    )
    return query.collect()


def route_narwhals_without_nan(path: Path):
    """Diagnostic: the narwhals query ``build_query`` writes for these metrics (select,
    cast + fill_null, alias, group-by sums; then Arrow -> pandas), minus ``fill_nan``: what
    splitlab would cost without its NaN step."""
    import narwhals as nw

    from splitlab.sources import open_source

    source = open_source(str(path))
    assert source.columns
    values = [column for pair in METRICS for column in pair]
    lazy = source.frame.select("experiment", "variant", *values).with_columns(
        nw.col(column).cast(nw.Float64).fill_null(0.0) for column in values
    )
    lazy = lazy.with_columns(
        *(nw.col(y).alias(f"__y{i}") for i, (y, _) in enumerate(METRICS)),
        *(nw.col(x).alias(f"__x{i}") for i, (_, x) in enumerate(METRICS)),
    )
    aggregations = [nw.len().alias("n")]
    for index in range(len(METRICS)):
        y, x = nw.col(f"__y{index}"), nw.col(f"__x{index}")
        aggregations += [
            y.sum().alias(f"__m{index}_sum_y"),
            (y * y).sum().alias(f"__m{index}_sum_y2"),
            x.sum().alias(f"__m{index}_sum_x"),
            (x * x).sum().alias(f"__m{index}_sum_x2"),
            (x * y).sum().alias(f"__m{index}_sum_xy"),
        ]
    return lazy.group_by("experiment", "variant").agg(*aggregations).collect().to_pandas()


def route_pandas(path: Path):
    """(b) pandas + scipy by hand: per comparison, θ = cov(y, x)/var(x) pooled over the
    two arms (np.cov), adjusted values y − θx, Welch t-test on them."""
    import pandas as pd
    from scipy import stats

    columns = ["experiment", "variant", *(c for pair in METRICS for c in pair)]
    frame = pd.read_parquet(path, columns=columns)
    rows = []
    for experiment, group in frame.groupby("experiment", sort=True):
        arms = {variant: arm for variant, arm in group.groupby("variant", sort=True)}
        control = arms.pop("control")
        for variant, treatment in arms.items():
            for y_name, x_name in METRICS:
                y_c = control[y_name].to_numpy(dtype=float)
                x_c = control[x_name].to_numpy(dtype=float)
                y_t = treatment[y_name].to_numpy(dtype=float)
                x_t = treatment[x_name].to_numpy(dtype=float)
                covariance = np.cov(np.concatenate([y_c, y_t]), np.concatenate([x_c, x_t]))
                theta = covariance[0, 1] / covariance[1, 1]
                adjusted_c = y_c - theta * x_c
                adjusted_t = y_t - theta * x_t
                test = stats.ttest_ind(adjusted_t, adjusted_c, equal_var=False)
                rows.append(
                    {
                        "experiment": experiment,
                        "metric": y_name,
                        "variant": variant,
                        "effect": adjusted_t.mean() - adjusted_c.mean(),
                        "statistic": float(test.statistic),
                        "p_value": float(test.pvalue),
                    }
                )
    return pd.DataFrame(rows)


def route_functions(path: Path, explain_sql: str | None = None) -> dict[str, Callable[[], object]]:
    functions = {
        "splitlab": lambda: route_splitlab(path),
        "duckdb": lambda: route_duckdb(path),
        "pandas": lambda: route_pandas(path),
        "duckdb_null": lambda: route_duckdb(path, clean="null"),
        "duckdb_nan": lambda: route_duckdb(path, clean="nan"),
        "splitlab_query": lambda: route_splitlab_query(path),
        "narwhals_no_nan": lambda: route_narwhals_without_nan(path),
    }
    if explain_sql is not None:
        functions["duckdb_explain_sql"] = lambda: route_duckdb_sql(explain_sql)
    return functions


def max_rss_mib() -> float:
    """This process's peak RSS. ``VmHWM`` is the high-water mark of the process's own
    address space; ``ru_maxrss`` is not used where VmHWM exists because Linux carries the
    parent's high-water mark over fork + exec into it, so a child forked from this 1 GiB
    benchmark process would report >= 1 GiB whatever it did."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child_main(route: str, path: Path) -> int:
    """Run one route once in this fresh process; print its peak RSS as JSON."""
    import duckdb  # noqa: F401  (every route's heavy imports, before the baseline reading)

    if route != "duckdb":
        import pandas  # noqa: F401
        import scipy.stats  # noqa: F401
    if route.startswith("splitlab"):
        import splitlab.analyzer  # noqa: F401
    before = max_rss_mib()
    function = route_functions(path)[route]
    start = time.perf_counter()
    function()
    seconds = time.perf_counter() - start
    print(json.dumps({"imports_mib": before, "peak_mib": max_rss_mib(), "seconds": seconds}))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run one route once; print its peak RSS.")
    parser.add_argument("--route", choices=ROUTES + DIAGNOSTICS, required=True)
    parser.add_argument("--path", type=Path, required=True)
    arguments = parser.parse_args()
    sys.exit(child_main(arguments.route, arguments.path))
