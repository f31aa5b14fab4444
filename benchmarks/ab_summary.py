"""Throughput of splitlab's summary-statistics t-test against a bare numpy formula.

The suite lives in `splitlab.bench.ab_summary` (so that the installed `splitlab bench` command
can run it); this script keeps `python benchmarks/ab_summary.py ...` working with the same
options. `python benchmarks/ab_summary.py --help` lists them.
"""

import sys

from splitlab.bench.ab_summary import main

if __name__ == "__main__":
    sys.exit(main())
