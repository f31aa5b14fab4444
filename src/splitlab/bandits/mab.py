"""Context-free bandit policies, each with exact choice probabilities.

Index policies (ε-greedy, UCB1, KL-UCB) break ties uniformly at random and say so in their
probabilities; softmax, EXP3 and a fixed split have closed forms; for Thompson-type policies
the probability of an arm is the posterior probability that it is the best,
P(k best) = ∫ f_k(x) Π_{j≠k} F_j(x) dx, by Gauss–Legendre quadrature on a grid that is
kept between decisions and updated only for the arm that changed
(``splitlab.bandits.propensity``), ~1e-8 absolute of the full quadrature of
:func:`splitlab.stats.bayesian.prob_best`.

Statistics are sums (counts, reward sums, Beta pseudo-counts), so replicas merge exactly —
except EXP3, whose importance weights depend on each replica's own probabilities (see
:class:`EXP3`). The one policy that models a reward variance, :class:`GaussianThompson`,
keeps each arm's count, mean and centred M2 instead of Σr² (which cancels for rewards such
as 1e9 + N(10, 2)) and merges them by the exact pairwise formula. The others only divide a
sum by a count: Σr / n has a relative error of at most (n − 1)·u of Σ|r| / n, the same bound
as a running mean, and they never subtract sums of squares.

>>> policy = ThompsonSampling(n_arms=3)
>>> for arm, reward in [(0, 1), (0, 0), (1, 1), (1, 1), (2, 0)]:
...     policy.update(arm, reward)
>>> policy.probabilities().round(3).tolist()
[0.179, 0.75, 0.071]
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from splitlab.bandits import _argmax_kernels as argmax_kernels
from splitlab.bandits import _kernels
from splitlab.bandits.base import Policy
from splitlab.bandits.propensity import BetaArgmax, StudentArgmax
from splitlab.errors import InvalidArgumentError

__all__ = [
    "EXP3",
    "KLUCB",
    "UCB1",
    "EpsilonGreedy",
    "FixedSplit",
    "GaussianThompson",
    "Softmax",
    "ThompsonSampling",
    "TopTwoThompson",
]


def _number(name: str, value: object, low: float, high: float, *, open_low: bool) -> float:
    """A finite float in (low, high] (open_low) or [low, high]."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(name, f"must be a number, got {value!r}") from exc
    below = number <= low if open_low else number < low
    if not math.isfinite(number) or below or number > high:
        bracket = "(" if open_low else "["
        raise InvalidArgumentError(name, f"must be in {bracket}{low}, {high}], got {value!r}")
    return number


# Exact P(best) costs ~K × (grid nodes) per decision after an update, but placing the grid
# anew, which a jump in the posteriors (a merge, a decay) needs, costs K × nodes incomplete
# beta functions, and the full quadrature it falls back on when no grid resolves the
# posteriors costs ~K^2.5: 0.5 s for 128 arms, 40 s for 1000 (measured on one core).
THOMPSON_MAX_ARMS = 128
THOMPSON_CAP_REASON = (
    "exact propensities integrate over every arm's posterior (a fallback quadrature of "
    "~0.5 s at 128 arms, ~40 s at 1000)"
)

_EVERY_ARM = np.ones(64, dtype=bool)


def _mask(available: np.ndarray | None, n_arms: int) -> np.ndarray:
    if available is not None:
        return available
    return _EVERY_ARM[:n_arms] if n_arms <= _EVERY_ARM.size else np.ones(n_arms, dtype=bool)


