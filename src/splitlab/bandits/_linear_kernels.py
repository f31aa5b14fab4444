"""numba kernels of the linear contextual policies (:mod:`splitlab.bandits.linear`).

Every policy keeps, per copy c and arm k, the precision ``A[c, k] = λI + Σ w c_i x_i x_iᵀ``
and the vector ``b[c, k]`` with ``A θ = b`` (for ridge regression ``b = Σ w r x``), the
lifetime count of updates ``updates[c, k]``, and two derived caches: ``A_inv = A⁻¹`` kept
by Sherman–Morrison rank-one updates and ``theta = A⁻¹ b``. Every ``REFRESH``-th update of
an arm (``params[0]``) recomputes both from ``A`` and ``b`` by a Cholesky factorization, so
the rounding error of the rank-one updates never accumulates over more than that many
steps.

``params`` is laid out alike for every policy: ``[refresh_every, l2, first, second]`` with
``first``/``second`` the policy's own hyperparameters (α for LinUCB; v for LinTS, 1 for
LogisticTS; γ and its exponent for SquareCB).

``available`` in the select kernels is a boolean mask of shape (K,) shared by every copy,
or (copies, K).
"""

# numba compiles the legacy np.random functions to its own per-thread generator, the one
# ``np.random.seed`` seeds inside a kernel; numpy's Generator API is not what runs here.
# ruff: noqa: NPY002

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from splitlab.bandits._argmax_kernels import normal_argmax_row
from splitlab.bandits._kernels import draw  # the inverse-CDF rule of every policy

# ---------------------------------------------------------------------- linear algebra


@njit(cache=True)
def _quadratic_form(matrix, x):
    total = 0.0
    for i in range(x.size):
        row = 0.0
        for j in range(x.size):
            row += matrix[i, j] * x[j]
        total += x[i] * row
    return total


@njit(cache=True)
def _dot(u, v):
    total = 0.0
    for i in range(u.size):
        total += u[i] * v[i]
    return total


@njit(cache=True)
def _refresh_arm(A, b, A_inv, theta, copy, arm):
    """A⁻¹ and θ = A⁻¹b of one arm from its Cholesky factor A = LLᵀ; False if A is not
    positive definite (the caches are then left as they were)."""
    d = b.shape[2]
    lower = np.zeros((d, d))
    for j in range(d):
        pivot = A[copy, arm, j, j]
        for m in range(j):
            pivot -= lower[j, m] * lower[j, m]
        if not pivot > 0.0:
            return False
        lower[j, j] = math.sqrt(pivot)
        for i in range(j + 1, d):
            value = A[copy, arm, i, j]
            for m in range(j):
                value -= lower[i, m] * lower[j, m]
            lower[i, j] = value / lower[j, j]
    # inverse of L by forward substitution, then A⁻¹ = L⁻ᵀ L⁻¹
    lower_inv = np.zeros((d, d))
    for j in range(d):
        lower_inv[j, j] = 1.0 / lower[j, j]
        for i in range(j + 1, d):
            value = 0.0
            for m in range(j, i):
                value -= lower[i, m] * lower_inv[m, j]
            lower_inv[i, j] = value / lower[i, i]
    for i in range(d):
        for j in range(i + 1):
            value = 0.0
            for m in range(i, d):
                value += lower_inv[m, i] * lower_inv[m, j]
            A_inv[copy, arm, i, j] = value
            A_inv[copy, arm, j, i] = value
    for i in range(d):
        value = 0.0
        for j in range(d):
            value += A_inv[copy, arm, i, j] * b[copy, arm, j]
        theta[copy, arm, i] = value
    return True


@njit(cache=True)
def refresh_all(A, b, A_inv, theta):
    """Recompute every cache; returns the flat index (copy * K + arm) of the first arm whose
    A is not positive definite, or -1."""
    for c in range(A.shape[0]):
        for k in range(A.shape[1]):
            if not _refresh_arm(A, b, A_inv, theta, c, k):
                return c * A.shape[1] + k
    return -1


