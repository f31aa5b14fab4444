"""numba kernels of the context-free policies in :mod:`splitlab.bandits.mab`.

Every kernel takes plain arrays. State arrays have the copy axis first and the arm axis
second. Kernel signatures follow :mod:`splitlab.bandits.base`:

- ``*_select(state..., params, contexts, available, out_arms)`` draws one arm per copy into
  ``out_arms`` (int64, one per copy) with numba's generator (seed it with
  :func:`seed_kernels`); ``available`` is a boolean mask of shape ``(n_arms,)`` shared by
  every copy, or ``(copies, n_arms)``; ``contexts`` is ignored (shape ``(copies, 0)``).
- ``*_update(state..., params, copies, arms, rewards, contexts, weights)`` adds observation
  ``i`` to copy ``copies[i]``, arm ``arms[i]`` with weight ``weights[i]``.
- ``*_probabilities(state..., params, available, out)`` writes the exact choice
  probabilities of copy 0 (one implementation shared with ``*_select`` for index policies, so
  that ties seen by one are ties seen by the other).
- the serving path of ``Policy.update`` and ``Policy.choose`` (copy 0, one call each, few
  arguments because numba unboxes every one): ``*_update_one(state..., arm, reward,
  weight)`` adds one observation exactly as ``*_update`` does (:data:`ONE_OBSERVATION`
  pairs them; EXP3's also takes ``params``), and
  ``*_choose(state..., params, uniform, out)`` writes ``*_probabilities`` with every arm
  available and returns the arm :func:`draw` picks at ``uniform``.

The select kernels are serial: a simulation runner parallelises over slices of copies and
seeds each slice, which keeps runs reproducible (numba's per-thread generators are not
seeded by a call outside the parallel region).
"""

# numba implements only the legacy np.random API inside kernels
# ruff: noqa: NPY002

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Bisection steps of the KL-UCB index: the bracket [mean, 1] shrinks to 2^-40 < 1e-12.
_KL_BISECTIONS = 40
# Top-two Thompson resamples at most this often for a challenger that differs from the
# leader, then plays the leader (the chance of reaching the cap is π_leader^cap).
_TOP_TWO_MAX_RESAMPLES = 10_000


@njit(cache=True)
def seed_kernels(seed):
    """Seed numba's generator (the one the select kernels draw from) on this thread."""
    np.random.seed(seed)


# ---------------------------------------------------------------------------------- helpers


@njit(cache=True)
def _standard_gamma(shape):
    """Gamma(shape, 1) by Marsaglia & Tsang, "A simple method for generating gamma
    variables", ACM TOMS 2000 (with their U^(1/a) boost for shape < 1): ~2.5× faster than
    numba's np.random.beta, which matters in the Thompson select loops."""
    boost = 1.0
    if shape < 1.0:
        boost = np.random.random() ** (1.0 / shape)
        shape += 1.0
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = np.random.standard_normal()
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = np.random.random()
        x2 = x * x
        if u < 1.0 - 0.0331 * x2 * x2:
            return d * v * boost
        if math.log(u) < 0.5 * x2 + d * (1.0 - v + math.log(v)):
            return d * v * boost


@njit(cache=True, inline="always")
def _beta(a, b):
    first = _standard_gamma(a)
    return first / (first + _standard_gamma(b))


@njit(cache=True, inline="always")
def _mask_row(available, copy):
    """Row of the (rows, n_arms) mask that applies to ``copy`` (one shared row or one each)."""
    return 0 if available.shape[0] == 1 else copy


@njit(cache=True)
def _as_rows(available, n_arms):
    return available.reshape((-1, n_arms))


@njit(cache=True)
def _pick_max(scores, mask, row):
    """Index of the largest score among available arms, ties broken uniformly at random."""
    best = -np.inf
    ties = 0
    for k in range(scores.size):
        if mask[row, k]:
            if scores[k] > best:
                best = scores[k]
                ties = 1
            elif scores[k] == best:
                ties += 1
    chosen = np.random.randint(ties) if ties > 1 else 0
    for k in range(scores.size):
        if mask[row, k] and scores[k] == best:
            if chosen == 0:
                return k
            chosen -= 1
    return -1


@njit(cache=True)
def _pick_uniform(mask, row):
    """A uniformly random available arm."""
    count = 0
    for k in range(mask.shape[1]):
        count += mask[row, k]
    chosen = np.random.randint(count)
    for k in range(mask.shape[1]):
        if mask[row, k]:
            if chosen == 0:
                return k
            chosen -= 1
    return -1