class _CountPolicy(Policy):
    """Policies whose statistics are each arm's (weighted) count and reward sum."""

    _statistics: ClassVar[tuple[str, ...]] = ("counts", "reward_sums")
    _update_kernel = staticmethod(_kernels.count_update)
    _probability_kernel: ClassVar[Any] = None
    _choose_kernel: ClassVar[Any] = None  # probabilities and draw in one call (base.py)

    def __init__(self, params: list[float], n_arms: int | None, discount: float):
        self._param_values = np.asarray(params, dtype=np.float64)
        super().__init__(n_arms=n_arms, discount=discount)

    def _prior_state(self, copies: int, n_arms: int, n_features: int | None) -> dict:
        return {name: np.zeros((copies, n_arms)) for name in self._statistics}

    def _params(self) -> np.ndarray:
        return self._param_values

    def _probabilities(self, context, available) -> np.ndarray:
        out = np.empty(self.n_arms)
        arrays = self.arrays
        self._probability_kernel(
            arrays["counts"], arrays["reward_sums"], self._param_values,
            _mask(available, self.n_arms), out,
        )  # fmt: skip
        return out

    def _update_single(self, arm: int, reward: float, weight: float) -> None:
        arrays = self.arrays  # ONE_OBSERVATION's count_update_one, without the generic lookup
        _kernels.count_update_one(arrays["counts"], arrays["reward_sums"], arm, reward, weight)

    def _draw_fresh(self, uniform: float) -> tuple[int, float]:
        if self._choose_kernel is None:
            return super()._draw_fresh(uniform)
        version = self.version
        out = np.empty(self.n_arms)
        arrays = self.arrays
        arm = self._choose_kernel(
            arrays["counts"], arrays["reward_sums"], self._param_values, uniform, out
        )
        self._cache, self._cache_version = out, version
        return arm, float(out[arm])


class EpsilonGreedy(_CountPolicy):
    """ε-greedy: with probability ε_t a uniformly random arm, else the best empirical mean
    (Sutton & Barto, *Reinforcement Learning*, 2nd ed., §2.2). An unplayed arm counts as
    best, so every arm is tried once; ties are broken uniformly at random.

    ``decay`` schedules ε_t = ε / (1 + decay · t), t the number of observations so far (the
    discounted number under ``discount=``); ``None`` keeps ε fixed. Exact probabilities:
    ε_t / K + (1 − ε_t) · 1[k is among the m tied maxima] / m over the K available arms.

    >>> policy = EpsilonGreedy(epsilon=0.2, n_arms=4)
    >>> policy.update(0, 1.0); policy.update(1, 0.0); policy.update(2, 0.5); policy.update(3, 1.0)
    >>> policy.probabilities().tolist()
    [0.45, 0.05, 0.05, 0.45]
    """

    _select_kernel = staticmethod(_kernels.epsilon_greedy_select)
    _probability_kernel = staticmethod(_kernels.epsilon_greedy_probabilities)
    _choose_kernel = staticmethod(_kernels.epsilon_greedy_choose)

    def __init__(
        self,
        epsilon: float = 0.1,
        decay: float | None = None,
        *,
        n_arms: int | None = None,
        discount: float = 1.0,
    ):
        self.epsilon = _number("epsilon", epsilon, 0.0, 1.0, open_low=False)
        self.decay_rate = None if decay is None else _number(
            "decay", decay, 0.0, math.inf, open_low=False
        )  # fmt: skip
        super().__init__([self.epsilon, self.decay_rate or 0.0], n_arms, discount)

    def _hyperparameters(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "decay": self.decay_rate, "discount": self.discount}


class UCB1(_CountPolicy):
    """UCB1 (Auer, Cesa-Bianchi & Fischer, "Finite-time analysis of the multiarmed bandit
    problem", Machine Learning 2002): play argmax_k mean_k + α √(2 ln t / n_k); unplayed
    arms first; ties broken uniformly at random (α = 1 is the paper's index)."""

    _select_kernel = staticmethod(_kernels.ucb_select)
    _probability_kernel = staticmethod(_kernels.ucb_probabilities)
    _choose_kernel = staticmethod(_kernels.ucb_choose)

    def __init__(self, alpha: float = 1.0, *, n_arms: int | None = None, discount: float = 1.0):
        self.alpha = _number("alpha", alpha, 0.0, math.inf, open_low=False)
        super().__init__([self.alpha], n_arms, discount)

    def _hyperparameters(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "discount": self.discount}


