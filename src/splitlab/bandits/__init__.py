"""Multi-armed and contextual bandit policies with exact propensities.

Every policy obeys :class:`~splitlab.bandits.base.Policy`: ``probabilities``, ``choose``,
``choose_batch``, ``update``, ``update_batch``, ``state``/``from_state``, ``merge``,
``decay``, ``add_arm``, ``remove_arm``.
"""

from splitlab.bandits.base import Policy
from splitlab.bandits.linear import LinTS, LinUCB, LogisticTS, SquareCB
from splitlab.bandits.mab import (
    EXP3,
    KLUCB,
    UCB1,
    EpsilonGreedy,
    FixedSplit,
    GaussianThompson,
    Softmax,
    ThompsonSampling,
    TopTwoThompson,
)

__all__ = [
    "EXP3",
    "KLUCB",
    "UCB1",
    "EpsilonGreedy",
    "FixedSplit",
    "GaussianThompson",
    "LinTS",
    "LinUCB",
    "LogisticTS",
    "Policy",
    "Softmax",
    "SquareCB",
    "ThompsonSampling",
    "TopTwoThompson",
]
