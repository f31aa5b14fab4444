"""Exact P(arm k is the posterior argmax) for Thompson-type policies, kept up to date
across decisions.

Thompson sampling plays arm k with probability P_k = ∫ f_k(x) Π_{j≠k} F_j(x) dx, the
chance that its posterior draw is the largest. Recomputing every arm's CDF on a fresh grid
after each reward costs K × (nodes) incomplete beta functions — ~1 ms for 10 arms. Here the
grid (see :mod:`splitlab.bandits._argmax_kernels`) stays in place while it still resolves
every posterior, each arm's CDF and density rows are stored, and after an update only the
changed arm's rows are recomputed: for a Beta posterior gaining whole successes and
failures by a recurrence of a few multiplications per node, for a Student-t posterior by a
numba t CDF. Every refresh is checked — the truncation bounds below and above the domain,
the changed arm's density mass on the grid, its scale against the one the grid was placed
for, and Σ P_k = 1 before normalisation — and any failed check rebuilds the grid, so the
probabilities agree with a full quadrature to ~1e-8 whatever path the posteriors took.

>>> import numpy as np
>>> argmax = BetaArgmax()
>>> argmax.probabilities(np.array([2.0, 3.0, 1.0]), np.array([2.0, 1.0, 2.0])).round(3)
array([0.179, 0.75 , 0.071])
"""

from __future__ import annotations

import numpy as np
from scipy import special

from splitlab.bandits import _argmax_kernels as kernels
from splitlab.stats.bayesian import _BREAK_SCORES, _composite_rule, _log_beta, _prob_best_chunk

__all__ = ["BetaArgmax", "StudentArgmax", "student_t_prob_best"]

_LOGIT_LIMIT = 640.0  # |logit| beyond which x or 1 − x nears the float64 underflow
_MAX_ATTEMPTS = 3  # grid rebuilds, each with half the panel width, before the fallback


def _logit_windows(
    alpha: np.ndarray, beta: np.ndarray, tail_mass: float
) -> tuple[np.ndarray, np.ndarray]:
    """Logits of the ``tail_mass`` and 1 − ``tail_mass`` quantiles of Beta(alpha, beta),
    the upper one from the complement so that 1 − x is never rounded."""
    tail = np.full(alpha.shape, tail_mass)
    with np.errstate(divide="ignore"):
        lower = special.betaincinv(alpha, beta, tail)
        upper_complement = special.betaincinv(beta, alpha, tail)
        return (
            np.log(lower) - np.log1p(-lower),
            np.log1p(-upper_complement) - np.log(upper_complement),
        )


def _place_grid(lo, hi, center, scale, growth, width):
    """(nodes, weights, live) of the grid for arms with windows [lo, hi] (see
    ``_argmax_kernels.grid``), or None if no grid of at most MAX_PANELS panels resolves
    them. When one arm's window starts above every other window's end, a one-panel grid
    holds its lower end (that arm takes all but ε of the probability)."""
    lower, upper, top = kernels.domain(lo, hi, np.ones(lo.size, dtype=bool))
    if not upper > lower:
        upper = lower + scale[top]
    live = hi > lower
    nodes, weights = kernels.grid(
        lower, upper, lo, hi, center, scale, growth, live, width, kernels.GL_NODES,
        kernels.GL_WEIGHTS,
    )  # fmt: skip
    return None if nodes.size == 0 else (nodes, weights, live)


