"""Benchmark suites as a product: speed, regret and statistical validity.

``splitlab bench [speed|regret|validity|all] [--quick] [--out DIR]`` runs the suites
registered in :mod:`splitlab.bench.suites` and writes Markdown tables and PNG plots, each
file with its provenance (:mod:`splitlab.bench.provenance`); ``splitlab bench --scenario
FILE`` runs a user's scenario (:mod:`splitlab.bench.scenario`). The scripts in the
repository's ``benchmarks/`` folder call the same modules; what only the repository's
maintainers run (the README generator, the peers in their own environments) lives there,
not in the package.
"""

from splitlab.bench.suites import GROUPS, SUITES, Suite, select

__all__ = ["GROUPS", "SUITES", "Suite", "select"]