@njit(cache=True)
def _pick_from(probabilities):
    """Inverse-CDF draw from probabilities that sum to 1 (zero for unavailable arms)."""
    target = np.random.random()
    cumulative = 0.0
    last = -1
    for k in range(probabilities.size):
        if probabilities[k] > 0.0:
            cumulative += probabilities[k]
            last = k
            if target < cumulative:
                return k
    return last


@njit(cache=True)
def draw(probabilities, uniform):
    """Inverse-CDF draw, the rule of :func:`splitlab.bandits.base.draw_from` (and of the
    bisected draw table of ``Policy.choose``): the first arm whose cumulative probability
    exceeds ``uniform`` × total, never an arm of probability zero (the last positive arm
    when rounding leaves the target at the total)."""
    total, last = 0.0, 0
    for k in range(probabilities.size):
        total += probabilities[k]
        if probabilities[k] > 0.0:
            last = k
    target = uniform * total
    cumulative = 0.0
    for k in range(last):
        cumulative += probabilities[k]
        if cumulative > target:
            return k
    return last


@njit(cache=True)
def within_limit(values, limit):
    """Whether every value lies in [−limit, limit] (False for NaN): one pass, where numpy's
    abs, comparison and ``all`` cost ~1 µs each on a short context."""
    for value in values.flat:
        if not abs(value) <= limit:
            return False
    return True


@njit(cache=True)
def _argmax_probabilities(scores, available, out):
    """1 / (number of tied maxima) on the available arms with the largest score."""
    best = -np.inf
    ties = 0
    for k in range(scores.size):
        if available[k]:
            if scores[k] > best:
                best = scores[k]
                ties = 1
            elif scores[k] == best:
                ties += 1
    for k in range(scores.size):
        out[k] = 1.0 / ties if available[k] and scores[k] == best else 0.0


@njit(cache=True)
def _means(counts, sums, copy, scores):
    """Empirical means; an unplayed arm scores +inf so that it is tried first."""
    for k in range(scores.size):
        n = counts[copy, k]
        scores[k] = sums[copy, k] / n if n > 0.0 else np.inf


@njit(cache=True)
def _total(counts, copy):
    total = 0.0
    for k in range(counts.shape[1]):
        total += counts[copy, k]
    return total


# ------------------------------------------------------------------ counts and reward sums


@njit(cache=True)
def count_update(counts, sums, params, copies, arms, rewards, contexts, weights):
    for i in range(arms.size):
        counts[copies[i], arms[i]] += weights[i]
        sums[copies[i], arms[i]] += weights[i] * rewards[i]


@njit(cache=True)
def count_update_one(counts, sums, arm, reward, weight):
    """One observation of copy 0, as ``count_update`` adds it (the serving path)."""
    counts[0, arm] += weight
    sums[0, arm] += weight * reward


# ---------------------------------------------------------------------------- ε-greedy


@njit(cache=True, inline="always")
def _epsilon(counts, params, copy):
    """ε_t = ε / (1 + decay · t), t the (discounted) number of observations so far."""
    return params[0] / (1.0 + params[1] * _total(counts, copy))


@njit(cache=True)
def epsilon_greedy_select(counts, sums, params, contexts, available, out_arms):
    mask = _as_rows(available, counts.shape[1])
    scores = np.empty(counts.shape[1])
    for c in range(out_arms.size):
        row = _mask_row(mask, c)
        if np.random.random() < _epsilon(counts, params, c):
            out_arms[c] = _pick_uniform(mask, row)
        else:
            _means(counts, sums, c, scores)
            out_arms[c] = _pick_max(scores, mask, row)


@njit(cache=True)
def epsilon_greedy_probabilities(counts, sums, params, available, out):
    scores = np.empty(counts.shape[1])
    _means(counts, sums, 0, scores)
    _argmax_probabilities(scores, available, out)
    epsilon = _epsilon(counts, params, 0)
    explore = epsilon / available.sum()
    for k in range(out.size):
        out[k] = (1.0 - epsilon) * out[k] + (explore if available[k] else 0.0)


@njit(cache=True)
def epsilon_greedy_choose(counts, sums, params, uniform, out):
    """Copy 0, every arm available: the exact probabilities into ``out`` and the arm
    :func:`draw` picks at ``uniform`` (the first ``choose`` after an update, in one call)."""
    epsilon_greedy_probabilities(counts, sums, params, np.ones(out.size, np.bool_), out)
    return draw(out, uniform)