class KLUCB(_CountPolicy):
    """Bernoulli KL-UCB (Garivier & Cappé, "The KL-UCB algorithm for bounded stochastic
    bandits and beyond", COLT 2011): play the arm with the largest
    max{q ∈ [mean_k, 1] : n_k KL(mean_k, q) ≤ ln t + c ln ln t}, found by bisection to
    1e-12; unplayed arms first; ties broken uniformly at random. Rewards in [0, 1]."""

    _reward_range = (0.0, 1.0)
    _select_kernel = staticmethod(_kernels.kl_ucb_select)
    _probability_kernel = staticmethod(_kernels.kl_ucb_probabilities)
    _choose_kernel = staticmethod(_kernels.kl_ucb_choose)

    def __init__(self, c: float = 0.0, *, n_arms: int | None = None, discount: float = 1.0):
        self.c = _number("c", c, 0.0, math.inf, open_low=False)
        super().__init__([self.c], n_arms, discount)

    def _hyperparameters(self) -> dict[str, Any]:
        return {"c": self.c, "discount": self.discount}


class Softmax(_CountPolicy):
    """Boltzmann exploration over empirical means: p_k ∝ exp(mean_k / τ) (Sutton & Barto,
    §2.8 / Luce 1959); while some available arm is unplayed, uniform over those arms."""

    _select_kernel = staticmethod(_kernels.softmax_select)
    _probability_kernel = staticmethod(_kernels.softmax_probabilities)
    _choose_kernel = staticmethod(_kernels.softmax_choose)

    def __init__(self, tau: float = 0.1, *, n_arms: int | None = None, discount: float = 1.0):
        self.tau = _number("tau", tau, 0.0, math.inf, open_low=True)
        super().__init__([self.tau], n_arms, discount)

    def _hyperparameters(self) -> dict[str, Any]:
        return {"tau": self.tau, "discount": self.discount}


class FixedSplit(_CountPolicy):
    """A classic A/B(/n) split: arm k with probability weight_k / Σ weights (over the
    available arms), whatever the rewards; updates only count. ``weights=None`` splits
    ``n_arms`` equally.

    >>> FixedSplit([1, 1, 2]).probabilities().tolist()
    [0.25, 0.25, 0.5]
    """

    _select_kernel = staticmethod(_kernels.fixed_split_select)

    def __init__(
        self,
        weights: object = None,
        *,
        n_arms: int | None = None,
        discount: float = 1.0,
    ):
        if weights is None:
            self.weights = None
            values: list[float] = []
        else:
            array = np.asarray(weights, dtype=np.float64).reshape(-1)
            if array.size == 0 or not np.all(np.isfinite(array)) or np.any(array < 0):
                raise InvalidArgumentError("weights", "must be finite, non-negative, not empty")
            if array.sum() <= 0:
                raise InvalidArgumentError("weights", "must not all be zero")
            if n_arms is not None and n_arms != array.size:
                raise InvalidArgumentError("n_arms", f"is {n_arms} but {array.size} weights given")
            self.weights = array.tolist()
            values = self.weights
            n_arms = array.size
        super().__init__(values, n_arms, discount)

    def resize(self, n_arms: int, n_features: int | None = None) -> None:
        if self.weights is None:
            self._param_values = np.ones(n_arms)
        elif n_arms != len(self.weights):
            raise InvalidArgumentError(
                "n_arms", f"is {n_arms} but the split has {len(self.weights)} weights"
            )
        super().resize(n_arms, n_features)

    def add_arm(self, weight: float | None = None) -> int:
        """Append an arm with ``weight`` (default: the mean of the current weights)."""
        self._require_sized()
        values = self._param_values
        weight = float(values.mean()) if weight is None else _number(
            "weight", weight, 0.0, math.inf, open_low=False
        )  # fmt: skip
        self._param_values = np.append(values, weight)
        if self.weights is not None:
            self.weights = self._param_values.tolist()
        return super().add_arm()

    def remove_arm(self, arm: int) -> None:
        index = self._check_arm(arm)
        remaining = np.delete(self._param_values, index)
        if remaining.sum() <= 0 and remaining.size:
            raise InvalidArgumentError("arm", "removing it leaves only zero weights")
        super().remove_arm(index)
        self._param_values = remaining
        if self.weights is not None:
            self.weights = remaining.tolist()

    def _probabilities(self, context, available) -> np.ndarray:
        weights = np.where(_mask(available, self.n_arms), self._param_values, 0.0)
        total = weights.sum()
        if total <= 0:
            raise InvalidArgumentError("available", "no available arm has a positive weight")
        return weights / total

    def _hyperparameters(self) -> dict[str, Any]:
        return {"weights": self.weights, "discount": self.discount}


