"""Betting confidence sequence for the mean of a bounded random variable, valid at every n.

Waudby-Smith & Ramdas, "Estimating means of bounded random variables by betting" (JRSS-B
2024, arXiv 2010.09686), section 4 and Remark 4. Scale the observations into [0, 1]; for a
candidate mean m the two capital processes

    K⁺ₜ(m) = Πᵢ≤ₜ (1 + λᵢ⁺(m)(xᵢ − m)),    K⁻ₜ(m) = Πᵢ≤ₜ (1 − λᵢ⁻(m)(xᵢ − m))

are non-negative martingales when E[xᵢ | past] = m, for any predictable bets
λᵢ⁺ ∈ [0, 1/m), λᵢ⁻ ∈ [0, 1/(1 − m)). The bets are the *predictable plug-in* ones,

    λₜ = sqrt(2 ln(2/α) / (σ̂²ₜ₋₁ t ln(1 + t))),   λₜ⁺ = λₜ ∧ c/m,   λₜ⁻ = λₜ ∧ c/(1 − m),

with the variance *prior* of the paper: μ̂ₜ = (½ + Σᵢ≤ₜ xᵢ)/(t + 1) and
σ̂²ₜ = (¼ + Σᵢ≤ₜ (xᵢ − μ̂ᵢ)²)/(t + 1), one pseudo-observation at the largest variance of
[0, 1], so a run of identical observations (no event yet) never makes a bet infinite and
the interval never degenerates: after t zeros it is [0, u_t] with u_t > 0 shrinking in t.
By Ville's inequality {m : max(K⁺ₜ(m), K⁻ₜ(m)) < 2/α} covers the mean at every t
simultaneously with probability ≥ 1 − α (the hedged process with θ = ½, taking the
maximum instead of the sum — slightly wider, and an interval since K⁺ falls and K⁻ rises
in m). No asymptotics: the guarantee holds from the first observation.

The set is found on a grid of candidate means: half the points uniform over the range, half
geometrically spaced around ``center`` (default the mean of all observations), so narrow
late intervals are resolved to a few percent of their half-width. The grid is only a way
to compute: each bound is rounded *outward* to the last rejected grid point, so the
reported interval contains the exact confidence set whatever the grid. The capital is
folded into logarithms every ``_BLOCK`` rows and at each look, where the running
intersection is updated: the running interval intersects the sets at all these times
(each valid), so it may be narrower than the intersection over looks only.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from splitlab._validation import as_float_array, check_alpha
from splitlab.errors import InvalidArgumentError

__all__ = ["BettingPath", "betting_confidence_sequence", "betting_grid", "plug_in_bets"]

_BLOCK = 32  # rows multiplied in linear scale between logarithms: factors lie in [1 - c, 8]
MAX_GRID = 100_000


class BettingPath(NamedTuple):
    """Bounds at each look: the confidence set at that look and the running intersection."""

    n: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    running_low: np.ndarray
    running_high: np.ndarray


def plug_in_bets(x: np.ndarray, alpha: float) -> np.ndarray:
    """λₜ = sqrt(2 ln(2/α) / (σ̂²ₜ₋₁ t ln(1 + t))) for x in [0, 1], with the prior ½, ¼
    (Waudby-Smith & Ramdas 2024, eqs. 26-27); predictable: λₜ uses x₁ … xₜ₋₁ only.

    >>> plug_in_bets(np.zeros(3), 0.05).round(3).tolist()
    [6.525, 4.636, 3.955]
    """
    t = np.arange(1, x.size + 1, dtype=np.float64)
    mean = (0.5 + np.cumsum(x)) / (t + 1.0)  # μ̂ₜ, uses xₜ
    variance = (0.25 + np.cumsum((x - mean) ** 2)) / (t + 1.0)  # σ̂²ₜ
    previous = np.concatenate(([0.25], variance[:-1]))  # σ̂²ₜ₋₁, σ̂²₀ = ¼
    return np.sqrt(2.0 * np.log(2.0 / alpha) / (previous * t * np.log1p(t)))


def betting_grid(size: int, center: float) -> np.ndarray:
    """Sorted candidate means in [0, 1]: 0 and 1, ``size // 2`` uniform points and the rest
    at center ± d for d geometric from 1e-6 to 1 (relative to the range).

    >>> g = betting_grid(100, 0.3)
    >>> float(g[0]), float(g[-1]), bool(np.all(np.diff(g) > 0))
    (0.0, 1.0, True)
    """
    uniform = np.linspace(0.0, 1.0, max(size // 2, 2))
    steps = np.geomspace(1e-6, 1.0, max((size - uniform.size) // 2, 1))
    points = np.concatenate((uniform, center - steps, center + steps, [center]))
    return np.unique(np.clip(points, 0.0, 1.0))


@njit(cache=True)
def _betting_kernel(x, bets, grid, cap_plus, cap_minus, ends, threshold, out):
    """Bounds (as grid indices) at each look: out[:, 0] the largest index rejected by K⁺ at
    the look, out[:, 1] the smallest rejected by K⁻ (size if none), out[:, 2] and
    out[:, 3] the same over every check so far. O(n × grid)."""
    size = grid.size
    log_plus = np.zeros(size)
    log_minus = np.zeros(size)
    product_plus = np.ones(size)
    product_minus = np.ones(size)
    ever_plus, ever_minus = -1, size
    look, since = 0, 0
    for i in range(x.size):
        xi, bet = x[i], bets[i]
        for g in range(size):
            d = xi - grid[g]
            up = cap_plus[g]
            down = cap_minus[g]
            product_plus[g] *= 1.0 + (bet if bet < up else up) * d
            product_minus[g] *= 1.0 - (bet if bet < down else down) * d
        since += 1
        at_look = i + 1 == ends[look]
        if since < _BLOCK and not at_look:
            continue
        since = 0
        low, high = -1, size
        for g in range(size):
            log_plus[g] += np.log(product_plus[g])
            log_minus[g] += np.log(product_minus[g])
            product_plus[g] = 1.0
            product_minus[g] = 1.0
            if log_plus[g] >= threshold:
                low = g
            if log_minus[g] >= threshold and high == size:
                high = g
        ever_plus = max(ever_plus, low)
        ever_minus = min(ever_minus, high)
        if at_look:
            out[look, 0] = low
            out[look, 1] = high
            out[look, 2] = ever_plus
            out[look, 3] = ever_minus
            look += 1
            if look == ends.size:
                break
    return out


def betting_confidence_sequence(
    x: object,
    *,
    bounds: tuple[float, float] = (0.0, 1.0),
    alpha: float = 0.05,
    looks: object = None,
    grid: int = 1000,
    truncation: float = 0.5,
    center: float | None = None,
) -> BettingPath:
    """Betting confidence sequence for the mean of observations in ``bounds``, whose
    conditional mean given the past is the same value (i.i.d., or martingale differences
    around it), at each look (row counts, default every row).

    ``truncation`` is c in λ ∧ c/m (Waudby-Smith & Ramdas suggest ½ or ¾); ``grid`` the
    number of candidate means (O(n × grid) work). With probability ≥ 1 − α every interval
    covers the mean, whatever the looks.

    >>> path = betting_confidence_sequence(np.zeros(1000), looks=[10, 100, 1000])
    >>> path.ci_low.tolist(), path.ci_high.round(4).tolist()
    ([0.0, 0.0, 0.0], [0.4729, 0.0701, 0.0076])
    >>> rng = np.random.default_rng(0)
    >>> path = betting_confidence_sequence(rng.random(10_000), looks=[10_000])
    >>> bool(path.running_low[0] < 0.5 < path.running_high[0])
    True
    """
    alpha = check_alpha(alpha)
    values = as_float_array("x", x)
    if values.ndim != 1 or values.size == 0:
        raise InvalidArgumentError("x", "must be a non-empty 1-d array")
    try:
        lower, upper = (float(b) for b in bounds)  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError("bounds", f"must be (low, high), got {bounds!r}") from exc
    if not (np.isfinite(lower) and np.isfinite(upper) and lower < upper):
        raise InvalidArgumentError("bounds", f"must be finite with low < high, got {bounds!r}")
    if values.min() < lower or values.max() > upper:
        raise InvalidArgumentError("x", f"has values outside the bounds {bounds!r}")
    if (
        isinstance(grid, bool)
        or not isinstance(grid, (int, np.integer))
        or not (10 <= grid <= MAX_GRID)
    ):
        raise InvalidArgumentError("grid", f"must be an integer in [10, {MAX_GRID}], got {grid!r}")
    c = float(truncation)
    if not 0.0 < c < 1.0:
        raise InvalidArgumentError("truncation", f"must be in (0, 1), got {truncation!r}")
    n = values.size
    ends = np.arange(1, n + 1) if looks is None else np.asarray(looks, dtype=np.int64)
    if (
        ends.ndim != 1
        or ends.size == 0
        or np.any(np.diff(ends) <= 0)
        or ends[0] < 1
        or ends[-1] > n
    ):
        raise InvalidArgumentError("looks", f"must be increasing row counts in [1, {n}]")
    width = upper - lower
    scaled = np.clip((values - lower) / width, 0.0, 1.0)
    middle = float(scaled.mean()) if center is None else (float(center) - lower) / width
    points = betting_grid(int(grid), float(np.clip(middle, 0.0, 1.0)))
    with np.errstate(divide="ignore"):
        cap_plus = np.where(points > 0, c / np.where(points > 0, points, 1.0), np.inf)
        cap_minus = np.where(points < 1, c / np.where(points < 1, 1.0 - points, 1.0), np.inf)
    out = np.empty((ends.size, 4), dtype=np.int64)
    _betting_kernel(
        scaled, plug_in_bets(scaled, alpha), points, cap_plus, cap_minus,
        ends.astype(np.int64), float(np.log(2.0 / alpha)), out,
    )  # fmt: skip
    # a bound is the last rejected grid point (outward rounding); none rejected: the range end
    low = lower + width * points[np.maximum(out[:, [0, 2]], 0)]
    high = lower + width * points[np.minimum(out[:, [1, 3]], points.size - 1)]
    return BettingPath(ends, low[:, 0], high[:, 0], low[:, 1], high[:, 1])
