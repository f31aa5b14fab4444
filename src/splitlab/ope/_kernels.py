"""numba kernels of the off-policy estimators, over plain arrays.

- :func:`group_gram`: the ridge sufficient statistics Σzzᵀ, Σzr, n per (group, action) with
  z = (1, x), in one pass (groups are cross-fitting folds or time blocks);
- :func:`poisson_bootstrap_means`: column means of a (n, M) matrix under ``n_boot`` Poisson(1)
  row weightings, the bootstrap of every estimator at once;
- :func:`policy_predictions`: q̂_π(xᵢ) = Σₐ π(a|xᵢ) q̂(xᵢ, a) and q̂(xᵢ, aᵢ) from per-(fold,
  action) linear coefficients in one pass, without materializing the (n, K) matrix of q̂;
- :func:`aipw_scores`: leave-future-out AIPW scores of every arm (Hadad et al. 2021);
- :func:`invalid_probability_rows`, :func:`unsupported_mass`: fused checks of (n, K) matrices.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# Poisson(1) draws from 16-bit uniforms: POISSON_TABLE[u] is the smallest k with
# (u + ½)/2¹⁶ < P(K ≤ k). Each probability is then within 2⁻¹⁶ of the Poisson's (mass
# beyond k = 8, about 1e-6, is folded into k = 8), and one 64-bit hash gives four draws.
_POISSON_CDF = np.cumsum(np.exp(-1.0) / np.array([math.factorial(k) for k in range(20)]))
POISSON_TABLE = np.searchsorted(
    _POISSON_CDF, (np.arange(2**16) + 0.5) / 2**16, side="right"
).astype(np.float64)
_BLOCK = 256  # rows whose columns stay in L1 while every resample visits them
_CHUNKS = 64  # row chunks: fixed, so the summation order does not depend on the thread count


@njit(cache=True)
def group_gram(contexts, actions, rewards, groups, n_groups, n_actions, gram, moment, count):
    """Accumulate Σzzᵀ into gram[g, a], Σz·r into moment[g, a] and n into count[g, a]."""
    n, d = contexts.shape
    z = np.empty(d + 1)
    for i in range(n):
        g, a = groups[i], actions[i]
        z[0] = 1.0
        for j in range(d):
            z[j + 1] = contexts[i, j]
        r = rewards[i]
        count[g, a] += 1.0
        for j in range(d + 1):
            moment[g, a, j] += z[j] * r
            for k in range(j + 1):
                gram[g, a, j, k] += z[j] * z[k]
    for g in range(n_groups):
        for a in range(n_actions):
            for j in range(d + 1):
                for k in range(j + 1, d + 1):
                    gram[g, a, j, k] = gram[g, a, k, j]


@njit(cache=True, parallel=True)
def predict_linear(contexts, groups, coefficients, out):
    """out[i, a] = coefficients[groups[i], a] · (1, xᵢ): every action's prediction for every
    row from the model of the row's group (its cross-fitting fold)."""
    n, d = contexts.shape
    actions = coefficients.shape[1]
    for i in prange(n):
        g = groups[i]
        for a in range(actions):
            value = coefficients[g, a, 0]
            for j in range(d):
                value += coefficients[g, a, j + 1] * contexts[i, j]
            out[i, a] = value


@njit(cache=True, inline="always")
def _mix_row(i, groups, actions, contexts, coefficients, target, mixed, q_target, q_logged):
    g = groups[i]
    d = contexts.shape[1]
    mixed[:] = 0.0
    for a in range(coefficients.shape[1]):
        p = target[i, a]
        if p != 0.0:
            for j in range(d + 1):
                mixed[j] += p * coefficients[g, a, j]
    logged = actions[i]
    total = mixed[0]
    value = coefficients[g, logged, 0]
    for j in range(d):
        total += mixed[j + 1] * contexts[i, j]
        value += coefficients[g, logged, j + 1] * contexts[i, j]
    q_target[i] = total
    q_logged[i] = value


@njit(cache=True, parallel=True)
def policy_predictions(
    contexts, groups, actions, coefficients, target, logistic, q_target, q_logged
):
    """q_target[i] = Σₐ target[i, a] q̂ᵢₐ and q_logged[i] = q̂ᵢ,ₐᵢ with q̂ᵢₐ = c · (1, xᵢ) for
    c = coefficients[groups[i], a] (through the logistic link when ``logistic``). Actions
    with target probability 0 are skipped (except the logged one)."""
    n, d = contexts.shape
    actions_count, width = coefficients.shape[1], coefficients.shape[2]
    if not logistic:
        # linear: q̂_π(xᵢ) = (Σₐ π(a|xᵢ) c_a) · zᵢ, a contiguous (vectorizable) accumulation
        step = (n + _CHUNKS - 1) // _CHUNKS
        for c in prange(_CHUNKS):
            mixed = np.empty(width)
            for i in range(c * step, min(n, (c + 1) * step)):
                _mix_row(i, groups, actions, contexts, coefficients, target, mixed, q_target,
                         q_logged)  # fmt: skip
        return
    for i in prange(n):
        g = groups[i]
        logged = actions[i]
        total = 0.0
        for a in range(actions_count):
            p = target[i, a]
            if p == 0.0 and a != logged:
                continue
            value = coefficients[g, a, 0]
            for j in range(d):
                value += coefficients[g, a, j + 1] * contexts[i, j]
            if logistic:
                value = 1.0 / (1.0 + math.exp(-min(max(value, -30.0), 30.0)))
            total += p * value
            if a == logged:
                q_logged[i] = value
        q_target[i] = total


