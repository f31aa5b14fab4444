"""Reward models q̂(x, a) for the direct-method and doubly robust estimators.

One regression per action on z = (1, x): ridge (closed form from the sufficient statistics
Σzzᵀ, Σzr of :func:`~splitlab.ope._kernels.group_gram`) or L2-penalized logistic regression
(Newton–Raphson / IRLS) for 0/1 rewards. Predictions are **cross-fitted**: rows are split
into K folds and each fold is predicted by models fitted on the other folds (Chernozhukov et
al., "Double/debiased machine learning", Econometrics J. 2018, Definition 3.1), so that a
row's own reward never enters its prediction. Rewards are centred on the training mean
before the ridge fit, so the penalty shrinks actions with little data toward that mean.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(2000, 2)); a = rng.integers(2, size=2000)
>>> r = 1.0 + x[:, 0] * (a == 1) + 0.1 * rng.normal(size=2000)
>>> q = cross_fitted_rewards(x, a, r, n_actions=2, folds=5, seed=0)
>>> q.shape, bool(np.abs(q[:, 1] - (1.0 + x[:, 0])).max() < 0.1)
((2000, 2), True)
"""

from __future__ import annotations

import numpy as np

from splitlab._validation import check_choice
from splitlab.errors import InvalidArgumentError
from splitlab.ope._kernels import group_gram, predict_linear

__all__ = ["KINDS", "cross_fitted_rewards", "fit_predict", "sequential_rewards"]

KINDS = ("ridge", "logistic")
# Cross-fitting refits one model per action and fold: beyond a few dozen folds the fits
# only get more alike while their cost keeps growing (and a fold needs rows to fit on).
MAX_FOLDS = 100
LOGISTIC_ITERATIONS = 50
LOGISTIC_TOLERANCE = 1e-10


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


def _ridge_coefficients(gram, moment, count, l2):
    """β per (group, action) from training sums, rewards centred on their training mean."""
    groups, actions, width, _ = gram.shape
    total_count = count.sum(axis=1)  # per group
    total_reward = moment[:, :, 0].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.where(total_count > 0, total_reward / total_count, 0.0)
    # Σz(r − c) = Σzr − c Σz, and Σz is the first column of Σzzᵀ
    centred = moment - centre[:, None, None] * gram[:, :, :, 0]
    system = gram + l2 * np.eye(width)
    coefficients = np.empty((groups, actions, width))
    for g in range(groups):
        for a in range(actions):
            if l2 > 0 or np.linalg.matrix_rank(system[g, a]) == width:
                coefficients[g, a] = np.linalg.solve(system[g, a], centred[g, a])
            else:
                coefficients[g, a] = np.linalg.lstsq(system[g, a], centred[g, a], rcond=None)[0]
    coefficients[:, :, 0] += centre[:, None]
    return coefficients


def _design(contexts: np.ndarray) -> np.ndarray:
    return np.hstack([np.ones((contexts.shape[0], 1)), contexts])


def _logistic(design, rewards, l2, start_rate):
    """L2-penalized logistic regression by Newton–Raphson (the intercept is not penalized)."""
    width = design.shape[1]
    beta = np.zeros(width)
    with np.errstate(divide="ignore"):
        rate = min(max(start_rate, 1e-6), 1 - 1e-6)
    beta[0] = np.log(rate / (1.0 - rate))
    penalty = l2 * np.eye(width)
    penalty[0, 0] = 0.0
    for _ in range(LOGISTIC_ITERATIONS):
        eta = np.clip(design @ beta, -30.0, 30.0)
        mean = 1.0 / (1.0 + np.exp(-eta))
        weight = mean * (1.0 - mean)
        gradient = design.T @ (rewards - mean) - penalty @ beta
        hessian = (design * weight[:, None]).T @ design + penalty
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        beta += step
        if np.max(np.abs(step)) < LOGISTIC_TOLERANCE:
            break
    return beta


def fit_predict(
    train_contexts, train_actions, train_rewards, predict_contexts, n_actions, kind, l2
) -> np.ndarray:
    """Fit one model per action on the training rows; predict every action on new rows."""
    design = _design(predict_contexts)
    if kind == "ridge":
        width = design.shape[1]
        gram = np.zeros((1, n_actions, width, width))
        moment = np.zeros((1, n_actions, width))
        count = np.zeros((1, n_actions))
        group_gram(
            np.ascontiguousarray(train_contexts), train_actions, train_rewards,
            np.zeros(train_actions.size, dtype=np.int64), 1, n_actions, gram, moment, count,
        )  # fmt: skip
        return design @ _ridge_coefficients(gram, moment, count, l2)[0].T
    train_design = _design(train_contexts)
    pooled = float(train_rewards.mean()) if train_rewards.size else 0.5
    out = np.empty((design.shape[0], n_actions))
    for a in range(n_actions):
        rows = train_actions == a
        if not rows.any():
            out[:, a] = pooled
            continue
        beta = _logistic(train_design[rows], train_rewards[rows], l2, train_rewards[rows].mean())
        out[:, a] = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -30.0, 30.0)))
    return out


def cross_fitted_rewards(
    contexts, actions, rewards, *, n_actions: int, kind: str = "ridge", l2: float = 1.0,
    folds: int = 5, seed: int | None = 0,
) -> np.ndarray:  # fmt: skip
    """(n, K) out-of-fold predictions q̂(xᵢ, a) for every row and action (folds drawn at
    random with ``seed``)."""
    kind, l2 = _check(kind, l2, folds)
    contexts = np.ascontiguousarray(contexts, dtype=np.float64)
    actions = np.asarray(actions, dtype=np.int64)
    rewards = np.asarray(rewards, dtype=np.float64)
    n = actions.size
    if kind == "logistic" and np.any((rewards != 0.0) & (rewards != 1.0)):
        raise InvalidArgumentError("reward_model", "'logistic' needs rewards that are 0 or 1")
    fold = np.random.default_rng(seed).permutation(n) % folds
    out = np.empty((n, n_actions))
    if kind == "ridge":
        width = contexts.shape[1] + 1
        gram = np.zeros((folds, n_actions, width, width))
        moment = np.zeros((folds, n_actions, width))
        count = np.zeros((folds, n_actions))
        group_gram(contexts, actions, rewards, fold, folds, n_actions, gram, moment, count)
        # training statistics of fold f: everything minus fold f (the sums are additive)
        beta = _ridge_coefficients(
            gram.sum(axis=0) - gram, moment.sum(axis=0) - moment, count.sum(axis=0) - count, l2
        )
        predict_linear(contexts, fold, np.ascontiguousarray(beta), out)
        return out
    for f in range(folds):
        rows = fold == f
        out[rows] = fit_predict(
            contexts[~rows], actions[~rows], rewards[~rows], contexts[rows], n_actions, kind, l2
        )
    return out


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
