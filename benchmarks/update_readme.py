"""Regenerate README.md's "Performance" and "Validity" sections from benchmarks/results/.

The same as `splitlab bench --readme [--out DIR]` (`splitlab.bench.readme`): only the block
between the generated-block markers at the end of README.md changes.
"""

import argparse
import sys
from pathlib import Path

from splitlab.bench import readme
from splitlab.bench.markdown import results_dir

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=results_dir(), help="results directory")
    path = readme.update(parser.parse_args().out)
    print(f"regenerated the Performance and Validity sections of {path}")
    sys.exit(0)
