"""Bandit environments: the reward laws :func:`splitlab.simulate.simulate` draws from.

Every environment is a plain frozen dataclass of arrays that reduces to one kernel
description (:class:`EnvironmentArrays`): at step t and context x, arm k has the linear
predictor

    η_k(t, x) = means[segment(t), k] + x · θ_k

and a *family* that turns it into a reward:

* ``"bernoulli"``: reward ~ Bernoulli(η), expected reward η (context-free arms);
* ``"gaussian"``: reward = η + sd_k · N(0, 1), expected reward η;
* ``"logistic"``: reward ~ Bernoulli(σ(η)), expected reward σ(η), σ(z) = 1 / (1 + e^{−z}).

``segment(t)`` is the number of ``starts`` ≤ t minus one: one row of means for a stationary
environment, one per stationary piece for :class:`PiecewiseStationary`, one per step for
:class:`DriftingArms`. Contexts are N(0, I_d) draws, or rows drawn uniformly from a given
``contexts`` pool, fresh for every replication and step. :class:`DelayedRewards` wraps any
environment so that a reward reaches the policy ``delay`` steps after its decision.

Regret is the *pseudo-regret* max_j E[r_j | t, x] − E[r_a | t, x] of the chosen arm a, the
expectation over the reward noise only (the standard definition for simulation studies:
it has far less variance than the realized reward gap).

>>> env = BernoulliArms([0.2, 0.5, 0.7])
>>> env.expected_rewards(step=0).tolist()
[[0.2, 0.5, 0.7]]
>>> LinearContextual.random(n_arms=3, n_features=4, seed=0).theta.shape
(3, 4)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from splitlab._validation import check_choice
from splitlab.errors import InvalidArgumentError

__all__ = [
    "BernoulliArms",
    "DelayedRewards",
    "DriftingArms",
    "Environment",
    "EnvironmentArrays",
    "GaussianArms",
    "LinearContextual",
    "LogisticContextual",
    "PiecewiseStationary",
]

BERNOULLI, GAUSSIAN, LOGISTIC = 0, 1, 2
FAMILIES = {"bernoulli": BERNOULLI, "gaussian": GAUSSIAN, "logistic": LOGISTIC}


@dataclass(frozen=True, eq=False)
class EnvironmentArrays:
    """What the simulation kernel needs about an environment over a given horizon."""

    family: int
    starts: np.ndarray  # (S,) int64, first step of each row of ``means``; starts[0] == 0
    means: np.ndarray  # (S, K)
    sd: np.ndarray  # (K,) Gaussian noise sd (unused by the Bernoulli families)
    theta: np.ndarray  # (K, d); d == 0 for a context-free environment
    pool: np.ndarray  # (P, d) contexts to draw from; P == 0 draws N(0, I_d)
    delay: int


class Environment:
    """Base class: subclasses define ``n_arms``, ``n_features`` and ``_schedule``."""

    family: str = "bernoulli"

    @property
    def n_arms(self) -> int:
        raise NotImplementedError("abstract: subclasses know their arms")

    @property
    def n_features(self) -> int:
        """Context dimension; 0 for a context-free environment."""
        return 0

    @property
    def contextual(self) -> bool:
        return self.n_features > 0

    @property
    def bounded(self) -> bool:
        """Whether every reward lies in [0, 1] (Bernoulli-type families)."""
        return self.family != "gaussian"

    def _schedule(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """(starts, means) of the base means over ``horizon`` steps."""
        raise NotImplementedError("abstract: subclasses define their means")

    def _theta(self) -> np.ndarray:
        return np.zeros((self.n_arms, 0))

    def _pool(self) -> np.ndarray:
        return np.zeros((0, self.n_features))

    def _sd(self) -> np.ndarray:
        return np.ones(self.n_arms)

    @property
    def delay(self) -> int:
        return 0

    def arrays(self, horizon: int) -> EnvironmentArrays:
        starts, means = self._schedule(horizon)
        return EnvironmentArrays(
            family=FAMILIES[self.family],
            starts=np.ascontiguousarray(starts, dtype=np.int64),
            means=np.ascontiguousarray(means, dtype=np.float64),
            sd=np.ascontiguousarray(self._sd(), dtype=np.float64),
            theta=np.ascontiguousarray(self._theta(), dtype=np.float64),
            pool=np.ascontiguousarray(self._pool(), dtype=np.float64),
            delay=self.delay,
        )

    def expected_rewards(self, step: int | np.ndarray, contexts: object = None) -> np.ndarray:
        """E[reward] of every arm, shape (n, n_arms), at the given step(s) (numpy reference
        of what the kernel computes; ``contexts`` of shape (n, d) for a contextual one)."""
        steps = np.atleast_1d(np.asarray(step, dtype=np.int64))
        starts, means = self._schedule(int(steps.max()) + 1)
        eta = means[np.searchsorted(starts, steps, side="right") - 1]
        if self.contextual:
            rows = np.atleast_2d(np.asarray(contexts, dtype=np.float64))
            eta = eta + rows @ self._theta().T
        return 1.0 / (1.0 + np.exp(-eta)) if self.family == "logistic" else eta


def _means(name: str, value: object, *, rate: bool) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 1 or array.size < 1:
        raise InvalidArgumentError(name, f"must be one mean per arm, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise InvalidArgumentError(name, "contains NaN or infinite values")
    if rate and np.any((array < 0) | (array > 1)):
        raise InvalidArgumentError(name, "Bernoulli means must lie in [0, 1]")
    return array


def _sd_per_arm(value: object, n_arms: int) -> np.ndarray:
    array = np.broadcast_to(np.asarray(value, dtype=np.float64), (n_arms,)).copy()
    if not np.all(np.isfinite(array) & (array > 0)):
        raise InvalidArgumentError("sd", "must be positive and finite")
    return array


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidArgumentError(name, f"must be a positive integer, got {value!r}")
    return int(value)


def _stationary(means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(1, dtype=np.int64), means[None, :]


@dataclass(frozen=True, eq=False)
class BernoulliArms(Environment):
    """Context-free arms with Bernoulli(``means[k]``) rewards.

    >>> BernoulliArms.testbed(n_arms=10, seed=0).n_arms
    10
    """

    means: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "means", _means("means", self.means, rate=True))

    @classmethod
    def testbed(cls, n_arms: int = 10, seed: int = 0) -> BernoulliArms:
        """Means drawn uniformly from [0, 1] (the usual K-armed Bernoulli testbed)."""
        rng = np.random.default_rng(seed)
        return cls(rng.uniform(0.0, 1.0, _positive_int("n_arms", n_arms)))

    @property
    def n_arms(self) -> int:
        return self.means.size

    def _schedule(self, horizon):
        return _stationary(self.means)


@dataclass(frozen=True, eq=False)
class GaussianArms(Environment):
    """Context-free arms with N(``means[k]``, ``sd[k]``²) rewards."""

    means: np.ndarray
    sd: float | np.ndarray = 1.0
    family = "gaussian"

    def __post_init__(self):
        means = _means("means", self.means, rate=False)
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "sd", _sd_per_arm(self.sd, means.size))

    @classmethod
    def testbed(cls, n_arms: int = 10, sd: float = 1.0, seed: int = 0) -> GaussianArms:
        """Means drawn from N(0, 1) (Sutton & Barto's 10-armed testbed), noise sd ``sd``."""
        rng = np.random.default_rng(seed)
        return cls(rng.normal(0.0, 1.0, _positive_int("n_arms", n_arms)), sd)

    @property
    def n_arms(self) -> int:
        return self.means.size

    def _schedule(self, horizon):
        return _stationary(self.means)

    def _sd(self):
        return self.sd


def _theta(value: object) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2 or 0 in array.shape:
        raise InvalidArgumentError(
            "theta", f"must be (n_arms, n_features) coefficients, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise InvalidArgumentError("theta", "contains NaN or infinite values")
    return array


def _pool(value: object, n_features: int) -> np.ndarray:
    if value is None:
        return np.zeros((0, n_features))
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != n_features or array.shape[0] < 1:
        raise InvalidArgumentError(
            "contexts", f"must be rows of {n_features} features, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise InvalidArgumentError("contexts", "contains NaN or infinite values")
    return array


def _intercept(value: object, n_arms: int) -> np.ndarray:
    array = np.broadcast_to(np.asarray(value, dtype=np.float64), (n_arms,)).copy()
    if not np.all(np.isfinite(array)):
        raise InvalidArgumentError("intercept", "contains NaN or infinite values")
    return array


@dataclass(frozen=True, eq=False)
class LinearContextual(Environment):
    """reward = intercept_k + x · θ_k + sd · N(0, 1), contexts x ~ N(0, I_d) or drawn
    uniformly from the rows of ``contexts``."""

    theta: np.ndarray
    sd: float = 1.0
    contexts: np.ndarray | None = None
    intercept: float | np.ndarray = 0.0
    family = "gaussian"

    def __post_init__(self):
        theta = _theta(self.theta)
        object.__setattr__(self, "theta", theta)
        object.__setattr__(self, "sd", _sd_per_arm(self.sd, theta.shape[0]))
        object.__setattr__(self, "contexts", _pool(self.contexts, theta.shape[1]))
        object.__setattr__(self, "intercept", _intercept(self.intercept, theta.shape[0]))

    @classmethod
    def random(
        cls, n_arms: int = 10, n_features: int = 5, sd: float = 1.0, seed: int = 0
    ) -> LinearContextual:
        """θ_k drawn uniformly on the unit sphere: every arm's mean reward is 0, so only a
        policy that uses the context can do better than chance."""
        rng = np.random.default_rng(seed)
        theta = rng.normal(
            size=(_positive_int("n_arms", n_arms), _positive_int("n_features", n_features))
        )
        return cls(theta / np.linalg.norm(theta, axis=1, keepdims=True), sd)

    @property
    def n_arms(self) -> int:
        return self.theta.shape[0]

    @property
    def n_features(self) -> int:
        return self.theta.shape[1]

    def _schedule(self, horizon):
        return _stationary(self.intercept)

    def _theta(self):
        return self.theta

    def _pool(self):
        return self.contexts

    def _sd(self):
        return self.sd


@dataclass(frozen=True, eq=False)
class LogisticContextual(Environment):
    """reward ~ Bernoulli(σ(intercept_k + x · θ_k)), contexts as in :class:`LinearContextual`."""

    theta: np.ndarray
    contexts: np.ndarray | None = None
    intercept: float | np.ndarray = 0.0
    family = "logistic"

    def __post_init__(self):
        theta = _theta(self.theta)
        object.__setattr__(self, "theta", theta)
        object.__setattr__(self, "contexts", _pool(self.contexts, theta.shape[1]))
        object.__setattr__(self, "intercept", _intercept(self.intercept, theta.shape[0]))

    @classmethod
    def random(
        cls, n_arms: int = 10, n_features: int = 5, scale: float = 2.0, seed: int = 0
    ) -> LogisticContextual:
        """θ_k uniform on the sphere of radius ``scale``, intercepts 0."""
        rng = np.random.default_rng(seed)
        theta = rng.normal(
            size=(_positive_int("n_arms", n_arms), _positive_int("n_features", n_features))
        )
        return cls(scale * theta / np.linalg.norm(theta, axis=1, keepdims=True))

    @property
    def n_arms(self) -> int:
        return self.theta.shape[0]

    @property
    def n_features(self) -> int:
        return self.theta.shape[1]

    def _schedule(self, horizon):
        return _stationary(self.intercept)

    def _theta(self):
        return self.theta

    def _pool(self):
        return self.contexts


@dataclass(frozen=True, eq=False)
class PiecewiseStationary(Environment):
    """Means ``means[s]`` from step ``change_points[s − 1]`` on (``means`` has one row per
    piece, ``change_points`` one fewer increasing steps), Bernoulli or Gaussian rewards.

    >>> env = PiecewiseStationary([[0.9, 0.1], [0.1, 0.9]], change_points=[100])
    >>> env.expected_rewards([99, 100]).tolist()
    [[0.9, 0.1], [0.1, 0.9]]
    """

    means: np.ndarray
    change_points: np.ndarray
    family: str = "bernoulli"
    sd: float | np.ndarray = 1.0

    def __post_init__(self):
        family = check_choice("family", self.family, ("bernoulli", "gaussian"))
        means = np.asarray(self.means, dtype=np.float64)
        if means.ndim != 2 or 0 in means.shape:
            raise InvalidArgumentError(
                "means", f"must be (pieces, n_arms) means, got shape {means.shape}"
            )
        for row in means:
            _means("means", row, rate=family == "bernoulli")
        changes = np.asarray(self.change_points, dtype=np.int64).reshape(-1)
        if changes.size != means.shape[0] - 1:
            raise InvalidArgumentError(
                "change_points", f"need {means.shape[0] - 1} (one fewer than rows of means)"
            )
        if np.any(changes < 1) or np.any(np.diff(changes) <= 0):
            raise InvalidArgumentError("change_points", "must be increasing positive steps")
        object.__setattr__(self, "family", family)
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "change_points", changes)
        object.__setattr__(self, "sd", _sd_per_arm(self.sd, means.shape[1]))

    @property
    def n_arms(self) -> int:
        return self.means.shape[1]

    def _schedule(self, horizon):
        return np.concatenate([[0], self.change_points]), self.means

    def _sd(self):
        return self.sd


@dataclass(frozen=True, eq=False)
class DriftingArms(Environment):
    """Means that move every step, the same path for every replication (fixed by ``seed``):

    * ``kind="random_walk"``: μ_k(t + 1) = μ_k(t) + N(0, ``scale``²), reflected into [0, 1]
      for Bernoulli rewards;
    * ``kind="sinusoid"``: μ_k(t) = μ_k(0) + ``scale`` · sin(2π t / ``period`` + 2π k / K),
      clipped to [0, 1] for Bernoulli rewards.

    >>> env = DriftingArms([0.5, 0.5], kind="sinusoid", scale=0.25, period=4)
    >>> env.expected_rewards([0, 1]).round(3).tolist()
    [[0.5, 0.5], [0.75, 0.25]]
    """

    initial_means: np.ndarray
    kind: str = "random_walk"
    scale: float = 0.01
    period: float = 1000.0
    family: str = "bernoulli"
    sd: float | np.ndarray = 1.0
    seed: int = 0
    _cache: dict = field(default_factory=dict, repr=False, init=False)

    def __post_init__(self):
        family = check_choice("family", self.family, ("bernoulli", "gaussian"))
        object.__setattr__(self, "family", family)
        object.__setattr__(
            self, "kind", check_choice("kind", self.kind, ("random_walk", "sinusoid"))
        )
        means = _means("initial_means", self.initial_means, rate=family == "bernoulli")
        object.__setattr__(self, "initial_means", means)
        if not (math.isfinite(self.scale) and self.scale >= 0):
            raise InvalidArgumentError("scale", f"must be finite and >= 0, got {self.scale!r}")
        if not (math.isfinite(self.period) and self.period > 0):
            raise InvalidArgumentError("period", f"must be positive, got {self.period!r}")
        object.__setattr__(self, "sd", _sd_per_arm(self.sd, means.size))

    @property
    def n_arms(self) -> int:
        return self.initial_means.size

    def _schedule(self, horizon):
        if self._cache.get("horizon", 0) < horizon:
            self._cache.update(horizon=horizon, means=self._path(horizon))
        return np.arange(horizon, dtype=np.int64), self._cache["means"][:horizon]

    def _path(self, horizon: int) -> np.ndarray:
        n_arms = self.n_arms
        if self.kind == "sinusoid":
            phase = 2.0 * np.pi * np.arange(n_arms) / n_arms
            angle = 2.0 * np.pi * np.arange(horizon)[:, None] / self.period + phase
            path = self.initial_means + self.scale * np.sin(angle)
            return np.clip(path, 0.0, 1.0) if self.family == "bernoulli" else path
        steps = np.random.default_rng(self.seed).normal(0.0, self.scale, (horizon, n_arms))
        steps[0] = 0.0
        path = self.initial_means + np.cumsum(steps, axis=0)
        if self.family == "bernoulli":
            # reflection into [0, 1]: fold the line onto a triangle wave of period 2
            path = 1.0 - np.abs(1.0 - np.mod(path, 2.0))
        return path

    def _sd(self):
        return self.sd


@dataclass(frozen=True, eq=False)
class DelayedRewards(Environment):
    """``environment`` whose reward for a decision at step t reaches the policy at the end
    of step t + ``delay`` (rewards still pending at the horizon are never seen). Regret is
    charged at the decision."""

    environment: Environment
    delay_steps: int = 1

    def __post_init__(self):
        if not isinstance(self.environment, Environment) or isinstance(
            self.environment, DelayedRewards
        ):
            raise InvalidArgumentError("environment", "must be an undelayed Environment")
        if isinstance(self.delay_steps, bool) or not isinstance(self.delay_steps, numbers.Integral):
            raise InvalidArgumentError("delay_steps", "must be a non-negative integer")
        if self.delay_steps < 0:
            raise InvalidArgumentError("delay_steps", "must be a non-negative integer")

    @property
    def family(self) -> str:  # type: ignore[override]
        return self.environment.family

    @property
    def n_arms(self) -> int:
        return self.environment.n_arms

    @property
    def n_features(self) -> int:
        return self.environment.n_features

    @property
    def delay(self) -> int:
        return int(self.delay_steps)

    def _schedule(self, horizon):
        return self.environment._schedule(horizon)

    def _theta(self):
        return self.environment._theta()

    def _pool(self):
        return self.environment._pool()

    def _sd(self):
        return self.environment._sd()
