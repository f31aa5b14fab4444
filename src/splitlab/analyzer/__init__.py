"""Logged outcomes from any engine -> sufficient statistics -> tidy results.

:class:`Analyzer` is imported on first access (it brings pandas, narwhals and every test),
so that :class:`Metric` and the demo data generator come without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from splitlab import _lazy_exports
from splitlab.analyzer.metrics import Metric

if TYPE_CHECKING:
    from splitlab.analyzer.analyzer import Analyzer

__all__ = ["Analyzer", "Metric"]

__getattr__, __dir__ = _lazy_exports(__name__, {"splitlab.analyzer.analyzer": ("Analyzer",)})