@njit(cache=True)
def _rank_one(A, A_inv, updates, b, theta, params, c, k, x, scale, u):
    """A += scale xxᵀ with the Sherman–Morrison update of A⁻¹ (u = old A⁻¹x, s = xᵀu):
    A⁻¹ ← A⁻¹ − scale u uᵀ / (1 + scale s); then count the update and refresh on schedule."""
    d = x.size
    s = _dot(x, u)
    factor = scale / (1.0 + scale * s)
    for i in range(d):
        for j in range(d):
            A[c, k, i, j] += scale * x[i] * x[j]
            A_inv[c, k, i, j] -= factor * u[i] * u[j]
    updates[c, k] += 1.0
    if updates[c, k] % params[0] == 0.0:
        _refresh_arm(A, b, A_inv, theta, c, k)


@njit(cache=True)
def _solve_direction(A_inv, c, k, x, u):
    d = x.size
    for i in range(d):
        value = 0.0
        for j in range(d):
            value += A_inv[c, k, i, j] * x[j]
        u[i] = value


# ---------------------------------------------------------------------- update kernels


@njit(cache=True)
def _ridge_step(A, b, updates, A_inv, theta, params, c, k, reward, x, weight, u):
    """Ridge regression per arm (LinUCB, LinTS, SquareCB): A += w xxᵀ, b += w r x, and the
    recursive-least-squares step θ ← θ + w (r − xᵀθ) A⁻¹x / (1 + w xᵀA⁻¹x)."""
    _solve_direction(A_inv, c, k, x, u)
    s = _dot(x, u)
    step = weight * (reward - _dot(x, theta[c, k])) / (1.0 + weight * s)
    for j in range(x.size):
        b[c, k, j] += weight * reward * x[j]
        theta[c, k, j] += step * u[j]
    _rank_one(A, A_inv, updates, b, theta, params, c, k, x, weight, u)


@njit(cache=True)
def _sigmoid(z):
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@njit(cache=True)
def _logistic_step(A, b, updates, A_inv, theta, params, c, k, reward, x, weight, u):
    """Online Laplace approximation of a Bayesian logistic regression per arm.

    Prior N(θ, A⁻¹), one observation (x, r ∈ [0, 1], weight w): the posterior mode lies on
    θ + t A⁻¹x, where t solves t = w (r − σ(xᵀθ + t s)), s = xᵀA⁻¹x (monotone in t; safeguarded
    Newton within [w(r − 1), w r]). The Laplace precision at the mode z* = xᵀθ + t s adds
    c = w σ(z*)(1 − σ(z*)) xxᵀ, and b = Aθ gains (t + c z*) x. This is the full-covariance,
    one-observation-at-a-time form of Chapelle & Li (2011, Algorithm 3).
    """
    _solve_direction(A_inv, c, k, x, u)
    s = _dot(x, u)
    mean = _dot(x, theta[c, k])
    low, high, t = weight * (reward - 1.0), weight * reward, 0.0
    for _ in range(100):
        p = _sigmoid(mean + t * s)
        excess = t - weight * (reward - p)
        if excess > 0.0:
            high = t
        else:
            low = t
        proposal = t - excess / (1.0 + weight * s * p * (1.0 - p))
        if not low <= proposal <= high:
            proposal = 0.5 * (low + high)
        converged = abs(proposal - t) <= 1e-14 * (1.0 + abs(t))
        t = proposal
        if converged:
            break
    z = mean + t * s
    p = _sigmoid(z)
    curvature = weight * p * (1.0 - p)
    for j in range(x.size):
        b[c, k, j] += (t + curvature * z) * x[j]
        theta[c, k, j] += t * u[j]
    _rank_one(A, A_inv, updates, b, theta, params, c, k, x, curvature, u)


