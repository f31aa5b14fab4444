"""Linear contextual bandits with one model per arm (disjoint): LinUCB, LinTS, LogisticTS,
SquareCB.

State, per copy and arm (numba kernels in :mod:`splitlab.bandits._linear_kernels`):

- ``A`` (copies, K, d, d) — the precision λI + Σ w xxᵀ (LogisticTS: + Σ w σ'(z) xxᵀ);
- ``b`` (copies, K, d) — A θ: Σ w r x for the ridge policies;
- ``updates`` (copies, K) — how many observations the arm has had (never decayed);
- ``A_inv``, ``theta`` — derived caches A⁻¹ and θ = A⁻¹b, kept by Sherman–Morrison and
  recomputed by a Cholesky solve every :attr:`refresh_every` (100) updates of an arm.

``A``, ``b`` and ``updates`` are sums, so two replicas merge by addition (the prior counted
once) and decay shrinks ``A`` and ``b`` toward the prior. The caches are not sums: after
``merge``, ``decay`` (and every update of a ``discount``-ed policy, which decays first) they
are rebuilt from ``A`` and ``b`` — K Cholesky factorizations, O(K d³). ``add_arm`` and
``remove_arm`` need no rebuild: a new arm's caches are the prior's (A⁻¹ = I/λ, θ = 0).
``from_state`` keeps saved caches that agree with ``A`` and ``b`` (so a restored policy
continues bit for bit) and rebuilds them otherwise — a state holding only ``A``, ``b``
and ``updates``, e.g. summed by a group-by where the data lives, is accepted.

Sizes: an update costs O(d²), a refresh O(d³) and the state is two K × d × d arrays, so
``n_features`` ≤ 1000 and ``n_arms · n_features²`` ≤ 2²⁴ (134 MB per array); choosing
costs O(K d²).

Rewards with a large offset (1e9 + small) need no special care: A and b are sums of
products, and the Cholesky solve is backward stable, so θ has a normwise relative error of
a small multiple of cond(A)·u whatever the offset (tested against exact rational solves
with offsets up to 1e12). Rewards are deliberately not centred: the penalty λ‖θ‖² covers
every coefficient, there is no unpenalized intercept, so ridge is not translation
invariant in r — θ for r − c is not θ for r minus a constant, and centring would change
the estimator rather than its rounding.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from splitlab.bandits import _argmax_kernels as argmax_kernels
from splitlab.bandits import _linear_kernels as kernels
from splitlab.bandits.base import Policy, as_rng
from splitlab.errors import InvalidArgumentError

__all__ = ["LinTS", "LinUCB", "LogisticTS", "SquareCB"]

_REQUIRED = ("A", "b", "updates")
# An update costs O(d²) and every refresh_every-th one an O(d³) Cholesky solve (1.6 s per
# 100 updates at d = 1000); the state holds two K × d × d arrays (A and A⁻¹).
MAX_FEATURES = 1_000
MAX_MATRIX_CELLS = 2**24  # n_arms · n_features² ≤ 16.8M: 134 MB per K × d × d array
# the mask of a call without ``available`` (kernels only read it)
_EVERY_ARM = np.ones(64, dtype=bool)


def _finite(name: str, value: object, *, positive: bool = False) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(name, f"must be a number, got {value!r}") from exc
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        kind = "positive" if positive else "non-negative"
        raise InvalidArgumentError(name, f"must be a finite {kind} number, got {value!r}")
    return number


class _LinearPolicy(Policy):
    """Shared state and plumbing of the disjoint linear policies (see the module doc)."""

    contextual: ClassVar[bool] = True
    _statistics: ClassVar[tuple[str, ...]] = ("A", "b", "updates", "A_inv", "theta")
    _derived: ClassVar[tuple[str, ...]] = ("A_inv", "theta")
    refresh_every: ClassVar[int] = 100
    _update_kernel = staticmethod(kernels.ridge_update)
    _update_one = staticmethod(kernels.ridge_update_one)
    _kernel_params: np.ndarray | None = None  # _params(), built on the first update

    def __init__(
        self,
        *,
        l2: float = 1.0,
        n_arms: int | None = None,
        n_features: int | None = None,
        discount: float = 1.0,
    ):
        self.l2 = _finite("l2", l2, positive=True)
        super().__init__(n_arms=n_arms, n_features=n_features, discount=discount)

    # ------------------------------------------------------------------ state

    def _prior_state(self, copies: int, n_arms: int, n_features: int | None) -> dict:
        d = int(n_features)  # type: ignore[arg-type]
        eye = np.broadcast_to(np.eye(d), (copies, n_arms, d, d))
        return {
            "A": self.l2 * eye,
            "b": np.zeros((copies, n_arms, d)),
            "updates": np.zeros((copies, n_arms)),
            "A_inv": eye / self.l2,
            "theta": np.zeros((copies, n_arms, d)),
        }

    def _check_size(self, n_arms: int, n_features: int | None) -> None:
        if n_features is not None and n_features > MAX_FEATURES:
            raise InvalidArgumentError(
                "n_features", f"must be at most {MAX_FEATURES}, got {n_features}: an update "
                "costs O(d²) and a refresh an O(d³) Cholesky solve",
            )  # fmt: skip
        if n_features is not None and n_arms * n_features**2 > MAX_MATRIX_CELLS:
            raise InvalidArgumentError(
                "n_arms", f"n_arms · n_features² must be at most {MAX_MATRIX_CELLS}, got "
                f"{n_arms} · {n_features}²: the state holds two n_arms × d × d arrays",
            )  # fmt: skip

    def _first_second(self) -> tuple[float, float]:
        raise NotImplementedError("abstract: subclasses name their kernel hyperparameters")

    def _params(self) -> np.ndarray:
        return np.array([float(self.refresh_every), self.l2, *self._first_second()])

    def _refresh_caches(self) -> None:
        arrays = self.arrays
        failed = kernels.refresh_all(arrays["A"], arrays["b"], arrays["A_inv"], arrays["theta"])
        if failed >= 0:
            raise InvalidArgumentError(
                "state", f"A of arm {failed % self.n_arms} is not positive definite"
            )

    def _rebuild_derived(self) -> None:
        self._refresh_caches()

    def _caches_agree(self) -> bool:
        A, A_inv = self.arrays["A"], self.arrays["A_inv"]
        identity = np.eye(self.n_features)
        product = np.einsum("ckij,ckjl->ckil", A, A_inv)
        residual = np.einsum("ckij,ckj->cki", A, self.arrays["theta"]) - self.arrays["b"]
        scale = 1.0 + np.abs(self.arrays["b"]).max()
        return bool(
            np.abs(product - identity).max() < 1e-8 and np.abs(residual).max() < 1e-8 * scale
        )

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Policy:
        """Restore a policy; ``A_inv`` and ``theta`` may be omitted (they are rebuilt)."""
        arrays = state.get("arrays") if isinstance(state, dict) else None
        rebuild = False
        if isinstance(arrays, dict) and state.get("n_arms") is not None:
            missing = [name for name in _REQUIRED if name not in arrays]
            if missing:
                raise InvalidArgumentError("state", f"lacks the array(s) {', '.join(missing)}")
            for name in _REQUIRED:
                try:
                    values = np.asarray(arrays[name], dtype=np.float64)
                except (TypeError, ValueError) as exc:
                    raise InvalidArgumentError("state", f"array {name!r} is not numeric") from exc
                if not np.all(np.isfinite(values)):
                    raise InvalidArgumentError("state", f"array {name!r} has NaN or inf")
            if any(name not in arrays for name in cls._derived):
                rebuild = True
                A = np.asarray(arrays["A"], dtype=np.float64)
                placeholders = {"A_inv": np.zeros(A.shape), "theta": np.zeros(A.shape[:-1])}
                state = {**state, "arrays": {**placeholders, **arrays}}
        policy = super().from_state(state)
        if policy.sized and (rebuild or not policy._caches_agree()):
            policy._refresh_caches()  # type: ignore[attr-defined]
        return policy

    def merge(self, other: Policy) -> None:
        """Add another replica's ``A``, ``b``, ``updates`` (prior once); rebuild the caches."""
        super().merge(other)
        self._refresh_caches()

    def _decay_statistics(self, gamma: float) -> None:
        prior = self._prior_state(1, self.n_arms, self.n_features)
        for name in ("A", "b"):
            self.arrays[name] = prior[name] + gamma * (self.arrays[name] - prior[name])
        self._refresh_caches()

    # ------------------------------------------------------------------ scoring

    def _mask(self, available: np.ndarray | None) -> np.ndarray:
        if available is not None:
            return available
        return _EVERY_ARM[: self.n_arms] if self.n_arms <= _EVERY_ARM.size else np.ones(
            self.n_arms, dtype=bool
        )  # fmt: skip

    def _packed_inverse(self) -> np.ndarray:
        """Upper triangles of every arm's A⁻¹, off-diagonal entries doubled, so that
        xᵀA⁻¹x is one dot product with the products x_i x_j (i ≤ j)."""
        d = self.n_features
        upper = np.triu_indices(d)
        doubled = self.arrays["A_inv"][0] * (2.0 - np.eye(d))
        return np.ascontiguousarray(doubled[:, upper[0], upper[1]])

    def _moments_batch(self, contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, K) predictions xᵀθ_k and quadratic forms xᵀA_k⁻¹x of copy 0."""
        packed = self._packed_inverse()
        rows = np.ascontiguousarray(contexts)
        spread = np.empty((rows.shape[0], self.n_arms))
        kernels.batch_spread(rows, packed, spread)
        return rows @ self.arrays["theta"][0].T, spread

    # ------------------------------------------------------------------ serving fast paths

    def update(self, arm: object, reward: object, context: object = None, weight: float = 1.0):
        """Add one observation: the checks and discounting of ``update_batch`` for a single
        row, handed to the kernel as scalars (no arrays built on the serving path)."""
        n_arms = self.n_arms
        if n_arms is None:
            self._require_sized()
        if type(arm) is not int or not 0 <= arm < n_arms:  # the checks of Policy.update
            arm = self._check_arm(arm)
        low, high = self._reward_bounds
        if type(reward) is not float or not low <= reward <= high:
            reward = self._check_reward(reward)
        row = self._check_context(context)
        if weight != 1.0:
            weight = _finite("weight", weight)
        if self.discount < 1.0:
            self._decay_statistics(self.discount)
        params = self._kernel_params
        if params is None:
            params = self._kernel_params = self._params()
        arrays = self.arrays
        self._update_one(
            arrays["A"], arrays["b"], arrays["updates"], arrays["A_inv"], arrays["theta"],
            params, arm, reward, row, float(weight),
        )  # fmt: skip
        self.version += 1  # _touch, inline

    def choose_with_uniform(
        self, uniform: float, context: object = None, available: object = None
    ) -> tuple[int, float]:
        """The decision for a given uniform in [0, 1): base's inverse-CDF rule, compiled."""
        probabilities = self.probabilities(context, available)
        arm = kernels.draw(probabilities, uniform)
        return arm, float(probabilities[arm])

    def _hyperparameters(self) -> dict[str, Any]:
        return {**self._own_hyperparameters(), "l2": self.l2, "discount": self.discount}

    def _own_hyperparameters(self) -> dict[str, Any]:
        raise NotImplementedError("abstract: subclasses list their constructor keywords")


