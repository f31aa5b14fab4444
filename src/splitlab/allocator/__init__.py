"""The serving object, :class:`Allocator`, and the pieces it is built from.

- :mod:`~splitlab.allocator.allocator`: :class:`Allocator`, which composes the pieces below
  behind one lock (serving modes, crash behaviour and replicas are described there).
"""

# ``os`` is reachable here because callers patch ``splitlab.allocator.os.replace`` (the
# ``os`` module itself) to simulate a failing rename.
import os  # noqa: F401

from splitlab.allocator.allocator import Allocator, Decision
from splitlab.allocator.assignment import BoundedStore, StickyStore
from splitlab.allocator.log import DecisionLogOverflowWarning
from splitlab.allocator.pending import PendingDecision
from splitlab.allocator.persistence import SNAPSHOT_FORMAT
from splitlab.allocator.srm import AllocatorSRM

__all__ = [
    "SNAPSHOT_FORMAT",
    "Allocator",
    "AllocatorSRM",
    "BoundedStore",
    "Decision",
    "DecisionLogOverflowWarning",
    "PendingDecision",
    "StickyStore",
]
