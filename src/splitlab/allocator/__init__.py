"""The serving object, :class:`Allocator`, and the pieces it is built from.

Each piece does one job and is tested on its own (``tests/allocator/``):

- :mod:`~splitlab.allocator.assignment`: arm labels, the inverse-CDF draw (from a unit's
  hash or the seeded generator), the sticky store;
- :mod:`~splitlab.allocator.pending`: pending decisions joined to rewards by id
  (attribution window, eviction, duplicate rewards);
- :mod:`~splitlab.allocator.serving`: online or periodic weights, burn-in, floor, winner;
- :mod:`~splitlab.allocator.log`: the decision log and its Arrow table;
- :mod:`~splitlab.allocator.srm`: served counts against served weights, per period;
- :mod:`~splitlab.allocator.persistence`: the snapshot and delta codec (JSON header,
  float64 arrays, CRC-32), the format-1 reader, atomic files;
- :mod:`~splitlab.allocator.allocator`: :class:`Allocator`, which composes them behind one
  lock (serving modes, what a crash loses and replicas are described there).
"""

# ``os`` is reachable here because callers patch ``splitlab.allocator.os.replace`` (the
# ``os`` module itself) to simulate a failing rename.
import os  # noqa: F401

from splitlab.allocator.allocator import Allocator, Decision
from splitlab.allocator.assignment import BoundedStore, StickyStore
from splitlab.allocator.drift import DriftAlarm, DriftGuard
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
    "DriftAlarm",
    "DriftGuard",
    "PendingDecision",
    "StickyStore",
]
