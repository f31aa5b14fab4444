"""Numba kernels behind :mod:`splitlab.sequential.changepoint`: one pass over a stream,
state updated in place, stopping at the first alarm.

Both kernels take validated, contiguous float64 input and return the index (into ``xs``)
of the first observation at which the statistic reached the threshold, or −1. Observations
after that index are not consumed, so that a Python loop of ``update`` and one call of
``update_many`` leave the same state.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _logaddexp(a: float, b: float) -> float:
    high = max(a, b)
    if high == -np.inf:
        return -np.inf
    return high + math.log1p(math.exp(-abs(a - b)))


@njit(cache=True)
def cusum_run(stats, starts, count, xs, mu0, delta, sigma, h):
    """Page's CUSUM of the Gaussian log-likelihood ratio, one or two sides.

    ``stats[s]`` is side s's statistic W (s = 0 for a rise of ``delta[0]``, s = 1 for the
    shift ``delta[1]``; a side with delta 0 is off), ``starts[s]`` the index of the first
    observation of its current excursion above 0 and ``count[0]`` the observations seen
    since the last reset. W ← max(0, W + (d/σ²)(x − μ0 − d/2)).
    """
    n_sides = stats.shape[0]
    variance = sigma * sigma
    for i in range(xs.shape[0]):
        x = xs[i]
        index = count[0]
        count[0] = index + 1
        alarm = False
        for s in range(n_sides):
            d = delta[s]
            if d == 0.0:
                continue
            if stats[s] <= 0.0:
                starts[s] = index
            value = stats[s] + (d / variance) * (x - mu0 - 0.5 * d)
            stats[s] = value if value > 0.0 else 0.0
            if stats[s] >= h:
                alarm = True
        if alarm:
            return i
    return -1


@njit(cache=True)
def edetector_run(
    log_sr, log_cusum, starts, count, lambdas, centers, log_weights, xs, variance, bounded,
    log_threshold, use_sr,
):  # fmt: skip
    """The mixture e-detector of Shin, Ramdas & Rinaldo (2022), log scale.

    Component k bets λ_k against the null mean ``centers[k]``: its one-step e-value is
    L = 1 + λ(x − c) (``bounded``) or exp(λ(x − c) − λ²·variance/2) (sub-Gaussian). The
    Shiryaev–Roberts form is M ← L (M + 1), the CUSUM form M ← L max(M, 1); both are kept
    (the CUSUM one gives the change-point estimate), the mixture Σ w_k M_k of the chosen
    form is compared with 1/α. ``count[0]`` counts observations since the last reset.
    """
    n_components = lambdas.shape[0]
    for i in range(xs.shape[0]):
        x = xs[i]
        index = count[0]
        count[0] = index + 1
        total = -np.inf
        for k in range(n_components):
            lam = lambdas[k]
            step = x - centers[k]
            if bounded:
                log_l = math.log1p(lam * step)
            else:
                log_l = lam * step - 0.5 * lam * lam * variance
            log_sr[k] = log_l + _logaddexp(log_sr[k], 0.0)
            if log_cusum[k] <= 0.0:
                starts[k] = index
                log_cusum[k] = log_l
            else:
                log_cusum[k] = log_cusum[k] + log_l
            chosen = log_sr[k] if use_sr else log_cusum[k]
            total = _logaddexp(total, log_weights[k] + chosen)
        if total >= log_threshold:
            return i
    return -1