class LinUCB(_LinearPolicy):
    """Disjoint LinUCB (Li, Chu, Langford & Schapire 2010, Algorithm 1).

    Arm k scores xᵀθ_k + α sqrt(xᵀA_k⁻¹x) with ridge estimates θ_k = A_k⁻¹b_k; the policy
    plays the argmax, ties broken uniformly at random, so the probabilities are uniform
    over the tied arms and zero elsewhere.

    >>> policy = LinUCB(alpha=1.0, n_arms=3, n_features=2)
    >>> policy.probabilities([1.0, 0.0]).round(3)
    array([0.333, 0.333, 0.333])
    >>> policy.update(0, 1.0, [1.0, 0.0])
    >>> policy.choose([1.0, 0.0], rng=0)
    (0, 1.0)
    """

    _select_kernel = staticmethod(kernels.ucb_select)

    def __init__(
        self,
        alpha: float = 1.0,
        l2: float = 1.0,
        *,
        n_arms: int | None = None,
        n_features: int | None = None,
        discount: float = 1.0,
    ):
        self.alpha = _finite("alpha", alpha)
        super().__init__(l2=l2, n_arms=n_arms, n_features=n_features, discount=discount)

    def _first_second(self) -> tuple[float, float]:
        return self.alpha, 0.0

    def _own_hyperparameters(self) -> dict[str, Any]:
        return {"alpha": self.alpha}

    def _probabilities(self, context, available) -> np.ndarray:
        out = np.empty(self.n_arms)
        kernels.ucb_probabilities(
            self.arrays["A_inv"], self.arrays["theta"], context, self.alpha,
            self._mask(available), out,
        )  # fmt: skip
        return out

    def choose_with_uniform(
        self, uniform: float, context: object = None, available: object = None
    ) -> tuple[int, float]:
        """The decision for a given uniform in [0, 1): probabilities and draw in one kernel
        call (the same arm and propensity as drawing from :meth:`LinUCB.probabilities`)."""
        self._require_sized()
        row = self._check_context(context)
        mask = self._mask(self._check_available(available))
        out = np.empty(self.n_arms)
        arm = kernels.ucb_choose(
            self.arrays["A_inv"], self.arrays["theta"], row, self.alpha, mask, uniform, out
        )
        return arm, float(out[arm])

    def choose_batch(self, contexts=None, available=None, rng=None, size=None):
        """Vectorized decisions, scored, tie-broken and drawn in one parallel kernel (the
        same decisions and propensities as the generic path, without (N, K) temporaries)."""
        self._require_sized()
        rows = np.ascontiguousarray(self._check_context(contexts, batch=True))
        mask = self._mask(self._check_available(available))
        uniforms = as_rng(rng).random(rows.shape[0])
        arms = np.empty(rows.shape[0], dtype=np.int64)
        propensities = np.empty(rows.shape[0])
        kernels.linucb_choose_batch(
            rows, self._packed_inverse(), np.ascontiguousarray(self.arrays["theta"][0]),
            self.alpha, mask, uniforms, arms, propensities,
        )  # fmt: skip
        return arms, propensities

    def _probabilities_batch(self, contexts: np.ndarray, available) -> np.ndarray:
        means, spread = self._moments_batch(contexts)
        scores = means + self.alpha * np.sqrt(spread)
        out = np.empty_like(scores)
        kernels.argmax_probabilities(scores, self._mask(available), out)
        return out


