"""What every results file records about where it was produced (shared by the scripts).

The helpers live in :mod:`splitlab.bench.provenance`; this module re-exports them for
scripts that import ``_provenance`` from this folder.
"""

from splitlab.bench.provenance import (
    Provenance,
    cpu_model,
    git_commit,
    load_average,
    script_command,
    usable_cores,
)

__all__ = [
    "Provenance",
    "cpu_model",
    "git_commit",
    "load_average",
    "script_command",
    "usable_cores",
]
