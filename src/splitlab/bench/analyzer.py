"""End-to-end batch analysis of a Parquet file: splitlab's Analyzer against DuckDB and pandas.

Budget (docs/architecture.md, "Performance budgets"): a 10^7-row Parquet file, 3 metrics with
CUPED, end to end within 2x of DuckDB's own group-by over the same file; memory bounded by
the aggregation, not the rows.

Input: ``--rows`` seeded unit rows, generated once and cached in ``--data-dir`` (outside the
repository): 5 experiments (three with arms control/treatment_a/treatment_b, two with
control/treatment), and 3 metrics each with its pre-period covariate: revenue/pre_revenue
(zero-inflated, skewed), sessions/pre_sessions (integer counts), minutes/pre_minutes.
Routes, each timed end to end from the file path (wall time, best of ``--repeats``
interleaved rounds after one warm-up call each):

(1) splitlab: ``Analyzer(path).analyze([Metric(m, covariate=pre_m) for m in metrics])``.
(a) DuckDB: one hand-written group-by computing the same sufficient statistics
    (count, Σy, Σy², Σx, Σx², Σxy per metric per experiment/variant) with
    ``duckdb.connect().sql(SQL).fetchall()``: the ratio's denominator, budget <= 2x.
(b) pandas + scipy: ``pd.read_parquet`` then groupby and, per comparison, pooled θ from
    ``np.cov``, adjusted values y − θx and a Welch ``scipy.stats.ttest_ind``: splitlab must
    be faster.

Before timing, splitlab's effect and p-value are checked against route (b)'s to 1e-6
relative, and route (a)'s sums fed through ``splitlab.cuped_test`` against splitlab's, so the
routes do equal work. Diagnostic rows (not budgeted) split splitlab's time: the hand SQL with
splitlab's cast/COALESCE steps, the exact SQL ``Analyzer.explain()`` prints run by DuckDB
directly, and the narwhals query alone (build + collect to pandas, without the tests).
Peak memory: every route runs again once in a fresh subprocess that runs
``analyzer_routes.py`` as a script (so it imports only what the route needs) and reports its
peak resident set (``VmHWM``) after imports and after the route, at each of
``--memory-rows`` (default 10^6 and ``--rows``).

    python benchmarks/analyzer.py [--rows 10000000] [--repeats 3] \
        [--data-dir /tmp/splitlab-bench] [--out benchmarks/results/analyzer.md]
    splitlab bench speed [--quick]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from splitlab.bench import analyzer_routes
from splitlab.bench.analyzer_routes import (
    DIAGNOSTICS,
    EXPERIMENTS,
    METRICS,
    ROUTES,
    child_main,
    hand_sql,
    route_duckdb,
    route_functions,
    route_pandas,
    route_splitlab,
    splitlab_metrics,
)
from splitlab.bench.markdown import results_dir, write_text
from splitlab.bench.progress import Progress
from splitlab.bench.provenance import Provenance, load_average, script_command, usable_cores

QUICK = ("--rows", "200000", "--repeats", "1", "--memory-rows", "200000")
MAX_RATIO = 2.0
RTOL = 1e-6
CHUNK_ROWS = 1_000_000
ROW_GROUP_ROWS = 250_000
DATA_VERSION = 1  # bump when the generator changes, so cached files are not reused


# --------------------------------------------------------------------------- data


def data_path(rows: int, seed: int, directory: Path) -> Path:
    return directory / f"analyzer-v{DATA_VERSION}-rows{rows}-seed{seed}.parquet"


def make_chunk(rng: np.random.Generator, rows: int) -> dict[str, np.ndarray]:
    """Unit rows with true effects of 0-1.5% so that p-values spread over (0, 1)."""
    names = list(EXPERIMENTS)
    experiment = rng.integers(0, len(names), rows)
    arms = np.array([len(EXPERIMENTS[name]) for name in names])[experiment]
    arm = (rng.random(rows) * arms).astype(np.int64)
    variant_names = np.array(["control", "treatment_a", "treatment_b", "treatment"])
    two_armed = arms == 2
    variant_index = np.where(two_armed & (arm == 1), 3, arm)
    lift = 1.0 + 0.005 * arm * (experiment % 3)  # per (experiment, arm), control = 1

    buyer = rng.random(rows) < 0.3
    pre_revenue = np.where(buyer, rng.lognormal(2.5, 1.0, rows), 0.0)
    revenue = (
        np.where(rng.random(rows) < 0.3, 0.6 * pre_revenue + rng.lognormal(1.5, 1.0, rows), 0.0)
        * lift
    )
    activity = rng.gamma(2.0, 2.0, rows)
    pre_sessions = rng.poisson(activity)
    sessions = rng.poisson(activity * lift)
    pre_minutes = rng.gamma(3.0, 10.0, rows)
    minutes = (0.8 * pre_minutes + rng.gamma(2.0, 5.0, rows)) * lift
    return {
        "experiment": np.array(names)[experiment],
        "variant": variant_names[variant_index],
        "revenue": revenue,
        "pre_revenue": pre_revenue,
        "sessions": sessions.astype(np.int64),
        "pre_sessions": pre_sessions.astype(np.int64),
        "minutes": minutes,
        "pre_minutes": pre_minutes,
    }


def ensure_data(
    rows: int, seed: int, directory: Path, *, make=None, path: Path | None = None
) -> Path:
    """Write the seeded file once (chunk by chunk, so generation memory stays flat):
    ``make(rng, rows)`` gives a chunk's columns (default :func:`make_chunk`), ``path`` the
    file (default :func:`data_path`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    make = make or make_chunk
    path = path or data_path(rows, seed, directory)
    if path.exists():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    handle, temporary = tempfile.mkstemp(dir=directory, suffix=".parquet.tmp")
    os.close(handle)
    try:
        writer = None
        for index, offset in enumerate(range(0, rows, CHUNK_ROWS)):
            rng = np.random.default_rng([seed, index])
            chunk = make(rng, min(CHUNK_ROWS, rows - offset))
            table = pa.table(chunk)
            if writer is None:
                writer = pq.ParquetWriter(temporary, table.schema)
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        assert writer is not None
        writer.close()
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    size = path.stat().st_size / 2**20
    elapsed = time.perf_counter() - start
    print(f"generated {path} ({rows:,} rows, {size:.0f} MiB) in {elapsed:.1f} s")
    return path


def explain_sql(path: Path) -> str:
    from splitlab import Analyzer

    return Analyzer(str(path)).explain(splitlab_metrics())


# --------------------------------------------------------------------------- checks


def check_equal_work(path: Path) -> dict[str, float]:
    """splitlab vs (b) on effect, statistic and p-value; (a)'s sums through cuped_test vs
    splitlab. Returns the largest relative differences seen."""
    import pandas as pd

    from splitlab import JointMoments, cuped_test

    ours = route_splitlab(path)
    if (ours["error"] != "").any():
        raise AssertionError(f"splitlab flagged rows as errors: {ours['error'].unique()}")
    keys = ["experiment", "metric", "variant"]
    merged = ours.merge(route_pandas(path), on=keys, suffixes=("", "_pandas"), validate="1:1")
    if len(merged) != len(ours) or len(ours) != 8 * len(METRICS):
        raise AssertionError(f"expected {8 * len(METRICS)} comparisons, got {len(merged)}")
    statistic = merged["effect"] / merged["se"]
    worst = {}
    for name, mine, theirs in (
        ("effect", merged["effect"], merged["effect_pandas"]),
        ("statistic", statistic, merged["statistic"]),
        ("p_value", merged["p_value"], merged["p_value_pandas"]),
    ):
        np.testing.assert_allclose(mine, theirs, rtol=RTOL, atol=0, err_msg=f"(b): {name}")
        worst[f"(b) {name}"] = float(np.max(np.abs(mine / theirs - 1.0)))

    parts = ("sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy")
    columns = ["experiment", "variant", "n"] + [f"{y}_{part}" for y, _ in METRICS for part in parts]
    sums = pd.DataFrame(route_duckdb(path), columns=columns)
    control = sums[sums["variant"] == "control"]
    treatment = sums[sums["variant"] != "control"]
    pairs = treatment.merge(control, on="experiment", suffixes=("_t", "_c"))
    for y_name, _ in METRICS:
        arms = [
            JointMoments.from_sums(
                pairs[f"n_{side}"].to_numpy(float),
                *(pairs[f"{y_name}_{part}_{side}"].to_numpy(float) for part in parts),
            )
            for side in ("c", "t")
        ]  # fmt: skip
        result = cuped_test(*arms)
        reference = pd.DataFrame(
            {
                "experiment": pairs["experiment"],
                "variant": pairs["variant_t"],
                "effect": result.effect,
                "p_value": result.p_value,
            }
        )
        mine = ours[ours["metric"] == y_name].merge(
            reference, on=["experiment", "variant"], suffixes=("", "_duckdb"), validate="1:1"
        )
        if len(mine) != len(reference):
            raise AssertionError(f"(a): {y_name}: comparisons do not match splitlab's")
        for name in ("effect", "p_value"):
            np.testing.assert_allclose(
                mine[name], mine[f"{name}_duckdb"], rtol=RTOL, atol=0,
                err_msg=f"(a): {y_name} {name}",
            )  # fmt: skip
            worst[f"(a) {name}"] = max(
                worst.get(f"(a) {name}", 0.0),
                float(np.max(np.abs(mine[name] / mine[f"{name}_duckdb"] - 1.0))),
            )
    return worst


# --------------------------------------------------------------------------- timing


def cpu_seconds() -> float:
    """User + system CPU time of this process, DuckDB's worker threads included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def best_times(
    functions: dict[str, Callable[[], object]], repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Best-of-``repeats`` wall time and CPU time of each function after one warm-up call
    each; rounds are interleaved, every function once per round (see ab_summary.py). CPU
    time is the steadier number on a loaded machine (it does not count waiting for a core)."""
    for function in functions.values():
        function()
    wall = dict.fromkeys(functions, float("inf"))
    cpu = dict.fromkeys(functions, float("inf"))
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            for name, function in functions.items():
                start, start_cpu = time.perf_counter(), cpu_seconds()
                function()
                wall[name] = min(wall[name], time.perf_counter() - start)
                cpu[name] = min(cpu[name], cpu_seconds() - start_cpu)
                gc.collect()  # outside the timed region: drop the previous route's garbage
    finally:
        if enabled:
            gc.enable()
    return wall, cpu


# The child runs analyzer_routes.py as a script, so that it imports only what its route
# needs: a ``-m splitlab.bench...`` child would import the whole splitlab package first and
# inflate every route's baseline (DuckDB's by ~160 MiB). run_path adds nothing to sys.path.
CHILD = (
    "import runpy, sys; sys.argv = [sys.argv[1], '--route', sys.argv[2], '--path', sys.argv[3]]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def measure_memory(route: str, path: Path) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, analyzer_routes.__file__, route, str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(completed.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- steps


def step_functions(path: Path) -> dict[str, Callable[[], object]]:
    """splitlab's call cut into its steps, each timed on its own (no profiler overhead):
    open the source, build the narwhals query, run it in DuckDB and fetch to Arrow
    (narwhals ``collect``), the whole ``Query.collect`` (+ Arrow -> pandas, rename, sort),
    and everything after the aggregation (``analyze`` on a ready statistics table)."""
    from splitlab import Analyzer
    from splitlab.analyzer.aggregate import build_query

    metrics = splitlab_metrics()
    prepared = Analyzer(str(path))

    def build():
        return build_query(
            prepared.source.frame, experiment="experiment", variant="variant", metrics=metrics
        )

    query = build()
    statistics = prepared._statistics(metrics, [])
    post = Analyzer(str(path))
    post._statistics = lambda *_: statistics.copy()  # analyze() without the engine round trip
    return {
        "step_open": lambda: Analyzer(str(path)),
        "step_build": build,
        "step_engine": lambda: query.frame.collect(),
        "step_collect": query.collect,
        "step_post": lambda: post.analyze(metrics),
    }


STEPS = {
    "step_open": "open: `Analyzer(path)` (connect, `read_parquet` relation, schema)",
    "step_build": "build the narwhals query (no execution)",
    "step_engine": "run it: narwhals `collect()` = DuckDB execution + fetch to Arrow",
    "step_collect": "`Query.collect()`: the above + Arrow -> pandas, rename, sort",
    "step_post": "after the aggregation: checks, SRM, 3 `cuped_test`s, tidy frame, provenance",
}


def explain_analyze(sql: str) -> tuple[float, str]:
    """DuckDB's own profile of one query: total time and the operator tree."""
    import duckdb

    connection = duckdb.connect()
    rows = connection.sql("EXPLAIN ANALYZE " + sql).fetchall()
    text = rows[0][1]
    total = float("nan")
    for line in text.splitlines():
        if "Total Time:" in line:
            total = float(line.split("Total Time:")[1].strip(" │|s\n").rstrip("s"))
            break
    return total, text


# --------------------------------------------------------------------------- report


def format_seconds(seconds: float) -> str:
    return f"{seconds * 1e3:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


LABELS = {
    "splitlab": "(1) splitlab `Analyzer(path).analyze(3 CUPED metrics)`",
    "duckdb": "(a) DuckDB hand-written group-by, `connect().sql(...).fetchall()`",
    "pandas": "(b) pandas `read_parquet` + groupby + np.cov θ + scipy Welch",
    "duckdb_null": "diagnostic: (a) with `COALESCE(CAST(c AS DOUBLE), 0)` (cast + fill_null)",
    "duckdb_nan": "diagnostic: (a) with cast + fill_nan `CASE WHEN isnan(c) ...` + fill_null",
    "duckdb_explain_sql": "diagnostic: the SQL `Analyzer.explain()` prints, run by DuckDB directly",
    "splitlab_query": "diagnostic: splitlab query only (open, build, narwhals collect -> pandas)",
    "narwhals_no_nan": "diagnostic: the same narwhals query without `fill_nan`",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="unit rows in the file")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds; the best is kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "splitlab-bench",
        help="where the generated Parquet files are cached",
    )  # fmt: skip
    parser.add_argument(
        "--memory-rows", type=int, nargs="*", default=None,
        help="file sizes for the peak-RSS subprocesses (default: 10^6 and --rows)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=results_dir() / "analyzer.md")
    parser.add_argument("--route", choices=ROUTES + DIAGNOSTICS, help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    return parser


def main(
    argv: list[str] | None = None, *, command: str | None = None, progress: Progress | None = None
) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.route:
        return child_main(args.route, args.path)
    if args.rows < 1000 or args.repeats < 1:
        parser.error("--rows must be >= 1000 and --repeats positive")
    memory_rows = sorted(set(args.memory_rows or [min(1_000_000, args.rows), args.rows]))
    provenance = Provenance.start(
        command=command or script_command(argv, "benchmarks/analyzer.py"),
        seed=args.seed,
        parameters={
            "rows": args.rows, "repeats": args.repeats, "memory_rows": memory_rows,
            "data_dir": args.data_dir,
        },
        libraries=("duckdb", "narwhals", "pandas", "numpy", "scipy"),
    )  # fmt: skip
    progress = progress or Progress()
    routes = (*ROUTES, "splitlab_query", "narwhals_no_nan")
    progress.start("analyzer", total=3 + len(memory_rows) * len(routes) + 1)

    import duckdb

    paths = {rows: ensure_data(rows, args.seed, args.data_dir) for rows in memory_rows}
    path = paths.get(args.rows) or ensure_data(args.rows, args.seed, args.data_dir)
    progress.step("data")
    worst = check_equal_work(path)
    print("equal work: " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    progress.step("equal work checked")

    sql_splitlab = explain_sql(path)
    load = load_average()[0]
    functions = {**route_functions(path, sql_splitlab), **step_functions(path)}
    wall, cpu = best_times(functions, args.repeats)
    print({name: (round(wall[name], 3), round(cpu[name], 3)) for name in functions})
    load_after = load_average()[0]
    progress.step("timed")

    memory = {}
    for rows in memory_rows:
        for route in routes:
            memory[(route, rows)] = measure_memory(route, paths[rows])
            progress.step(f"peak memory, {route}, {rows:,} rows")
    print(memory)
    engine_hand, plan_hand = explain_analyze(hand_sql(path))
    engine_splitlab, plan_splitlab = explain_analyze(sql_splitlab)
    threads = duckdb.connect().sql("SELECT current_setting('threads')").fetchall()[0][0]
    progress.step("EXPLAIN ANALYZE")
    progress.finish()

    small, large = memory_rows[0], memory_rows[-1]

    def verdict(route: str) -> str:
        if route == "splitlab":
            return "PASS" if wall[route] <= MAX_RATIO * wall["duckdb"] else "FAIL"
        if route == "pandas":
            faster = wall["splitlab"] < wall["pandas"]
            return "PASS (splitlab faster)" if faster else "FAIL (splitlab slower)"
        return "—"

    def rss(route: str, rows: int) -> str:
        entry = memory.get((route, rows))
        if entry is None:
            return "—"
        return f"{entry['peak_mib']:,.0f} MiB (+{entry['peak_mib'] - entry['imports_mib']:,.0f})"

    lines = [
        f"| route | wall time | ratio vs (a) | CPU time | CPU ratio vs (a) "
        f"| peak RSS, {small:,} rows | peak RSS, {large:,} rows | budget |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: |",
    ]
    for route in (*ROUTES, *DIAGNOSTICS):
        lines.append(
            f"| {LABELS[route]} | {format_seconds(wall[route])} | "
            f"{wall[route] / wall['duckdb']:.2f}x | {format_seconds(cpu[route])} | "
            f"{cpu[route] / cpu['duckdb']:.2f}x | {rss(route, small)} | {rss(route, large)} | "
            f"{verdict(route)} |"
        )
    table = "\n".join(lines)

    def growth(route: str) -> float:
        return memory[(route, large)]["peak_mib"] - memory[(route, small)]["peak_mib"]

    growth_text = ", ".join(
        f"{route} {growth(route):+,.0f} MiB" for route in (*ROUTES, "splitlab_query")
    )
    memory_ok = growth("splitlab") <= growth("duckdb") + 32
    steps_text = "\n".join(
        f"| {label} | {format_seconds(wall[name])} | {format_seconds(cpu[name])} |"
        for name, label in STEPS.items()
    )
    overhead = wall["splitlab"] - wall["duckdb"]

    def difference(plus: str, minus: str | tuple[str, ...], label: str) -> str:
        minus = (minus,) if isinstance(minus, str) else minus
        row = []
        for times in (wall, cpu):
            value = times[plus] - sum(times[name] for name in minus)
            row.append(f"{value * 1e3:+,.0f} ms ({value / times['duckdb']:+.0%})")
        return f"| {label} | {row[0]} | {row[1]} |"

    decomposition = "\n".join(
        [
            difference("splitlab", "duckdb", "**total: (1) splitlab − (a)**"),
            difference(
                "splitlab_query", "narwhals_no_nan", "1. `fill_nan(0)` on every value column"
            ),
            difference(
                "narwhals_no_nan", "duckdb",
                "2. rest of the query path: open + build (Python), narwhals relation, "
                "Arrow -> pandas",
            ),
            difference("splitlab", "splitlab_query", "3. after the aggregation"),
            difference("duckdb_null", "duckdb", "SQL form: cast + `COALESCE` (fill_null)"),
            difference("duckdb_nan", "duckdb_null", "SQL form: the `isnan` CASE (fill_nan)"),
            difference("duckdb_explain_sql", "duckdb", "SQL form: `Analyzer.explain()` text"),
        ]
    )  # fmt: skip
    worst_text = ", ".join(f"{k} {v:.1e}" for k, v in worst.items())
    size = path.stat().st_size / 2**20
    report = f"""# Batch analysis: Analyzer over a Parquet file vs DuckDB and pandas

Budget (docs/architecture.md): {args.rows:,}-row Parquet, 3 metrics with CUPED, end to end within
{MAX_RATIO:g}x of DuckDB's own group-by over the same file; memory bounded by the
aggregation, not the rows.

Input: `{path.name}` ({args.rows:,} unit rows, {size:,.0f} MiB, {len(EXPERIMENTS)} experiments,
8 (control, treatment) comparisons, metrics revenue/sessions/minutes each with its pre-period
covariate; sessions are BIGINT, the rest DOUBLE; no nulls). Wall time from the path to the
result, and CPU time (user + system, DuckDB's threads included), best of {args.repeats}
interleaved rounds after one warm-up call each, in one process;
DuckDB runs with {threads} threads (both cores) in every DuckDB-based route; 1-minute load
average before / after timing: {load:.2f} / {load_after:.2f} on {usable_cores()} cores (other
processes share the machine: wall times are inflated, CPU times much less so). Peak RSS: each
route run once more in a fresh subprocess, `VmHWM` (peak resident set) of that process (in
parentheses: growth over its RSS after its imports).
Equal work checked before timing: splitlab's effect, statistic and p-value equal route (b)'s,
and route (a)'s sums through `cuped_test` give splitlab's effect and p-value, to {RTOL:g}
relative (largest differences: {worst_text}).

{provenance.block()}

{table}

Memory growth from {small:,} to {large:,} rows (peak RSS difference): {growth_text}.
splitlab grows no more than DuckDB's own group-by (+32 MiB tolerance): \
{"PASS" if memory_ok else "FAIL"}.

## Where splitlab's time goes

splitlab − (a): {format_seconds(overhead)} wall ({wall["splitlab"] / wall["duckdb"]:.2f}x).
DuckDB's own `EXPLAIN ANALYZE` total: hand SQL {format_seconds(engine_hand)}, splitlab's
generated SQL {format_seconds(engine_splitlab)} (one run each).

Decomposition of the difference (each line a difference of two rows above; 1 + 2 + 3 =
total; percentages of (a)):

| part | wall | CPU |
| --- | ---: | ---: |
{decomposition}

splitlab's steps, each timed on its own in the same interleaved rounds (best of {args.repeats}):

| step | wall time | CPU time |
| --- | ---: | ---: |
{steps_text}

<details><summary>SQL generated by splitlab (`Analyzer.explain()`)</summary>

```sql
{sql_splitlab}
```
</details>

<details><summary>Hand-written SQL, route (a)</summary>

```sql
{hand_sql(path)}
```
</details>

<details><summary>EXPLAIN ANALYZE, hand SQL</summary>

```
{plan_hand}
```
</details>

<details><summary>EXPLAIN ANALYZE, splitlab's SQL</summary>

```
{plan_splitlab}
```
</details>
"""
    print(report)
    write_text(args.out, report)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