class _GaussianScores(_LinearPolicy):
    """Thompson sampling on per-arm Gaussian posteriors N(θ_k, scale² A_k⁻¹): the score
    xᵀθ̃_k is N(xᵀθ_k, scale² xᵀA_k⁻¹x), independent across arms, and P(arm k is the argmax)
    is one 1-D integral (``_argmax_kernels.normal_argmax``)."""

    _select_kernel = staticmethod(kernels.thompson_select)

    def _scale(self) -> float:
        raise NotImplementedError("abstract: subclasses give the posterior scale")

    def _first_second(self) -> tuple[float, float]:
        return self._scale(), 0.0

    def _probabilities(self, context, available) -> np.ndarray:
        out = np.empty(self.n_arms)
        arrays = self.arrays
        kernels.gaussian_scores_probabilities(
            arrays["A_inv"], arrays["theta"], context, self._scale(), self._mask(available), out
        )
        return out

    def choose_with_uniform(
        self, uniform: float, context: object = None, available: object = None
    ) -> tuple[int, float]:
        """The decision for a given uniform in [0, 1): the scores' moments, P(best) and the
        draw in one kernel call (the arm and propensity of drawing from
        :meth:`LinTS.probabilities`)."""
        self._require_sized()
        row = self._check_context(context)
        mask = self._mask(self._check_available(available))
        out = np.empty(self.n_arms)
        arrays = self.arrays
        arm = kernels.gaussian_scores_choose(
            arrays["A_inv"], arrays["theta"], row, self._scale(), mask, uniform, out
        )
        return arm, float(out[arm])

    def _probabilities_batch(self, contexts: np.ndarray, available) -> np.ndarray:
        means, spread = self._moments_batch(contexts)
        out = np.empty_like(means)
        sds = self._scale() * np.sqrt(spread)
        argmax_kernels.normal_argmax(means, sds, self._mask(available), out)
        return out


