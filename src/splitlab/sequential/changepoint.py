"""Streaming detection of a change in the mean, with a stated false-alarm guarantee.

Two detectors, one interface (``update``, ``update_many``, ``alarm``, ``statistic``,
``changepoint_estimate``, ``reset``, ``state``/``from_state``):

:class:`EDetector`
    The mixture e-detector of Shin, Ramdas & Rinaldo, "E-detectors: a nonparametric
    framework for sequential change detection" (New England J. Statist. Data Sci. 2023,
    arXiv 2203.03532). Before the change the conditional mean of each observation lies in
    ``[mu0_low, mu0_high]`` and the observations are bounded (``bounds=``) or σ-sub-Gaussian
    (``sigma=``); they need not be independent or identically distributed. Each component
    k bets λ_k on a shift (one-step e-value L = 1 + λ(x − c), or exp(λ(x − c) − λ²σ²/2)),
    and the detector is the mixture M_n = Σ_k w_k M_n^k of Shiryaev–Roberts e-detectors
    M_n^k = L_n^k (M_{n−1}^k + 1) (``kind="sr"``, the default) or of CUSUM e-detectors
    M_n^k = L_n^k max(M_{n−1}^k, 1) (``kind="cusum"``). Because E[M_n − M_{n−1} | past] ≤ 1
    under no change, optional stopping gives, for the alarm time T = inf{n : M_n ≥ 1/α},

        ARL = E_∞[T] ≥ 1/α                                   (their Theorem 2.4)

    for every pre-change distribution in the class — a non-asymptotic bound, not an
    approximation. The CUSUM form is never above the SR form, so it alarms later and keeps
    the same bound.

:class:`GaussianCUSUM`
    Page's CUSUM (Page 1954) of the log-likelihood ratio of N(μ0 + δ, σ²) against
    N(μ0, σ²): W_n = max(0, W_{n−1} + (δ/σ²)(x_n − μ0 − δ/2)), alarm at W_n ≥ h. The
    threshold comes from a target ARL by ``calibration``:

    - "siegmund" (default): Siegmund's corrected-diffusion approximation (Siegmund 1985,
      *Sequential Analysis*, eq. 2.56), ARL(h) ≈ 2(e^{b} − b − 1)/θ² with
      b = h + 1.166 θ and θ = δ/σ, solved for h; accurate to a few per cent for Gaussian
      data (tested by simulation) but an approximation;
    - "lorden": h = ln(ARL), for which Lorden (1971, Ann. Math. Statist. 42, Theorem 2)
      guarantees E_∞[T] ≥ ARL for any pre-change law with mean ≤ μ0 that is σ-sub-Gaussian
      — a bound, conservative by a factor of about e^{1.166θ}·2/θ².

    Two-sided CUSUMs run one statistic per direction; their ARL is set from
    1/ARL = 1/ARL₊ + 1/ARL₋ (Siegmund) or from h = ln(2·ARL) (Lorden, union bound).

Both detectors count observations from their last ``reset()``; ``update_many`` stops at
the first alarm (values after it are not consumed), exactly like a loop of ``update``.
:func:`detect_changes` runs a detector over a whole series, restarting after each alarm.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from splitlab._validation import (
    as_float_array,
    check_alpha,
    check_alternative,
    check_bool,
    check_choice,
)
from splitlab.errors import InvalidArgumentError

__all__ = ["EDetector", "GaussianCUSUM", "detect_changes"]

STATE_VERSION = 1
MAX_COMPONENTS = 24  # per direction: bounded work per observation
SIEGMUND_CORRECTION = 1.166  # 2 × 0.583, the Gaussian overshoot constant −ζ(1/2)/√(2π)
CALIBRATIONS = ("siegmund", "lorden")
KINDS = ("sr", "cusum")

_kernels = None


def _kernel_module():
    # numba loads on the first update, so importing splitlab.sequential stays cheap
    global _kernels
    if _kernels is None:
        from splitlab.sequential import _changepoint_kernels

        _kernels = _changepoint_kernels
    return _kernels


def _positive(name: str, value: object) -> float:
    number = float(as_float_array(name, value))
    if number <= 0.0:
        raise InvalidArgumentError(name, f"must be positive, got {value!r}")
    return number


def _scalar(name: str, value: object) -> float:
    array = as_float_array(name, value)
    if array.ndim != 0:
        raise InvalidArgumentError(name, f"must be a single number, got shape {array.shape}")
    return float(array)


class _Detector:
    """Shared machinery: validation of observations, alarms, counts and state."""

    _arrays: tuple[str, ...] = ()

    def _start(self) -> None:
        self._count = np.zeros(1, dtype=np.int64)
        self._buffer = np.zeros(1)
        self.alarm = False
        self.alarm_index: int | None = None
        self._init_arrays()

    def reset(self) -> None:
        """Forget every observation and any alarm: start watching afresh."""
        self._start()

    @property
    def n(self) -> int:
        """Observations since the last reset."""
        return int(self._count[0])

    def _check_values(self, name: str, values: np.ndarray) -> None:
        """Hook for range checks (bounded detectors)."""

    def update(self, x: float) -> bool:
        """Add one observation; True if the statistic is at or above the threshold now."""
        if type(x) is not float or not math.isfinite(x):
            x = _scalar("x", x)
        self._buffer[0] = x
        self._check_values("x", self._buffer)
        return self._consume(self._buffer) == 0

    def update_many(self, xs: object) -> int:
        """Add observations in order until the first alarm: its index in ``xs``, or −1.

        Values after the alarm are not consumed (call again with ``xs[index + 1:]``,
        after ``reset()`` if a new run is wanted)."""
        values = np.ascontiguousarray(as_float_array("xs", xs)).reshape(-1)
        if np.ndim(xs) > 1:
            raise InvalidArgumentError("xs", f"must be one-dimensional, got shape {np.shape(xs)}")
        self._check_values("xs", values)
        return self._consume(values)

    def _consume(self, values: np.ndarray) -> int:
        before = self.n
        index = int(self._run(values))
        if index >= 0 and not self.alarm:
            self.alarm = True
            self.alarm_index = before + index
        return index

    def state(self) -> dict[str, Any]:
        """Everything needed to resume, as plain (JSON-ready) values."""
        return {
            "version": STATE_VERSION,
            "detector": type(self).__name__,
            "settings": self._settings(),
            "n": self.n,
            "alarm": self.alarm,
            "alarm_index": self.alarm_index,
            "arrays": {name: getattr(self, name).tolist() for name in self._arrays},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]):
        """A detector restored from ``state()``."""
        if (
            not isinstance(state, dict)
            or state.get("version") != STATE_VERSION
            or state.get("detector") != cls.__name__
        ):
            raise InvalidArgumentError(
                "state", f"is not a {cls.__name__} state of version {STATE_VERSION}"
            )
        try:
            detector = cls(**state["settings"])
            detector._count[0] = int(state["n"])
            detector.alarm = check_bool("state.alarm", state["alarm"])
            index = state["alarm_index"]
            detector.alarm_index = None if index is None else int(index)
            for name in cls._arrays:
                current = getattr(detector, name)
                value = np.asarray(state["arrays"][name], dtype=current.dtype)
                if value.shape != current.shape:
                    raise ValueError(f"array {name!r} has shape {value.shape}, not {current.shape}")
                current[...] = value
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError("state", f"is corrupt: {exc!r}") from exc
        return detector

    def copy(self):
        """An independent detector in the same state."""
        return type(self).from_state(self.state())

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self._settings().items())
        return f"{type(self).__name__}({settings}; n={self.n}, alarm={self.alarm})"


def _siegmund_arl(h: float, theta: float, drift: float) -> float:
    """Expected run length from zero of a one-sided CUSUM of the LLR with threshold h and
    reference shift θ (σ units) when the mean is ``drift`` σ from μ0 (Siegmund 1985)."""
    b = h / theta + SIEGMUND_CORRECTION
    gap = drift - 0.5 * theta  # the drift of the standardized CUSUM increment z − θ/2
    if abs(gap) < 1e-9:
        return b * b
    return (math.exp(-2.0 * gap * b) + 2.0 * gap * b - 1.0) / (2.0 * gap * gap)


class GaussianCUSUM(_Detector):
    """Page's CUSUM for a shift of at least ``delta`` from a known mean ``mu0``.

    Parameters
    ----------
    mu0 : float
        Pre-change mean.
    delta : float
        The shift to detect (> 0); the statistic is the log-likelihood ratio of
        N(mu0 ± delta, sigma²) against N(mu0, sigma²), so it is optimal for that shift
        (Moustakides 1986) and slower for others.
    sigma : float
        Standard deviation (or sub-Gaussian scale) of the observations.
    arl : float, optional
        Target average run length under no change (default 1000 when ``h`` is not given).
    h : float, optional
        The threshold itself (then ``calibration`` is unused).
    alternative : "greater" | "less" | "two-sided"
        Direction of the shift.
    calibration : "siegmund" | "lorden"
        How ``h`` follows from ``arl`` (module docstring): an accurate approximation, or a
        guaranteed lower bound ARL ≥ ``arl``.

    Attributes
    ----------
    statistic : float
        W_n (the larger of the two sides when two-sided).
    changepoint_estimate : int or None
        Index (since the last reset) of the first observation of the current excursion of
        W above 0 — the maximum-likelihood change point for the shift δ.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> cusum = GaussianCUSUM(0.0, 1.0, arl=10_000)
    >>> round(cusum.h, 3), round(cusum.expected_run_length(1.0), 1)
    (7.353, 15.0)
    >>> cusum.update_many(rng.normal(0.0, 1.0, 500))
    -1
    >>> cusum.update_many(rng.normal(1.0, 1.0, 500)), cusum.alarm, cusum.changepoint_estimate
    (13, True, 500)
    """

    _arrays = ("_stats", "_starts")

    def __init__(
        self,
        mu0: float,
        delta: float,
        *,
        sigma: float = 1.0,
        arl: float | None = None,
        h: float | None = None,
        alternative: str = "greater",
        calibration: str = "siegmund",
    ):
        self.mu0 = _scalar("mu0", mu0)
        self.delta = _positive("delta", delta)
        self.sigma = _positive("sigma", sigma)
        self.alternative = check_alternative(alternative)
        self.calibration = check_choice("calibration", calibration, CALIBRATIONS)
        if h is not None and arl is not None:
            raise InvalidArgumentError("h", "give the threshold h or a target arl, not both")
        self.arl = None if arl is None else float(arl)
        if h is None:
            target = 1000.0 if arl is None else _scalar("arl", arl)
            if target <= 1.0:
                raise InvalidArgumentError("arl", f"must be above 1, got {arl!r}")
            self.arl = target
            self.h = self._threshold(target)
        else:
            self.h = _positive("h", h)
        up = self.delta if self.alternative != "less" else 0.0
        down = -self.delta if self.alternative != "greater" else 0.0
        self._deltas = np.array([up, down])
        self._start()

    def _init_arrays(self) -> None:
        self._stats = np.zeros(2)
        self._starts = np.zeros(2, dtype=np.int64)

    def _threshold(self, target: float) -> float:
        sides = 2.0 if self.alternative == "two-sided" else 1.0
        if self.calibration == "lorden":
            return math.log(sides * target)
        from scipy.optimize import brentq

        theta = self.delta / self.sigma
        goal = sides * target

        def excess(h: float) -> float:
            return math.log(_siegmund_arl(h, theta, 0.0)) - math.log(goal)

        high = 1.0
        while excess(high) < 0.0:
            high *= 2.0
        return float(brentq(excess, 1e-9, high, xtol=1e-12))

    def expected_run_length(self, shift: float = 0.0) -> float:
        """Siegmund's approximation of E[T] from a fresh start when the mean is
        μ0 + ``shift``: the ARL for ``shift=0``, the detection delay (Lorden's worst case
        for a CUSUM, which starts from 0) for a shift.

        >>> cusum = GaussianCUSUM(0.0, 1.0, arl=1000)
        >>> round(cusum.expected_run_length(), 1), round(cusum.expected_run_length(1.0), 1)
        (1000.0, 10.5)
        """
        drift = _scalar("shift", shift) / self.sigma
        theta = self.delta / self.sigma
        rate = 0.0
        if self.alternative != "less":
            rate += 1.0 / _siegmund_arl(self.h, theta, drift)
        if self.alternative != "greater":
            rate += 1.0 / _siegmund_arl(self.h, theta, -drift)
        return 1.0 / rate

    @property
    def statistic(self) -> float:
        return float(self._stats.max())

    @property
    def changepoint_estimate(self) -> int | None:
        if self.n == 0 or self.statistic <= 0.0:
            return None
        return int(self._starts[int(np.argmax(self._stats))])

    def _run(self, values: np.ndarray) -> int:
        return _kernel_module().cusum_run(
            self._stats, self._starts, self._count, values, self.mu0, self._deltas,
            self.sigma, self.h,
        )  # fmt: skip

    def _settings(self) -> dict[str, Any]:
        return {
            "mu0": self.mu0, "delta": self.delta, "sigma": self.sigma, "h": self.h,
            "alternative": self.alternative, "calibration": self.calibration,
        }  # fmt: skip

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> GaussianCUSUM:
        """A detector restored from ``state()``.

        >>> cusum = GaussianCUSUM(0.0, 0.5, arl=500, alternative="two-sided")
        >>> _ = cusum.update_many([0.3, -0.2, 1.1])
        >>> restored = GaussianCUSUM.from_state(cusum.state())
        >>> restored.statistic == cusum.statistic, restored.arl
        (True, 500.0)
        """
        detector = super().from_state(state)
        detector.arl = None if state.get("arl") is None else float(state["arl"])
        return detector

    def state(self) -> dict[str, Any]:
        return {**super().state(), "arl": self.arl}


def _grid(low: float, high: float) -> np.ndarray:
    """Shifts from ``low`` to ``high`` in steps of a factor 2 (at most MAX_COMPONENTS)."""
    if high <= low:
        return np.array([low])
    count = min(MAX_COMPONENTS, math.ceil(math.log2(high / low)) + 1)
    return np.geomspace(low, high, count)


class EDetector(_Detector):
    """Mixture e-detector for a change in the mean: ARL ≥ 1/α without approximation.

    Parameters
    ----------
    mu0 : float or (float, float)
        The pre-change mean, or an interval ``(low, high)`` known to contain it (a rise is
        measured from ``high``, a fall from ``low``; see :meth:`from_baseline`).
    delta : float
        The smallest shift of interest (> 0); the mixture covers shifts from ``delta`` to
        ``delta_max`` with one component per factor 2.
    alpha : float
        The threshold is 1/α, and the guarantee is E_∞[T] ≥ 1/α under no change.
    sigma : float, optional
        Sub-Gaussian scale of the observations (give this or ``bounds``).
    bounds : (float, float), optional
        Range every observation lies in; the bets are then exact e-values
        1 + λ(x − c), which for a 0/1 stream and a grid point equal the Bernoulli
        likelihood ratio.
    delta_max : float, optional
        Largest shift of interest; default: up to the bounds, or 4σ.
    alternative : "greater" | "less" | "two-sided"
        Direction of the change; two-sided splits the weight equally (between the
        directions that leave room for a shift of ``delta`` inside ``bounds``).
    kind : "sr" | "cusum"
        Mixture of Shiryaev–Roberts or of CUSUM e-detectors (module docstring).

    Notes
    -----
    Shin, Ramdas & Rinaldo (2023), "E-detectors: a nonparametric framework for sequential
    change detection", arXiv 2203.03532, §2–3 and the sub-Gaussian / bounded examples.
    With weights w_k the detector is at least w_k times the CUSUM e-detector of the
    component k whose λ_k suits the actual shift d, so the delay is at most about
    ln(1/(α w_k)) / (λ_k d − ψ(λ_k)) plus the overshoot (ψ(λ) = λ²σ²/2, or the
    corresponding bounded rate; d²/(2σ²) when the shift is a grid point).

    ``changepoint_estimate`` is where the current excursion of the CUSUM form of the
    heaviest component began (the CUSUM statistics are kept for this in both kinds).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> detector = EDetector(0.3, 0.1, bounds=(0, 1), alpha=1e-4)
    >>> detector.update_many(rng.binomial(1, 0.3, 1000))
    -1
    >>> detector.update_many(rng.binomial(1, 0.5, 2000)), detector.changepoint_estimate
    (62, 996)
    >>> detector.alarm, detector.statistic >= detector.threshold
    (True, True)
    """

    _arrays = ("_log_sr", "_log_cusum", "_starts")

    def __init__(
        self,
        mu0: float | tuple[float, float],
        delta: float,
        *,
        alpha: float = 0.001,
        sigma: float | None = None,
        bounds: tuple[float, float] | None = None,
        delta_max: float | None = None,
        alternative: str = "greater",
        kind: str = "sr",
    ):
        low, high = self._null_interval(mu0)
        self.mu0 = low if low == high else (low, high)
        self.delta = _positive("delta", delta)
        self.alpha = check_alpha(alpha)
        self.alternative = check_alternative(alternative)
        self.kind = check_choice("kind", kind, KINDS)
        if (sigma is None) == (bounds is None):
            raise InvalidArgumentError("sigma", "give sigma (sub-Gaussian) or bounds, not both")
        self.sigma = None if sigma is None else _positive("sigma", sigma)
        self.bounds = None if bounds is None else self._check_bounds(bounds, low, high)
        self.delta_max = None if delta_max is None else _positive("delta_max", delta_max)
        if self.delta_max is not None and self.delta_max < self.delta:
            raise InvalidArgumentError("delta_max", "must be at least delta")
        sides = [s for s in (1.0, -1.0) if self.alternative in ("two-sided", _SIDE[s])]
        if self.alternative == "two-sided" and self.bounds is not None:
            # a null interval at the edge of the range leaves no room for a shift that way
            roomy = [s for s in sides if self._room(s, high if s > 0 else low) > self.delta]
            sides = roomy or sides
        lambdas, centers, weights = [], [], []
        for sign in sides:
            center = high if sign > 0 else low
            shifts = self._shifts(sign, center)
            lambdas.append(sign * self._bets(sign, shifts, center))
            centers.append(np.full(shifts.size, center))
            weights.append(np.full(shifts.size, 1.0 / (len(sides) * shifts.size)))
        self._lambdas = np.concatenate(lambdas)
        self._centers = np.concatenate(centers)
        self._log_weights = np.log(np.concatenate(weights))
        self._log_threshold = -math.log(self.alpha)
        self._start()

    @staticmethod
    def _null_interval(mu0: object) -> tuple[float, float]:
        if np.ndim(mu0) == 0:
            value = _scalar("mu0", mu0)
            return value, value
        pair = as_float_array("mu0", mu0)
        if pair.shape != (2,) or pair[0] > pair[1]:
            raise InvalidArgumentError(
                "mu0", f"must be a number or a pair low <= high, got {mu0!r}"
            )
        return float(pair[0]), float(pair[1])

    @staticmethod
    def _check_bounds(bounds: object, low: float, high: float) -> tuple[float, float]:
        pair = as_float_array("bounds", bounds)
        if pair.shape != (2,) or not pair[0] < pair[1]:
            raise InvalidArgumentError("bounds", f"must be a pair low < high, got {bounds!r}")
        if not pair[0] < low <= high < pair[1]:
            raise InvalidArgumentError(
                "mu0", f"must lie strictly inside bounds {tuple(pair.tolist())}, got {(low, high)}"
            )
        return float(pair[0]), float(pair[1])

    def _room(self, sign: float, center: float) -> float:
        return self.bounds[1] - center if sign > 0 else center - self.bounds[0]

    def _shifts(self, sign: float, center: float) -> np.ndarray:
        if self.bounds is None:
            top = (
                self.delta_max if self.delta_max is not None else max(4.0 * self.sigma, self.delta)
            )
            return _grid(self.delta, top)
        room = self._room(sign, center)
        if self.delta >= room:
            raise InvalidArgumentError(
                "delta", f"a shift of {self.delta} from {center} leaves the bounds {self.bounds}"
            )
        top = room if self.delta_max is None else min(self.delta_max, room)
        return _grid(self.delta, top)

    def _bets(self, sign: float, shifts: np.ndarray, center: float) -> np.ndarray:
        """|λ| for each shift: d/σ² (sub-Gaussian), or the Kelly bet d/((c − a)(b − c)) of a
        two-point law on the bounds a, b, kept 1% inside the range where L stays positive
        (λ < 1/(c − a) for a rise, |λ| < 1/(b − c) for a fall)."""
        if self.bounds is None:
            return shifts / self.sigma**2
        lo, hi = self.bounds
        variance = (center - lo) * (hi - center)  # Bhatia–Davis: the largest at mean c
        limit = 0.99 / (center - lo if sign > 0 else hi - center)
        return np.minimum(shifts / variance, limit)

    def _check_values(self, name: str, values: np.ndarray) -> None:
        if self.bounds is not None and (
            np.any(values < self.bounds[0]) or np.any(values > self.bounds[1])
        ):
            raise InvalidArgumentError(name, f"must lie within bounds {self.bounds}")

    def _init_arrays(self) -> None:
        size = self._lambdas.size
        self._log_sr = np.full(size, -np.inf)
        self._log_cusum = np.full(size, -np.inf)
        self._starts = np.zeros(size, dtype=np.int64)

    @property
    def log_statistic(self) -> float:
        """ln M_n (−inf before any observation)."""
        chosen = self._log_sr if self.kind == "sr" else self._log_cusum
        terms = self._log_weights + chosen
        top = terms.max()
        if top == -np.inf:
            return -math.inf
        return float(top + math.log(np.exp(terms - top).sum()))

    @property
    def statistic(self) -> float:
        """M_n, the e-detector (compared with 1/α)."""
        return math.exp(min(self.log_statistic, 700.0))

    @property
    def threshold(self) -> float:
        return 1.0 / self.alpha

    @property
    def changepoint_estimate(self) -> int | None:
        if self.n == 0:
            return None
        terms = self._log_weights + self._log_cusum
        best = int(np.argmax(terms))
        return int(self._starts[best]) if self._log_cusum[best] > 0.0 else None

    def _run(self, values: np.ndarray) -> int:
        return _kernel_module().edetector_run(
            self._log_sr, self._log_cusum, self._starts, self._count, self._lambdas,
            self._centers, self._log_weights, values, 0.0 if self.sigma is None else
            self.sigma**2, self.bounds is not None, self._log_threshold, self.kind == "sr",
        )  # fmt: skip

    def _settings(self) -> dict[str, Any]:
        return {
            "mu0": list(self.mu0) if isinstance(self.mu0, tuple) else self.mu0,
            "delta": self.delta, "alpha": self.alpha, "sigma": self.sigma,
            "bounds": None if self.bounds is None else list(self.bounds),
            "delta_max": self.delta_max, "alternative": self.alternative, "kind": self.kind,
        }  # fmt: skip

    @classmethod
    def from_baseline(
        cls,
        baseline: object,
        delta: float,
        *,
        beta: float = 0.001,
        alpha: float = 0.001,
        sigma: float | None = None,
        bounds: tuple[float, float] | None = None,
        alternative: str = "two-sided",
        **options: Any,
    ) -> EDetector:
        """An e-detector whose null interval is a level 1 − ``beta`` Hoeffding interval
        for the mean of the ``baseline`` values (data from before any change, e.g. a
        warm-up): mean ± (b − a)·√(ln(2/β) / (2n)) for bounded data, mean ±
        σ·√(2 ln(2/β) / n) for sub-Gaussian data. If the baseline is i.i.d. with the
        pre-change mean, then with probability ≥ 1 − β the interval holds it and the
        detector's ARL ≥ 1/α; the unknown mean costs that β, and a delay that grows with
        the interval's half-width.

        >>> rng = np.random.default_rng(2)
        >>> detector = EDetector.from_baseline(rng.binomial(1, 0.6, 500), 0.2, bounds=(0, 1))
        >>> low, high = detector.mu0
        >>> bool(low < 0.6 < high), round(high - low, 3)
        (True, 0.174)
        """
        values = as_float_array("baseline", baseline).reshape(-1)
        if values.size == 0:
            raise InvalidArgumentError("baseline", "needs at least one value")
        beta = check_alpha(beta, "beta")
        mean = float(values.mean())
        log_term = math.log(2.0 / beta)
        if bounds is not None:
            lo, hi = (float(v) for v in as_float_array("bounds", bounds))
            half = (hi - lo) * math.sqrt(log_term / (2.0 * values.size))
            pad = 1e-9 * (hi - lo)
            low, high = max(mean - half, lo + pad), min(mean + half, hi - pad)
        else:
            if sigma is None:
                raise InvalidArgumentError("sigma", "give sigma (sub-Gaussian) or bounds")
            half = float(sigma) * math.sqrt(2.0 * log_term / values.size)
            low, high = mean - half, mean + half
        return cls(
            (low, high), delta, alpha=alpha, sigma=sigma, bounds=bounds,
            alternative=alternative, **options,
        )  # fmt: skip

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EDetector:
        """A detector restored from ``state()``.

        >>> detector = EDetector(0.0, 0.5, sigma=1.0, alternative="two-sided")
        >>> _ = detector.update_many([0.4, 1.2, -0.3])
        >>> EDetector.from_state(detector.state()).log_statistic == detector.log_statistic
        True
        """
        return super().from_state(state)


_SIDE = {1.0: "greater", -1.0: "less"}


def detect_changes(
    values: object,
    detector: EDetector | GaussianCUSUM,
    *,
    restart: bool = True,
    changepoints: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Alarm positions of ``detector`` run over a 1-d series, restarted after each alarm.

    ``values`` is a series of per-period observations — e.g. a daily metric, or the
    per-day increments of an Analyzer timeline (its rows are cumulative, and cumulative
    estimates are neither independent nor of constant variance, so difference them
    first). A fresh copy of ``detector`` is used (the argument is not changed); with
    ``restart`` it is reset after each alarm and watches the rest of the series, so its
    guarantee applies run by run: under no change the alarms are on average at least
    the ARL apart. After a real change a detector with a fixed ``mu0`` keeps alarming
    until the series returns (``restart=False`` stops at the first alarm). Positions index
    ``values`` (0-based). ``changepoints=True`` also
    returns, for each alarm, the detector's change-point estimate as a position in
    ``values`` (−1 where it has none).

    >>> rng = np.random.default_rng(3)
    >>> series = np.concatenate([rng.normal(10, 1, 60), rng.normal(12, 1, 40)])
    >>> detect_changes(series, GaussianCUSUM(10.0, 2.0, arl=1000), restart=False)
    array([63])
    """
    if not isinstance(detector, _Detector):
        raise InvalidArgumentError(
            "detector", f"must be an EDetector or GaussianCUSUM, got {type(detector).__name__}"
        )
    restart = check_bool("restart", restart)
    changepoints = check_bool("changepoints", changepoints)
    series = np.ascontiguousarray(as_float_array("values", values))
    if series.ndim != 1:
        raise InvalidArgumentError("values", f"must be one-dimensional, got shape {series.shape}")
    detector._check_values("values", series)
    running = detector.copy()
    running.reset()
    alarms, estimates = [], []
    offset = 0
    while offset < series.size:
        index = running._consume(series[offset:])
        if index < 0:
            break
        estimate = running.changepoint_estimate
        alarms.append(offset + index)
        estimates.append(-1 if estimate is None else offset + estimate)
        offset += index + 1
        if not restart:
            break
        running.reset()
    positions = np.asarray(alarms, dtype=np.int64)
    if changepoints:
        return positions, np.asarray(estimates, dtype=np.int64)
    return positions
