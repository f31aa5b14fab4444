"""numba kernels for group-sequential boundaries: recursive numerical integration.

The sequence of z statistics Z_1, ..., Z_K observed at information fractions
t_1 < ... < t_K is that of a Brownian motion with drift: the score S_k = Z_k sqrt(t_k) has
independent increments S_k − S_{k−1} ~ N(θ (t_k − t_{k−1}), t_k − t_{k−1}), where θ is the
drift at the final look (the effect in units of the final standard error). The density of
Z_k on the paths that have not yet stopped is propagated look by look on the grid of
Jennison & Turnbull (2000, section 19.2) with Simpson weights (Armitage, McPherson & Rowe
1969). Exit probabilities at look k are integrals over the previous look's grid only, so
a boundary is the root of a smooth, monotone function and needs no grid of its own.

Every kernel takes plain arrays and floats. A look's state is the triple (nodes,
weighted density, information fraction); the state before the first look is the point
mass at 0 with fraction 0, so the first look needs no special case.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_BRACKET = 40.0
_ROOT_TOLERANCE = 1e-12
_MAX_ITERATIONS = 200


@njit(cache=True)
def _normal_sf(x):
    return 0.5 * math.erfc(x / _SQRT2)


@njit(cache=True)
def _normal_cdf(x):
    return 0.5 * math.erfc(-x / _SQRT2)


@njit(cache=True)
def _normal_pdf(x):
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


@njit(cache=True)
def simpson_grid(mean, lower, upper, r):
    """Nodes and Simpson weights for Z ~ N(mean, 1) on (lower, upper).

    Jennison & Turnbull (2000) eq. 19.4: 6r − 1 points, dense within 3 sd of the mean and
    log-spaced out to mean ± (3 + 4 ln r); the interval is clipped to that range and its
    ends become nodes; midpoints are added for Simpson's rule. An empty interval gives
    empty arrays (no paths continue).
    """
    count = 6 * r - 1
    points = np.empty(count)
    for i in range(1, count + 1):
        if i < r:
            points[i - 1] = mean - 3.0 - 4.0 * math.log(r / i)
        elif i <= 5 * r:
            points[i - 1] = mean - 3.0 + 3.0 * (i - r) / (2.0 * r)
        else:
            points[i - 1] = mean + 3.0 + 4.0 * math.log(r / (6.0 * r - i))
    low = max(lower, points[0])
    high = min(upper, points[count - 1])
    if not low < high:
        return np.empty(0), np.empty(0)
    nodes = np.empty(count + 2)
    nodes[0] = low
    used = 1
    for i in range(count):
        if low < points[i] < high:
            nodes[used] = points[i]
            used += 1
    nodes[used] = high
    used += 1
    size = 2 * used - 1
    z = np.empty(size)
    weights = np.zeros(size)
    for i in range(used - 1):
        width = nodes[i + 1] - nodes[i]
        z[2 * i] = nodes[i]
        z[2 * i + 1] = 0.5 * (nodes[i] + nodes[i + 1])
        weights[2 * i] += width / 6.0
        weights[2 * i + 1] = 4.0 * width / 6.0
        weights[2 * i + 2] += width / 6.0
    z[size - 1] = nodes[used - 1]
    return z, weights


@njit(cache=True)
def _upper_exit(nodes, density, previous, current, theta, bound):
    """P(Z_k ≥ bound, not stopped before) and minus its derivative in ``bound``."""
    step = current - previous
    scale = math.sqrt(step)
    root_current = math.sqrt(current)
    root_previous = math.sqrt(previous)
    probability = 0.0
    slope = 0.0
    for j in range(nodes.size):
        u = (bound * root_current - nodes[j] * root_previous - theta * step) / scale
        probability += density[j] * _normal_sf(u)
        slope += density[j] * _normal_pdf(u)
    return probability, slope * root_current / scale


@njit(cache=True)
def _lower_exit(nodes, density, previous, current, theta, bound):
    """P(Z_k ≤ bound, not stopped before) and its derivative in ``bound``."""
    step = current - previous
    scale = math.sqrt(step)
    root_current = math.sqrt(current)
    root_previous = math.sqrt(previous)
    probability = 0.0
    slope = 0.0
    for j in range(nodes.size):
        u = (bound * root_current - nodes[j] * root_previous - theta * step) / scale
        probability += density[j] * _normal_cdf(u)
        slope += density[j] * _normal_pdf(u)
    return probability, slope * root_current / scale


@njit(cache=True)
def _exit_mass(nodes, density, previous, current, theta, bound, side):
    """Exit probability through ``bound`` and its (positive) rate of change.

    side 1: upper exit (decreasing in the bound); side −1: lower exit (increasing);
    side 2: symmetric pair ±bound, both tails (decreasing).
    """
    if side == 1:
        return _upper_exit(nodes, density, previous, current, theta, bound)
    if side == -1:
        return _lower_exit(nodes, density, previous, current, theta, bound)
    upper, upper_slope = _upper_exit(nodes, density, previous, current, theta, bound)
    lower, lower_slope = _lower_exit(nodes, density, previous, current, theta, -bound)
    return upper + lower, upper_slope + lower_slope


@njit(cache=True)
def solve_bound(nodes, density, previous, current, theta, target, side):
    """The bound whose exit probability (see ``_exit_mass``) equals ``target``.

    Newton steps kept inside a shrinking bisection bracket; the exit probability is
    monotone in the bound, so the root is unique.
    """
    low = -_BRACKET if side != 2 else 0.0
    high = _BRACKET
    bound = 0.5 * (low + high) if side != 2 else 2.0
    for _ in range(_MAX_ITERATIONS):
        mass, rate = _exit_mass(nodes, density, previous, current, theta, bound, side)
        excess = mass - target
        # Exit mass falls as an upper bound rises and grows as a lower bound rises.
        if (excess > 0.0) == (side != -1):
            low = bound
        else:
            high = bound
        step = excess / rate if rate > 0.0 else 0.0
        candidate = bound + step if side != -1 else bound - step
        if not (low < candidate < high) or rate == 0.0:
            candidate = 0.5 * (low + high)
        if abs(candidate - bound) < _ROOT_TOLERANCE or high - low < _ROOT_TOLERANCE:
            return candidate
        bound = candidate
    return bound


@njit(cache=True)
def propagate(nodes, density, previous, current, theta, lower, upper, r):
    """Grid and weighted density of Z_k on the paths continuing past look k.

    h_k(z) = Σ_j w_j h_{k−1}(z_j) sqrt(t_k/Δ) φ((z sqrt(t_k) − z_j sqrt(t_{k−1}) − θΔ)/sqrt(Δ))
    (Jennison & Turnbull 2000, eq. 19.3), returned multiplied by the new Simpson weights.
    """
    step = current - previous
    scale = math.sqrt(step)
    root_current = math.sqrt(current)
    root_previous = math.sqrt(previous)
    grid, weights = simpson_grid(theta * root_current, lower, upper, r)
    new_density = np.zeros(grid.size)
    factor = root_current / scale
    for i in range(grid.size):
        total = 0.0
        target = grid[i] * root_current - theta * step
        for j in range(nodes.size):
            total += density[j] * _normal_pdf((target - nodes[j] * root_previous) / scale)
        new_density[i] = weights[i] * total * factor
    return grid, new_density


@njit(cache=True)
def efficacy_boundaries(fractions, increments, symmetric, r):
    """Upper boundaries under H0 spending ``increments`` of α per side at each look.

    With ``symmetric`` the continuation region is (−c_k, c_k) and each look's bound solves
    P(|Z_k| ≥ c_k, not stopped before) = 2 × increment; otherwise it is (−∞, c_k), the
    non-binding one-sided convention. A look that spends nothing gets c_k = +∞.
    """
    looks = fractions.size
    bounds = np.empty(looks)
    nodes = np.zeros(1)
    density = np.ones(1)
    previous = 0.0
    side = 2 if symmetric else 1
    for k in range(looks):
        current = fractions[k]
        if increments[k] <= 0.0 or nodes.size == 0:
            bound = np.inf
        else:
            target = 2.0 * increments[k] if symmetric else increments[k]
            bound = solve_bound(nodes, density, previous, current, 0.0, target, side)
        bounds[k] = bound
        if k < looks - 1:
            lower = -bound if symmetric else -np.inf
            nodes, density = propagate(nodes, density, previous, current, 0.0, lower, bound, r)
            previous = current
    return bounds


@njit(cache=True)
def crossing_probabilities(fractions, upper, lower, theta, r):
    """Per-look probabilities of first exit above ``upper`` and below ``lower`` at drift θ.

    Bounds may be infinite; the continuation region at look k is (lower_k, upper_k).
    """
    looks = fractions.size
    upper_exit = np.zeros(looks)
    lower_exit = np.zeros(looks)
    nodes = np.zeros(1)
    density = np.ones(1)
    previous = 0.0
    for k in range(looks):
        if nodes.size == 0:
            break
        current = fractions[k]
        if upper[k] < np.inf:
            upper_exit[k] = _upper_exit(nodes, density, previous, current, theta, upper[k])[0]
        if lower[k] > -np.inf:
            lower_exit[k] = _lower_exit(nodes, density, previous, current, theta, lower[k])[0]
        if k < looks - 1:
            nodes, density = propagate(
                nodes, density, previous, current, theta, lower[k], upper[k], r
            )
            previous = current
    return upper_exit, lower_exit


@njit(cache=True)
def futility_boundaries(fractions, upper, increments, theta, meet_last, r):
    """Futility bounds spending ``increments`` of β at drift θ, above which paths continue.

    The bound at look k solves P_θ(Z_k ≤ a_k, a_j < Z_j < c_j for j < k) = increment
    (Pampallona & Tsiatis 1994; gsDesign's β-spending), capped at the efficacy bound c_k;
    a look that spends nothing gets −∞. With ``meet_last`` the last bound is set to the
    last efficacy bound instead. Returns the bounds and the per-look exit probabilities
    above ``upper`` and below the bounds at θ.
    """
    looks = fractions.size
    bounds = np.full(looks, -np.inf)
    upper_exit = np.zeros(looks)
    lower_exit = np.zeros(looks)
    nodes = np.zeros(1)
    density = np.ones(1)
    previous = 0.0
    for k in range(looks):
        if nodes.size == 0:
            break
        current = fractions[k]
        ceiling = upper[k]
        if ceiling < np.inf:
            upper_exit[k] = _upper_exit(nodes, density, previous, current, theta, ceiling)[0]
        if meet_last and k == looks - 1:
            bound = ceiling
        elif increments[k] <= 0.0:
            bound = -np.inf
        else:
            available = 1.0
            if ceiling < np.inf:
                available = _lower_exit(nodes, density, previous, current, theta, ceiling)[0]
            if available <= increments[k]:
                bound = ceiling
            else:
                bound = solve_bound(nodes, density, previous, current, theta, increments[k], -1)
        bounds[k] = bound
        if bound > -np.inf:
            lower_exit[k] = _lower_exit(nodes, density, previous, current, theta, bound)[0]
        if k < looks - 1:
            nodes, density = propagate(nodes, density, previous, current, theta, bound, ceiling, r)
            previous = current
    return bounds, upper_exit, lower_exit