@njit(cache=True)
def ridge_update(A, b, updates, A_inv, theta, params, copies, arms, rewards, contexts, weights):
    """Observation i goes to copy ``copies[i]``, arm ``arms[i]`` (see ``_ridge_step``)."""
    u = np.empty(contexts.shape[1])
    for i in range(arms.size):
        _ridge_step(
            A, b, updates, A_inv, theta, params,
            copies[i], arms[i], rewards[i], contexts[i], weights[i], u,
        )  # fmt: skip


@njit(cache=True)
def ridge_update_one(A, b, updates, A_inv, theta, params, arm, reward, context, weight):
    """One observation for copy 0 (the serving path: no arrays to build)."""
    u = np.empty(context.size)
    _ridge_step(A, b, updates, A_inv, theta, params, 0, arm, reward, context, weight, u)


@njit(cache=True)
def logistic_update(A, b, updates, A_inv, theta, params, copies, arms, rewards, contexts, weights):
    """Observation i goes to copy ``copies[i]``, arm ``arms[i]`` (see ``_logistic_step``)."""
    u = np.empty(contexts.shape[1])
    for i in range(arms.size):
        _logistic_step(
            A, b, updates, A_inv, theta, params,
            copies[i], arms[i], rewards[i], contexts[i], weights[i], u,
        )  # fmt: skip


@njit(cache=True)
def logistic_update_one(A, b, updates, A_inv, theta, params, arm, reward, context, weight):
    """One observation for copy 0 (the serving path: no arrays to build)."""
    u = np.empty(context.size)
    _logistic_step(A, b, updates, A_inv, theta, params, 0, arm, reward, context, weight, u)


# ---------------------------------------------------------------------- scores


@njit(cache=True)
def _pair_indices(d):
    """(i, j) of the products x_i x_j with i ≤ j, in the order of ``np.triu_indices``."""
    size = d * (d + 1) // 2
    first, second = np.empty(size, np.int64), np.empty(size, np.int64)
    t = 0
    for i in range(d):
        for j in range(i, d):
            first[t], second[t] = i, j
            t += 1
    return first, second


@njit(cache=True, fastmath=True)
def _pair_products(x, first, second, products):
    """products[t] = x[first[t]] x[second[t]]: one loop over the pairs (looping over the
    triangle's rows, short loops of varying length, cost twice as much)."""
    for t in range(products.size):
        products[t] = x[first[t]] * x[second[t]]


@njit(cache=True, fastmath=True)
def _spread_block(contexts, start, rows, packed, pairs, products, out, out_start):
    """out[out_start + q, k] = max(x_nᵀA_k⁻¹x_n, 0) for the rows n = start + q, q < rows ≤
    4, with ``packed[k]`` the upper triangle of A_k⁻¹ (off-diagonal entries doubled) so that
    the quadratic form is one dot product with the products x_i x_j (i ≤ j), ``pairs`` their
    indices (:func:`_pair_indices`). Four rows share every load of ``packed`` and two arms
    every load of the products; fastmath only lets these sums vectorize."""
    first, second = pairs
    for q in range(rows):
        _pair_products(contexts[start + q], first, second, products[q])
    n_arms, size = packed.shape
    for k in range(0, n_arms, 2):
        other = min(k + 1, n_arms - 1)  # an odd last arm is scored twice
        a0, a1, a2, a3 = 0.0, 0.0, 0.0, 0.0
        b0, b1, b2, b3 = 0.0, 0.0, 0.0, 0.0
        for t in range(size):
            p0, p1, p2, p3 = products[0, t], products[1, t], products[2, t], products[3, t]
            entry = packed[k, t]
            a0 += entry * p0
            a1 += entry * p1
            a2 += entry * p2
            a3 += entry * p3
            entry = packed[other, t]
            b0 += entry * p0
            b1 += entry * p1
            b2 += entry * p2
            b3 += entry * p3
        out[out_start, k], out[out_start, other] = max(a0, 0.0), max(b0, 0.0)
        if rows > 1:
            out[out_start + 1, k], out[out_start + 1, other] = max(a1, 0.0), max(b1, 0.0)
        if rows > 2:
            out[out_start + 2, k], out[out_start + 2, other] = max(a2, 0.0), max(b2, 0.0)
        if rows > 3:
            out[out_start + 3, k], out[out_start + 3, other] = max(a3, 0.0), max(b3, 0.0)


