"""Peers side by side: splitlab and each peer library on the same workloads, one run.

The runner lives in `splitlab.bench.peers` (also `splitlab bench peers`); the peers'
environments come from `bash benchmarks/peers/setup.sh`. `python benchmarks/peers/run.py
--help` lists the options.
"""

import sys

from splitlab.bench.peers import main

if __name__ == "__main__":
    sys.exit(main())
