"""Per-call latency of splitlab's bandit policies through the public API.

The suite lives in `splitlab.bench.bandits_latency` (so that the installed `splitlab bench`
command can run it); this script keeps `python benchmarks/bandits_latency.py ...` working with
the same options. `python benchmarks/bandits_latency.py --help` lists them.
"""

import sys

from splitlab.bench.bandits_latency import main

if __name__ == "__main__":
    sys.exit(main())