@njit(cache=True)
def _spread_rows(contexts, packed, pairs, spread, first, stop):
    """spread[n, k] = max(x_nᵀA_k⁻¹x_n, 0) for rows first..stop − 1 (see ``_spread_block``)."""
    products = np.zeros((4, packed.shape[1]))
    for start in range(first, stop, 4):
        _spread_block(contexts, start, min(4, stop - start), packed, pairs, products, spread, start)


@njit(cache=True, parallel=True)
def batch_spread(contexts, packed, spread):
    """Many contexts, split into chunks of rows scored in parallel (see ``_spread_rows``)."""
    n_rows = contexts.shape[0]
    pairs = _pair_indices(contexts.shape[1])
    chunks = 16
    chunk = (n_rows + chunks - 1) // chunks
    for c in prange(chunks):
        first = c * chunk
        stop = min(n_rows, first + chunk)
        if first < stop:
            _spread_rows(contexts, packed, pairs, spread, first, stop)


@njit(cache=True)
def _argmax_ties(values, available, out):
    best, ties = -np.inf, 0
    for k in range(values.size):
        if available[k]:
            if values[k] > best:
                best, ties = values[k], 1
            elif values[k] == best:
                ties += 1
    for k in range(values.size):
        out[k] = 1.0 / ties if available[k] and values[k] == best else 0.0


@njit(cache=True)
def argmax_probabilities(values, available, out):
    """Uniform over the available arms that share the largest value; rows of a 2-D array
    each (values, out: (N, K))."""
    for n in range(values.shape[0]):
        _argmax_ties(values[n], available, out[n])


# Reassociation lets the d-long sums of the single-context scores vectorize (no assumption
# about NaN or infinities); a score is then not bit-identical to ucb_select's.
_VECTOR_SUMS = {"reassoc", "contract"}


@njit(cache=True, fastmath=_VECTOR_SUMS, inline="always")
def _mean_and_spread(inverse, coefficients, context):
    """(xᵀθ, xᵀA⁻¹x) of one arm, the d-long sums in one pass."""
    spread, mean = 0.0, 0.0
    for i in range(context.size):
        row = 0.0
        for j in range(context.size):
            row += inverse[i, j] * context[j]
        spread += context[i] * row
        mean += context[i] * coefficients[i]
    return mean, spread


@njit(cache=True, fastmath=_VECTOR_SUMS)
def score_moments(A_inv, theta, context, scale, means, sds):
    """Copy 0: means xᵀθ_k and sds scale·sqrt(xᵀA_k⁻¹x) of every arm's score."""
    for k in range(theta.shape[1]):
        mean, spread = _mean_and_spread(A_inv[0, k], theta[0, k], context)
        means[k] = mean
        sds[k] = scale * math.sqrt(max(spread, 0.0))


@njit(cache=True)
def gaussian_scores_probabilities(A_inv, theta, context, scale, available, out):
    """Copy 0: P(arm k has the largest score) for the independent normal scores
    N(xᵀθ_k, scale² xᵀA_k⁻¹x) of LinTS and LogisticTS, in one call."""
    means, sds = np.empty(theta.shape[1]), np.empty(theta.shape[1])
    score_moments(A_inv, theta, context, scale, means, sds)
    normal_argmax_row(means, sds, available, out)


@njit(cache=True)
def gaussian_scores_choose(A_inv, theta, context, scale, available, uniform, out):
    """``gaussian_scores_probabilities`` into ``out`` and the arm :func:`draw` picks at
    ``uniform``."""
    gaussian_scores_probabilities(A_inv, theta, context, scale, available, out)
    return draw(out, uniform)


