"""Anytime-valid confidence sequences for a target policy's value, for daily monitoring.

With pseudo-outcomes φₜ whose conditional mean given the past is the policy value V —
IPS φₜ = wₜ rₜ, or DR φₜ = q̂_π(xₜ) + wₜ (rₜ − q̂(xₜ, aₜ)) with a reward model fitted on
earlier looks only (*predictable*), as Waudby-Smith, Wu, Ramdas, Karampatziakis & Mineiro,
"Anytime-valid off-policy inference for contextual bandits" (ACM/IMS J. Data Science 2024,
arXiv 2210.10768) require — the running mean φ̄ₜ with running variance σ̂ₜ² gives the
asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas
(arXiv 2103.06476v7, eq. 9), computed by
:func:`~splitlab.sequential.confseq.confidence_sequence_from_estimate`:

    φ̄ₜ ± σ̂ₜ sqrt( 2(tρ² + 1)/(t²ρ²) · ln( sqrt(tρ² + 1)/α ) ),

ρ tuned to be tightest near t = ``n_star``. It holds for the logging policy changing over
time (a bandit that learns), since the φₜ − V are martingale differences; the guarantee is
asymptotic (a strong-approximation argument), so early looks with few rows are optimistic.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from splitlab._validation import check_alpha, check_choice
from splitlab.errors import InvalidArgumentError
from splitlab.ope.estimators import _provenance, target_probabilities
from splitlab.ope.logs import load_log
from splitlab.ope.reward_model import sequential_rewards
from splitlab.sequential.confseq import confidence_sequence_from_estimate

__all__ = ["confidence_sequence", "pseudo_outcomes_predictable"]

SEQUENTIAL_ESTIMATORS = ("ips", "dr")


def _look_ends(n: int, looks: object, periods: np.ndarray | None) -> np.ndarray:
    """Row counts after each look (strictly increasing, last = n)."""
    if isinstance(looks, str):
        check_choice("looks", looks, ("period",))
        if periods is None:
            raise InvalidArgumentError("looks", "'period' needs a period column in the log")
        changes = np.flatnonzero(np.diff(periods) != 0) + 1
        return np.append(changes, n)
    if isinstance(looks, (int, np.integer)) and not isinstance(looks, bool):
        if looks < 1:
            raise InvalidArgumentError("looks", f"must be a positive number of looks, got {looks}")
        if looks > n:
            # a look is a row count: more looks than rows would only repeat rows
            raise InvalidArgumentError(
                "looks", f"must be at most the number of rows ({n}), got {looks}"
            )
        ends = np.unique(np.ceil(np.arange(1, looks + 1) * n / looks).astype(np.int64))
        return ends[ends > 0]
    ends = np.asarray(looks, dtype=np.int64)
    if (
        ends.ndim != 1
        or ends.size == 0
        or np.any(np.diff(ends) <= 0)
        or ends[0] < 1
        or ends[-1] > n
    ):
        raise InvalidArgumentError(
            "looks", f"must be increasing row counts between 1 and {n}, got {looks!r}"
        )
    return ends


def pseudo_outcomes_predictable(log, target_matrix, estimator, ends, l2) -> np.ndarray:
    """φₜ of every row: IPS, or DR with a ridge model fitted on the rows of earlier looks."""
    rows = np.arange(log.n)
    weight = target_matrix[rows, log.actions] / log.propensities
    if estimator == "ips":
        return weight * log.rewards
    blocks = np.searchsorted(ends, rows, side="right").astype(np.int64)
    q = sequential_rewards(
        log.contexts, log.actions, log.rewards, blocks, n_blocks=ends.size,
        n_actions=target_matrix.shape[1], l2=l2,
    )  # fmt: skip
    return np.einsum("ij,ij->i", target_matrix, q) + weight * (log.rewards - q[rows, log.actions])


def confidence_sequence(
    log: object,
    target: object,
    estimator: str = "dr",
    alpha: float = 0.05,
    *,
    looks: int | str | Any = 20,
    n_star: float | None = None,
    l2: float = 1.0,
    **columns: Any,
) -> pd.DataFrame:
    """The policy value's confidence sequence at each look: one row per look with n, estimate,
    se, ci_low, ci_high (valid at this look whenever it is taken) and running_low,
    running_high (the running intersection, valid too). ``looks``: a number of equally
    spaced looks (at most one per row: the work is linear in the rows), "period" (the end
    of each serving period) or increasing row counts.
    ``n_star`` defaults to the number of rows (fix it in advance when monitoring a live log).

    >>> rng = np.random.default_rng(3)
    >>> actions = rng.integers(2, size=3000)
    >>> rewards = rng.normal(np.where(actions == 1, 1.0, 0.0))
    >>> log = {"action": actions, "reward": rewards, "propensity": np.full(3000, 0.5)}
    >>> path = confidence_sequence(log, np.ones(3000, dtype=int), "ips", looks=3)
    >>> path["n"].tolist(), bool(path["running_low"].iloc[-1] < 1.0 < path["running_high"].iloc[-1])
    ([1000, 2000, 3000], True)
    """
    estimator = check_choice("estimator", estimator, SEQUENTIAL_ESTIMATORS)
    alpha = check_alpha(alpha)
    bandit_log = load_log(log, **columns)
    n = bandit_log.n
    if n < 2:
        raise InvalidArgumentError("log", f"needs at least 2 rows with a reward, has {n}")
    matrix = target_probabilities(target, bandit_log)
    ends = _look_ends(n, looks, bandit_log.periods)
    phi = pseudo_outcomes_predictable(bandit_log, matrix, estimator, ends, l2)
    cumulative = np.cumsum(phi)[ends - 1]
    cumulative_sq = np.cumsum(phi * phi)[ends - 1]
    counts = ends.astype(np.float64)
    estimate = cumulative / counts
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = np.maximum(cumulative_sq - counts * estimate**2, 0.0) / (counts - 1.0)
        se = np.sqrt(variance / counts)
    low, high, _ = confidence_sequence_from_estimate(
        estimate, se, counts, alpha=alpha, n_star=float(n if n_star is None else n_star)
    )
    low = np.where(counts > 1, low, -np.inf)
    high = np.where(counts > 1, high, np.inf)
    table = pd.DataFrame(
        {
            "look": np.arange(1, ends.size + 1), "n": ends, "estimate": estimate, "se": se,
            "ci_low": low, "ci_high": high, "running_low": np.maximum.accumulate(low),
            "running_high": np.minimum.accumulate(high),
        }
    )  # fmt: skip
    parameters = {"estimator": estimator, "alpha": alpha, "n_star": n_star or n, "l2": l2,
                  "looks": ends.tolist()}  # fmt: skip
    table.attrs.update(_provenance(bandit_log, "ope.confidence_sequence", parameters))
    return table
