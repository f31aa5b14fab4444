"""Benchmark suites as a product: speed, regret, statistical validity and peers.

``splitlab bench [speed|regret|validity|peers|all] [--quick] [--out DIR]`` runs the suites
registered in :mod:`splitlab.bench.suites` and writes Markdown tables and PNG plots, each
file with its provenance (:mod:`splitlab.bench.provenance`); ``splitlab bench --scenario
FILE`` runs a user's scenario (:mod:`splitlab.bench.scenario`); ``splitlab bench --readme``
regenerates the README's "Performance" and "Validity" sections from the results
(:mod:`splitlab.bench.readme`). The scripts in the repository's ``benchmarks/`` folder call
the same modules.
"""

from splitlab.bench.suites import GROUPS, SUITES, Suite, select

__all__ = ["GROUPS", "SUITES", "Suite", "select"]
