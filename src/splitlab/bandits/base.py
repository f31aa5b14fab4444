"""The policy protocol every bandit in splitlab obeys.

A policy is hyperparameters plus **state**: a dict of numpy arrays of sufficient statistics
whose first axis is the *copy* axis — length 1 for a live policy, R when
:mod:`splitlab.simulate` runs R replications at once (struct-of-arrays). Subclasses provide
two ``@njit(cache=True)`` kernels over those plain arrays, kept in ``_kernels.py`` or beside
the class:

- ``_select_kernel(state arrays..., params, contexts, available, out_arms)``: draws one
  decision per copy the way the algorithm itself does (e.g. posterior sampling) — used by
  simulation, where propensities are not needed;
- ``_update_kernel(state arrays..., params, copies, arms, rewards, contexts, weights)``: adds
  observations to the given copies.

and the Python method ``_probabilities(context, available)``, exact choice probabilities of
copy 0 (closed form, or quadrature for Thompson-type policies). ``choose`` draws from those
exact probabilities by inverting their CDF at a uniform, so the propensity logged with a
decision is the probability with which it was drawn, and a hashed uniform (the Allocator's
unit bucketing) works for every policy. Probabilities of a context-free policy are cached per
state ``version``: choices between updates cost one uniform draw.

Two optional hooks make the serving path of a context-free policy cheap (a numba call costs
~0.1 µs per array it unboxes, comparable to the work for 10 arms):
``_update_single(arm, reward, weight)`` adds one validated observation to copy 0 (default:
the update kernel's one-observation form, ``_kernels.ONE_OBSERVATION``, or the kernel itself
on one-observation buffers), and ``_draw_fresh(uniform)`` serves the first
``choose`` after an update, when the probabilities are not computed yet (default: compute
them and build the draw table; index policies compute and draw in one kernel call instead).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from itertools import accumulate
from operator import itemgetter
from typing import Any, ClassVar

import numpy as np

from splitlab._validation import check_integer
from splitlab.bandits._kernels import ONE_OBSERVATION, within_limit
from splitlab.errors import InvalidArgumentError

STATE_FORMAT = 1
_FLOAT64 = np.dtype(np.float64)
_GENERATOR = np.random.Generator

# One entropy-seeded generator for calls without ``rng`` (numpy Generators lock internally);
# building a fresh one per call cost ~10 µs.
_DEFAULT_RNG = np.random.default_rng()


def as_rng(rng: object) -> np.random.Generator:
    if rng is None:
        return _DEFAULT_RNG
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    raise InvalidArgumentError(
        "rng", f"must be a numpy Generator or a seed, got {type(rng).__name__}"
    )


def draw_from(probabilities: np.ndarray, uniform: float) -> int:
    """The arm whose CDF interval contains ``uniform`` (inverse-CDF sampling); never an arm
    of probability zero, even when ``uniform * total`` rounds up to the total."""
    cumulative = np.cumsum(probabilities)
    arm = int(np.searchsorted(cumulative, uniform * cumulative[-1], side="right"))
    return min(arm, int(np.flatnonzero(probabilities > 0)[-1]))


# magnitudes whose squares, summed over up to 1e9 updates, stay inside float64
CONTEXT_LIMIT = 1e100
REWARD_LIMIT = 1e100


class Policy:
    """Base class: validation, caching, state, merge; subclasses supply the statistics.

    Every state array has the copy axis first and the arm axis second, so that decay,
    merge, ``add_arm`` and ``remove_arm`` work for every policy.

    Subclass contract (class attributes and methods):

    - ``contextual``: whether ``context`` is required;
    - ``_statistics``: names of the state arrays, in kernel-argument order;
    - ``_prior_state(copies, n_arms, n_features) -> dict``: the state before any data
      (merge subtracts it once so that two replicas' priors are not counted twice);
    - ``_params() -> np.ndarray``: hyperparameters as a float64 array for the kernels;
    - ``_probabilities(context, available) -> np.ndarray`` (copy 0);
    - ``_reward_range``: None, or (low, high) that rewards must lie in;
    - ``_hyperparameters() -> dict``: constructor keywords (for ``state``/``from_state``).
    """

    contextual: ClassVar[bool] = False
    _statistics: ClassVar[tuple[str, ...]] = ()
    _derived: ClassVar[tuple[str, ...]] = ()  # caches computed from the others (not additive)
    # statistics that ``decay`` shrinks toward the prior (None: all of them); a mean, say,
    # stays put while its count shrinks
    _decaying: ClassVar[tuple[str, ...] | None] = None
    _reward_range: ClassVar[tuple[float, float] | None] = None
    # Most policies cost O(n_arms) per call and need no cap; those that do set one.
    max_arms: ClassVar[int | None] = None
    _max_arms_reason: ClassVar[str] = ""

    # update's serving path (``_update_single``): the update kernel's one-observation form,
    # and the state arrays in kernel order taken from ``arrays`` by one C call
    _one_observation: ClassVar[Any] = None
    _state_arrays: ClassVar[Any] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        one = ONE_OBSERVATION.get(getattr(cls, "_update_kernel", None))
        cls._one_observation = None if one is None else staticmethod(one)
        names = cls._statistics
        if len(names) == 1:
            cls._state_arrays = staticmethod(lambda arrays: (arrays[names[0]],))
        elif names:
            cls._state_arrays = staticmethod(itemgetter(*names))

    def __init__(
        self,
        *,
        n_arms: int | None = None,
        n_features: int | None = None,
        discount: float = 1.0,
    ):
        discount = float(discount)
        if not 0.0 < discount <= 1.0:
            raise InvalidArgumentError("discount", f"must be in (0, 1], got {discount!r}")
        self.discount = discount
        low, high = self._reward_range or (-REWARD_LIMIT, REWARD_LIMIT)
        # the rewards update's fast path accepts without calling _check_reward
        self._reward_bounds = (max(low, -REWARD_LIMIT), min(high, REWARD_LIMIT))
        self.n_arms: int | None = None
        self.n_features: int | None = None
        self.arrays: dict[str, np.ndarray] = {}
        self.version = 0
        self._cache_version = -1
        self._cache: np.ndarray | None = None
        # (version, CDF, total, propensities, last positive arm) as Python lists for choose
        self._draw_table: tuple = (-1,)
        # one-observation buffers for update: copies, arms, rewards, contexts, weights
        self._single = (
            np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64), np.zeros(1),
            np.zeros((1, 0)), np.ones(1),
        )  # fmt: skip
        if n_arms is not None:
            self.resize(n_arms, n_features)
        elif n_features is not None:
            self.n_features = _positive_int("n_features", n_features)
            self._check_size(1, self.n_features)

    # ------------------------------------------------------------------ sizing

    @property
    def sized(self) -> bool:
        return self.n_arms is not None

    def resize(self, n_arms: int, n_features: int | None = None) -> None:
        """Size an unsized policy (the Allocator and simulate call this)."""
        n_arms = _positive_int("n_arms", n_arms)
        if self.contextual:
            n_features = _positive_int(
                "n_features", n_features if n_features is not None else self.n_features
            )
        self._check_size(n_arms, n_features)
        self.n_arms, self.n_features = n_arms, n_features
        self.arrays = self._prior_state(1, n_arms, n_features)
        self._touch()

    def _check_size(self, n_arms: int, n_features: int | None) -> None:
        """Refuse sizes whose work has no useful bound (see ``max_arms``)."""
        if self.max_arms is not None and n_arms > self.max_arms:
            raise InvalidArgumentError(
                "n_arms", f"must be at most {self.max_arms} for {type(self).__name__}, "
                f"got {n_arms}: {self._max_arms_reason}",
            )  # fmt: skip

    def _require_sized(self) -> None:
        if self.n_arms is None:
            raise InvalidArgumentError(
                "n_arms", f"{type(self).__name__} was built without n_arms; pass n_arms="
            )

    def _touch(self) -> None:
        self.version += 1

    # ------------------------------------------------------------------ validation

    def _check_context(self, context: object, batch: bool = False) -> np.ndarray | None:
        if not self.contextual:
            if context is not None:
                raise InvalidArgumentError("context", f"{type(self).__name__} takes no context")
            return None
        if context is None:
            raise InvalidArgumentError("context", f"{type(self).__name__} needs a context")
        if type(context) is np.ndarray and context.dtype is _FLOAT64:
            array = context
        else:
            raw = context if isinstance(context, np.ndarray) else np.asarray(context)
            if raw.dtype.kind not in "biuf":
                raise InvalidArgumentError("context", f"must be numeric, got {raw.dtype} values")
            array = raw.astype(np.float64, copy=False)
        expected = (array.shape[0], self.n_features) if batch and array.ndim == 2 else None
        if (batch and array.shape != expected) or (not batch and array.shape != (self.n_features,)):
            raise InvalidArgumentError(
                "context",
                f"must have {self.n_features} features per row, got shape {array.shape}",
            )
        # one comparison refuses NaN, inf and magnitudes whose outer products (summed over
        # up to 1e9 updates) would overflow A
        if not within_limit(array, CONTEXT_LIMIT):
            raise InvalidArgumentError(
                "context", f"contains NaN, infinite values or values beyond ±{CONTEXT_LIMIT:g}"
            )
        return array

    def _check_available(self, available: object) -> np.ndarray | None:
        if available is None:
            return None
        mask = np.asarray(available)
        if mask.dtype != bool:
            indices = mask.astype(np.int64, copy=False)
            if indices.ndim != 1 or np.any((indices < 0) | (indices >= self.n_arms)):
                raise InvalidArgumentError("available", "unknown arm index")
            mask = np.zeros(self.n_arms, dtype=bool)
            mask[indices] = True
        if mask.shape != (self.n_arms,):
            raise InvalidArgumentError(
                "available", f"must be a mask of {self.n_arms} arms, got shape {mask.shape}"
            )
        if not mask.any():
            raise InvalidArgumentError("available", "no arm is available")
        return mask

    def _check_arm(self, arm: object) -> int:
        try:
            index = int(arm)  # type: ignore[call-overload]
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError("arm", f"must be an arm index, got {arm!r}") from exc
        if index != arm or not 0 <= index < self.n_arms:  # type: ignore[operator]
            raise InvalidArgumentError("arm", f"unknown arm {arm!r} (policy has {self.n_arms})")
        return index

    def _check_reward(self, reward: object) -> float:
        try:
            value = float(reward)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError("reward", f"must be a number, got {reward!r}") from exc
        if not math.isfinite(value):
            raise InvalidArgumentError("reward", "must be finite")
        if abs(value) > REWARD_LIMIT:
            raise InvalidArgumentError(
                "reward", f"must be at most {REWARD_LIMIT:g} in magnitude, got {reward!r}"
            )
        bounds = self._reward_range
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            raise InvalidArgumentError(
                "reward", f"must lie in [{bounds[0]}, {bounds[1]}] for {type(self).__name__}"
            )
        return value

    # ------------------------------------------------------------------ protocol

    def probabilities(self, context: object = None, available: object = None) -> np.ndarray:
        """Exact probabilities with which :meth:`choose` picks each arm (sum to 1, zero for
        unavailable arms)."""
        self._require_sized()
        context = self._check_context(context)
        mask = self._check_available(available)
        if context is None and mask is None:
            return self._cached_probabilities().copy()
        return self._probabilities(context, mask)

    def _cached_probabilities(self) -> np.ndarray:
        if self._cache_version != self.version:
            version = self.version
            self._cache = self._probabilities(None, None)
            self._cache_version = version
        return self._cache  # type: ignore[return-value]

    def choose(
        self, context: object = None, available: object = None, rng: object = None
    ) -> tuple[int, float]:
        """(arm, propensity), drawn from exactly :meth:`probabilities`."""
        if context is None and available is None and not self.contextual:
            # fast path: the cached CDF as Python lists, bisected like draw_from does; the
            # lists are built on the second choice at a version (an update before every
            # choice would pay for them and never use them)
            generator = rng if type(rng) is _GENERATOR else as_rng(rng)
            uniform = generator.random()
            table = self._draw_table
            if table[0] != self.version:
                if self._cache_version != self.version:
                    if self.n_arms is None:
                        self._require_sized()
                    return self._draw_fresh(uniform)
                table = self._refresh_draw_table()
            arm = min(bisect_right(table[1], uniform * table[2]), table[4])
            return arm, table[3][arm]
        return self.choose_with_uniform(as_rng(rng).random(), context, available)

    def _draw_fresh(self, uniform: float) -> tuple[int, float]:
        """(arm, propensity) at ``uniform`` when the probabilities of this version are not
        computed yet; they must be cached (``_cache``, ``_cache_version``) on return."""
        table = self._refresh_draw_table()
        arm = min(bisect_right(table[1], uniform * table[2]), table[4])
        return arm, table[3][arm]

    def _refresh_draw_table(self) -> tuple:
        self._require_sized()
        version = self.version
        propensities = self._cached_probabilities().tolist()
        cumulative = list(accumulate(propensities))  # sequential sums, as np.cumsum
        last = len(propensities) - 1
        while propensities[last] <= 0:  # the last arm that can be drawn
            last -= 1
        table = (version, cumulative, cumulative[-1], propensities, last)
        self._draw_table = table
        return table

    def choose_with_uniform(
        self, uniform: float, context: object = None, available: object = None
    ) -> tuple[int, float]:
        """The decision for a given uniform in [0, 1) — e.g. a stable hash of a unit."""
        probabilities = self.probabilities(context, available)
        arm = draw_from(probabilities, uniform)
        return arm, float(probabilities[arm])

    def choose_batch(
        self, contexts: object = None, available: object = None, rng: object = None, size=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Vectorized decisions: one per context row (or ``size`` for context-free)."""
        self._require_sized()
        generator = as_rng(rng)
        if self.contextual:
            rows = self._check_context(contexts, batch=True)
            probabilities = self._probabilities_batch(rows, self._check_available(available))
        else:
            if contexts is not None:
                raise InvalidArgumentError("contexts", f"{type(self).__name__} takes no context")
            count = _positive_int("size", 1 if size is None else size)
            probabilities = np.broadcast_to(
                self.probabilities(None, available), (count, self.n_arms)
            )
        uniforms = generator.random(probabilities.shape[0])
        cumulative = np.cumsum(probabilities, axis=1)
        arms = (cumulative < (uniforms * cumulative[:, -1])[:, None]).sum(axis=1)
        arms = np.minimum(arms, self.n_arms - 1)
        return arms, probabilities[np.arange(arms.size), arms]

    def _probabilities_batch(self, contexts: np.ndarray, mask) -> np.ndarray:
        return np.stack([self._probabilities(row, mask) for row in contexts])

    def update(self, arm: object, reward: object, context: object = None, weight: float = 1.0):
        """Add one observation."""
        n_arms = self.n_arms
        if n_arms is None:
            self._require_sized()
        if context is None and not self.contextual:
            # fast path: an int arm and a float reward in range are accepted by two
            # comparisons; anything else goes through the full checks
            if type(arm) is not int or not 0 <= arm < n_arms:
                arm = self._check_arm(arm)
            low, high = self._reward_bounds
            if type(reward) is not float or not low <= reward <= high:
                reward = self._check_reward(reward)
            if weight != 1.0:
                weight = float(weight)
                if not (math.isfinite(weight) and weight >= 0.0):
                    raise InvalidArgumentError("weight", "must be finite and non-negative")
            if self.discount < 1.0:
                self._decay_statistics(self.discount)
            self._update_single(arm, reward, weight)
            self.version += 1  # _touch, inline
            return
        contexts = None if context is None else [context]
        arms, rewards = [self._check_arm(arm)], [self._check_reward(reward)]
        self.update_batch(arms, rewards, contexts, [weight], _checked=True)

    def _update_single(self, arm: int, reward: float, weight: float) -> None:
        """Add one validated observation to copy 0 (before the version is bumped)."""
        one = self._one_observation
        if one is not None:
            one(*self._state_arrays(self.arrays), arm, reward, weight)
            return
        copies, arms, rewards, contexts, weights = self._single
        arms[0], rewards[0], weights[0] = arm, reward, weight
        arrays = self.arrays
        self._update_kernel(
            *[arrays[name] for name in self._statistics],
            self._params(), copies, arms, rewards, contexts, weights,
        )  # fmt: skip

    def update_batch(self, arms, rewards, contexts=None, weights=None, *, _checked=False):
        """Add many observations at once (one kernel call)."""
        self._require_sized()
        arms = np.asarray(arms, dtype=np.int64).reshape(-1)
        rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
        if not _checked:
            if rewards.shape != arms.shape:
                raise InvalidArgumentError(
                    "rewards", f"need one per arm: {rewards.shape} vs {arms.shape}"
                )
            if np.any((arms < 0) | (arms >= self.n_arms)):
                raise InvalidArgumentError("arms", f"unknown arm index (policy has {self.n_arms})")
            for reward in rewards:
                self._check_reward(reward)
        if self.contextual:
            contexts = self._check_context(
                np.atleast_2d(np.asarray(contexts, dtype=float)), batch=True
            )
            if contexts.shape[0] != arms.size:
                raise InvalidArgumentError("contexts", "need one row per observation")
        elif contexts is not None:
            raise InvalidArgumentError("contexts", f"{type(self).__name__} takes no context")
        else:
            contexts = np.zeros((arms.size, 0))
        weights = (
            np.ones(arms.size)
            if weights is None
            else np.asarray(weights, dtype=np.float64).reshape(-1)
        )
        if weights.shape != arms.shape or np.any(~np.isfinite(weights) | (weights < 0)):
            raise InvalidArgumentError("weights", "need one finite non-negative weight per arm")
        if self.discount < 1.0:
            # observation i of m is discounted m − 1 − i times, what came before m times
            self._decay_statistics(self.discount**arms.size)
            weights = weights * self.discount ** np.arange(arms.size - 1, -1, -1)
        copies = np.zeros(arms.size, dtype=np.int64)
        self._update_kernel(
            *(self.arrays[name] for name in self._statistics),
            self._params(), copies, arms, rewards, contexts, weights,
        )  # fmt: skip
        self._touch()

    # ------------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        """Plain, JSON-ready description: policy name, hyperparameters, sizes and arrays.
        Taking it calls :meth:`synchronize`."""
        self.synchronize()
        return {
            "policy": type(self).__name__,
            "format": STATE_FORMAT,
            "hyperparameters": self._hyperparameters(),
            "n_arms": self.n_arms,
            "n_features": self.n_features,
            "arrays": {name: array[0].copy() for name, array in self.arrays.items()},
        }

    def synchronize(self) -> None:
        """Forget what depends on the order of past updates rather than on the statistics
        alone (the cached quadrature grid of Thompson sampling), so that from here on this
        policy and any copy restored from its current state compute bit-identical
        probabilities. :meth:`state` and the Allocator's snapshot call it; between two
        calls the probabilities agree with a fresh computation to ~1e-9, not to the bit."""
        self._drop_caches()
        self._touch()

    def _drop_caches(self) -> None:
        """Subclasses with history-dependent caches reset them here."""

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Policy:
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise InvalidArgumentError("state", "not a splitlab policy state (or unknown format)")
        if state.get("policy") != cls.__name__:
            raise InvalidArgumentError(
                "state", f"is a {state.get('policy')} state, not {cls.__name__}"
            )
        policy = cls(**state["hyperparameters"])
        if state["n_arms"] is not None:
            policy.resize(state["n_arms"], state["n_features"])
            for name in cls._statistics:
                value = np.asarray(state["arrays"][name], dtype=np.float64)
                if value.shape != policy.arrays[name].shape[1:]:
                    raise InvalidArgumentError("state", f"array {name!r} has the wrong shape")
                policy.arrays[name][0] = value
            policy._touch()
        return policy

    def merge(self, other: Policy) -> None:
        """Add the statistics another replica gathered from the same prior."""
        if type(other) is not type(self) or other._hyperparameters() != self._hyperparameters():
            raise InvalidArgumentError(
                "other", "can only merge a policy of the same kind and settings"
            )
        if (other.n_arms, other.n_features) != (self.n_arms, self.n_features):
            raise InvalidArgumentError("other", "has a different number of arms or features")
        prior = self._prior_state(1, self.n_arms, self.n_features)
        for name in self._statistics:
            self.arrays[name] += other.arrays[name] - prior[name]
        self._touch()

    def additive_statistics(self) -> dict[str, np.ndarray]:
        """Copies of the statistics that add across replicas (derived caches left out)."""
        return {
            name: self.arrays[name][0].copy()
            for name in self._statistics
            if name not in self._derived
        }

    def add_statistics(self, increments: dict[str, np.ndarray]) -> None:
        """Add statistics gathered elsewhere (e.g. a replica's delta since its last
        exchange, as differences of :meth:`additive_statistics`); caches are rebuilt."""
        self._require_sized()
        expected = set(self.additive_statistics())
        if set(increments) != expected:
            raise InvalidArgumentError(
                "increments", f"needs exactly the statistics {sorted(expected)}"
            )
        for name, value in increments.items():
            value = np.asarray(value, dtype=np.float64)
            if value.shape != self.arrays[name].shape[1:] or not np.isfinite(value).all():
                raise InvalidArgumentError("increments", f"{name!r} has the wrong shape or NaN")
        for name, value in increments.items():
            self.arrays[name][0] += value
        self._rebuild_derived()
        self._touch()

    def _rebuild_derived(self) -> None:
        """Recompute caches after statistics were added (policies with ``_derived``)."""

    def decay(self, gamma: float) -> None:
        """Shrink the evidence toward the prior: statistics = prior + γ (statistics − prior),
        for non-stationary rewards (``discount=`` applies it at every observation)."""
        gamma = float(gamma)
        if not 0.0 <= gamma <= 1.0:
            raise InvalidArgumentError("gamma", f"must be in [0, 1], got {gamma!r}")
        self._require_sized()
        self._decay_statistics(gamma)
        self._touch()

    @classmethod
    def decaying_statistics(cls) -> tuple[str, ...]:
        """Names of the statistics that ``decay`` shrinks toward the prior."""
        return cls._statistics if cls._decaying is None else cls._decaying

    def _decay_statistics(self, gamma: float) -> None:
        prior = self._prior_state(1, self.n_arms, self.n_features)
        for name in self.decaying_statistics():
            self.arrays[name] = prior[name] + gamma * (self.arrays[name] - prior[name])

    def add_arm(self) -> int:
        """Append an arm with the prior's statistics; returns its index."""
        self._require_sized()
        self._check_size(self.n_arms + 1, self.n_features)
        prior = self._prior_state(1, self.n_arms + 1, self.n_features)
        for name in self._statistics:
            self.arrays[name] = np.concatenate([self.arrays[name], prior[name][:, -1:]], axis=1)
        self.n_arms += 1
        self._touch()
        return self.n_arms - 1

    def remove_arm(self, arm: int) -> None:
        """Drop an arm (later arms shift down by one)."""
        index = self._check_arm(arm)
        if self.n_arms == 1:
            raise InvalidArgumentError("arm", "cannot remove the only arm")
        for name in self._statistics:
            self.arrays[name] = np.delete(self.arrays[name], index, axis=1)
        self.n_arms -= 1
        self._touch()

    def copies(self, count: int) -> dict[str, np.ndarray]:
        """``count`` independent copies of the current state (for simulation)."""
        return {name: np.repeat(array[:1], count, axis=0) for name, array in self.arrays.items()}

    # ------------------------------------------------------------------ to implement

    def _prior_state(self, copies: int, n_arms: int, n_features: int | None) -> dict:
        raise NotImplementedError("abstract: subclasses define their statistics")

    def _params(self) -> np.ndarray:
        raise NotImplementedError("abstract: subclasses define their hyperparameters")

    def _probabilities(self, context, available) -> np.ndarray:
        raise NotImplementedError("abstract: subclasses define their choice probabilities")

    def _hyperparameters(self) -> dict[str, Any]:
        raise NotImplementedError("abstract: subclasses list their constructor keywords")

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self._hyperparameters().items())
        return f"{type(self).__name__}({settings})"


def _positive_int(name: str, value: object) -> int:
    try:
        return check_integer(name, value, 1)
    except OverflowError as exc:  # int(inf)
        raise InvalidArgumentError(name, f"must be a positive integer, got {value!r}") from exc
