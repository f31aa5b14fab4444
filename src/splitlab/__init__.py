"""splitlab: A/B tests, sequential tests and bandits on one vectorized core."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("splitlab")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from splitlab import errors
from splitlab.stats.frequentist import ttest
from splitlab.stats.moments import JointMoments, Moments
from splitlab.stats.results import EffectResult

__all__ = [
    "EffectResult",
    "JointMoments",
    "Moments",
    "__version__",
    "errors",
    "ttest",
]
