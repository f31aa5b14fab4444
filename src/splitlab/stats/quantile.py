"""Quantile metrics (median, p90, p99) on summary statistics: the difference (or relative
lift) of one quantile between two groups.

The method is GrowthBook's (gbstats ``QuantileStatistic`` and
``QuantileClusteredStatistic`` in ``packages/stats/gbstats/models/statistics.py``, commit
8f1db445). Besides the sample ν-quantile q̂ of its n values, a group reports two more
sample quantiles, ``lower`` and ``upper``, at the levels

    ν ∓ z · sqrt(ν(1 − ν) / n*),        z = z_{1 − α/2} (α = ``interval_alpha``, 0.05).

On a sample of n* values they would bound the distribution-free 1 − α order-statistic
interval for the ν-quantile (the number of values below the true quantile is
Binomial(n*, ν)). On any large sample their span estimates 2z·sqrt(ν(1 − ν)/n*)/f, f the
density at the quantile, so rescaling it by n*/n gives the variance of q̂, ν(1 − ν)/(n f²),
without estimating f:

    var = (n*/n) (n − 1) ((upper − lower) / (2z))²,     se²(q̂) = var / n

(per-unit variance, as every splitlab test uses it; gbstats floors it at 1e-5 once n ≥ 100).
n* need not equal n: it is the sample size the levels were *computed for*, which lets an
engine share one set of levels between groups of similar size (see :func:`choose_n_star`).

Event-level data (many events per randomization unit, the quantile taken over events) are
clustered: the events of one unit are correlated, and the iid variance is too small. The
clustered variance scales it by the ratio of the delta-method variance of the share of
events at or below q̂ over clusters (a ratio metric Σsᵢ/Σnᵢ, sᵢ = events of unit i at or
below q̂, nᵢ = its events) to that share's iid variance ν(1 − ν)/n (gbstats
``QuantileClusteredStatistic``; the ratio variance is Deng et al. 2018, as in
:func:`~splitlab.stats.frequentist.ratio_moments`).

The test is then Welch's on (q̂, var, n) per group — the reference distribution is Student's
t with the Welch–Satterthwaite degrees of freedom of the per-group variances and counts, as
gbstats' frequentist ``TwoSidedTTest``; n counts events when clustered, as there, so the
reference is then practically normal — and the relative lift (q̂t − q̂c)/|q̂c| uses the
delta-method variance of :func:`~splitlab.stats.frequentist.relative_variance`.

Degenerate rows are NaN with a reason in ``error`` (the other rows are unaffected), by
gbstats' rules: too few values for the interval (n ≤ z²ν/(1 − ν) or n ≤ z²(1 − ν)/ν, where
one of the levels at n* = n leaves (0, 1)), bounds that collapse (lower = upper: ties at
the quantile, which give no variance), fewer than two clusters. Unlike gbstats, a zero
control quantile is refused only for the relative lift (gbstats refuses it for the absolute
difference too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy import special

from splitlab._validation import (
    as_counts,
    as_float_array,
    broadcast,
    check_alpha,
    check_alternative,
)
from splitlab.errors import InvalidArgumentError
from splitlab.stats.frequentist import Difference, finish, mean_difference
from splitlab.stats.results import EffectResult, RowErrors

__all__ = [
    "N_STAR_GRID",
    "VARIANCE_FLOOR",
    "QuantileSummary",
    "choose_n_star",
    "interval_levels",
    "quantile_difference",
    "quantile_test",
]

# the sample sizes GrowthBook computes interval levels for, 100·2^k (back end,
# services/experimentQueries/constants.ts N_STAR_VALUES, commit 8f1db445)
N_STAR_GRID = 100.0 * 2.0 ** np.arange(20)
# gbstats floors the per-unit variance of a group with n >= 100 at this (absolute) value
VARIANCE_FLOOR = 1e-5
FLOOR_MINIMUM_N = 100
CLUSTER_FIELDS = (
    "n_clusters",
    "sum_below",
    "sum_below_sq",
    "sum_events",
    "sum_events_sq",
    "sum_below_events",
)


def _check_nu(nu: object, name: str = "nu") -> np.ndarray:
    array = as_float_array(name, nu)
    if np.any((array <= 0.0) | (array >= 1.0)):
        raise InvalidArgumentError(name, f"quantile levels must be in (0, 1), got {nu!r}")
    return array


def _z(alpha: float) -> float:
    return float(special.ndtri(1.0 - alpha / 2.0))


def _minimum_n(nu: np.ndarray, z: float) -> np.ndarray:
    """z²·max(ν/(1 − ν), (1 − ν)/ν): the interval's levels at n* lie inside (0, 1) iff n*
    exceeds it, and gbstats refuses a group whose n does not."""
    return z * z * np.maximum(nu / (1.0 - nu), (1.0 - nu) / nu)


def interval_levels(nu, n_star, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """The quantile levels ν ∓ z_{1−α/2}·sqrt(ν(1 − ν)/n*) whose sample quantiles are the
    ``lower`` and ``upper`` bounds of a :class:`QuantileSummary`.

    This is GrowthBook's ``getQuantileBoundValues`` (back end,
    ``integrations/sql/columns/quantile-bound-values.ts``, commit 8f1db445), which clips the
    levels to [1e-8, 1 − 1e-8]; here they are clipped to [0, 1] (0 and 1 are the minimum and
    the maximum). They leave (0, 1) only where n* ≤ z²·max(ν/(1 − ν), (1 − ν)/ν), and
    :func:`choose_n_star` never picks such an n* for a group large enough to be tested.

    Parameters
    ----------
    nu : array_like
        Quantile levels in (0, 1), e.g. 0.5 for the median.
    n_star : array_like
        Positive sample sizes the levels are computed for.
    alpha : float, default 0.05
        The interval's level is 1 − α (GrowthBook always uses 0.05). Not the test's α.

    Returns
    -------
    lower, upper : numpy.ndarray
        The two levels, broadcast together.

    Examples
    --------
    >>> lower, upper = interval_levels(0.5, 400)
    >>> round(float(lower), 6), round(float(upper), 6)
    (0.451001, 0.548999)
    """
    nu = _check_nu(nu)
    n_star = as_float_array("n_star", n_star)
    if np.any(n_star <= 0):
        raise InvalidArgumentError("n_star", "must be positive")
    alpha = check_alpha(alpha)
    nu, n_star = broadcast(nu=nu, n_star=n_star)
    half = _z(alpha) * np.sqrt(nu * (1.0 - nu) / n_star)
    return np.clip(nu - half, 0.0, 1.0), np.clip(nu + half, 0.0, 1.0)


def choose_n_star(n, nu, alpha: float = 0.05) -> np.ndarray:
    """The n* a group of n values computes its interval levels for.

    GrowthBook's rule (back end, ``quantile-bounds-from-query-response.ts``, commit 8f1db445):
    the largest value of :data:`N_STAR_GRID` (100·2^k) below n, or 100 for n ≤ 100. Groups
    of similar size then share one n* and so one pair of levels, and an engine computes a few
    quantiles per group instead of two per group for every group. The variance formula's
    factor n*/n rescales the interval's width from n* to n values, so any n* gives the same
    variance to first order; a smaller n* spaces the levels further apart (wider, more
    stable intervals, fewer collapsed bounds on tied data).

    One change from GrowthBook: where the grid value's levels would leave (0, 1), n* is
    raised to the smallest grid value whose levels stay inside, which may exceed n. This
    matters only for extreme ν: for p99 every n ≤ 400 gets 400 (GrowthBook's 100 or 200 put
    the upper level above 1, which it clips, so that the bound becomes the maximum); groups
    with n ≤ z²·max(ν/(1 − ν), (1 − ν)/ν) (380 for p99) are refused by the test anyway, so
    the change reaches only 380 < n ≤ 400 for p99. For 0.1 ≤ ν ≤ 0.9 it never applies.

    Parameters
    ----------
    n : array_like
        Non-negative counts of values per group.
    nu : array_like
        Quantile levels in (0, 1).
    alpha : float, default 0.05
        The α of the interval levels (see :func:`interval_levels`).

    Returns
    -------
    numpy.ndarray
        n* per group (a grid value, or past the grid's end the smallest whole number whose
        levels lie inside (0, 1)).

    Examples
    --------
    >>> choose_n_star([50, 150, 1000, 10**9], 0.5).tolist()
    [100.0, 100.0, 800.0, 52428800.0]
    >>> choose_n_star(390, 0.99).tolist()  # GrowthBook: 200, whose upper level is 1.004
    400.0
    """
    n = as_counts("n", n)
    nu = _check_nu(nu)
    alpha = check_alpha(alpha)
    n, nu = broadcast(n=n, nu=nu)
    below = np.searchsorted(N_STAR_GRID, n, side="left") - 1
    floor = N_STAR_GRID[np.clip(below, 0, len(N_STAR_GRID) - 1)]
    minimum = _minimum_n(nu, _z(alpha))
    above = np.searchsorted(N_STAR_GRID, minimum, side="right")
    inside = np.where(
        above < len(N_STAR_GRID),
        N_STAR_GRID[np.clip(above, 0, len(N_STAR_GRID) - 1)],
        np.floor(minimum) + 1.0,
    )
    return np.maximum(floor, inside)


def _optional(name: str, value: object, *, whole: bool) -> np.ndarray | None:
    if value is None:
        return None
    return as_counts(name, value) if whole else _nonnegative(name, value)


def _nonnegative(name: str, value: object) -> np.ndarray:
    array = as_float_array(name, value)
    if np.any(array < 0):
        raise InvalidArgumentError(name, "must be non-negative")
    return array


@dataclass(frozen=True, eq=False)
class QuantileSummary:
    """One quantile of one metric per group: what an engine returns for a quantile metric.

    Every field is an array and they broadcast together, so one object holds any number of
    groups (rows may even have different ν). A group with n = 0 has no quantile: its
    ``quantile``, ``lower`` and ``upper`` may be NaN, and the tests report the row as
    degenerate; elsewhere they must be finite with lower ≤ upper.

    Parameters
    ----------
    n : array_like
        Values (units, or events when clustered) the quantiles were computed from.
    nu : array_like
        Quantile level in (0, 1): 0.5 for the median, 0.9 for p90.
    quantile : array_like
        The sample ν-quantile (linear interpolation, ``numpy.quantile``'s default).
    lower, upper : array_like
        The sample quantiles at the two :func:`interval_levels` of (ν, n*).
    n_star : array_like
        The sample size the levels were computed for (:func:`choose_n_star`).
    n_clusters, sum_below, sum_below_sq : array_like, optional
    sum_events, sum_events_sq, sum_below_events : array_like, optional
        All six or none. For event-level data clustered by unit: the number K of clusters with
        at least one value, Σsᵢ, Σsᵢ², Σnᵢ, Σnᵢ², Σsᵢnᵢ over clusters, with sᵢ the cluster's
        values at or below ``quantile`` and nᵢ its values (Σnᵢ = n).
    interval_alpha : float, default 0.05
        The α the levels were computed with; the variance divides the bounds' span by
        2·z_{1−α/2}. Not the test's α.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> summary = QuantileSummary.from_samples(rng.lognormal(size=(2, 1000)), 0.5)
    >>> summary.shape, summary.n_star.tolist()
    ((2,), [800.0, 800.0])
    >>> bool(np.all(summary.lower < summary.quantile)), summary.clustered
    (True, False)
    """

    n: np.ndarray
    nu: np.ndarray
    quantile: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n_star: np.ndarray
    n_clusters: np.ndarray | None = None
    sum_below: np.ndarray | None = None
    sum_below_sq: np.ndarray | None = None
    sum_events: np.ndarray | None = None
    sum_events_sq: np.ndarray | None = None
    sum_below_events: np.ndarray | None = None
    interval_alpha: float = 0.05

    def __init__(
        self,
        n,
        nu,
        quantile,
        lower,
        upper,
        n_star,
        n_clusters=None,
        sum_below=None,
        sum_below_sq=None,
        sum_events=None,
        sum_events_sq=None,
        sum_below_events=None,
        interval_alpha: float = 0.05,
    ):
        arrays: dict[str, np.ndarray] = {
            "n": as_counts("n", n),
            "nu": _check_nu(nu),
            "quantile": as_float_array("quantile", quantile, finite=False),
            "lower": as_float_array("lower", lower, finite=False),
            "upper": as_float_array("upper", upper, finite=False),
            "n_star": as_float_array("n_star", n_star),
        }
        if np.any(arrays["n_star"] <= 0):
            raise InvalidArgumentError("n_star", "must be positive")
        given = {
            "n_clusters": n_clusters,
            "sum_below": sum_below,
            "sum_below_sq": sum_below_sq,
            "sum_events": sum_events,
            "sum_events_sq": sum_events_sq,
            "sum_below_events": sum_below_events,
        }
        present = [name for name, value in given.items() if value is not None]
        if present and len(present) < len(given):
            missing = next(name for name, value in given.items() if value is None)
            raise InvalidArgumentError(
                missing, f"the cluster fields come together: {', '.join(present)} given"
            )
        for name, value in given.items():
            array = _optional(name, value, whole=name == "n_clusters")
            if array is not None:
                arrays[name] = array
        broadcast_arrays = broadcast(**arrays)
        arrays = dict(zip(arrays, broadcast_arrays, strict=True))
        has_values = arrays["n"] > 0
        for name in ("quantile", "lower", "upper"):
            value = arrays[name]
            bad = (has_values & ~np.isfinite(value)) | np.isinf(value)
            if np.any(bad):
                raise InvalidArgumentError(
                    name, "contains NaN or infinite values where n > 0 (NaN only where n is 0)"
                )
        if np.any(has_values & (arrays["lower"] > arrays["upper"])):
            raise InvalidArgumentError("lower", "must not exceed upper")
        if present:
            if np.any(arrays["sum_below"] > arrays["sum_events"] * (1 + 1e-12)):
                raise InvalidArgumentError("sum_below", "must not exceed sum_events")
            if np.any(arrays["n_clusters"] > arrays["sum_events"]):
                raise InvalidArgumentError(
                    "n_clusters", "must not exceed sum_events (a cluster has at least one value)"
                )
        for name, value in arrays.items():
            object.__setattr__(self, name, value)
        for name in given:
            if name not in arrays:
                object.__setattr__(self, name, None)
        object.__setattr__(self, "interval_alpha", check_alpha(interval_alpha, "interval_alpha"))

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_table(cls, table: Mapping[str, Any], *, interval_alpha: float = 0.05):
        """From a table whose columns are named like the fields (the rows that
        :func:`splitlab.analyzer.quantiles.quantile_statistics` returns, or a dict of
        arrays); the cluster columns are used where all are present.

        Examples
        --------
        >>> row = {"n": [1000], "nu": [0.5], "quantile": [1.0], "lower": [0.9],
        ...        "upper": [1.1], "n_star": [800]}
        >>> float(QuantileSummary.from_table(row).n[0])
        1000.0
        """
        names = [f.name for f in fields(cls) if f.name != "interval_alpha"]
        columns = set(table.keys())
        required = [name for name in names if name not in CLUSTER_FIELDS]
        missing = [name for name in required if name not in columns]
        if missing:
            raise InvalidArgumentError("table", f"has no column {', '.join(missing)}")
        use = required + (
            list(CLUSTER_FIELDS) if all(name in columns for name in CLUSTER_FIELDS) else []
        )
        return cls(
            **{name: np.asarray(table[name], dtype=float) for name in use},
            interval_alpha=interval_alpha,
        )

    @classmethod
    def from_samples(
        cls, x, nu, *, clusters=None, n_star=None, interval_alpha: float = 0.05
    ) -> QuantileSummary:
        """The summary of raw values, computed with numpy: each row of ``x`` (its last axis)
        is one group; the reference an engine's reduction must match.

        Parameters
        ----------
        x : array_like
            Finite values, shape (..., m).
        nu : float
            Quantile level in (0, 1).
        clusters : array_like, optional
            Cluster (unit) labels of the values, same shape as ``x``, for event-level data:
            adds the cluster fields.
        n_star : array_like, optional
            Default :func:`choose_n_star` of m.
        interval_alpha : float, default 0.05
            See :func:`interval_levels`.

        Examples
        --------
        >>> s = QuantileSummary.from_samples([1.0, 2, 3, 4, 5, 6], 0.5, clusters=[0, 0, 1, 1, 2, 2])
        >>> float(s.quantile), s.sum_below.tolist(), s.sum_below_events.tolist()
        (3.5, 3.0, 6.0)
        """
        values = as_float_array("x", x)
        if values.ndim == 0 or values.shape[-1] == 0:
            raise InvalidArgumentError("x", "needs at least one value along its last axis")
        nu_value = float(_check_nu(nu))
        m = values.shape[-1]
        n = np.full(values.shape[:-1], float(m))
        n_star = choose_n_star(n, nu_value, interval_alpha) if n_star is None else n_star
        low, high = interval_levels(nu_value, n_star, interval_alpha)
        quantile = np.quantile(values, nu_value, axis=-1)
        lower = _quantile_per_row(values, low)
        upper = _quantile_per_row(values, high)
        extra: dict[str, np.ndarray] = {}
        if clusters is not None:
            extra = _cluster_sums(values, np.asarray(clusters), quantile)
        return cls(
            n, nu_value, quantile, lower, upper, n_star, **extra, interval_alpha=interval_alpha
        )

    # ------------------------------------------------------------------ statistics

    @property
    def shape(self) -> tuple[int, ...]:
        return self.n.shape

    @property
    def clustered(self) -> bool:
        """Whether the cluster fields are present (event-level data)."""
        return self.n_clusters is not None

    @property
    def variance_iid(self) -> np.ndarray:
        """(n*/n)(n − 1)((upper − lower)/(2z))²: the per-unit variance of independent values
        (gbstats ``QuantileStatistic.variance_init``), 0 for n ≤ 1."""
        z = _z(self.interval_alpha)
        n = self.n
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            span = (self.upper - self.lower) / (2.0 * z)
            value = self.n_star / n * (n - 1.0) * span * span
        return np.where(n > 1, value, 0.0)

    @property
    def share_variance(self) -> np.ndarray | None:
        """Delta-method variance over clusters of the share Σsᵢ/Σnᵢ of values at or below the
        quantile: K/(K − 1)·Σ(sᵢ − r nᵢ)²/(Σnᵢ)² with r = Σsᵢ/Σnᵢ (gbstats
        ``get_cluster_variance``, expanded); None without cluster fields.

        Examples
        --------
        >>> s = QuantileSummary.from_samples([1.0, 2, 3, 4, 5, 6], 0.5, clusters=[0, 0, 1, 1, 2, 2])
        >>> round(float(s.share_variance), 6)  # shares 1, 1/2, 0 of two events each
        0.083333
        """
        if not self.clustered:
            return None
        k = self.n_clusters
        total = self.sum_events
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            r = self.sum_below / total
            squares = self.sum_below_sq - 2.0 * r * self.sum_below_events
            squares = squares + r * r * self.sum_events_sq
            value = k / (k - 1.0) * np.maximum(squares, 0.0) / (total * total)
        return np.where((k > 1) & (total > 0), value, 0.0)

    @property
    def variance_init(self) -> np.ndarray:
        """The per-unit variance before the floor: :attr:`variance_iid`, times
        :attr:`share_variance` / (ν(1 − ν)/n) when clustered (0 with fewer than two
        clusters)."""
        iid = self.variance_iid
        if not self.clustered:
            return iid
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            scaled = iid * self.share_variance / (self.nu * (1.0 - self.nu) / self.n)
        usable = (self.n > 1) & (self.n_clusters > 1) & (self.sum_events > 0)
        return np.where(usable, scaled, 0.0)

    @property
    def variance(self) -> np.ndarray:
        """The per-unit variance the tests use (se² = variance / n): :attr:`variance_init`,
        floored at :data:`VARIANCE_FLOOR` where n ≥ 100 (gbstats' rule; the floor is in the
        metric's units, so it only matters for values of tiny spread).

        Examples
        --------
        >>> s = QuantileSummary(n=1000, nu=0.5, quantile=10.0, lower=9.5, upper=10.5, n_star=800)
        >>> round(float(s.variance), 4)  # (800/1000)·999·(1/(2·z₀.₉₇₅))²
        52.0115
        """
        init = self.variance_init
        return np.where(self.n >= FLOOR_MINIMUM_N, np.maximum(init, VARIANCE_FLOOR), init)

    def __getitem__(self, index) -> QuantileSummary:
        values = {
            f.name: (None if getattr(self, f.name) is None else getattr(self, f.name)[index])
            for f in fields(self)
            if f.name != "interval_alpha"
        }
        return QuantileSummary(**values, interval_alpha=self.interval_alpha)


def _quantile_per_row(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Linear-interpolation sample quantile of each row of ``values`` at its own level."""
    ordered = np.sort(values, axis=-1)
    m = ordered.shape[-1]
    levels = np.broadcast_to(levels, ordered.shape[:-1])
    position = levels * (m - 1)
    below = np.clip(np.floor(position).astype(np.int64), 0, m - 1)
    above = np.clip(below + 1, 0, m - 1)
    fraction = position - below
    low = np.take_along_axis(ordered, below[..., None], axis=-1)[..., 0]
    high = np.take_along_axis(ordered, above[..., None], axis=-1)[..., 0]
    # numpy's lerp: exact at both ends
    return np.where(
        fraction >= 0.5, high - (high - low) * (1 - fraction), low + (high - low) * fraction
    )


def _cluster_sums(values: np.ndarray, clusters: np.ndarray, quantile: np.ndarray):
    if clusters.shape != values.shape:
        raise InvalidArgumentError(
            "clusters", f"must have the shape of x {values.shape}, got {clusters.shape}"
        )
    rows = values.reshape(-1, values.shape[-1])
    labels = clusters.reshape(rows.shape)
    groups = rows.shape[0]
    row_index = np.repeat(np.arange(groups), rows.shape[1])
    _, labels_index = np.unique(labels.ravel(), return_inverse=True)
    pairs, cell = np.unique(
        np.stack([row_index, labels_index.ravel()]), axis=1, return_inverse=True
    )
    cell = cell.ravel()
    below = (rows <= quantile.reshape(-1, 1)).ravel().astype(float)
    s = np.bincount(cell, below, pairs.shape[1])
    counts = np.bincount(cell, minlength=pairs.shape[1]).astype(float)
    owner = pairs[0]
    shape = values.shape[:-1]

    def per_group(weights):
        return np.bincount(owner, weights, groups).reshape(shape)

    return {
        "n_clusters": per_group(np.ones_like(s)),
        "sum_below": per_group(s),
        "sum_below_sq": per_group(s * s),
        "sum_events": per_group(counts),
        "sum_events_sq": per_group(counts * counts),
        "sum_below_events": per_group(s * counts),
    }


# ---------------------------------------------------------------------- tests


def _as_summary(name: str, value: object) -> QuantileSummary:
    if not isinstance(value, QuantileSummary):
        raise InvalidArgumentError(
            name,
            "must be splitlab.stats.quantile.QuantileSummary (e.g. QuantileSummary.from_table),"
            f" got {type(value).__name__}",
        )
    return value


def _check_group(summary: QuantileSummary, errors: RowErrors, group: str) -> None:
    n = summary.n
    errors.flag(n == 0, f"no values in {group}")
    minimum = _minimum_n(summary.nu, _z(summary.interval_alpha))
    errors.flag(
        n <= minimum,
        f"too few values in {group} for the quantile's interval "
        "(needs n > z²·max(ν/(1 − ν), (1 − ν)/ν))",
    )
    if summary.clustered:
        errors.flag(summary.n_clusters < 2, f"fewer than 2 clusters in {group}")
    errors.flag(
        summary.variance_iid <= 0,
        f"the interval bounds collapse in {group} (lower = upper: ties at the quantile)",
    )
    errors.flag(summary.variance_init <= 0, f"zero variance in {group}")


def quantile_difference(
    control: QuantileSummary, treatment: QuantileSummary, *, relative: bool = False
) -> Difference:
    """Effect, standard error and Welch degrees of freedom of the difference of a quantile,
    q̂t − q̂c, or of its relative lift (q̂t − q̂c)/|q̂c| (delta method), for callers that
    build their own intervals (sequential tests) on top of it.

    Variances per group are :attr:`QuantileSummary.variance` (GrowthBook's, see the module
    docstring); degenerate rows carry their reason in ``errors``.

    Parameters
    ----------
    control, treatment : QuantileSummary
        The two groups; their fields broadcast together and their ν must agree.
    relative : bool, default False
        The lift instead of the absolute difference.

    Returns
    -------
    Difference

    Examples
    --------
    >>> c = QuantileSummary(n=1000, nu=0.5, quantile=10.0, lower=9.5, upper=10.5, n_star=800)
    >>> t = QuantileSummary(n=1000, nu=0.5, quantile=11.0, lower=10.5, upper=11.5, n_star=800)
    >>> d = quantile_difference(c, t)
    >>> float(d.effect), round(float(d.se), 6)
    (1.0, 0.322526)
    """
    control = _as_summary("control", control)
    treatment = _as_summary("treatment", treatment)
    shape = broadcast(control=np.empty(control.shape), treatment=np.empty(treatment.shape))[0].shape
    nu_c, nu_t = np.broadcast_arrays(control.nu, treatment.nu)
    if np.any(nu_c != nu_t):
        raise InvalidArgumentError("nu", "control and treatment must be the same quantile (ν)")
    errors = RowErrors(shape)
    _check_group(control, errors, "control")
    _check_group(treatment, errors, "treatment")
    if relative:
        errors.flag(control.quantile == 0, "control quantile is zero; relative lift is undefined")
    var_c = np.where(errors.bad, 1.0, control.variance)
    var_t = np.where(errors.bad, 1.0, treatment.variance)
    q_c = np.where(np.isfinite(control.quantile), control.quantile, 0.0)
    q_t = np.where(np.isfinite(treatment.quantile), treatment.quantile, 0.0)
    # degenerate rows get placeholders (their results are blanked); n ≥ 2 keeps Welch finite
    n_c = np.where(errors.bad, np.maximum(control.n, 2.0), control.n)
    n_t = np.where(errors.bad, np.maximum(treatment.n, 2.0), treatment.n)
    return mean_difference(
        q_c, var_c, n_c, q_t, var_t, n_t, relative=relative, errors=errors, minimum_n=1
    )


def quantile_test(
    control: QuantileSummary,
    treatment: QuantileSummary,
    *,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    relative: bool = False,
) -> EffectResult:
    """Test of the difference of a quantile (median, p90, …) between two groups on summary
    statistics: GrowthBook's quantile t-test (see the module docstring).

    Parameters
    ----------
    control, treatment : QuantileSummary
        Per-group summaries (:meth:`QuantileSummary.from_table` on the engine's reduction,
        or :meth:`QuantileSummary.from_samples`); fields broadcast, so one call compares
        any number of pairs.
    alpha : float, default 0.05
        Significance level of the test and of its 1 − α interval.
    alternative : {"two-sided", "greater", "less"}
        One-sided alternatives give one-sided intervals.
    relative : bool, default False
        Test the lift (q̂t − q̂c)/|q̂c| instead of q̂t − q̂c.

    Returns
    -------
    EffectResult
        ``method`` "quantile"; ``params`` has ``nu`` and ``clustered``.

    Examples
    --------
    >>> rng = np.random.default_rng(7)
    >>> c = QuantileSummary.from_samples(rng.lognormal(0.0, 1.0, 4000), 0.9)
    >>> t = QuantileSummary.from_samples(rng.lognormal(0.2, 1.0, 4000), 0.9)
    >>> result = quantile_test(c, t)
    >>> bool(result.ci_low < np.exp(0.2 + 1.2816) - np.exp(1.2816) < result.ci_high)
    True
    >>> round(float(result.effect), 3), result.error
    (0.72, '')
    """
    control = _as_summary("control", control)
    treatment = _as_summary("treatment", treatment)
    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    if not isinstance(relative, (bool, np.bool_)):
        raise InvalidArgumentError("relative", f"must be True or False, got {relative!r}")
    difference = quantile_difference(control, treatment, relative=bool(relative))
    nu = np.broadcast_to(control.nu, difference.errors.shape)
    levels = np.unique(nu)
    return finish(
        difference,
        alpha=alpha,
        alternative=alternative,
        method="quantile",
        scale="relative" if relative else "absolute",
        params={
            "nu": float(levels[0]) if levels.size == 1 else nu.copy(),
            "clustered": (control.clustered, treatment.clustered),
        },
    )
