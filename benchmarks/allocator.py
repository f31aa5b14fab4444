"""Serving latency of splitlab.Allocator (choose and update; 1 and 8 threads; snapshots).

The suite lives in `splitlab.bench.allocator` (so that the installed `splitlab bench` command
can run it); this script keeps `python benchmarks/allocator.py ...` working with the same
options. `python benchmarks/allocator.py --help` lists them.

`--busy` (this script only) times the suite while a second process keeps one core busy, and
appends its report to `--out` after the quiet one (see `benchmarks/bandits_latency.py`).
"""

import sys

from bandits_latency import run_busy  # this script's directory is on sys.path

from splitlab.bench.allocator import build_parser, main

if __name__ == "__main__":
    arguments = sys.argv[1:]
    if "--busy" in arguments:
        arguments.remove("--busy")
        sys.exit(run_busy(main, build_parser, "benchmarks/allocator.py", arguments))
    sys.exit(main())
