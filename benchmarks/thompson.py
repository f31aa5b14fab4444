"""Thompson sampling's exact propensities in the alternating loop (choose after every update).

The suite lives in `splitlab.bench.thompson` (so that the installed `splitlab bench` command
can run it); this script keeps `python benchmarks/thompson.py ...` working with the same
options. `python benchmarks/thompson.py --help` lists them.

`--busy` (this script only) times the suite while a second process keeps one core busy, and
appends its report to `--out` after the quiet one (see `benchmarks/bandits_latency.py`).
"""

import sys

from bandits_latency import run_busy  # this script's directory is on sys.path

from splitlab.bench.thompson import build_parser, main

if __name__ == "__main__":
    arguments = sys.argv[1:]
    if "--busy" in arguments:
        arguments.remove("--busy")
        sys.exit(run_busy(main, build_parser, "benchmarks/thompson.py", arguments))
    sys.exit(main())
