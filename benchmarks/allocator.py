"""Serving latency of splitlab.Allocator (choose and update; 1 and 8 threads; snapshots).

The suite lives in `splitlab.bench.allocator` (so that the installed `splitlab bench` command
can run it); this script keeps `python benchmarks/allocator.py ...` working with the same
options. `python benchmarks/allocator.py --help` lists them.
"""

import sys

from splitlab.bench.allocator import main

if __name__ == "__main__":
    sys.exit(main())