# ---------------------------------------------------------------------------------- UCB1


@njit(cache=True)
def _ucb_scores(counts, sums, params, copy, scores):
    """Auer, Cesa-Bianchi & Fischer (2002), UCB1: mean + α √(2 ln t / n_k); +inf unplayed."""
    log_total = math.log(max(_total(counts, copy), 1.0))
    for k in range(scores.size):
        n = counts[copy, k]
        if n > 0.0:
            scores[k] = sums[copy, k] / n + params[0] * math.sqrt(2.0 * log_total / n)
        else:
            scores[k] = np.inf


@njit(cache=True)
def ucb_select(counts, sums, params, contexts, available, out_arms):
    mask = _as_rows(available, counts.shape[1])
    scores = np.empty(counts.shape[1])
    for c in range(out_arms.size):
        _ucb_scores(counts, sums, params, c, scores)
        out_arms[c] = _pick_max(scores, mask, _mask_row(mask, c))


@njit(cache=True)
def ucb_probabilities(counts, sums, params, available, out):
    scores = np.empty(counts.shape[1])
    _ucb_scores(counts, sums, params, 0, scores)
    _argmax_probabilities(scores, available, out)


@njit(cache=True)
def ucb_choose(counts, sums, params, uniform, out):
    """Copy 0, every arm available: the exact probabilities into ``out`` and the arm
    :func:`draw` picks at ``uniform`` (the first ``choose`` after an update, in one call)."""
    ucb_probabilities(counts, sums, params, np.ones(out.size, np.bool_), out)
    return draw(out, uniform)


# ------------------------------------------------------------------------------- KL-UCB


@njit(cache=True, inline="always")
def _bernoulli_kl(p, q):
    """KL(Bernoulli(p) ‖ Bernoulli(q)) with 0 log 0 = 0."""
    value = 0.0
    if p > 0.0:
        value += p * math.log(p / q)
    if p < 1.0:
        value += (1.0 - p) * math.log((1.0 - p) / (1.0 - q))
    return value


@njit(cache=True)
def _kl_ucb_scores(counts, sums, params, copy, scores):
    """Garivier & Cappé (2011), KL-UCB: max{q ≥ mean : n_k KL(mean, q) ≤ ln t + c ln ln t}
    (the c term only once ln t > 1), by bisection; +inf for unplayed arms."""
    total = _total(counts, copy)
    log_total = math.log(max(total, 1.0))
    level = log_total + (params[0] * math.log(log_total) if log_total > 1.0 else 0.0)
    for k in range(scores.size):
        n = counts[copy, k]
        if n <= 0.0:
            scores[k] = np.inf
            continue
        mean = min(max(sums[copy, k] / n, 0.0), 1.0)
        bound = level / n
        low, high = mean, 1.0
        for _ in range(_KL_BISECTIONS):
            middle = 0.5 * (low + high)
            if _bernoulli_kl(mean, middle) <= bound:
                low = middle
            else:
                high = middle
        scores[k] = low


@njit(cache=True)
def kl_ucb_select(counts, sums, params, contexts, available, out_arms):
    mask = _as_rows(available, counts.shape[1])
    scores = np.empty(counts.shape[1])
    for c in range(out_arms.size):
        _kl_ucb_scores(counts, sums, params, c, scores)
        out_arms[c] = _pick_max(scores, mask, _mask_row(mask, c))


@njit(cache=True)
def kl_ucb_probabilities(counts, sums, params, available, out):
    scores = np.empty(counts.shape[1])
    _kl_ucb_scores(counts, sums, params, 0, scores)
    _argmax_probabilities(scores, available, out)


@njit(cache=True)
def kl_ucb_choose(counts, sums, params, uniform, out):
    """Copy 0, every arm available: the exact probabilities into ``out`` and the arm
    :func:`draw` picks at ``uniform`` (the first ``choose`` after an update, in one call)."""
    kl_ucb_probabilities(counts, sums, params, np.ones(out.size, np.bool_), out)
    return draw(out, uniform)


# ------------------------------------------------------------------------------- softmax


