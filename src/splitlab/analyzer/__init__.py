"""Logged outcomes from any engine -> sufficient statistics -> tidy results."""

from splitlab.analyzer.analyzer import Analyzer
from splitlab.analyzer.metrics import Metric

__all__ = ["Analyzer", "Metric"]
