"""Reward models q̂(x, a) for the direct-method and doubly robust estimators.

Without action features: one regression per action on z = (1, x). With an (K, p) matrix of
action (item) features f_a: **one shared model** on the feature map
φ(x, a) = z ⊗ (1, f_a) = (1, x, f_a, x ⊗ f_a) — context, action features and all their
pairwise interactions — fitted on the logged (xᵢ, aᵢ) rows (as Open Bandit Pipeline's
``RegressionModel`` with ``action_context``, here with the interactions spelled out). Its
sufficient statistics are the per-action ones, Σᵢ φφᵀ = Σₐ (Σ_{aᵢ=a} zzᵀ) ⊗ g_a g_aᵀ with
g_a = (1, f_a), so the shared fit costs one O(n d²) pass whatever p is, and its
predictions are a per-action linear model with coefficients β_a = M g_a.

Either way: ridge (closed form from the sufficient statistics
Σzzᵀ, Σzr of :func:`~splitlab.ope._kernels.group_gram`) or L2-penalized logistic regression
(Newton–Raphson / IRLS) for 0/1 rewards. Predictions are **cross-fitted**: rows are split
into K folds and each fold is predicted by models fitted on the other folds (Chernozhukov et
al., "Double/debiased machine learning", Econometrics J. 2018, Definition 3.1), so that a
row's own reward never enters its prediction. Rewards are centred on the training mean
before the ridge fit, so the penalty shrinks actions with little data toward that mean (the
logistic fits leave the intercept unpenalized). :func:`cross_fitted_model` keeps the
per-fold coefficients, so that the estimators need only q̂_π(xᵢ) and q̂(xᵢ, aᵢ) and never the
(n, K) matrix of predictions; :func:`cross_fitted_rewards` returns that matrix.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(2000, 2)); a = rng.integers(2, size=2000)
>>> r = 1.0 + x[:, 0] * (a == 1) + 0.1 * rng.normal(size=2000)
>>> q = cross_fitted_rewards(x, a, r, n_actions=2, folds=5, seed=0)
>>> q.shape, bool(np.abs(q[:, 1] - (1.0 + x[:, 0])).max() < 0.1)
((2000, 2), True)

With item features (here one feature per action, its true effect):

>>> features = np.array([[0.0], [1.0]])
>>> shared = cross_fitted_rewards(x, a, r, n_actions=2, action_features=features)
>>> bool(np.abs(shared[:, 1] - (1.0 + x[:, 0])).max() < 0.1)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from splitlab._validation import check_choice
from splitlab.errors import InvalidArgumentError
from splitlab.ope._kernels import (
    group_gram,
    policy_predictions,
    predict_linear,
)

__all__ = [
    "KINDS",
    "RewardFit",
    "cross_fitted_model",
    "cross_fitted_rewards",
    "fit_predict",
    "sequential_rewards",
]

KINDS = ("ridge", "logistic")
# Cross-fitting refits one model per action and fold: beyond a few dozen folds the fits
# only get more alike while their cost keeps growing (and a fold needs rows to fit on).
MAX_FOLDS = 100
LOGISTIC_ITERATIONS = 50
LOGISTIC_TOLERANCE = 1e-10
# Newton steps recompute the Hessian (the O(n d²) part) until the largest step is below this;
# later steps reuse the last Hessian (the chord method: linear convergence at a rate of the
# order of the distance to the optimum, so each costs O(n d) and gains several digits).
LOGISTIC_REFRESH = 1e-2


def _check(kind: str, l2: float, folds: int | None = None) -> tuple[str, float]:
    kind = check_choice("reward_model", kind, KINDS)
    l2 = float(l2)
    if not (np.isfinite(l2) and l2 >= 0.0):
        raise InvalidArgumentError("l2", f"must be finite and non-negative, got {l2!r}")
    if folds is not None:
        bounded_integer("folds", folds, 2, MAX_FOLDS, "one model per action and fold")
    return kind, l2


def bounded_integer(name: str, value: object, minimum: int, maximum: int, reason: str) -> int:
    """A whole number in [minimum, maximum] (bools, NaN, inf and fractions refused); the
    error above the cap says why the cap exists."""
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidArgumentError(
            name, f"must be an integer of at least {minimum}, got {value!r}"
        ) from exc
    if isinstance(value, bool) or number != value or number < minimum:
        raise InvalidArgumentError(name, f"must be an integer of at least {minimum}, got {value!r}")
    if number > maximum:
        raise InvalidArgumentError(name, f"must be at most {maximum} ({reason}), got {value!r}")
    return number


def _solve(system, vector):
    """Batched solve of system[..., :, :] β = vector[..., :]; a singular system gets the
    least-squares (minimum-norm) solution."""
    try:
        return np.linalg.solve(system, vector[..., None])[..., 0]
    except np.linalg.LinAlgError:
        flat_s = system.reshape(-1, *system.shape[-2:])
        flat_v = vector.reshape(-1, vector.shape[-1])
        out = np.empty_like(flat_v)
        for m in range(flat_s.shape[0]):
            out[m] = np.linalg.lstsq(flat_s[m], flat_v[m], rcond=None)[0]
        return out.reshape(vector.shape)


def _ridge_coefficients(gram, moment, count, l2):
    """β per (group, action) from training sums, rewards centred on their training mean."""
    width = gram.shape[-1]
    total_count = count.sum(axis=1)  # per group
    total_reward = moment[:, :, 0].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.where(total_count > 0, total_reward / total_count, 0.0)
    # Σz(r − c) = Σzr − c Σz, and Σz is the first column of Σzzᵀ
    centred = moment - centre[:, None, None] * gram[:, :, :, 0]
    if l2 > 0:
        coefficients = _solve(gram + l2 * np.eye(width), centred)
    else:
        coefficients = np.empty(centred.shape)
        for g in range(gram.shape[0]):
            for a in range(gram.shape[1]):
                if np.linalg.matrix_rank(gram[g, a]) == width:
                    coefficients[g, a] = np.linalg.solve(gram[g, a], centred[g, a])
                else:
                    coefficients[g, a] = np.linalg.lstsq(gram[g, a], centred[g, a], rcond=None)[0]
    coefficients[:, :, 0] += centre[:, None]
    return coefficients


def _design(contexts: np.ndarray) -> np.ndarray:
    return np.hstack([np.ones((contexts.shape[0], 1)), contexts])


def _basis(action_features, n_actions: int) -> np.ndarray | None:
    """The (K, p + 1) rows g_a = (1, f_a), or None without action features."""
    if action_features is None:
        return None
    try:
        features = np.asarray(action_features, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            "action_features", "must be a numeric (K, p) matrix, one row per action"
        ) from exc
    if features.ndim == 1:
        features = features[:, None]
    if features.ndim != 2 or features.shape[0] != n_actions:
        raise InvalidArgumentError(
            "action_features",
            f"must have one row per action, shape ({n_actions}, p); got {features.shape}",
        )
    if not np.all(np.isfinite(features)):
        raise InvalidArgumentError("action_features", "contain NaN or inf")
    return np.hstack([np.ones((n_actions, 1)), features])


def _shared_statistics(matrices, vectors, basis):
    """Σₐ S_a ⊗ g_a g_aᵀ and Σₐ v_a ⊗ g_a per model: the statistics of φ = z ⊗ g."""
    models, _, width, _ = matrices.shape
    size = width * basis.shape[1]
    system = np.einsum("fajk,al,am->fjlkm", matrices, basis, basis, optimize=True)
    vector = np.einsum("faj,al->fjl", vectors, basis, optimize=True)
    return system.reshape(models, size, size), vector.reshape(models, size)


def _per_action(shared, basis, width):
    """Shared coefficients (models, width·P) → per-action ones (models, K, width): M g_a."""
    matrix = shared.reshape(shared.shape[0], width, basis.shape[1])
    return np.ascontiguousarray(np.einsum("fjl,al->faj", matrix, basis))


def _shared_ridge(gram, moment, count, l2, basis):
    width = gram.shape[-1]
    total_count = count.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.where(total_count > 0, moment[:, :, 0].sum(axis=1) / total_count, 0.0)
    centred = moment - centre[:, None, None] * gram[:, :, :, 0]
    system, vector = _shared_statistics(gram, centred, basis)
    beta = _solve(system + l2 * np.eye(system.shape[-1]), vector)
    coefficients = _per_action(beta, basis, width)
    coefficients[:, :, 0] += centre[:, None]
    return coefficients


class _ByAction:
    """The design sorted by action once, so that each IRLS statistic is a few BLAS products
    per action: η = Z_a Cᵀ for every model at once, Σ (r − μ) z = Z_aᵀ (r − μ) and
    Σ μ(1 − μ) zzᵀ = (Z_a ∘ w)ᵀ Z_a per model (rows of a model's own fold weighted 0)."""

    def __init__(self, contexts, actions, rewards, groups, models, n_actions):
        order = np.argsort(actions, kind="stable")
        self.design = _design(contexts[order])
        self.rewards = rewards[order]
        bounds = np.searchsorted(actions[order], np.arange(n_actions + 1))
        self.blocks = [slice(bounds[a], bounds[a + 1]) for a in range(n_actions)]
        grouped = groups[order]
        self.train = [
            (grouped[block, None] != np.arange(models)[None, :]).astype(np.float64)
            for block in self.blocks
        ]

    def __call__(self, coefficients, hessian, gradient, with_hessian):
        for a, block in enumerate(self.blocks):
            z = self.design[block]
            if z.shape[0] == 0:
                hessian[:, a] = 0.0
                gradient[:, a] = 0.0
                continue
            eta = np.clip(z @ coefficients[:, a, :].T, -30.0, 30.0)  # (n_a, models)
            mu = 1.0 / (1.0 + np.exp(-eta))
            train = self.train[a]
            gradient[:, a] = ((self.rewards[block, None] - mu) * train).T @ z
            if with_hessian:
                weight = mu * (1.0 - mu) * train
                for f in range(coefficients.shape[0]):
                    hessian[f, a] = (z * weight[:, f : f + 1]).T @ z


def _logit(rate):
    rate = np.clip(rate, 1e-6, 1 - 1e-6)
    return np.log(rate / (1.0 - rate))


def _logistic_coefficients(contexts, actions, rewards, groups, models, n_actions, l2, basis):
    """L2-penalized logistic regression by Newton–Raphson (IRLS), intercept unpenalized, for
    every model f (trained on the rows with groups ≠ f) and action at once; with ``basis``
    one shared model per f on φ = z ⊗ g_a. An action without training rows predicts the
    model's training mean."""
    width = contexts.shape[1] + 1
    train = np.zeros((models, n_actions))
    positive = np.zeros((models, n_actions))
    all_count = np.bincount(actions, minlength=n_actions).astype(np.float64)
    all_positive = np.bincount(actions, rewards, minlength=n_actions)
    for f in range(models):
        own = groups == f
        train[f] = all_count - np.bincount(actions[own], minlength=n_actions)
        positive[f] = all_positive - np.bincount(actions[own], rewards[own], minlength=n_actions)
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = np.where(train.sum(1) > 0, positive.sum(1) / np.maximum(train.sum(1), 1), 0.5)
        rate = np.where(train > 0, positive / np.maximum(train, 1), pooled[:, None])
    hessian = np.zeros((models, n_actions, width, width))
    gradient = np.zeros((models, n_actions, width))
    statistics = _ByAction(contexts, actions, rewards, groups, models, n_actions)
    if basis is None:
        coefficients = np.zeros((models, n_actions, width))
        coefficients[:, :, 0] = _logit(rate)
        penalty = l2 * np.eye(width)
        penalty[0, 0] = 0.0
        empty = train == 0
        fresh = True
        for _ in range(LOGISTIC_ITERATIONS):
            statistics(coefficients, hessian, gradient, fresh)
            if fresh:
                system = hessian + penalty
                system[empty] = np.eye(width)
            vector = gradient - coefficients @ penalty
            vector[empty] = 0.0
            step = _solve(system, vector)
            coefficients += step
            largest = np.max(np.abs(step))
            if largest < LOGISTIC_TOLERANCE:
                break
            fresh = fresh and largest >= LOGISTIC_REFRESH
        return coefficients
    size = width * basis.shape[1]
    beta = np.zeros((models, size))
    beta[:, 0] = _logit(pooled)
    penalty = l2 * np.eye(size)
    penalty[0, 0] = 0.0
    fresh = True
    for _ in range(LOGISTIC_ITERATIONS):
        coefficients = _per_action(beta, basis, width)
        statistics(coefficients, hessian, gradient, fresh)
        if fresh:
            system, _ = _shared_statistics(hessian, gradient, basis)
            system = system + penalty
        vector = np.einsum("faj,al->fjl", gradient, basis).reshape(beta.shape)
        step = _solve(system, vector - beta @ penalty)
        beta += step
        largest = np.max(np.abs(step))
        if largest < LOGISTIC_TOLERANCE:
            break
        fresh = fresh and largest >= LOGISTIC_REFRESH
    return _per_action(beta, basis, width)


def _coefficients(contexts, actions, rewards, groups, models, n_actions, kind, l2, basis):
    """(models, K, d + 1) coefficients of q̂ on z = (1, x), model f fitted on groups ≠ f."""
    if kind == "logistic":
        return _logistic_coefficients(
            contexts, actions, rewards, groups, models, n_actions, l2, basis
        )
    width = contexts.shape[1] + 1
    gram = np.zeros((models, n_actions, width, width))
    moment = np.zeros((models, n_actions, width))
    count = np.zeros((models, n_actions))
    if models == 1:
        group_gram(contexts, actions, rewards, np.zeros(actions.size, np.int64), 1, n_actions,
                   gram, moment, count)  # fmt: skip
    else:
        group_gram(contexts, actions, rewards, groups, models, n_actions, gram, moment, count)
        # training statistics of fold f: everything minus fold f (the sums are additive)
        gram, moment, count = (s.sum(axis=0) - s for s in (gram, moment, count))
    if basis is None:
        return _ridge_coefficients(gram, moment, count, l2)
    return _shared_ridge(gram, moment, count, l2, basis)


def _prepare(contexts, actions, rewards, kind):
    contexts = np.ascontiguousarray(contexts, dtype=np.float64)
    if contexts.ndim == 1:
        contexts = contexts.reshape(-1, 0) if contexts.size == 0 else contexts[:, None]
    actions = np.ascontiguousarray(actions, dtype=np.int64)
    rewards = np.ascontiguousarray(rewards, dtype=np.float64)
    if kind == "logistic" and np.any((rewards != 0.0) & (rewards != 1.0)):
        raise InvalidArgumentError("reward_model", "'logistic' needs rewards that are 0 or 1")
    return contexts, actions, rewards


def fit_predict(
    train_contexts, train_actions, train_rewards, predict_contexts, n_actions, kind, l2,
    action_features=None,
) -> np.ndarray:  # fmt: skip
    """Fit the model on the training rows (one per action, or one shared model on
    ``action_features``); predict every action on new rows, an (m, K) matrix."""
    contexts, actions, rewards = _prepare(train_contexts, train_actions, train_rewards, kind)
    basis = _basis(action_features, n_actions)
    groups = np.full(actions.size, -1, dtype=np.int64)
    beta = _coefficients(contexts, actions, rewards, groups, 1, n_actions, kind, l2, basis)[0]
    linear = _design(np.asarray(predict_contexts, dtype=np.float64)) @ beta.T
    if kind == "logistic":
        return 1.0 / (1.0 + np.exp(-np.clip(linear, -30.0, 30.0)))
    return linear


@dataclass(frozen=True)
class RewardFit:
    """A cross-fitted reward model: ``coefficients[f, a]`` on z = (1, x) of the model fitted
    without fold f, the rows' ``fold`` and each fold model's training mean ``centre[f]``
    (the constant baseline of the held-out comparison)."""

    kind: str
    coefficients: np.ndarray
    fold: np.ndarray
    centre: np.ndarray

    def predictions(self, contexts: np.ndarray) -> np.ndarray:
        """(n, K) out-of-fold predictions q̂(xᵢ, a)."""
        n = self.fold.size
        out = np.empty((n, self.coefficients.shape[1]))
        predict_linear(np.ascontiguousarray(contexts, dtype=np.float64), self.fold,
                       self.coefficients, out)  # fmt: skip
        if self.kind == "logistic":
            np.clip(out, -30.0, 30.0, out=out)
            out = 1.0 / (1.0 + np.exp(-out))
        return out

    def policy_predictions(self, contexts, actions, target) -> tuple[np.ndarray, np.ndarray]:
        """q̂_π(xᵢ) = Σₐ target[i, a] q̂(xᵢ, a) and q̂(xᵢ, aᵢ), out of fold, in one pass that
        never forms the (n, K) matrix of predictions."""
        n = self.fold.size
        q_target, q_logged = np.empty(n), np.empty(n)
        policy_predictions(
            np.ascontiguousarray(contexts, dtype=np.float64), self.fold,
            np.ascontiguousarray(actions, dtype=np.int64), self.coefficients,
            np.ascontiguousarray(target), self.kind == "logistic", q_target, q_logged,
        )  # fmt: skip
        return q_target, q_logged


def cross_fitted_model(
    contexts, actions, rewards, *, n_actions: int, kind: str = "ridge", l2: float = 1.0,
    folds: int = 5, seed: int | None = 0, action_features=None,
) -> RewardFit:  # fmt: skip
    """The cross-fitted reward model (folds drawn at random with ``seed``): each fold's
    coefficients come from the rows of the other folds only.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(100, 1)); a = rng.integers(2, size=100); r = x[:, 0] + a
    >>> fit = cross_fitted_model(x, a, r, n_actions=2, folds=4)
    >>> fit.coefficients.shape, fit.fold.shape
    ((4, 2, 2), (100,))
    """
    kind, l2 = _check(kind, l2, folds)
    contexts, actions, rewards = _prepare(contexts, actions, rewards, kind)
    basis = _basis(action_features, n_actions)
    n = actions.size
    fold = (np.random.default_rng(seed).permutation(n) % folds).astype(np.int64)
    coefficients = _coefficients(contexts, actions, rewards, fold, folds, n_actions, kind, l2,
                                 basis)  # fmt: skip
    counts = np.bincount(fold, minlength=folds).astype(np.float64)
    sums = np.bincount(fold, rewards, minlength=folds)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.where(n - counts > 0, (sums.sum() - sums) / np.maximum(n - counts, 1), 0.0)
    return RewardFit(kind, np.ascontiguousarray(coefficients), fold, centre)


def cross_fitted_rewards(
    contexts, actions, rewards, *, n_actions: int, kind: str = "ridge", l2: float = 1.0,
    folds: int = 5, seed: int | None = 0, action_features=None,
) -> np.ndarray:  # fmt: skip
    """(n, K) out-of-fold predictions q̂(xᵢ, a) for every row and action (folds drawn at
    random with ``seed``); ``action_features`` (K, p) switches to the shared model."""
    fit = cross_fitted_model(
        contexts, actions, rewards, n_actions=n_actions, kind=kind, l2=l2, folds=folds,
        seed=seed, action_features=action_features,
    )  # fmt: skip
    return fit.predictions(contexts)


def sequential_rewards(
    contexts, actions, rewards, blocks, *, n_blocks: int, n_actions: int, l2: float = 1.0
) -> np.ndarray:
    """(n, K) *predictable* ridge predictions: rows of time block b are predicted by models
    fitted on blocks 0 … b − 1 only (0 for block 0), as the martingale arguments of
    anytime-valid inference need."""
    _check("ridge", l2)
    contexts = np.ascontiguousarray(contexts, dtype=np.float64)
    design = _design(contexts)
    width = design.shape[1]
    gram = np.zeros((n_blocks, n_actions, width, width))
    moment = np.zeros((n_blocks, n_actions, width))
    count = np.zeros((n_blocks, n_actions))
    group_gram(contexts, actions, rewards, blocks, n_blocks, n_actions, gram, moment, count)
    past = [np.cumsum(s, axis=0) - s for s in (gram, moment, count)]
    beta = _ridge_coefficients(*past, l2=max(l2, 1e-9))
    out = np.zeros((actions.size, n_actions))
    for b in range(1, n_blocks):
        rows = blocks == b
        out[rows] = design[rows] @ beta[b].T
    return out