@njit(cache=True)
def _softmax(counts, sums, params, copy, available, row, out):
    """Boltzmann exploration: p_k ∝ exp(mean_k / τ) over available arms; while some
    available arm is unplayed, uniform over the unplayed ones (they are tried first)."""
    unplayed = 0
    top = -np.inf
    for k in range(out.size):
        if available[row, k]:
            if counts[copy, k] <= 0.0:
                unplayed += 1
            else:
                top = max(top, sums[copy, k] / counts[copy, k])
    total = 0.0
    for k in range(out.size):
        if not available[row, k]:
            out[k] = 0.0
        elif unplayed > 0:
            out[k] = 1.0 if counts[copy, k] <= 0.0 else 0.0
        else:
            out[k] = math.exp((sums[copy, k] / counts[copy, k] - top) / params[0])
        total += out[k]
    for k in range(out.size):
        out[k] /= total


@njit(cache=True)
def softmax_select(counts, sums, params, contexts, available, out_arms):
    mask = _as_rows(available, counts.shape[1])
    probabilities = np.empty(counts.shape[1])
    for c in range(out_arms.size):
        _softmax(counts, sums, params, c, mask, _mask_row(mask, c), probabilities)
        out_arms[c] = _pick_from(probabilities)


@njit(cache=True)
def softmax_probabilities(counts, sums, params, available, out):
    _softmax(counts, sums, params, 0, available.reshape((1, -1)), 0, out)


@njit(cache=True)
def softmax_choose(counts, sums, params, uniform, out):
    """Copy 0, every arm available: the exact probabilities into ``out`` and the arm
    :func:`draw` picks at ``uniform`` (the first ``choose`` after an update, in one call)."""
    _softmax(counts, sums, params, 0, np.ones((1, out.size), np.bool_), 0, out)
    return draw(out, uniform)


# ---------------------------------------------------------------------------------- EXP3


@njit(cache=True)
def _exp3(estimates, params, copy, available, row, out):
    """Auer, Cesa-Bianchi, Freund & Schapire (2002), Exp3: p_k = (1 − γ) w_k / Σw + γ / K
    with w_k = exp(γ Ŝ_k / K) over the K available arms, Ŝ_k the importance-weighted
    reward sum."""
    gamma = params[0]
    arms = 0
    for k in range(out.size):
        arms += available[row, k]
    rate = gamma / arms
    top = -np.inf
    for k in range(out.size):
        if available[row, k]:
            top = max(top, rate * estimates[copy, k])
    total = 0.0
    for k in range(out.size):
        out[k] = math.exp(rate * estimates[copy, k] - top) if available[row, k] else 0.0
        total += out[k]
    for k in range(out.size):
        if available[row, k]:
            out[k] = (1.0 - gamma) * out[k] / total + rate


@njit(cache=True)
def exp3_select(estimates, params, contexts, available, out_arms):
    mask = _as_rows(available, estimates.shape[1])
    probabilities = np.empty(estimates.shape[1])
    for c in range(out_arms.size):
        _exp3(estimates, params, c, mask, _mask_row(mask, c), probabilities)
        out_arms[c] = _pick_from(probabilities)


@njit(cache=True)
def exp3_update(estimates, params, copies, arms, rewards, contexts, weights):
    """Ŝ_k += w · r / p_k with p_k the policy's own current probability of the arm (all
    arms available)."""
    everything = np.ones((1, estimates.shape[1]), dtype=np.bool_)
    probabilities = np.empty(estimates.shape[1])
    for i in range(arms.size):
        _exp3(estimates, params, copies[i], everything, 0, probabilities)
        estimates[copies[i], arms[i]] += weights[i] * rewards[i] / probabilities[arms[i]]


@njit(cache=True)
def exp3_update_one(estimates, params, arm, reward, weight):
    """One observation of copy 0, as ``exp3_update`` adds it (the serving path)."""
    probabilities = np.empty(estimates.shape[1])
    _exp3(estimates, params, 0, np.ones((1, estimates.shape[1]), np.bool_), 0, probabilities)
    estimates[0, arm] += weight * reward / probabilities[arm]


@njit(cache=True)
def exp3_probabilities(estimates, params, available, out):
    _exp3(estimates, params, 0, available.reshape((1, -1)), 0, out)


@njit(cache=True)
def exp3_choose(estimates, params, uniform, out):
    """Copy 0, every arm available: the exact probabilities into ``out`` and the arm
    :func:`draw` picks at ``uniform`` (the first ``choose`` after an update, in one call)."""
    _exp3(estimates, params, 0, np.ones((1, out.size), np.bool_), 0, out)
    return draw(out, uniform)


