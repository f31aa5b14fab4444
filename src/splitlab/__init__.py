"""splitlab: A/B tests, sequential tests and bandits on one vectorized core.

>>> import splitlab as sl
>>> result = sl.ttest(sl.Moments(1000, 10.0, 4.0), sl.Moments(1000, 10.3, 4.0))
>>> bool(result.p_value < 0.001)
True

``import splitlab`` imports no numerical library: every public name, and every subpackage
(``sl.bandits``, ``sl.ope``, ...), is imported on first access (PEP 562), so a script or
the command line pays only for what it uses. numba kernels compile on their first call and
are cached on disk (``@njit(cache=True)``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from splitlab import errors

if TYPE_CHECKING:
    from splitlab.allocator import Allocator, Decision
    from splitlab.analyzer import Analyzer, Metric
    from splitlab.rollout import Guardrail, Rollout
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
    from splitlab.stats.power_now import PowerNowResult, power_now
    from splitlab.stats.quantile import QuantileSummary, quantile_test
    from splitlab.stats.ratio_adjustment import RatioCupedResult, ratio_cuped_test
    from splitlab.stats.regression import CrossMoments, RegressionResult, regression_test
    from splitlab.stats.results import EffectResult
    from splitlab.stats.srm import SRMResult, srm_test
    from splitlab.stats.stratification import PoststratifiedResult, poststratified_test

    __version__: str

__all__ = [
    "Allocator",
    "Analyzer",
    "BayesResult",
    "CrossMoments",
    "CupedResult",
    "Decision",
    "EffectResult",
    "GroupSequentialDesign",
    "Guardrail",
    "JointMoments",
    "Metric",
    "Moments",
    "PoststratifiedResult",
    "PowerNowResult",
    "QuantileSummary",
    "RatioCupedResult",
    "RegressionResult",
    "Rollout",
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
    "poststratified_test",
    "power",
    "power_now",
    "prob_best",
    "proportions_test",
    "quantile_test",
    "ratio_cuped_test",
    "ratio_test",
    "regression_test",
    "sample_size",
    "sequential_srm",
    "srm_test",
    "ttest",
]


def _lazy_exports(
    package: str, exports: dict[str, tuple[str, ...]], submodules: tuple[str, ...] = ()
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` (PEP 562): ``exports`` maps a module to
    the public names it defines, imported on the first access to one of them; ``submodules``
    are imported when first reached as attributes. A resolved name is stored on the
    package, so later accesses are plain attribute lookups."""
    module = sys.modules[package]
    defined_in = {name: source for source, names in exports.items() for name in names}

    def __getattr__(name: str) -> object:
        if name in defined_in:
            value = getattr(importlib.import_module(defined_in[name]), name)
        elif name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(module), *defined_in, *submodules})

    return __getattr__, __dir__


# The modules of the public names (as imported under TYPE_CHECKING above) and the
# subpackages reached as ``sl.bandits``, ``sl.ope``, ...
_EXPORTS = {
    "splitlab.allocator": ("Allocator", "Decision"),
    "splitlab.analyzer": ("Analyzer", "Metric"),
    "splitlab.rollout": ("Guardrail", "Rollout"),
    "splitlab.sequential": (
        "GroupSequentialDesign",
        "SequentialMonitor",
        "confidence_sequence",
        "e_bh",
        "msprt",
        "msprt_tau2",
        "sequential_srm",
    ),
    "splitlab.stats.adjustment": ("CupedResult", "cuped_test"),
    "splitlab.stats.bayesian": ("BayesResult", "bayes_proportions", "bayes_test", "prob_best"),
    "splitlab.stats.frequentist": ("proportions_test", "ratio_test", "ttest"),
    "splitlab.stats.moments": ("JointMoments", "Moments"),
    "splitlab.stats.multiplicity": ("adjust_pvalues",),
    "splitlab.stats.power": ("SampleSizeResult", "mde", "power", "sample_size"),
    "splitlab.stats.power_now": ("PowerNowResult", "power_now"),
    "splitlab.stats.quantile": ("QuantileSummary", "quantile_test"),
    "splitlab.stats.ratio_adjustment": ("RatioCupedResult", "ratio_cuped_test"),
    "splitlab.stats.regression": ("CrossMoments", "RegressionResult", "regression_test"),
    "splitlab.stats.results": ("EffectResult",),
    "splitlab.stats.srm": ("SRMResult", "srm_test"),
    "splitlab.stats.stratification": ("PoststratifiedResult", "poststratified_test"),
}
_SUBMODULES = (
    "allocator",
    "analyzer",
    "bandits",
    "bench",
    "hashing",
    "ope",
    "rollout",
    "sequential",
    "simulate",
    "sources",
    "stats",
    "tracking",
)
_getattr, _dir = _lazy_exports(__name__, _EXPORTS, _SUBMODULES)


def __getattr__(name: str) -> object:
    if name == "__version__":  # importlib.metadata costs as much as the rest of --help
        from importlib.metadata import PackageNotFoundError, version

        global __version__
        try:
            __version__ = version("splitlab")
        except PackageNotFoundError:  # a source tree that was not installed
            __version__ = "0.0.0+unknown"
        return __version__
    return _getattr(name)


def __dir__() -> list[str]:
    return sorted({*_dir(), "__version__"})