@njit(cache=True, fastmath=_VECTOR_SUMS)
def _ucb_scores(A_inv, theta, context, alpha, available, scores):
    """LinUCB (Li et al. 2010, eq. 5), copy 0: xᵀθ_k + α sqrt(xᵀA_k⁻¹x) of the available
    arms."""
    for k in range(theta.shape[1]):
        if available[k]:
            mean, spread = _mean_and_spread(A_inv[0, k], theta[0, k], context)
            scores[k] = mean + alpha * math.sqrt(max(spread, 0.0))


@njit(cache=True)
def ucb_probabilities(A_inv, theta, context, alpha, available, out):
    """LinUCB, copy 0: the argmax of the scores, ties shared equally."""
    scores = np.empty(theta.shape[1])
    _ucb_scores(A_inv, theta, context, alpha, available, scores)
    _argmax_ties(scores, available, out)


@njit(cache=True)
def ucb_choose(A_inv, theta, context, alpha, available, uniform, out):
    """``ucb_probabilities`` into ``out`` and the arm :func:`draw` picks at ``uniform``."""
    ucb_probabilities(A_inv, theta, context, alpha, available, out)
    return draw(out, uniform)


@njit(cache=True)
def _inverse_gap_row(predictions, available, gamma, out):
    n_available, best = 0, -np.inf
    for k in range(predictions.size):
        if available[k]:
            n_available += 1
            best = max(best, predictions[k])
    rest, ties = 1.0, 0
    for k in range(predictions.size):
        if not available[k]:
            out[k] = 0.0
        elif predictions[k] == best:
            ties += 1
        else:
            out[k] = 1.0 / (n_available + gamma * (best - predictions[k]))
            rest -= out[k]
    for k in range(predictions.size):
        if available[k] and predictions[k] == best:
            out[k] = rest / ties


@njit(cache=True)
def inverse_gap_probabilities(predictions, available, gamma, out):
    """SquareCB (Foster & Rakhlin 2020, Algorithm 1): p_k = 1 / (K + γ (ŷ_best − ŷ_k)) for
    every available arm below the best, the rest shared by the arms tied for best; rows of
    (N, K) arrays."""
    for n in range(predictions.shape[0]):
        _inverse_gap_row(predictions[n], available, gamma, out[n])


# ---------------------------------------------------------------------- select kernels


@njit(cache=True)
def _pick(values, mask):
    """Argmax over the mask, ties broken uniformly at random (reservoir sampling)."""
    best, choice, ties = -np.inf, -1, 0
    for k in range(values.size):
        if mask[k]:
            if values[k] > best:
                best, choice, ties = values[k], k, 1
            elif values[k] == best:
                ties += 1
                if np.random.random() * ties < 1.0:
                    choice = k
    return choice


@njit(cache=True)
def ucb_select(A, b, updates, A_inv, theta, params, contexts, available, out_arms):
    """One LinUCB decision per copy (row c of ``contexts``)."""
    n_arms = theta.shape[1]
    masks = available.reshape((-1, n_arms))
    scores = np.empty(n_arms)
    for c in range(out_arms.size):
        x = contexts[c]
        for k in range(n_arms):
            spread = math.sqrt(max(_quadratic_form(A_inv[c, k], x), 0.0))
            scores[k] = _dot(x, theta[c, k]) + params[2] * spread
        out_arms[c] = _pick(scores, masks[c if masks.shape[0] > 1 else 0])


