"""Group-sequential designs with error-spending boundaries.

A trial looks at its z statistic K times, at information fractions t_1 < ... < t_K = 1.
An α-spending function f(t; a) says how much type I error may have been spent by
fraction t (Lan & DeMets 1983); the boundary c_k at look k is the value for which the
probability of first crossing at look k under H0 equals f(t_k) − f(t_{k−1}). The
probabilities come from recursive numerical integration (Armitage, McPherson & Rowe 1969;
Jennison & Turnbull 2000, ch. 19) in the numba kernels of ``_group_kernels``.

Conventions (those of ldbounds and gsDesign):

* ``sides=1``: reject H0 at look k when Z_k ≥ c_k; the design spends f(t; α).
* ``sides=2``: symmetric, reject when |Z_k| ≥ c_k; *each side* spends f(t; α/2), so the
  total spent is 2 f(t; α/2) and the O'Brien-Fleming-type boundaries for α = 0.05, K = 5
  are the published 4.877, 3.357, 2.680, 2.290, 2.031.

Spending families, with a the α (or β) of one side:

* ``"obf"``: Lan-DeMets O'Brien-Fleming type, f(t; a) = 2 − 2Φ(z_{1−a/2}/√t);
* ``"pocock"``: Lan-DeMets Pocock type, f(t; a) = a ln(1 + (e − 1)t);
* ``("power", ρ)``: Kim-DeMets, f(t; a) = a t^ρ, ρ > 0;
* ``("hsd", γ)``: Hwang-Shih-DeCani, f(t; a) = a(1 − e^{−γt})/(1 − e^{−γ}), γ = 0 linear;
* a callable ``f(t, a)`` returning the cumulative amount spent at the fractions ``t``.
  Whatever a spending function leaves unspent is spent at the final analysis.

Futility (``futility=`` a spending spec, with ``beta``) adds non-binding lower boundaries by
β-spending (Pampallona & Tsiatis 1994; gsDesign ``test.type=4``): under the alternative,
the probability of first falling below the futility bound at look k is the β spent there.
Efficacy boundaries ignore the futility bounds (non-binding: stopping for futility is
optional and α is still controlled if the trial continues), power counts them. The drift is
raised until the two boundaries meet at the last look, which fixes the maximum information.
With ``sides=2`` the futility bound applies to Z oriented in the direction of the effect.

Example:

>>> design = GroupSequentialDesign(k=5, alpha=0.05, spending="obf")
>>> design.boundaries.round(3)
array([4.877, 3.357, 2.68 , 2.29 , 2.031])
>>> round(design.inflation_factor, 3)   # 90% power
1.023
>>> result = design.analyze([1.2, 3.1], information=[0.22, 0.41])
>>> result.decision, result.stopped_at
('continue', None)
>>> result.boundaries.round(3)
array([4.637, 3.312])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import optimize, special

from splitlab._validation import as_float_array, check_alpha
from splitlab.errors import InvalidArgumentError, ShapeMismatchError, UnknownOptionError
from splitlab.sequential import _group_kernels as kernels

__all__ = ["GroupSequentialDesign", "GroupSequentialResult", "spending_function"]

SPENDING_FAMILIES = ("obf", "pocock", "power", "hsd")
DECISIONS = ("reject", "futility", "continue", "fail to reject")
DEFAULT_BETA = 0.1

SpendingSpec = str | tuple[str, float] | Callable[[np.ndarray, float], np.ndarray]

# At most this many looks. The recursive integration costs O(k · (12·grid)²) per pass and
# solving the drift ~30 passes: k = 100 takes ~1.5 s at the default grid (~20 s at
# grid=200), k = 10⁶ would take days. gsDesign's gsProbability accepts at most 30 analyses
# and rpact at most 20; 100 leaves room for frequent monitoring.
MAX_LOOKS = 100

# A look at or beyond this fraction of the planned information is the final analysis.
_FINAL_FRACTION = 1.0 - 1e-12


def _normal_quantile(p: float) -> float:
    return float(special.ndtri(p))


def spending_function(spec: SpendingSpec, argument: str = "spending") -> Callable:
    """The cumulative spending function ``f(t, a)`` named by ``spec`` (see module docs).

    >>> f = spending_function(("hsd", 0.0))
    >>> f(np.array([0.25, 1.0]), 0.05)
    array([0.0125, 0.05  ])
    """
    if callable(spec):
        return _checked_callable(spec, argument)
    if isinstance(spec, str):
        name, parameters = spec, ()
    elif isinstance(spec, Sequence) and len(spec) >= 1 and isinstance(spec[0], str):
        name, parameters = spec[0], tuple(spec[1:])
    else:
        raise InvalidArgumentError(
            argument, f"must be a family name, a (name, parameter) pair or a callable, got {spec!r}"
        )
    if name not in SPENDING_FAMILIES:
        raise UnknownOptionError(argument, name, SPENDING_FAMILIES)
    expected = 1 if name in ("power", "hsd") else 0
    if len(parameters) != expected:
        shape = f"({name!r}, parameter)" if expected else f"{name!r}"
        raise InvalidArgumentError(argument, f"{name!r} is given as {shape}, got {spec!r}")
    if expected:
        parameter = parameters[0]
        if isinstance(parameter, bool) or not isinstance(parameter, numbers.Real):
            raise InvalidArgumentError(argument, f"{name} parameter must be a number")
        parameter = float(parameter)
        if not math.isfinite(parameter):
            raise InvalidArgumentError(argument, f"{name} parameter must be finite")
        if name == "power" and parameter <= 0:
            raise InvalidArgumentError(
                argument, f"power parameter rho must be > 0, got {parameter}"
            )
        if name == "hsd" and abs(parameter) > 40:
            raise InvalidArgumentError(
                argument, f"hsd parameter gamma must be in [-40, 40], got {parameter}"
            )
    if name == "obf":
        return _obf
    if name == "pocock":
        return _pocock
    if name == "power":
        return lambda t, a: a * np.asarray(t, dtype=np.float64) ** parameter
    return lambda t, a: _hsd(t, a, parameter)


def _obf(t: np.ndarray, a: float) -> np.ndarray:
    """Lan & DeMets (1983): 2 − 2Φ(z_{1−a/2}/√t), zero at t = 0."""
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return 2.0 * special.ndtr(-_normal_quantile(1.0 - a / 2.0) / np.sqrt(t))


def _pocock(t: np.ndarray, a: float) -> np.ndarray:
    """Lan & DeMets (1983): a ln(1 + (e − 1)t)."""
    return a * np.log1p((math.e - 1.0) * np.asarray(t, dtype=np.float64))


def _hsd(t: np.ndarray, a: float, gamma: float) -> np.ndarray:
    """Hwang, Shih & DeCani (1990): a(1 − e^{−γt})/(1 − e^{−γ}); linear at γ = 0."""
    t = np.asarray(t, dtype=np.float64)
    if gamma == 0.0:
        return a * t
    return a * np.expm1(-gamma * t) / math.expm1(-gamma)


def _checked_callable(function: Callable, argument: str) -> Callable:
    def checked(t: np.ndarray, a: float) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        try:
            spent = np.asarray(function(t, a), dtype=np.float64)
            if spent.shape != t.shape:
                spent = np.array([float(function(value, a)) for value in t])
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(argument, f"the spending function failed: {exc}") from exc
        if not np.all(np.isfinite(spent)):
            raise InvalidArgumentError(argument, "the spending function returned NaN or inf")
        if np.any(spent < 0) or np.any(spent > a * (1 + 1e-9)):
            raise InvalidArgumentError(argument, f"the spending function must stay in [0, {a}]")
        if np.any(np.diff(spent) < -1e-15):
            raise InvalidArgumentError(argument, "the spending function must be non-decreasing")
        return spent

    return checked


def _cumulative(function: Callable, fractions: np.ndarray, total: float, final: bool) -> np.ndarray:
    """Cumulative amount spent at each look; the final look spends whatever remains."""
    spent = np.asarray(function(np.minimum(fractions, 1.0), total), dtype=np.float64)
    spent = np.clip(np.maximum.accumulate(spent), 0.0, total)
    if final:
        spent[-1] = total
    return spent


def _increments(cumulative: np.ndarray) -> np.ndarray:
    return np.diff(cumulative, prepend=0.0)


def _finite_or_nan(bounds: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(bounds), bounds, np.nan)


def _check_looks(name: str, count: int) -> None:
    if count > MAX_LOOKS:
        raise InvalidArgumentError(
            name, f"must be at most {MAX_LOOKS} looks, got {count}: the boundary recursion "
            "costs O(looks · grid²) per pass",
        )  # fmt: skip


def _check_fractions(name: str, values: object) -> np.ndarray:
    array = as_float_array(name, values)
    if array.ndim != 1 or array.size == 0:
        raise InvalidArgumentError(name, "must be a non-empty 1-D sequence")
    _check_looks(name, array.size)
    if np.any(array <= 0):
        raise InvalidArgumentError(name, "must be positive (information fractions lie in (0, 1])")
    if np.any(np.diff(array) <= 0):
        raise InvalidArgumentError(name, "must be strictly increasing")
    return array


@dataclass(frozen=True)
class GroupSequentialResult:
    """The monitoring of one trial by :meth:`GroupSequentialDesign.analyze`.

    Per-look arrays: ``z``, ``information`` (fractions of the planned maximum),
    ``boundaries`` (efficacy, recomputed at the observed fractions), ``futility`` (None if
    the design has none; NaN where a look has no bound), ``alpha_spent`` (cumulative, both
    sides), ``estimate`` and the repeated confidence interval ``ci_low``, ``ci_high``.
    ``decision`` is one of "reject", "futility", "continue", "fail to reject" (the final
    analysis did not reject); ``stopped_at`` is the 1-based look of the decision to stop.
    """

    z: np.ndarray
    information: np.ndarray
    boundaries: np.ndarray
    futility: np.ndarray | None
    alpha_spent: np.ndarray
    estimate: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    decision: str
    stopped_at: int | None

    def to_frame(self) -> pd.DataFrame:
        """One row per look."""
        columns = {
            field.name: getattr(self, field.name)
            for field in fields(self)
            if field.name not in ("decision", "stopped_at")
            and getattr(self, field.name) is not None
        }
        frame = pd.DataFrame(columns)
        frame.insert(0, "look", np.arange(1, len(frame) + 1))
        return frame


class GroupSequentialDesign:
    """A group-sequential test with error-spending efficacy (and optional futility) bounds.

    Parameters
    ----------
    k, information
        Exactly one: ``k`` equally spaced looks (fractions 1/k, ..., 1), or the increasing
        ``information`` at each look, as fractions or on an absolute scale (normalized by
        the last value, which becomes ``max_information``). At most :data:`MAX_LOOKS` = 100
        looks: the work is O(looks · grid²) per pass of the recursion (gsDesign allows 30).
    alpha
        Total type I error; with ``sides=2`` each side spends ``alpha / 2``.
    spending
        α-spending: "obf", "pocock", ("power", ρ), ("hsd", γ) or a callable ``f(t, a)``.
    sides
        1 (reject for large Z) or 2 (symmetric, reject for large |Z|).
    beta
        Type II error at the design effect; None means 0.1 (90% power).
    futility
        β-spending spec (same families) for non-binding futility bounds, or None.
    effect
        The drift θ√I_max, i.e. the alternative effect in units of the final standard
        error. None: solved so that the power is 1 − beta.
    grid
        Jennison-Turnbull grid parameter r (about 12r + 1 nodes per look), at most 200;
        the work grows as grid².

    Attributes
    ----------
    boundaries
        z-scale efficacy boundaries, one per look.
    futility
        z-scale futility boundaries (NaN where none) or None without ``futility``.
    alpha_spent, beta_spent
        Cumulative error spent at each planned look.
    effect, power, inflation_factor
        The drift, the power at that drift and the maximum information relative to a
        fixed-horizon test with the same α and power, (effect / (z_{1−α/sides} + z_{power}))².
    """

    def __init__(
        self,
        k: int | None = None,
        information: Sequence[float] | np.ndarray | None = None,
        alpha: float = 0.05,
        spending: SpendingSpec = "obf",
        sides: int = 2,
        beta: float | None = None,
        futility: SpendingSpec | None = None,
        *,
        effect: float | None = None,
        grid: int = 32,
    ) -> None:
        if (k is None) == (information is None):
            raise InvalidArgumentError("k", "give exactly one of k and information")
        if k is not None:
            if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
                raise InvalidArgumentError("k", f"must be a positive integer, got {k!r}")
            _check_looks("k", int(k))
            absolute = np.arange(1, int(k) + 1, dtype=np.float64) / int(k)
        else:
            absolute = _check_fractions("information", information)
        if sides not in (1, 2) or isinstance(sides, bool):
            raise InvalidArgumentError("sides", f"must be 1 or 2, got {sides!r}")
        if isinstance(grid, bool) or not isinstance(grid, numbers.Integral) or not 1 <= grid <= 200:
            raise InvalidArgumentError(
                "grid", f"must be an integer in [1, 200] (at most 200: the work grows as grid²), "
                f"got {grid!r}",
            )  # fmt: skip
        self.alpha = check_alpha(alpha)
        self.sides = int(sides)
        self.grid = int(grid)
        self.max_information = float(absolute[-1])
        self.information = absolute / absolute[-1]
        self.k = self.information.size
        self.spending = spending
        self._alpha_function = spending_function(spending, "spending")
        self.beta = DEFAULT_BETA if beta is None else check_alpha(beta, "beta")
        if self._z_alpha + _normal_quantile(1.0 - self.beta) <= 0:
            raise InvalidArgumentError(
                "beta", f"power 1 - beta must exceed alpha/sides, got {beta}"
            )
        self.futility_spending = futility
        self._beta_function = None if futility is None else spending_function(futility, "futility")
        if effect is not None:
            effect = as_float_array("effect", effect)
            if effect.ndim != 0 or effect <= 0:
                raise InvalidArgumentError("effect", "must be a positive number")
            effect = float(effect)
        self._given_effect = effect

        per_side = _cumulative(self._alpha_function, self.information, self._alpha_side, True)
        self.alpha_spent = self.sides * per_side
        self.boundaries = kernels.efficacy_boundaries(
            self.information, _increments(per_side), self.sides == 2, self.grid
        )
        self.beta_spent = None
        self.futility = None
        if self._beta_function is not None:
            self.beta_spent = _cumulative(self._beta_function, self.information, self.beta, True)
            self.futility = _finite_or_nan(self._futility_at(self.effect)[0])

    @property
    def _alpha_side(self) -> float:
        return self.alpha / self.sides

    @property
    def _z_alpha(self) -> float:
        return _normal_quantile(1.0 - self._alpha_side)

    def _futility_at(self, drift: float, fractions=None, upper=None, final=True):
        fractions = self.information if fractions is None else fractions
        upper = self.boundaries if upper is None else upper
        spent = _cumulative(self._beta_function, fractions, self.beta, final)
        return kernels.futility_boundaries(
            fractions, upper, _increments(spent), drift, final, self.grid
        )

    def _power_at(self, drift: float) -> float:
        if self._beta_function is not None:
            return float(np.sum(self._futility_at(drift)[1]))
        lower = -self.boundaries if self.sides == 2 else np.full(self.k, -np.inf)
        upper_exit, _ = kernels.crossing_probabilities(
            self.information, self.boundaries, lower, drift, self.grid
        )
        return float(np.sum(upper_exit))

    @cached_property
    def effect(self) -> float:
        """The drift θ√I_max: the given one, or the one at which the power is 1 − beta."""
        if self._given_effect is not None:
            return self._given_effect
        target = 1.0 - self.beta
        fixed = self._z_alpha + _normal_quantile(target)
        high = 1.5 * fixed
        while self._power_at(high) < target:
            high *= 1.5
        return float(
            optimize.brentq(lambda drift: self._power_at(drift) - target, 0.0, high, xtol=1e-12)
        )

    @cached_property
    def power(self) -> float:
        """Probability of crossing the efficacy bound (before futility) at ``effect``."""
        return self._power_at(self.effect)

    @cached_property
    def inflation_factor(self) -> float:
        """Maximum information over that of the fixed-horizon test with equal α and power."""
        fixed = self._z_alpha + _normal_quantile(self.power)
        return (self.effect / fixed) ** 2

    def alpha_spending(self, fractions: Sequence[float] | np.ndarray) -> np.ndarray:
        """Total α (both sides) the design may have spent by each information fraction."""
        fractions = as_float_array("fractions", fractions)
        return self.sides * self._alpha_function(np.clip(fractions, 0.0, 1.0), self._alpha_side)

    def crossing_probabilities(
        self, effect: float = 0.0, *, futility: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-look probabilities of first crossing above the efficacy bound and below the
        lower bound at the drift ``effect`` (in units of the final standard error).

        The lower bound is the mirrored efficacy bound with ``sides=2`` (none with
        ``sides=1``); with ``futility=True`` the futility bound, as if binding, takes its
        place where it is higher.
        """
        drift = as_float_array("effect", effect)
        if drift.ndim != 0:
            raise InvalidArgumentError("effect", "must be a number")
        lower = -self.boundaries if self.sides == 2 else np.full(self.k, -np.inf)
        if futility:
            if self.futility is None:
                raise InvalidArgumentError("futility", "the design has no futility bounds")
            lower = np.fmax(lower, np.where(np.isnan(self.futility), -np.inf, self.futility))
        return kernels.crossing_probabilities(
            self.information, self.boundaries, lower, float(drift), self.grid
        )

    def analyze(
        self,
        z: Sequence[float] | np.ndarray,
        information: Sequence[float] | np.ndarray | None = None,
        *,
        se: Sequence[float] | np.ndarray | None = None,
        max_information: float | None = None,
        final: bool | None = None,
    ) -> GroupSequentialResult:
        """Monitor a trial whose looks fall at unplanned information (Lan & DeMets 1983).

        ``z`` holds the z statistic at each look so far (with ``sides=2`` and futility,
        oriented so that the planned effect is positive). ``information`` is on the
        design's scale: fractions for a design built from ``k`` or fractions, the absolute
        scale of the design's ``information`` otherwise; ``max_information`` overrides the
        planned maximum. Alternatively ``se`` gives each look's standard error, with
        absolute information 1/se². The boundaries are recomputed at the observed fractions
        by the spending function; a look at or beyond the planned maximum, or ``final=True``,
        spends all remaining α. With ``se`` (estimated variances), a look whose information
        fell below an earlier look's spends nothing (boundary +∞), and the first look past
        the planned maximum is the final analysis: later looks are left out of the result.

        Repeated confidence intervals (Jennison & Turnbull 2000, ch. 9): estimate ± c_k/√I_k
        with estimate z_k/√I_k, I_k the absolute information (1/se², or ``information``);
        with ``sides=1`` the interval is one-sided, (estimate − c_k/√I_k, ∞). All of them
        cover the true effect simultaneously with probability ≥ 1 − α.
        """
        z = as_float_array("z", z)
        if z.ndim != 1 or z.size == 0:
            raise InvalidArgumentError("z", "must be a non-empty 1-D sequence")
        _check_looks("z", z.size)
        if information is None and se is None:
            raise InvalidArgumentError("information", "give information or se")
        absolute = None
        if se is not None:
            se = as_float_array("se", se)
            if se.shape != z.shape:
                raise ShapeMismatchError("se", f"has shape {se.shape}, z has {z.shape}")
            if np.any(se <= 0):
                raise InvalidArgumentError("se", "must be positive")
            absolute = 1.0 / se**2
        scale = self.max_information
        if max_information is not None:
            scale = float(as_float_array("max_information", max_information))
            if scale <= 0:
                raise InvalidArgumentError("max_information", "must be positive")
        if information is not None:
            observed = _check_fractions("information", information)
            if observed.shape != z.shape:
                raise ShapeMismatchError(
                    "information", f"has shape {observed.shape}, z has {z.shape}"
                )
            absolute = observed if absolute is None else absolute
            fractions = observed / scale
        else:
            # Estimated information 1/se² can fall between looks, and can pass the plan
            # before the last look. A look that adds no information spends no α (its
            # boundary is +∞); the first look at the planned maximum is the final analysis
            # and later looks are not analyzed (the result stops there).
            fractions = np.maximum.accumulate(absolute) / scale
            reached = np.flatnonzero(fractions >= _FINAL_FRACTION)
            if reached.size and reached[0] < z.size - 1:
                keep = reached[0] + 1
                z, absolute, fractions = z[:keep], absolute[:keep], fractions[:keep]
                final = True
        if np.any(fractions[:-1] >= _FINAL_FRACTION):
            raise InvalidArgumentError(
                "information", "only the last look may reach the planned maximum information"
            )
        is_final = bool(fractions[-1] >= _FINAL_FRACTION) if final is None else bool(final)

        informative = np.concatenate([[True], np.diff(fractions) > 0])
        per_side = _cumulative(self._alpha_function, fractions, self._alpha_side, is_final)
        bounds = np.full(z.size, np.inf)
        bounds[informative] = kernels.efficacy_boundaries(
            fractions[informative], _increments(per_side[informative]), self.sides == 2,
            self.grid,
        )  # fmt: skip
        futility = None
        if self._beta_function is not None:
            futility = np.full(z.size, -np.inf)
            futility[informative] = self._futility_at(
                self.effect, fractions[informative], bounds[informative], is_final
            )[0]

        decision, stopped_at = "continue", None
        for look in range(z.size):
            statistic = abs(z[look]) if self.sides == 2 else z[look]
            if statistic >= bounds[look]:
                decision, stopped_at = "reject", look + 1
                break
            last = is_final and look == z.size - 1
            if futility is not None and not last and z[look] <= futility[look]:
                decision, stopped_at = "futility", look + 1
                break
        if decision == "continue" and is_final:
            decision, stopped_at = "fail to reject", z.size

        root = np.sqrt(absolute)
        estimate = z / root
        half_width = bounds / root
        ci_high = estimate + half_width if self.sides == 2 else np.full(z.size, np.inf)
        return GroupSequentialResult(
            z=z,
            information=fractions,
            boundaries=bounds,
            futility=None if futility is None else _finite_or_nan(futility),
            alpha_spent=self.sides * per_side,
            estimate=estimate,
            ci_low=estimate - half_width,
            ci_high=ci_high,
            decision=decision,
            stopped_at=stopped_at,
        )

    def to_frame(self) -> pd.DataFrame:
        """The planned looks: fraction, boundaries and error spent."""
        frame = pd.DataFrame(
            {
                "look": np.arange(1, self.k + 1),
                "information": self.information,
                "boundary": self.boundaries,
                "alpha_spent": self.alpha_spent,
            }
        )
        if self.futility is not None:
            frame["futility"] = self.futility
            frame["beta_spent"] = self.beta_spent
        return frame

    def __repr__(self) -> str:
        return (
            f"GroupSequentialDesign(k={self.k}, alpha={self.alpha}, spending={self.spending!r}, "
            f"sides={self.sides}, boundaries={np.round(self.boundaries, 4).tolist()})"
        )