class LinTS(_GaussianScores):
    """Linear Thompson sampling, one ridge model per arm (Agrawal & Goyal 2013).

    Each decision draws θ̃_k ~ N(θ_k, v² A_k⁻¹) for every arm and plays the argmax of
    xᵀθ̃_k. Exact propensities come from quadrature over the independent normal scores.

    >>> policy = LinTS(v=0.5, n_arms=2, n_features=2)
    >>> policy.update(0, 1.0, [1.0, 0.0])
    >>> policy.probabilities([1.0, 0.0]).round(3)
    array([0.793, 0.207])
    """

    def __init__(
        self,
        v: float = 1.0,
        l2: float = 1.0,
        *,
        n_arms: int | None = None,
        n_features: int | None = None,
        discount: float = 1.0,
    ):
        self.v = _finite("v", v, positive=True)
        super().__init__(l2=l2, n_arms=n_arms, n_features=n_features, discount=discount)

    def _scale(self) -> float:
        return self.v

    def _own_hyperparameters(self) -> dict[str, Any]:
        return {"v": self.v}


class LogisticTS(_GaussianScores):
    """Thompson sampling for Bernoulli (or [0, 1]) rewards with a per-arm Laplace
    approximation of the Bayesian logistic regression posterior (Chapelle & Li 2011).

    Prior N(0, I/λ). Each observation moves the arm's Gaussian to the mode of (current
    Gaussian × that observation's likelihood) and adds the logistic curvature there to the
    precision — the one-observation-at-a-time, full-covariance form of Chapelle & Li's
    Algorithm 3 (see ``_linear_kernels.logistic_update``). A decision
    draws θ̃_k ~ N(θ_k, A_k⁻¹) and plays the argmax of σ(xᵀθ̃_k), i.e. of xᵀθ̃_k.

    Merging is approximate: ``A`` and ``b = Aθ`` are natural parameters, and their sum is
    the product of the replicas' Gaussian approximations divided by the prior — exact for
    Gaussians, but each replica linearized its observations at its own estimates, so the
    merged posterior differs slightly from one policy fed the whole stream (tested: mean
    within 0.25 posterior sd, probabilities within 0.05). Decay tempers the evidence the same
    way.

    >>> policy = LogisticTS(n_arms=2, n_features=1)
    >>> for _ in range(20):
    ...     policy.update(0, 1.0, [1.0])
    >>> bool(policy.probabilities([1.0])[0] > 0.9)
    True
    """

    _reward_range: ClassVar[tuple[float, float] | None] = (0.0, 1.0)
    _update_kernel = staticmethod(kernels.logistic_update)
    _update_one = staticmethod(kernels.logistic_update_one)

    def __init__(
        self,
        l2: float = 1.0,
        *,
        n_arms: int | None = None,
        n_features: int | None = None,
        discount: float = 1.0,
    ):
        super().__init__(l2=l2, n_arms=n_arms, n_features=n_features, discount=discount)

    def _scale(self) -> float:
        return 1.0

    def _own_hyperparameters(self) -> dict[str, Any]:
        return {}