# ---------------------------------------------------------------------------- fixed split


@njit(cache=True)
def fixed_split_select(counts, sums, params, contexts, available, out_arms):
    mask = _as_rows(available, counts.shape[1])
    probabilities = np.empty(counts.shape[1])
    for c in range(out_arms.size):
        row = _mask_row(mask, c)
        total = 0.0
        for k in range(probabilities.size):
            probabilities[k] = params[k] if mask[row, k] else 0.0
            total += probabilities[k]
        for k in range(probabilities.size):
            probabilities[k] /= total
        out_arms[c] = _pick_from(probabilities)


# ------------------------------------------------------------------ Beta-Bernoulli Thompson


@njit(cache=True)
def beta_update(alpha, beta, params, copies, arms, rewards, contexts, weights):
    """Fractional conjugate update α += w r, β += w (1 − r): exact Bayes for 0/1 rewards."""
    for i in range(arms.size):
        alpha[copies[i], arms[i]] += weights[i] * rewards[i]
        beta[copies[i], arms[i]] += weights[i] * (1.0 - rewards[i])


@njit(cache=True)
def beta_update_one(alpha, beta, arm, reward, weight):
    """One observation of copy 0, as ``beta_update`` adds it (the serving path)."""
    alpha[0, arm] += weight * reward
    beta[0, arm] += weight * (1.0 - reward)


@njit(cache=True)
def _beta_draw_argmax(alpha, beta, copy, mask, row):
    best = -1.0
    chosen = -1
    for k in range(alpha.shape[1]):
        if mask[row, k]:
            draw = _beta(alpha[copy, k], beta[copy, k])
            if draw > best:
                best = draw
                chosen = k
    return chosen


@njit(cache=True)
def thompson_select(alpha, beta, params, contexts, available, out_arms):
    """Thompson (1933) / Chapelle & Li (2011): one posterior draw per arm, play the argmax."""
    mask = _as_rows(available, alpha.shape[1])
    for c in range(out_arms.size):
        out_arms[c] = _beta_draw_argmax(alpha, beta, c, mask, _mask_row(mask, c))


@njit(cache=True)
def top_two_select(alpha, beta, params, contexts, available, out_arms):
    """Russo (2016), top-two Thompson sampling: the posterior argmax I with probability
    β = params[2], else the argmax of fresh draws resampled until it differs from I."""
    mask = _as_rows(available, alpha.shape[1])
    for c in range(out_arms.size):
        row = _mask_row(mask, c)
        leader = _beta_draw_argmax(alpha, beta, c, mask, row)
        out_arms[c] = leader
        if np.random.random() < params[2]:
            continue
        for _ in range(_TOP_TWO_MAX_RESAMPLES):
            challenger = _beta_draw_argmax(alpha, beta, c, mask, row)
            if challenger != leader:
                out_arms[c] = challenger
                break


# ------------------------------------------------------------- Normal-Inverse-Gamma Thompson
#
# Each arm keeps its weighted count n, mean and centred sum of squares M2 = Σ w (y − ȳ)²,
# never Σy²: the textbook Σy² − (Σy)²/n cancels catastrophically for rewards such as
# 1e9 + N(10, 2). The mean is carried as an unevaluated sum ``means + mean_corrections``
# (a double-double): a plain float64 running mean of 1e12-sized rewards rounds by
# ulp(1e12)/2 ≈ 6e-5 at every update, and those roundings leak into M2 (~1e-5 relative
# after a few hundred rewards); with the correction term the deviations y − ȳ that feed
# M2 are exact to rounding at their own scale.


@njit(cache=True, inline="always")
def _two_sum(a, b):
    """s = fl(a + b) and the rounding error e, with a + b = s + e exactly (Knuth, TAOCP
    vol. 2, §4.2.2, Theorem B)."""
    s = a + b
    v = s - a
    return s, (a - (s - v)) + (b - v)


@njit(cache=True, inline="always")
def _shift_mean(mean, correction, step):
    """(mean + correction) + step as a new (mean, correction) pair."""
    s, e = _two_sum(mean, step)
    return _two_sum(s, correction + e)


