"""The Analyzer's analysis methods on a Parquet file (regression adjustment on 5 covariates,
quantile metrics, clustered means) against DuckDB's own SQL.

The suite lives in `splitlab.bench.analyzer_methods` (so that the installed `splitlab bench`
command can run it); this script keeps `python benchmarks/analyzer_methods.py ...` working
with the same options. `python benchmarks/analyzer_methods.py --help` lists them.

`--busy` (this script only) times the suite while a second process keeps one core busy, and
appends its report to `--out` after the quiet one (see `benchmarks/bandits_latency.py`).
"""

import sys

from bandits_latency import run_busy  # this script's directory is on sys.path

from splitlab.bench.analyzer_methods import build_parser, main

if __name__ == "__main__":
    arguments = sys.argv[1:]
    if "--busy" in arguments:
        arguments.remove("--busy")
        sys.exit(run_busy(main, build_parser, "benchmarks/analyzer_methods.py", arguments))
    sys.exit(main())