class EXP3(Policy):
    """Exp3 (Auer, Cesa-Bianchi, Freund & Schapire, "The nonstochastic multiarmed bandit
    problem", SIAM J. Computing 2002, §3): p_k = (1 − γ) w_k / Σ_j w_j + γ / K with
    w_k = exp(γ Ŝ_k / K) and Ŝ_k = Σ r / p_k over the rounds arm k was played. Rewards in
    [0, 1]. The state is Ŝ (``estimated_reward_sums``).

    ``update`` computes the importance weight 1 / p_k from the policy's own probabilities at
    update time (all arms available), so a log's propensity is not needed. Two consequences,
    both documented approximations: merging replicas adds Ŝ gathered under each replica's own
    probabilities (not those of one policy that saw everything), and a decision made under an
    ``available`` mask is re-weighted as if every arm had been available. ``decay`` shrinks
    Ŝ toward 0, i.e. the weights toward uniform.
    """

    _reward_range = (0.0, 1.0)
    _statistics: ClassVar[tuple[str, ...]] = ("estimated_reward_sums",)
    _select_kernel = staticmethod(_kernels.exp3_select)
    _update_kernel = staticmethod(_kernels.exp3_update)

    def __init__(self, gamma: float = 0.1, *, n_arms: int | None = None, discount: float = 1.0):
        self.gamma = _number("gamma", gamma, 0.0, 1.0, open_low=True)
        self._param_values = np.array([self.gamma])
        super().__init__(n_arms=n_arms, discount=discount)

    def _prior_state(self, copies: int, n_arms: int, n_features: int | None) -> dict:
        return {"estimated_reward_sums": np.zeros((copies, n_arms))}

    def _params(self) -> np.ndarray:
        return self._param_values

    def _probabilities(self, context, available) -> np.ndarray:
        out = np.empty(self.n_arms)
        _kernels.exp3_probabilities(
            self.arrays["estimated_reward_sums"], self._param_values,
            _mask(available, self.n_arms), out,
        )  # fmt: skip
        return out

    def _update_single(self, arm: int, reward: float, weight: float) -> None:
        estimates = self.arrays["estimated_reward_sums"]
        if self._cache_version == self.version:
            # the cached probabilities are the kernel's own (every arm available): divide
            # by them here rather than recompute them in a kernel call
            estimates[0, arm] += weight * reward / self._cache[arm]  # type: ignore[index]
        else:
            _kernels.exp3_update_one(estimates, self._param_values, arm, reward, weight)

    def _draw_fresh(self, uniform: float) -> tuple[int, float]:
        version = self.version
        out = np.empty(self.n_arms)
        arm = _kernels.exp3_choose(
            self.arrays["estimated_reward_sums"], self._param_values, uniform, out
        )
        self._cache, self._cache_version = out, version
        return arm, float(out[arm])

    def _hyperparameters(self) -> dict[str, Any]:
        return {"gamma": self.gamma, "discount": self.discount}


# ---------------------------------------------------------------------------- Thompson