@njit(cache=True, inline="always")
def _normal_gamma_posterior(counts, means, corrections, m2, params, copy, k):
    """Posterior (μ_n, κ_n, α_n, β_n) of the Normal-Inverse-Gamma model (Murphy 2007,
    "Conjugate Bayesian analysis of the Gaussian distribution", eqs. 86-89) from the
    weighted count n, mean ȳ and M2: μ_n = μ0 + n (ȳ − μ0) / κ_n, κ_n = κ0 + n,
    α_n = α0 + n / 2, β_n = β0 + M2 / 2 + κ0 n (ȳ − μ0)² / (2 κ_n)."""
    mu0, kappa0, alpha0, beta0 = params[0], params[1], params[2], params[3]
    n = counts[copy, k]
    kappa = kappa0 + n
    alpha = alpha0 + 0.5 * n
    mu = mu0
    beta = beta0
    if n > 0.0:
        gap = (means[copy, k] - mu0) + corrections[copy, k]
        mu = mu0 + n * gap / kappa
        beta += 0.5 * max(m2[copy, k], 0.0) + 0.5 * kappa0 * n * gap * gap / kappa
    return mu, kappa, alpha, beta


@njit(cache=True)
def normal_gamma_update(
    counts, means, corrections, m2, params, copies, arms, rewards, contexts, weights
):
    """Weighted Welford update (West, "Updating mean and variance estimates: an improved
    method", CACM 1979): n' = n + w, δ = y − ȳ, ȳ' = ȳ + δ w / n', M2' = M2 + δ² w n / n'."""
    for i in range(arms.size):
        weight = weights[i]
        if not weight > 0.0:
            continue
        c, k = copies[i], arms[i]
        before = max(counts[c, k], 0.0)
        total = before + weight
        delta = (rewards[i] - means[c, k]) - corrections[c, k]
        means[c, k], corrections[c, k] = _shift_mean(
            means[c, k], corrections[c, k], delta * (weight / total)
        )
        m2[c, k] += delta * delta * (weight * before / total)
        counts[c, k] = total


@njit(cache=True)
def normal_gamma_merge(
    counts, means, corrections, m2, other_counts, other_means, other_corrections, other_m2
):
    """Fold another set of per-arm (n, ȳ, M2) into these rows (1-D, one entry per arm) by
    the pairwise update of Chan, Golub & LeVeque ("Updating formulae and a pairwise
    algorithm for computing sample variances", Stanford STAN-CS-79-773, 1979):
    n = n_a + n_b, δ = ȳ_b − ȳ_a, ȳ = ȳ_a + δ n_b / n, M2 = M2_a + M2_b + δ² n_a n_b / n."""
    for k in range(counts.size):
        added = other_counts[k]
        if not added > 0.0:
            continue
        before = max(counts[k], 0.0)
        total = before + added
        delta = (other_means[k] - means[k]) + (other_corrections[k] - corrections[k])
        means[k], corrections[k] = _shift_mean(means[k], corrections[k], delta * (added / total))
        m2[k] += other_m2[k] + delta * delta * (before * added / total)
        counts[k] = total


@njit(cache=True)
def normal_gamma_select(counts, means, corrections, m2, params, contexts, available, out_arms):
    """Thompson draw of each arm's mean: σ² ~ InvGamma(α_n, β_n), μ ~ N(μ_n, σ² / κ_n)."""
    mask = _as_rows(available, counts.shape[1])
    for c in range(out_arms.size):
        row = _mask_row(mask, c)
        best = -np.inf
        chosen = -1
        for k in range(counts.shape[1]):
            if mask[row, k]:
                mu, kappa, alpha, beta = _normal_gamma_posterior(
                    counts, means, corrections, m2, params, c, k
                )
                variance = beta / _standard_gamma(alpha)
                draw = mu + math.sqrt(variance / kappa) * np.random.standard_normal()
                if draw > best:
                    best = draw
                    chosen = k
        out_arms[c] = chosen


@njit(cache=True)
def normal_gamma_marginals(counts, means, corrections, m2, params, loc, scale, df):
    """Student-t marginal of each arm's mean (copy 0): t_{2α_n}(μ_n, β_n / (α_n κ_n))."""
    for k in range(counts.shape[1]):
        mu, kappa, alpha, beta = _normal_gamma_posterior(
            counts, means, corrections, m2, params, 0, k
        )
        loc[k] = mu
        scale[k] = math.sqrt(beta / (alpha * kappa))
        df[k] = 2.0 * alpha


# Each update kernel's one-observation form, which ``Policy.update`` calls for copy 0.
ONE_OBSERVATION = {count_update: count_update_one, beta_update: beta_update_one}
