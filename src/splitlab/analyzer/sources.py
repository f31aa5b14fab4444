"""The Analyzer's sources: :mod:`splitlab.sources`, under the name it had before it moved
below the Analyzer and the off-policy estimators (both read frames through it)."""

from splitlab.sources import Source, open_source

__all__ = ["Source", "open_source"]