def _positive_pair(value: object) -> tuple[float, float]:
    try:
        first, second = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError("prior", f"must be a pair (a, b), got {value!r}") from exc
    if not (math.isfinite(first) and math.isfinite(second) and first > 0 and second > 0):
        raise InvalidArgumentError("prior", f"must be two positive numbers, got {value!r}")
    return first, second


class ThompsonSampling(Policy):
    """Beta-Bernoulli Thompson sampling (Thompson 1933; Chapelle & Li, "An Empirical
    Evaluation of Thompson Sampling", NIPS 2011): draw each arm's rate from its
    Beta(α_k, β_k) posterior and play the largest draw. Rewards in [0, 1].

    A reward r updates fractionally, α += r and β += 1 − r — exact Bayes for 0/1 rewards;
    for fractional rewards a deterministic pseudo-posterior with the same mean update as
    Agrawal & Goyal's (2012) Bernoulli trick, chosen because it keeps the statistics sums
    (merge is exact, equal streams give equal states). Probabilities are
    P(k is the posterior argmax) by quadrature (``propensity.BetaArgmax``),
    ~1e-8 absolute; after a 0/1 reward only the rewarded arm's CDF is advanced, by a
    recurrence, so a choose + update pair costs ~10 µs at 10 arms. At most ``max_arms`` =
    128 arms (the cost of the fallback quadrature).
    """

    _reward_range = (0.0, 1.0)
    max_arms = THOMPSON_MAX_ARMS
    _max_arms_reason = THOMPSON_CAP_REASON
    _statistics: ClassVar[tuple[str, ...]] = ("alpha", "beta")
    # posterior mass each quadrature window leaves out per side (see BetaArgmax)
    _tail_mass: ClassVar[float] = argmax_kernels.WINDOW_TAIL
    _select_kernel = staticmethod(_kernels.thompson_select)
    _update_kernel = staticmethod(_kernels.beta_update)

    def __init__(
        self,
        prior: tuple[float, float] = (1, 1),
        *,
        n_arms: int | None = None,
        discount: float = 1.0,
    ):
        self.prior = _positive_pair(prior)
        self._param_values = np.array([*self.prior, *self._extra_params()])
        self._argmax = BetaArgmax(self._tail_mass)
        super().__init__(n_arms=n_arms, discount=discount)

    def _extra_params(self) -> list[float]:
        return []

    def _prior_state(self, copies: int, n_arms: int, n_features: int | None) -> dict:
        return {
            "alpha": np.full((copies, n_arms), self.prior[0]),
            "beta": np.full((copies, n_arms), self.prior[1]),
        }

    def _params(self) -> np.ndarray:
        return self._param_values

    def _probabilities(self, context, available) -> np.ndarray:
        return self._prob_best(available)

    def _drop_caches(self) -> None:
        self._argmax = BetaArgmax(self._tail_mass)

    def _prob_best(self, available) -> np.ndarray:
        """P(best) of every arm (available ones: a grid of their own, not cached)."""
        arrays = self.arrays
        if available is None:
            return self._argmax.probabilities(arrays["alpha"][0], arrays["beta"][0])
        arms = np.flatnonzero(available)
        out = np.zeros(self.n_arms)
        masked = BetaArgmax(self._tail_mass)
        out[arms] = masked.probabilities(arrays["alpha"][0, arms], arrays["beta"][0, arms])
        return out

    def _hyperparameters(self) -> dict[str, Any]:
        return {"prior": list(self.prior), "discount": self.discount}


# The challenger shares π_i / (1 − π_leader) need small P(best) to ~1e-12 absolute: when
# the leader is nearly certain they are ratios of two tiny numbers, exact to ~1e-6 only.
TOP_TWO_TAIL = 1e-15