@njit(cache=True, parallel=True)
def poisson_bootstrap_means(columns, n_boot, seed, table, out):
    """out[b, m] = Σᵢ cᵢᵦ columns[i, m] / Σᵢ cᵢᵦ with cᵢᵦ ~ Poisson(1) iid (the Poisson
    bootstrap: each row is resampled a Poisson(1) number of times).

    The weights come from a counter-based generator — the splitmix64 finalizer of (seed,
    resample, row / 4), four 16-bit uniforms per hash, mapped through ``table`` — so that
    resample b's weight of row i does not depend on which thread computes it."""
    n, width = columns.shape
    chunk = ((n + _CHUNKS - 1) // _CHUNKS + 3) // 4 * 4
    partial = np.zeros((_CHUNKS, n_boot, width + 1))
    golden = np.uint64(0x9E3779B97F4A7C15)
    base = np.uint64(seed) * golden
    low16 = np.uint64(0xFFFF)
    for c in prange(_CHUNKS):
        start = c * chunk
        stop = min(n, start + chunk)
        sums = partial[c]
        for block in range(start, stop, _BLOCK):
            end = min(stop, block + _BLOCK)
            for b in range(n_boot):
                stream = base + np.uint64(b + 1) * np.uint64(0xD1B54A32D192ED03)
                row = sums[b]
                for i in range(block, end, 4):
                    key = stream + np.uint64(i >> 2) * golden
                    key = (key ^ (key >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
                    key = (key ^ (key >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
                    key = key ^ (key >> np.uint64(31))
                    for q in range(min(4, end - i)):
                        weight = table[(key >> np.uint64(16 * q)) & low16]
                        row[width] += weight
                        for m in range(width):
                            row[m] += weight * columns[i + q, m]
    for b in range(n_boot):
        total = 0.0
        for c in range(_CHUNKS):
            total += partial[c, b, width]
        for m in range(width):
            value = 0.0
            for c in range(_CHUNKS):
                value += partial[c, b, m]
            out[b, m] = value / total if total > 0 else np.nan


@njit(cache=True)
def aipw_scores(actions, rewards, probabilities, scores):
    """Γ̂ₜ(a) = μ̂ₜ₋₁(a) + 1{Aₜ = a}/eₜ(a) · (Yₜ − μ̂ₜ₋₁(a)) for every arm a (the AIPW
    scores of Hadad et al., PNAS 2021, §2, with a history-only plug-in μ̂), where μ̂ₜ₋₁(a)
    is the mean reward of arm a over rows before t — or, before
    arm a has a reward, the mean of all earlier rewards (0 at t = 0). Arms with eₜ(a) = 0 get
    Γ̂ₜ(a) = μ̂ₜ₋₁(a) (their evaluation weight is zero)."""
    n, k = probabilities.shape
    sums = np.zeros(k)
    counts = np.zeros(k)
    total = 0.0
    for t in range(n):
        pooled = total / t if t > 0 else 0.0
        for a in range(k):
            mean = sums[a] / counts[a] if counts[a] > 0 else pooled
            scores[t, a] = mean
        a = actions[t]
        scores[t, a] += (rewards[t] - scores[t, a]) / probabilities[t, a]
        sums[a] += rewards[t]
        counts[a] += 1.0
        total += rewards[t]


@njit(cache=True, parallel=True)
def invalid_probability_rows(matrix, tolerance, bad):
    """bad[i] = row i has a NaN, inf or negative entry, or does not sum to 1 ± tolerance."""
    n, k = matrix.shape
    for i in prange(n):
        total = 0.0
        ok = True
        for a in range(k):
            value = matrix[i, a]
            if not (math.isfinite(value) and value >= 0.0):
                ok = False
            total += value
        bad[i] = not ok or abs(total - 1.0) > tolerance
    return bad


@njit(cache=True, parallel=True)
def unsupported_mass(target, probabilities):
    """mean over rows of Σₐ target[i, a] 1{probabilities[i, a] ≤ 0}."""
    n, k = target.shape
    total = 0.0
    for i in prange(n):
        row = 0.0
        for a in range(k):
            if probabilities[i, a] <= 0.0:
                row += target[i, a]
        total += row
    return total / n if n > 0 else np.nan
