"""Serving modes: the probabilities served, given the policy's.

``online`` serves the policy's current probabilities, updated with every reward;
``periodic`` serves a frozen copy of the policy whose statistics are refreshed from the
learner at the end of each period (:func:`serve_learned`), so the exact propensities are
computed once per period. In both, :func:`served_probabilities` applies, in this order of
precedence:

- the *winner*: once an arm's posterior probability of being best reaches
  ``winner_threshold`` at a refresh (:func:`find_winner`), all traffic goes to it (while
  it is available);
- *burn-in*: uniform over the available arms until every arm has ``burn_in`` decisions;
- the *floor*: a mixture with the uniform distribution,
  ``min_weight + (1 − min_weight · K) · p`` over the K available arms, so that each keeps
  at least ``min_weight``.

>>> served_probabilities(np.array([0.9, 0.1]), None, False, None, 0.2).round(6).tolist()
[0.74, 0.26]
>>> served_probabilities(np.array([0.9, 0.1]), None, True, None, 0.2).tolist()
[0.5, 0.5]
"""

from __future__ import annotations

import math

import numpy as np

from splitlab.allocator.assignment import cdf
from splitlab.bandits.base import Policy
from splitlab.bandits.linear import LinTS, LogisticTS
from splitlab.bandits.mab import GaussianThompson, ThompsonSampling, TopTwoThompson
from splitlab.errors import InvalidArgumentError, UnknownOptionError

MODES = ("online", "periodic")
# policies whose exact propensities are costly (a quadrature): periodic by default
_THOMPSON_TYPE = (ThompsonSampling, GaussianThompson, LinTS, LogisticTS)


def serving_mode(mode: str | None, policy: Policy) -> str:
    """``mode``, checked; by default periodic for Thompson-type policies (as GrowthBook's
    and Statsig's production bandits), online otherwise."""
    if mode is None:
        mode = "periodic" if isinstance(policy, _THOMPSON_TYPE) else "online"
    if mode not in MODES:
        raise UnknownOptionError("mode", mode, MODES)
    return mode


def check_min_weight(value: object, n_arms: int) -> float:
    """The floor, in [0, 1 / number of arms]."""
    return _probability("min_weight", value, 0.0, 1.0 / n_arms)


def check_winner_threshold(value: object, policy: Policy) -> float | None:
    """The winner threshold, in [0.5, 1], for a Bayesian context-free policy only."""
    if value is None:
        return None
    threshold = _probability("winner_threshold", value, 0.5, 1.0)
    if policy.contextual or not isinstance(policy, (ThompsonSampling, GaussianThompson)):
        raise InvalidArgumentError(
            "winner_threshold",
            "needs a Bayesian context-free policy (ThompsonSampling, TopTwoThompson, "
            f"GaussianThompson), not {type(policy).__name__}",
        )
    return threshold


def served_probabilities(
    probabilities: np.ndarray,
    mask: np.ndarray | None,
    burning: bool,
    winner: int | None,
    min_weight: float,
) -> np.ndarray:
    """Winner, burn-in and floor applied to the policy's probabilities (``mask``: the
    available arms, None for all). The policy's own array is returned when nothing
    applies: callers freeze it, and policies build a new array for every probability
    computation."""
    if winner is None and not burning and min_weight == 0:
        return probabilities
    n_arms = len(probabilities)
    allowed = np.ones(n_arms, dtype=bool) if mask is None else mask
    if winner is not None and allowed[winner]:
        out = np.zeros(n_arms)
        out[winner] = 1.0
        return out
    if burning:
        return allowed / allowed.sum()
    count = int(allowed.sum())
    return min_weight * allowed + (1.0 - min_weight * count) * probabilities


def find_winner(policy: Policy, threshold: float) -> int | None:
    """The arm whose posterior probability of being best reaches ``threshold``, or None."""
    prob_best = _prob_best(policy)
    if prob_best.max() >= threshold:
        return int(np.argmax(prob_best))
    return None


def draw_table(probabilities: np.ndarray) -> tuple:
    """The context-free draw table: (CDF as a Python list for bisect, its total,
    propensities as a list, the last drawable arm, the frozen probabilities)."""
    probabilities.setflags(write=False)  # half the cost of flags.writeable = False
    propensities = probabilities.tolist()
    cumulative, last = cdf(propensities)
    return (cumulative, cumulative[-1], propensities, last, probabilities)


def copy_policy(policy: Policy) -> Policy:
    """An independent policy with the same settings and statistics (the served copy)."""
    return type(policy).from_state(policy.state())


def serve_learned(learner: Policy, served: Policy) -> None:
    """A periodic refresh: the served copy takes the learner's current statistics."""
    for name, array in learner.arrays.items():
        served.arrays[name] = array.copy()
    served._touch()


def _prob_best(policy: Policy) -> np.ndarray:
    """Posterior probability that each arm is best (the Thompson probabilities)."""
    if isinstance(policy, TopTwoThompson):
        return policy._prob_best(None)
    return policy.probabilities()


def _probability(name: str, value: object, low: float, high: float) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(name, f"must be a number, got {value!r}") from exc
    if not (math.isfinite(number) and low <= number <= high):
        raise InvalidArgumentError(name, f"must be in [{low:g}, {high:g}], got {value!r}")
    return number
