"""Always-valid and group-sequential inference: peek at every look and keep the error rate."""

from splitlab.sequential.confseq import (
    SequentialResult,
    confidence_sequence,
    confidence_sequence_from_estimate,
)
from splitlab.sequential.fdr import e_bh
from splitlab.sequential.group import GroupSequentialDesign, GroupSequentialResult
from splitlab.sequential.monitor import SequentialMonitor
from splitlab.sequential.msprt import msprt, msprt_from_estimate, msprt_tau2
from splitlab.sequential.srm import SequentialSRMResult, sequential_srm

__all__ = [
    "GroupSequentialDesign",
    "GroupSequentialResult",
    "SequentialMonitor",
    "SequentialResult",
    "SequentialSRMResult",
    "confidence_sequence",
    "confidence_sequence_from_estimate",
    "e_bh",
    "msprt",
    "msprt_from_estimate",
    "msprt_tau2",
    "sequential_srm",
]
