"""Always-valid and group-sequential inference: peek at every look and keep the error rate.

:class:`GroupSequentialDesign` and :class:`GroupSequentialResult` are imported on first
access: their boundaries are numba kernels, and the always-valid tests need no numba.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from splitlab import _lazy_exports
from splitlab.sequential.confseq import (
    SequentialResult,
    confidence_sequence,
    confidence_sequence_from_estimate,
)
from splitlab.sequential.fdr import e_bh
from splitlab.sequential.monitor import SequentialMonitor
from splitlab.sequential.msprt import msprt, msprt_from_estimate, msprt_tau2
from splitlab.sequential.srm import SequentialSRMResult, sequential_srm

if TYPE_CHECKING:
    from splitlab.sequential.betting import BettingPath, betting_confidence_sequence
    from splitlab.sequential.changepoint import EDetector, GaussianCUSUM, detect_changes
    from splitlab.sequential.group import GroupSequentialDesign, GroupSequentialResult

__all__ = [
    "BettingPath",
    "EDetector",
    "GaussianCUSUM",
    "GroupSequentialDesign",
    "GroupSequentialResult",
    "SequentialMonitor",
    "SequentialResult",
    "SequentialSRMResult",
    "betting_confidence_sequence",
    "confidence_sequence",
    "confidence_sequence_from_estimate",
    "detect_changes",
    "e_bh",
    "msprt",
    "msprt_from_estimate",
    "msprt_tau2",
    "sequential_srm",
]

__getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "splitlab.sequential.betting": ("BettingPath", "betting_confidence_sequence"),
        "splitlab.sequential.changepoint": ("EDetector", "GaussianCUSUM", "detect_changes"),
        "splitlab.sequential.group": ("GroupSequentialDesign", "GroupSequentialResult"),
    },
)