class TopTwoThompson(ThompsonSampling):
    """Top-two Thompson sampling (Russo, "Simple Bayesian Algorithms for Best Arm
    Identification", COLT 2016 / Operations Research 2020) on Beta-Bernoulli posteriors:
    the posterior argmax I with probability β, otherwise the argmax of fresh posterior draws
    resampled until it differs from I.

    Exact probabilities from π_k = P(k is best): the challenger is arm i ≠ I with probability
    π_i / (1 − π_I), so ψ_i = π_i (β + (1 − β) Σ_{j≠i} π_j / (1 − π_j)). The select kernel
    stops resampling after 10⁴ draws and plays the leader (probability π_I^10⁴ of that).
    """

    _select_kernel = staticmethod(_kernels.top_two_select)
    _tail_mass = TOP_TWO_TAIL

    def __init__(
        self,
        beta: float = 0.5,
        prior: tuple[float, float] = (1, 1),
        *,
        n_arms: int | None = None,
        discount: float = 1.0,
    ):
        self.beta = _number("beta", beta, 0.0, 1.0, open_low=False)
        super().__init__(prior, n_arms=n_arms, discount=discount)

    def _extra_params(self) -> list[float]:
        return [self.beta]

    def _probabilities(self, context, available) -> np.ndarray:
        out = np.empty(self.n_arms)
        argmax_kernels.top_two(self._prob_best(available), self.beta, out)
        return out

    def _hyperparameters(self) -> dict[str, Any]:
        return {"beta": self.beta, "prior": list(self.prior), "discount": self.discount}


def top_two_probabilities(prob_best: np.ndarray, beta: float) -> np.ndarray:
    """Russo's top-two choice probabilities ψ from P(best) π (last axis: arms); see
    ``splitlab.bandits._argmax_kernels.top_two``."""
    pi = np.ascontiguousarray(prob_best, dtype=np.float64)
    rows = pi.reshape(-1, pi.shape[-1])
    out = np.empty_like(rows)
    for row, psi in zip(rows, out, strict=True):
        argmax_kernels.top_two(row, float(beta), psi)
    return out.reshape(pi.shape)


def _normal_gamma_prior(value: object) -> tuple[float, float, float, float]:
    try:
        mean, kappa, alpha, beta = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            "prior", f"must be (mean, kappa, alpha, beta), got {value!r}"
        ) from exc
    finite = all(math.isfinite(v) for v in (mean, kappa, alpha, beta))
    if not finite or kappa <= 0 or alpha <= 0 or beta <= 0:
        raise InvalidArgumentError(
            "prior", f"needs a finite mean and positive kappa, alpha, beta; got {value!r}"
        )
    return mean, kappa, alpha, beta


