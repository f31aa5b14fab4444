"""Peers side by side: splitlab and each peer library on the same workloads, one run.

    python benchmarks/peers/run.py [--quick] [--peers PEER ...] [--out FILE]

The runner is `tooling.peers`; the peers' environments come from
`bash benchmarks/peers/setup.sh`. `python benchmarks/peers/run.py --help` lists the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for `tooling`

from tooling.peers import main

if __name__ == "__main__":
    sys.exit(main())
