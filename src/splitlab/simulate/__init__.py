"""Simulation: seeded, numba-generated data for validity, power and regret studies."""

from splitlab.simulate.bandits import SimulationResult, simulate
from splitlab.simulate.environments import (
    BernoulliArms,
    DelayedRewards,
    DriftingArms,
    Environment,
    GaussianArms,
    LinearContextual,
    LogisticContextual,
    PiecewiseStationary,
)
from splitlab.simulate.streams import ABStreams, ab_streams, count_streams

__all__ = [
    "ABStreams",
    "BernoulliArms",
    "DelayedRewards",
    "DriftingArms",
    "Environment",
    "GaussianArms",
    "LinearContextual",
    "LogisticContextual",
    "PiecewiseStationary",
    "SimulationResult",
    "ab_streams",
    "count_streams",
    "simulate",
]