class BetaArgmax:
    """P(best) of K arms with Beta(alpha_k, beta_k) posteriors, integrated on the logit
    scale, with the grid and every arm's rows cached between calls.

    ``tail_mass`` is each window's mass left out per side, which also bounds the
    truncation error; top-two sampling, whose challenger shares divide small P(best) by
    the leader's 1 − P(best), asks for 1e-15 instead of the default 1e-10.
    """

    def __init__(self, tail_mass: float = kernels.WINDOW_TAIL) -> None:
        self._tail_mass = tail_mass
        self._truncation = kernels.TRUNCATION * tail_mass / kernels.WINDOW_TAIL
        self.rebuilds = 0  # how often the grid was placed (for tests and benchmarks)
        self._clear()

    def _clear(self) -> None:
        self._size = -1
        self._windows: tuple[np.ndarray, ...] | None = None

    def probabilities(self, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """P(arm k has the largest rate) for independent Beta(alpha_k, beta_k) rates."""
        alpha = np.ascontiguousarray(alpha, dtype=np.float64)
        beta = np.ascontiguousarray(beta, dtype=np.float64)
        if alpha.size == 1:
            return np.ones(1)
        out = np.empty(alpha.size)
        width = kernels.PANEL_WIDTH
        for _ in range(_MAX_ATTEMPTS + 1):
            placed = self._size != alpha.size
            if placed and not self._build(alpha, beta, width):
                break
            status = kernels.FILL
            while status == kernels.FILL:
                status = kernels.beta_refresh(
                    alpha, beta, self._row_alpha, self._row_beta, self._steps, self._filled,
                    self._built_scale, self._cdf, self._pdf, self._log_x,
                    self._log_complement, self._weights, self._work, self._needs, out,
                    self._truncation,
                )  # fmt: skip
                if status == kernels.FILL and not self._fill(alpha, beta):
                    status = kernels.REBUILD
            if status == kernels.READY:
                return out
            self._size = -1
            if placed:  # a grid placed for these very posteriors fails: finer panels
                width *= 0.5
        return self._fallback(alpha, beta)

    # ------------------------------------------------------------------ internals

    def _build(self, alpha: np.ndarray, beta: np.ndarray, width: float) -> bool:
        """Place the grid for the current posteriors and fill every live arm's rows;
        False when no grid resolves them (the caller falls back)."""
        self.rebuilds += 1
        n_arms = alpha.size
        lo, hi = self._cached_windows(alpha, beta)
        if not (np.all(np.abs(lo) <= _LOGIT_LIMIT) and np.all(np.abs(hi) <= _LOGIT_LIMIT)):
            return False
        scale = np.sqrt(special.polygamma(1, alpha) + special.polygamma(1, beta))
        placed = _place_grid(lo, hi, np.zeros(n_arms), scale, np.zeros(n_arms), width)
        if placed is None:
            return False
        nodes, weights, live = placed
        self._weights = weights
        self._log_x = -np.logaddexp(0.0, -nodes)
        self._log_complement = -np.logaddexp(0.0, nodes)
        self._cdf = np.ones((n_arms, nodes.size))
        self._pdf = np.zeros((n_arms, nodes.size))
        self._row_alpha, self._row_beta = alpha.copy(), beta.copy()
        self._steps = np.zeros(n_arms)
        self._filled = np.zeros(n_arms, dtype=bool)
        self._built_scale = scale
        self._needs = np.empty(n_arms + 1, dtype=np.int64)
        self._work = np.empty((n_arms + 2, nodes.size))
        self._size = n_arms
        arms = np.flatnonzero(live)
        self._fill_rows(arms, alpha[arms], beta[arms])
        return True

    def _cached_windows(self, alpha: np.ndarray, beta: np.ndarray):
        """Windows of every arm, recomputing (betaincinv, ~1-3 µs each) only those whose
        posterior changed since they were last computed."""
        cached = self._windows
        if cached is None or cached[0].size != alpha.size:
            lo, hi = _logit_windows(alpha, beta, self._tail_mass)
        else:
            old_alpha, old_beta, lo, hi = cached
            changed = np.flatnonzero((old_alpha != alpha) | (old_beta != beta))
            lo, hi = lo.copy(), hi.copy()
            if changed.size:
                lo[changed], hi[changed] = _logit_windows(
                    alpha[changed], beta[changed], self._tail_mass
                )
        self._windows = (alpha.copy(), beta.copy(), lo, hi)
        return lo, hi

    def _fill_rows(self, arms: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> None:
        """Fresh CDF (regularised incomplete beta) and logit-scale density rows."""
        a, b = alpha[:, None], beta[:, None]
        with np.errstate(under="ignore"):
            self._cdf[arms] = special.betainc(a, b, np.exp(self._log_x))
            self._pdf[arms] = np.exp(a * self._log_x + b * self._log_complement - _log_beta(a, b))
        self._row_alpha[arms], self._row_beta[arms] = alpha, beta
        self._steps[arms] = 0.0
        self._filled[arms] = True

    def _fill(self, alpha: np.ndarray, beta: np.ndarray) -> bool:
        """Fill the arms the refresh kernel listed; False if one of them outgrew the grid."""
        needs = self._needs
        arms = needs[: int(np.argmax(needs < 0))]
        self._fill_rows(arms, alpha[arms], beta[arms])
        scale = np.sqrt(special.polygamma(1, alpha[arms]) + special.polygamma(1, beta[arms]))
        if np.any(scale < kernels.SHRINK * self._built_scale[arms]):
            return False
        errors = [kernels.mass_error(self._cdf[k], self._pdf[k], self._weights) for k in arms]
        return max(errors) <= kernels.MASS_TOLERANCE

    def _fallback(self, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """The full quadrature of :func:`splitlab.stats.bayesian.prob_best` (which raises
        for posteriors piled below the float64 range)."""
        self._clear()
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
            return _prob_best_chunk("beta", alpha[None], beta[None], True)[0]


class StudentArgmax:
    """P(best) of K arms with Student-t posteriors t_df(loc, scale²), with the grid and
    every arm's rows cached between calls (GaussianThompson's mean posteriors)."""

    def __init__(self) -> None:
        self.rebuilds = 0
        self._size = -1

    def probabilities(self, loc: np.ndarray, scale: np.ndarray, df: np.ndarray) -> np.ndarray:
        """P(arm k has the largest value) for independent t_{df_k}(loc_k, scale_k²)."""
        loc = np.ascontiguousarray(loc, dtype=np.float64)
        scale = np.ascontiguousarray(scale, dtype=np.float64)
        df = np.ascontiguousarray(df, dtype=np.float64)
        return self._probabilities(loc, scale, df)

    def _probabilities(self, loc: np.ndarray, scale: np.ndarray, df: np.ndarray) -> np.ndarray:
        if loc.size == 1:
            return np.ones(1)
        out = np.empty(loc.size)
        width = kernels.PANEL_WIDTH
        for _ in range(_MAX_ATTEMPTS + 1):
            placed = self._size != loc.size
            if placed and not self._build(loc, scale, df, width):
                break
            status = kernels.student_refresh(
                loc, scale, df, self._row_loc, self._row_scale, self._row_df,
                self._built_scale, self._built_df, self._cdf, self._pdf, self._nodes,
                self._weights, self._work, out,
            )  # fmt: skip
            if status == kernels.READY:
                return out
            self._size = -1
            if placed:
                width *= 0.5
        return student_t_prob_best(loc, scale, df)

    def _build(self, loc: np.ndarray, scale: np.ndarray, df: np.ndarray, width: float) -> bool:
        self.rebuilds += 1
        n_arms = loc.size
        reach = special.stdtrit(df, 1.0 - kernels.WINDOW_TAIL)
        lo, hi = loc - reach * scale, loc + reach * scale
        growth = np.where(df < kernels.HEAVY_TAIL_DF, kernels.TAIL_GROWTH, 0.0)
        placed = _place_grid(lo, hi, loc, scale, growth, width)
        if placed is None:
            return False
        nodes, weights, live = placed
        self._nodes, self._weights = nodes, weights
        self._cdf = np.ones((n_arms, nodes.size))
        self._pdf = np.zeros((n_arms, nodes.size))
        # rows start unfilled (NaN parameters never compare equal): the refresh fills them
        self._row_loc = np.full(n_arms, np.nan)
        self._row_scale, self._row_df = self._row_loc.copy(), self._row_loc.copy()
        dead = ~live
        self._row_loc[dead], self._row_scale[dead], self._row_df[dead] = (
            loc[dead], scale[dead], df[dead]
        )  # fmt: skip
        self._built_scale, self._built_df = scale.copy(), df.copy()
        self._work = np.empty((n_arms + 2, nodes.size))
        self._size = n_arms
        return True


_BREAK_TAILS = special.ndtr(_BREAK_SCORES)


def student_t_prob_best(loc: np.ndarray, scale: np.ndarray, df: np.ndarray) -> np.ndarray:
    """P(arm k has the largest value) for independent t_{df_k}(loc_k, scale_k²) arms by
    the full quadrature: ∫ f_k(x) Π_{j≠k} F_j(x) dx by 8-point Gauss–Legendre on panels cut
    at every arm's quantiles (normal scores 0, ±1, ..., ±7.94 mapped to t quantiles),
    normalised to 1; ~1e-9 absolute for light tails but only ~1e-5 for df near 1, whose
    quantile-cut panels are too wide far out; a cost of ~K^2.5 (StudentArgmax's fallback)."""
    loc, scale, df = (np.asarray(v, dtype=np.float64)[:, None] for v in (loc, scale, df))
    breaks = loc + scale * special.stdtrit(df, _BREAK_TAILS)
    nodes, weights = _composite_rule(np.sort(breaks.reshape(-1)))
    z = (nodes - loc) / scale
    log_density = (
        special.gammaln(0.5 * (df + 1.0)) - special.gammaln(0.5 * df)
        - 0.5 * np.log(df * np.pi) - np.log(scale) - 0.5 * (df + 1.0) * np.log1p(z * z / df)
    )  # fmt: skip
    below = special.stdtr(df, z)
    # Π_{j≠k} F_j from prefix and suffix products (no division by a zero F_k)
    ones = np.ones_like(below[:1])
    prefix = np.cumprod(np.concatenate([ones, below[:-1]]), axis=0)
    suffix = np.cumprod(np.concatenate([ones, below[:0:-1]]), axis=0)[::-1]
    probability = (weights * np.exp(log_density) * prefix * suffix).sum(axis=-1)
    return probability / probability.sum()
