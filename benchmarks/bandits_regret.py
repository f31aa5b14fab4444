"""Regret of every splitlab bandit policy on the standard environments; simulation speed.

The suite lives in `splitlab.bench.bandits_regret` (so that the installed `splitlab bench`
command can run it); this script keeps `python benchmarks/bandits_regret.py ...` working with
the same options. `python benchmarks/bandits_regret.py --help` lists them.
"""

import sys

from splitlab.bench.bandits_regret import main

if __name__ == "__main__":
    sys.exit(main())
