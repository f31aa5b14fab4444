"""End-to-end batch analysis of a Parquet file: splitlab's Analyzer against DuckDB and pandas.

The suite lives in `splitlab.bench.analyzer` (so that the installed `splitlab bench` command can
run it); this script keeps `python benchmarks/analyzer.py ...` working with the same options.
`python benchmarks/analyzer.py --help` lists them.
"""

import sys

from splitlab.bench.analyzer import main

if __name__ == "__main__":
    sys.exit(main())
