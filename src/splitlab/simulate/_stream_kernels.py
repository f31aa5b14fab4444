"""numba kernels that draw seeded streams of cumulative sufficient statistics.

Every kernel takes plain integers, floats and arrays, seeds numba's own Mersenne Twister
with ``np.random.seed(seed)`` (numba keeps a generator per thread, apart from numpy's
global one) and draws replication by replication, look by look, control before treatment,
so the same arguments and seed give the same arrays on every run.

A distribution is a code and three parameters per arm:

* ``NORMAL`` (mean, sd, —): with ``exact`` the batch's sufficient statistics are drawn
  from their joint law — the batch mean x̄ ~ N(mean, sd²/m) independent of the within-batch
  sum of squares M2 ~ sd² χ²(m − 1) — so Σy = m x̄ and Σy² = M2 + m x̄² cost two draws per
  batch whatever its size m; otherwise m units are drawn one by one.
* ``BERNOULLI`` (rate, —, —): Σy = Σy² = Binomial(m, rate), exact for any m.
* ``LOGNORMAL`` (μ, σ, factor): m units drawn one by one, y = factor · exp(N(μ, σ²)).
"""

# numba compiles the legacy np.random functions to its own per-thread generator, the one
# ``np.random.seed`` seeds inside a kernel; numpy's Generator API is not what runs here.
# ruff: noqa: NPY002

from __future__ import annotations

import math

import numpy as np
from numba import njit

NORMAL = 0
BERNOULLI = 1
LOGNORMAL = 2


@njit(cache=True)
def _batch_sums(size, distribution, first, second, third, exact):
    """(Σy, Σy²) of one batch of ``size`` units."""
    if distribution == BERNOULLI:
        successes = float(np.random.binomial(size, first))
        return successes, successes
    if distribution == NORMAL and exact:
        batch_mean = np.random.normal(first, second / math.sqrt(size))
        scatter = second * second * np.random.chisquare(size - 1) if size > 1 else 0.0
        total = size * batch_mean
        return total, scatter + total * batch_mean
    total = 0.0
    total_sq = 0.0
    for _ in range(size):
        if distribution == NORMAL:
            value = np.random.normal(first, second)
        else:
            value = third * math.exp(np.random.normal(first, second))
        total += value
        total_sq += value * value
    return total, total_sq


@njit(cache=True)
def ab_sums(
    replications, looks, size_control, size_treatment, distribution, control, treatment, exact,
    seed,
):  # fmt: skip
    """Cumulative Σy and Σy² per arm, shape (4, replications, looks): control Σy, control
    Σy², treatment Σy, treatment Σy². ``control`` and ``treatment`` hold the three
    distribution parameters of each arm."""
    np.random.seed(seed)
    sums = np.empty((4, replications, looks))
    for replication in range(replications):
        sum_c = 0.0
        sum_sq_c = 0.0
        sum_t = 0.0
        sum_sq_t = 0.0
        for look in range(looks):
            total, total_sq = _batch_sums(
                size_control, distribution, control[0], control[1], control[2], exact
            )
            sum_c += total
            sum_sq_c += total_sq
            total, total_sq = _batch_sums(
                size_treatment, distribution, treatment[0], treatment[1], treatment[2], exact
            )
            sum_t += total
            sum_sq_t += total_sq
            sums[0, replication, look] = sum_c
            sums[1, replication, look] = sum_sq_c
            sums[2, replication, look] = sum_t
            sums[3, replication, look] = sum_sq_t
    return sums


@njit(cache=True)
def assignment_counts(replications, looks, batch_size, probabilities, seed):
    """Cumulative units per arm, shape (replications, looks, arms), when each look adds
    ``batch_size`` units assigned independently with ``probabilities``: one multinomial
    draw per look, by conditional binomials (arm a gets Binomial(remaining units,
    p_a / (1 − p_1 − ... − p_{a−1})), the last arm the rest)."""
    np.random.seed(seed)
    arms = probabilities.size
    counts = np.empty((replications, looks, arms), dtype=np.int64)
    running = np.zeros(arms, dtype=np.int64)
    for replication in range(replications):
        running[:] = 0
        for look in range(looks):
            remaining = batch_size
            mass_left = 1.0
            for arm in range(arms - 1):
                share = probabilities[arm] / mass_left if mass_left > 0.0 else 0.0
                drawn = np.random.binomial(remaining, min(max(share, 0.0), 1.0))
                running[arm] += drawn
                remaining -= drawn
                mass_left -= probabilities[arm]
            running[arms - 1] += remaining
            counts[replication, look, :] = running
    return counts
