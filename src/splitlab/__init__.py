"""splitlab: A/B tests, sequential tests and bandits on one vectorized core.

>>> import splitlab as sl
>>> result = sl.ttest(sl.Moments(1000, 10.0, 4.0), sl.Moments(1000, 10.3, 4.0))
>>> bool(result.p_value < 0.001)
True
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("splitlab")
except PackageNotFoundError:  # a source tree that was not installed
    __version__ = "0.0.0+unknown"

from splitlab import errors
from splitlab.analyzer import Analyzer, Metric
from splitlab.sequential import (
    GroupSequentialDesign,
    SequentialMonitor,
    confidence_sequence,
    e_bh,
    msprt,
    msprt_tau2,
    sequential_srm,
)
from splitlab.stats.adjustment import CupedResult, cuped_test
from splitlab.stats.bayesian import BayesResult, bayes_proportions, bayes_test, prob_best
from splitlab.stats.frequentist import proportions_test, ratio_test, ttest
from splitlab.stats.moments import JointMoments, Moments
from splitlab.stats.multiplicity import adjust_pvalues
from splitlab.stats.power import SampleSizeResult, mde, power, sample_size
from splitlab.stats.results import EffectResult
from splitlab.stats.srm import SRMResult, srm_test

__all__ = [
    "Allocator",
    "Analyzer",
    "BayesResult",
    "CupedResult",
    "Decision",
    "EffectResult",
    "GroupSequentialDesign",
    "JointMoments",
    "Metric",
    "Moments",
    "SRMResult",
    "SampleSizeResult",
    "SequentialMonitor",
    "__version__",
    "adjust_pvalues",
    "bayes_proportions",
    "bayes_test",
    "confidence_sequence",
    "cuped_test",
    "e_bh",
    "errors",
    "mde",
    "msprt",
    "msprt_tau2",
    "power",
    "prob_best",
    "proportions_test",
    "ratio_test",
    "sample_size",
    "sequential_srm",
    "srm_test",
    "ttest",
]


_LAZY_MODULES = ("bandits", "simulate", "ope")
_LAZY_NAMES = {"Allocator": "splitlab.allocator", "Decision": "splitlab.allocator"}


def __getattr__(name: str):
    """``sl.bandits``, ``sl.simulate``, ``sl.ope`` and ``sl.Allocator`` load on first use
    (their numba kernels compile)."""
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(f"splitlab.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    raise AttributeError(f"module 'splitlab' has no attribute {name!r}")
