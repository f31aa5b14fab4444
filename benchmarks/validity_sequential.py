"""Peeking at experiments: type I error, coverage, power and sample size, sequential vs fixed.

The suite lives in `splitlab.bench.validity_sequential` (so that the installed `splitlab bench`
command can run it); this script keeps `python benchmarks/validity_sequential.py ...` working
with the same options. `python benchmarks/validity_sequential.py --help` lists them.
"""

import sys

from splitlab.bench.validity_sequential import main

if __name__ == "__main__":
    sys.exit(main())
