"""Off-policy evaluation speed: 10^6 logged rounds, 80 actions, 24 features (all estimators,
closed form and bootstrap; Open Bandit Pipeline when importable).

The suite lives in `splitlab.bench.ope` (so that the installed `splitlab bench` command can
run it); this script keeps `python benchmarks/ope.py ...` working with the same options.
`python benchmarks/ope.py --help` lists them.
"""

import sys

from splitlab.bench.ope import main

if __name__ == "__main__":
    sys.exit(main())
