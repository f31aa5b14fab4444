"""Simulation: seeded, numba-generated data for validity, power and regret studies."""

from splitlab.simulate.streams import ABStreams, ab_streams, count_streams

__all__ = ["ABStreams", "ab_streams", "count_streams"]
