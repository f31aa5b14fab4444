"""Regenerate README.md's "Performance" and "Validity" sections from benchmarks/results/.

    python benchmarks/update_readme.py [--out DIR] [--readme FILE]

Only the block between the generated-block markers at the end of README.md changes
(`tooling.readme`).
"""

import sys

from tooling.readme import main

if __name__ == "__main__":
    sys.exit(main())