class SquareCB(_LinearPolicy):
    """SquareCB (Foster & Rakhlin 2020): inverse-gap weighting over per-arm ridge regression
    predictions ŷ_k = xᵀθ_k.

    With K available arms, p_k = 1 / (K + γ_t (ŷ_best − ŷ_k)) for every arm below the best
    and the remaining mass goes to the best arm (shared equally by arms tied for best). The
    learning rate grows with the observations t so far, γ_t = gamma · max(t, 1)^gamma_exponent,
    as in Vowpal Wabbit's ``--squarecb`` (gamma_scale 10, gamma_exponent 0.5);
    ``gamma_exponent=0`` gives Foster & Rakhlin's fixed γ.

    >>> policy = SquareCB(gamma=10.0, gamma_exponent=0.0, n_arms=2, n_features=1)
    >>> policy.update(0, 1.0, [1.0])
    >>> policy.probabilities([1.0])  # ŷ = (0.5, 0): p_1 = 1 / (2 + 10 · 0.5)
    array([0.85714286, 0.14285714])
    """

    _select_kernel = staticmethod(kernels.squarecb_select)

    def __init__(
        self,
        gamma: float = 10.0,
        gamma_exponent: float = 0.5,
        l2: float = 1.0,
        *,
        n_arms: int | None = None,
        n_features: int | None = None,
        discount: float = 1.0,
    ):
        self.gamma = _finite("gamma", gamma)
        self.gamma_exponent = _finite("gamma_exponent", gamma_exponent)
        super().__init__(l2=l2, n_arms=n_arms, n_features=n_features, discount=discount)

    def _first_second(self) -> tuple[float, float]:
        return self.gamma, self.gamma_exponent

    def _own_hyperparameters(self) -> dict[str, Any]:
        return {"gamma": self.gamma, "gamma_exponent": self.gamma_exponent}

    def learning_rate(self) -> float:
        """γ_t for the observations seen so far."""
        self._require_sized()
        seen = max(float(self.arrays["updates"][0].sum()), 1.0)
        return self.gamma * seen**self.gamma_exponent

    def _probabilities(self, context, available) -> np.ndarray:
        predictions = (self.arrays["theta"][0] @ context)[None, :]
        out = np.empty((1, self.n_arms))
        kernels.inverse_gap_probabilities(
            predictions, self._mask(available), self.learning_rate(), out
        )
        return out[0]

    def _probabilities_batch(self, contexts: np.ndarray, available) -> np.ndarray:
        predictions = contexts @ self.arrays["theta"][0].T
        out = np.empty_like(predictions)
        kernels.inverse_gap_probabilities(
            predictions, self._mask(available), self.learning_rate(), out
        )
        return out