@njit(cache=True)
def thompson_select(A, b, updates, A_inv, theta, params, contexts, available, out_arms):
    """One Thompson draw per copy: θ̃_k ~ N(θ_k, v² A_k⁻¹) for every arm, then the argmax of
    xᵀθ̃_k (Agrawal & Goyal 2013). Only xᵀθ̃_k matters, and it is N(xᵀθ_k, v² xᵀA_k⁻¹x), so
    the score is drawn directly — the same decision distribution at O(K d²) per copy."""
    n_arms = theta.shape[1]
    masks = available.reshape((-1, n_arms))
    scores = np.empty(n_arms)
    for c in range(out_arms.size):
        x = contexts[c]
        for k in range(n_arms):
            spread = math.sqrt(max(_quadratic_form(A_inv[c, k], x), 0.0))
            scores[k] = _dot(x, theta[c, k]) + params[2] * spread * np.random.standard_normal()
        out_arms[c] = _pick(scores, masks[c if masks.shape[0] > 1 else 0])


@njit(cache=True)
def squarecb_select(A, b, updates, A_inv, theta, params, contexts, available, out_arms):
    """One SquareCB draw per copy from its inverse-gap-weighted probabilities."""
    n_arms = theta.shape[1]
    masks = available.reshape((-1, n_arms))
    predictions = np.empty(n_arms)
    probabilities = np.empty(n_arms)
    for c in range(out_arms.size):
        x = contexts[c]
        for k in range(n_arms):
            predictions[k] = _dot(x, theta[c, k])
        gamma = params[2] * max(updates[c].sum(), 1.0) ** params[3]
        _inverse_gap_row(predictions, masks[c if masks.shape[0] > 1 else 0], gamma, probabilities)
        uniform = np.random.random()
        choice, cumulative = n_arms - 1, 0.0
        for k in range(n_arms):
            cumulative += probabilities[k]
            if uniform < cumulative and probabilities[k] > 0.0:
                choice = k
                break
        while probabilities[choice] == 0.0:  # rounding left the uniform past the last arm
            choice -= 1
        out_arms[c] = choice


@njit(cache=True, fastmath=True)
def _ucb_rows(
    contexts, packed, pairs, theta, alpha, available, uniforms, arms, propensities, first, stop
):
    """LinUCB decisions for rows first..stop − 1: score x·θ_k + α sqrt(xᵀA_k⁻¹x) (the
    quadratic forms four rows at a time, ``_spread_block``), the argmax with ties split
    evenly, drawn by inverse CDF at ``uniforms[n]`` (as ``Policy.choose``)."""
    d = contexts.shape[1]
    n_arms, size = packed.shape
    products = np.zeros((4, size))
    spread = np.empty((4, n_arms))
    scores = np.empty(n_arms)
    for start in range(first, stop, 4):
        rows = min(4, stop - start)
        _spread_block(contexts, start, rows, packed, pairs, products, spread, 0)
        for q in range(rows):
            n = start + q
            best, ties = -np.inf, 0
            for k in range(n_arms):
                mean = 0.0
                for i in range(d):
                    mean += contexts[n, i] * theta[k, i]
                scores[k] = mean + alpha * math.sqrt(spread[q, k])
                if available[k]:
                    if scores[k] > best:
                        best, ties = scores[k], 1
                    elif scores[k] == best:
                        ties += 1
            pick = min(int(uniforms[n] * ties), ties - 1)
            for k in range(n_arms):
                if available[k] and scores[k] == best:
                    if pick == 0:
                        arms[n] = k
                        break
                    pick -= 1
            propensities[n] = 1.0 / ties


@njit(cache=True, parallel=True)
def linucb_choose_batch(contexts, packed, theta, alpha, available, uniforms, arms, propensities):
    """Many LinUCB decisions at once, rows split into chunks scored in parallel."""
    n_rows = contexts.shape[0]
    pairs = _pair_indices(contexts.shape[1])
    chunks = 16
    chunk = (n_rows + chunks - 1) // chunks
    for c in prange(chunks):
        first = c * chunk
        stop = min(n_rows, first + chunk)
        if first < stop:
            _ucb_rows(
                contexts, packed, pairs, theta, alpha, available, uniforms, arms,
                propensities, first, stop,
            )  # fmt: skip