class GaussianThompson(Policy):
    """Thompson sampling for Gaussian rewards of unknown mean and variance, with a
    Normal-Inverse-Gamma prior ``prior = (mean, kappa, alpha, beta)``: σ² ~ InvGamma(α, β),
    μ | σ² ~ N(mean, σ² / κ) (Murphy 2007, "Conjugate Bayesian analysis of the Gaussian
    distribution", §6).

    Each arm keeps its weighted count, mean (as ``means + mean_corrections``, an
    unevaluated sum carrying twice float64's precision) and centred sum of squares ``m2`` =
    Σ w (y − ȳ)², updated by Welford's recurrence and merged by Chan, Golub & LeVeque's
    pairwise formula. So an arm's variance is exact to ~n·1e-16 relative even for rewards
    such as 1e12 + N(0, 1), where Σy² − (Σy)²/n loses every digit. ``decay`` shrinks the
    counts and ``m2`` and leaves the means alone (what shrinking n, Σy and Σy² did).

    Each arm's mean has a Student-t posterior, t_{2α_n}(μ_n, β_n / (α_n κ_n)); probabilities
    are P(k is the argmax) by quadrature over those t densities
    (``propensity.StudentArgmax``: after an update only the updated
    arm's t CDF is recomputed), ~1e-8 absolute; at most ``max_arms`` = 128 arms.

    >>> policy = GaussianThompson(prior=(1e9, 1.0, 1.0, 1.0), n_arms=2)
    >>> policy.update_batch([0, 0, 0, 1, 1], [1e9 + 9, 1e9 + 10, 1e9 + 11, 1e9 + 4, 1e9 + 6])
    >>> counts, means, variances = policy.moments()
    >>> (means - 1e9).tolist(), variances.tolist()
    ([10.0, 5.0], [1.0, 2.0])
    """

    max_arms = THOMPSON_MAX_ARMS
    _max_arms_reason = THOMPSON_CAP_REASON
    _statistics: ClassVar[tuple[str, ...]] = ("counts", "means", "mean_corrections", "m2")
    _decaying: ClassVar[tuple[str, ...] | None] = ("counts", "m2")
    # the sum-based state of earlier versions, which from_state still reads
    _sum_statistics: ClassVar[tuple[str, ...]] = ("counts", "reward_sums", "reward_sums_sq")
    _select_kernel = staticmethod(_kernels.normal_gamma_select)
    _update_kernel = staticmethod(_kernels.normal_gamma_update)

    def __init__(
        self,
        prior: tuple[float, float, float, float] = (0.0, 1.0, 1.0, 1.0),
        *,
        n_arms: int | None = None,
        discount: float = 1.0,
    ):
        self.prior = _normal_gamma_prior(prior)
        self._param_values = np.array(self.prior)
        self._argmax = StudentArgmax()
        super().__init__(n_arms=n_arms, discount=discount)

    def _prior_state(self, copies: int, n_arms: int, n_features: int | None) -> dict:
        return {name: np.zeros((copies, n_arms)) for name in self._statistics}

    def _params(self) -> np.ndarray:
        return self._param_values

    def moments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(weighted count, mean, variance) of each arm's rewards; the variance is
        M2 / (n − 1), NaN for an arm with n ≤ 1."""
        self._require_sized()
        counts, means, corrections, m2 = (self.arrays[name][0] for name in self._statistics)
        with np.errstate(divide="ignore", invalid="ignore"):
            variances = np.where(counts > 1.0, m2 / (counts - 1.0), np.nan)
        return counts.copy(), means + corrections, variances

    def posterior(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(location, scale, degrees of freedom) of each arm's Student-t mean posterior."""
        loc, scale, df = np.empty(self.n_arms), np.empty(self.n_arms), np.empty(self.n_arms)
        arrays = self.arrays
        _kernels.normal_gamma_marginals(
            arrays["counts"], arrays["means"], arrays["mean_corrections"], arrays["m2"],
            self._param_values, loc, scale, df,
        )  # fmt: skip
        return loc, scale, df

    def _drop_caches(self) -> None:
        self._argmax = StudentArgmax()

    def _probabilities(self, context, available) -> np.ndarray:
        loc, scale, df = self.posterior()
        if available is None:
            return self._argmax._probabilities(loc, scale, df)  # contiguous float64 already
        arms = np.flatnonzero(available)
        out = np.zeros(self.n_arms)
        out[arms] = StudentArgmax().probabilities(loc[arms], scale[arms], df[arms])
        return out

    def _hyperparameters(self) -> dict[str, Any]:
        return {"prior": list(self.prior), "discount": self.discount}

    # ------------------------------------------------------------------ merging

    def _fold(self, counts, means, corrections, m2) -> None:
        own = (self.arrays[name][0] for name in self._statistics)
        _kernels.normal_gamma_merge(
            *own,
            *(np.ascontiguousarray(v, dtype=np.float64) for v in (counts, means, corrections, m2)),
        )
        self._touch()

    def merge(self, other: Policy) -> None:
        """Fold in the arms' (n, mean, M2) another replica gathered from the same prior, by
        Chan, Golub & LeVeque's pairwise formula (exact up to rounding)."""
        if type(other) is not type(self) or other._hyperparameters() != self._hyperparameters():
            raise InvalidArgumentError(
                "other", "can only merge a policy of the same kind and settings"
            )
        if other.n_arms != self.n_arms:
            raise InvalidArgumentError("other", "has a different number of arms or features")
        self._fold(*(other.arrays[name][0] for name in self._statistics))

    def additive_statistics(self) -> dict[str, np.ndarray]:
        """Per-arm sums that add across replicas: ``counts`` Σw, ``deviation_sums``
        Σw (y − μ0) and ``deviation_sums_sq`` Σw (y − μ0)², about the prior mean μ0 (the
        one reference point every replica shares), computed from the centred state.

        They are for shipping a replica's increments (the Allocator's deltas): an
        increment's variance is recovered as S₂ − S₁²/n about μ0, which keeps ~16 −
        2·log10(|ȳ − μ0| / sd) digits — all of them when the prior mean is near the
        rewards, which the posterior needs anyway (with μ0 far away the prior term
        κ0 n (ȳ − μ0)² / (2 κ_n) dominates β_n and M2 hardly matters). :meth:`merge` of a
        whole policy is exact whatever μ0.
        """
        counts, means, corrections, m2 = (self.arrays[name][0] for name in self._statistics)
        gap = (means - self.prior[0]) + corrections
        return {
            "counts": counts.copy(),
            "deviation_sums": counts * gap,
            "deviation_sums_sq": m2 + counts * gap * gap,
        }

    def add_statistics(self, increments: dict[str, np.ndarray]) -> None:
        """Fold in increments of :meth:`additive_statistics` (e.g. a replica's delta): each
        arm's increment (Δn, ΔS₁, ΔS₂) is turned back into a batch with count Δn, mean
        μ0 + ΔS₁/Δn and M2 = ΔS₂ − ΔS₁²/Δn, and merged by the exact pairwise formula of
        :meth:`merge` — not added, since the state holds means and centred sums."""
        self._require_sized()
        expected = ("counts", "deviation_sums", "deviation_sums_sq")
        if set(increments) != set(expected):
            raise InvalidArgumentError(
                "increments", f"needs exactly the statistics {list(expected)}"
            )
        values = []
        for name in expected:
            value = np.asarray(increments[name], dtype=np.float64)
            if value.shape != (self.n_arms,) or not np.isfinite(value).all():
                raise InvalidArgumentError("increments", f"{name!r} has the wrong shape or NaN")
            values.append(value)
        counts, sums, sums_sq = values
        if np.any(counts < 0):
            raise InvalidArgumentError("increments", "'counts' must not decrease")
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = np.where(counts > 0, sums / counts, 0.0)
        m2 = np.maximum(sums_sq - sums * gap, 0.0)
        # μ0 + gap as a (mean, correction) pair: Knuth's TwoSum, as in the update kernel
        means = self.prior[0] + gap
        back = means - self.prior[0]
        corrections = (self.prior[0] - (means - back)) + (gap - back)
        self._fold(counts, means, corrections, m2)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Policy:
        """Restore a policy; a state saved before the centred statistics (``counts``,
        ``reward_sums``, ``reward_sums_sq``) is converted: ȳ = Σy/n, M2 = Σy² − Σy ȳ."""
        arrays = state.get("arrays") if isinstance(state, dict) else None
        if (
            isinstance(arrays, dict)
            and "means" not in arrays
            and all(name in arrays for name in cls._sum_statistics)
        ):
            try:
                counts, sums, sums_sq = (
                    np.asarray(arrays[name], dtype=np.float64) for name in cls._sum_statistics
                )
            except (TypeError, ValueError) as exc:
                raise InvalidArgumentError("state", "its sums are not numeric") from exc
            with np.errstate(divide="ignore", invalid="ignore"):
                means = np.where(counts > 0, sums / counts, 0.0)
            converted = {
                "counts": counts,
                "means": means,
                "mean_corrections": np.zeros_like(means),
                "m2": np.maximum(sums_sq - sums * means, 0.0),
            }
            state = {**state, "arrays": converted}
        return super().from_state(state)
