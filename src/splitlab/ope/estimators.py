"""Off-policy value estimators of a target policy from a bandit decision log.

With n logged rounds (xᵢ, aᵢ, rᵢ), logging propensity pᵢ = π₀(aᵢ|xᵢ), target probabilities
π(a|xᵢ), importance weight wᵢ = π(aᵢ|xᵢ)/pᵢ and a cross-fitted reward model q̂(x, a) with
q̂_π(xᵢ) = Σₐ π(a|xᵢ) q̂(xᵢ, a), every estimator is V̂ = mean(A) + mean(B)/mean(C) of
per-round *pseudo-outcomes* (Dudík, Langford & Li, "Doubly robust policy evaluation and
learning", ICML 2011; the forms follow Open Bandit Pipeline, Saito et al. 2021):

============  ===========================  =====================  ======
estimator     A                            B                      C
============  ===========================  =====================  ======
ips           min(wᵢ, clip) rᵢ             0                      1
snips         0                            wᵢ rᵢ                  wᵢ
dm            q̂_π(xᵢ)                      0                      1
dr            q̂_π(xᵢ) + wᵢ (rᵢ − q̂ᵢ)       0                      1
sndr          q̂_π(xᵢ)                      wᵢ (rᵢ − q̂ᵢ)           wᵢ
switch_dr     q̂_π(xᵢ) + wᵢ (rᵢ − q̂ᵢ) 1{wᵢ ≤ τ}  0                 1
============  ===========================  =====================  ======

(q̂ᵢ = q̂(xᵢ, aᵢ); Switch-DR: Wang, Agarwal & Dudík, "Optimal and adaptive off-policy
evaluation in contextual bandits", ICML 2017, eq. 7 with DR in the switched-in region.)

Closed-form intervals are normal, V̂ ± z·se with se = sd(φ)/√n of the influence function φ:
φ = A for the plain means and, by the delta method for a ratio of means,
φ = (A − Ā) + (B − R·C)/C̄ with R = B̄/C̄ for the self-normalized ones. The DM and DR
intervals treat the cross-fitted reward model as fixed. ``ci="bootstrap"`` resamples rows
(Poisson bootstrap, Hanley & MacGibbon 2006; Chamandy et al. 2012) and recomputes every
ratio — numerator *and* self-normalizing denominator — in each resample; its interval is the
percentile interval and its se the resamples' standard deviation.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from splitlab._validation import check_alpha, check_choice
from splitlab.errors import DegenerateDataWarning, InvalidArgumentError
from splitlab.ope import _kernels
from splitlab.ope.logs import PROBABILITY_TOLERANCE, BanditLog, describe_rows, load_log
from splitlab.ope.reward_model import KINDS, bounded_integer, cross_fitted_model

__all__ = [
    "ESTIMATORS",
    "PoorOverlapWarning",
    "RewardModelWarning",
    "evaluate",
    "replay",
    "target_probabilities",
]

ESTIMATORS = ("ips", "snips", "dm", "dr", "sndr", "switch_dr")
MODEL_BASED = ("dm", "dr", "sndr", "switch_dr")
CI_METHODS = ("normal", "bootstrap")
# Below this share of effective samples (Kish's n_e = (Σw)²/Σw², Owen, "Monte Carlo theory,
# methods and examples", 2013, ch. 9) the weights are too uneven for IPS-type intervals to
# be trusted; 1% is our default alarm, overridable per call.
MIN_ESS_FRACTION = 0.01
MAX_BOOTSTRAP = 100_000  # bootstrap resamples (n_boot)
# A reward model is flagged as worse than the constant mean when its held-out MSE exceeds
# the mean's by more than this many standard errors of the paired difference (one-sided,
# ~2.3% false alarms for a model exactly as good as the mean).
WORSE_Z = 2.0
# ... and only from this many rows on, where the normal approximation of that one-sided test
# is usable (on a handful of rows, every regression loses to the mean).
WORSE_MIN_ROWS = 50


class PoorOverlapWarning(DegenerateDataWarning):
    """The target policy puts mass where the logging policy rarely or never acted: the
    effective sample size is small or some target mass is unsupported."""


class RewardModelWarning(DegenerateDataWarning):
    """The reward model behind DM / DR looks broken: a model-based estimate lies outside
    the range of the logged rewards, or the model predicts held-out rewards worse than
    their constant mean."""


# ---------------------------------------------------------------------------- target


def target_probabilities(target: object, log: BanditLog) -> np.ndarray:
    """The (n, K) matrix of target probabilities π(a|xᵢ) on every logged context.

    ``target`` is a splitlab policy (its probabilities evaluated in one batch), a callable
    ``contexts -> (n, K) matrix``, an (n, K) matrix, or an (n,) array of deterministic
    actions.

    >>> log = BanditLog.from_arrays([0, 1], [1.0, 0.0], [0.5, 0.5], n_actions=2)
    >>> target_probabilities(np.array([1, 1]), log).tolist()
    [[0.0, 1.0], [0.0, 1.0]]
    """
    from splitlab.bandits.base import Policy

    n = log.n
    if isinstance(target, Policy):
        target._require_sized()
        if target.contextual:
            if log.n_features != target.n_features:
                raise InvalidArgumentError(
                    "target",
                    f"the policy takes {target.n_features} context features but the log has "
                    f"{log.n_features}",
                )
            matrix = _policy_batch(target, log.contexts)
        else:
            matrix = np.broadcast_to(target.probabilities(), (n, target.n_arms)).copy()
    elif callable(target) and not isinstance(target, np.ndarray):
        matrix = np.asarray(target(log.contexts), dtype=np.float64)
    else:
        array = np.asarray(target)
        if array.ndim == 1:
            return _one_hot(log.align("target", array), log)
        matrix = np.asarray(array, dtype=np.float64)
        if matrix.ndim == 2:
            matrix = log.align("target", matrix)
    if matrix.ndim != 2 or matrix.shape[0] != n:
        raise InvalidArgumentError(
            "target", f"must give an (n, K) probability matrix with n = {n}, got {matrix.shape}"
        )
    expected = log.n_actions
    if expected is not None and matrix.shape[1] != expected:
        raise InvalidArgumentError(
            "target",
            f"gives probabilities for {matrix.shape[1]} actions but the log has {expected}",
        )
    bad = _kernels.invalid_probability_rows(
        np.ascontiguousarray(matrix), PROBABILITY_TOLERANCE, np.empty(n, dtype=np.bool_)
    )
    if bad.any():
        raise InvalidArgumentError(
            "target",
            f"probabilities must be non-negative and sum to 1; not in {describe_rows(bad)}",
        )
    if log.n and log.actions.max() >= matrix.shape[1]:
        bad = log.actions >= matrix.shape[1]
        raise InvalidArgumentError(
            "action", f"exceeds the target's {matrix.shape[1]} actions in {describe_rows(bad)}"
        )
    return matrix


def _policy_batch(policy, contexts: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    rows = policy._check_context(contexts, batch=True)
    parts = [
        policy._probabilities_batch(np.ascontiguousarray(rows[start : start + chunk]), None)
        for start in range(0, rows.shape[0], chunk)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, policy.n_arms))


def _one_hot(actions: np.ndarray, log: BanditLog) -> np.ndarray:
    if actions.shape != (log.n,):
        raise InvalidArgumentError(
            "target",
            f"an action array needs one action per logged row ({log.n}), got {actions.shape}",
        )
    values = np.asarray(actions, dtype=np.float64)
    width = (
        log.n_actions
        if log.n_actions is not None
        else int(max(values.max(), log.actions.max())) + 1
    )
    bad = ~np.isfinite(values) | (values != np.round(values)) | (values < 0) | (values >= width)
    if bad.any():
        raise InvalidArgumentError(
            "target",
            f"actions must be indices 0 … {width - 1}; not in {describe_rows(bad, None, values)}",
        )
    matrix = np.zeros((log.n, width))
    matrix[np.arange(log.n), values.astype(np.int64)] = 1.0
    return matrix


# ---------------------------------------------------------------------------- pieces


def _pseudo_outcomes(log, target, predicted, estimators, clip, switch_threshold):
    """Basis columns (n, M) and, per estimator, (A columns, B column, C column): the
    estimate is Σ mean(A columns) + mean(B)/mean(C), with -1 for an absent ratio. Shared
    pieces (w·r, w, q̂_π, w·(r − q̂)) are stored once, so that the bootstrap resamples as
    few columns as possible. ``predicted`` is (q̂_π(xᵢ), q̂(xᵢ, aᵢ)) or None."""
    n = log.n
    rows = np.arange(n)
    weight = target[rows, log.actions] / log.propensities
    columns: list[np.ndarray] = []
    index: dict[str, int] = {}

    def column(name, make):
        if name not in index:
            index[name] = len(columns)
            columns.append(make())
        return index[name]

    parts: dict[str, tuple[tuple[int, ...], int, int]] = {}
    thresholds: dict[str, float] = {}
    if predicted is not None:
        q_target, q_logged = predicted
        residual = log.rewards - q_logged
    for name in estimators:
        if name == "ips":
            if clip is None or clip >= weight.max():
                parts[name] = ((column("wr", lambda: weight * log.rewards),), -1, -1)
            else:
                clipped = np.minimum(weight, clip) * log.rewards
                parts[name] = ((column("ips", lambda c=clipped: c),), -1, -1)
        elif name == "snips":
            parts[name] = (
                (),
                column("wr", lambda: weight * log.rewards),
                column("w", lambda: weight),
            )
        elif name == "dm":
            parts[name] = ((column("dm", lambda: q_target),), -1, -1)
        elif name == "dr":
            dm = column("dm", lambda: q_target)
            parts[name] = ((dm, column("w_res", lambda: weight * residual)), -1, -1)
        elif name == "sndr":
            parts[name] = (
                (column("dm", lambda: q_target),),
                column("w_res", lambda: weight * residual),
                column("w", lambda: weight),
            )
        elif name == "switch_dr":
            tau = (
                _tune_switch(weight, q_target, residual)
                if switch_threshold is None
                else switch_threshold
            )
            thresholds[name] = tau
            dm = column("dm", lambda: q_target)
            if tau >= weight.max():
                correction = column("w_res", lambda: weight * residual)
            else:
                switched = weight * residual * (weight <= tau)
                correction = column("w_res_switch", lambda c=switched: c)
            parts[name] = ((dm, correction), -1, -1)
    matrix = np.column_stack(columns) if columns else np.zeros((n, 0))
    return np.ascontiguousarray(matrix), parts, weight, thresholds


def _tune_switch(weight, q_target, residual) -> float:
    """τ minimizing an estimate of MSE(τ) = Var/n + bias² over the weights' upper quantiles
    (Wang et al. 2017, §4.3, with the bias estimated against DR, which is unbiased:
    E(V̂_τ − V̂_DR)² = bias² + Var(V̂_τ − V̂_DR), so bias² ≈ (V̂_τ − V̂_DR)² − Var(ψ_τ − ψ_DR)/n)."""
    n = weight.size
    candidates = np.unique(np.quantile(weight, [0.5, 0.75, 0.9, 0.95, 0.99, 0.999]))
    dr = q_target + weight * residual
    best, best_mse = np.inf, np.var(dr, ddof=1) / n
    for tau in candidates:
        switched = q_target + weight * residual * (weight <= tau)
        difference = switched - dr
        bias2 = max(0.0, difference.mean() ** 2 - np.var(difference, ddof=1) / n)
        mse = np.var(switched, ddof=1) / n + bias2
        if mse < best_mse:
            best, best_mse = float(tau), mse
    return best


def _closed_form(means, columns, parts, n):
    """Estimate and delta-method se of every estimator from the pseudo-outcome columns."""
    out = {}
    for name, (additive, b, c) in parts.items():
        estimate = float(sum(means[a] for a in additive))
        influence = np.zeros(n)
        for a in additive:
            influence += columns[:, a] - means[a]
        if b >= 0:
            ratio = means[b] / means[c]
            estimate += ratio
            influence += (columns[:, b] - ratio * columns[:, c]) / means[c]
        se = np.sqrt(np.sum(influence * influence) / (n - 1) / n) if n > 1 else np.nan
        out[name] = (estimate, float(se))
    return out


def _bootstrap(columns, parts, n_boot, seed):
    means = np.empty((n_boot, columns.shape[1]))
    _kernels.poisson_bootstrap_means(columns, n_boot, seed, _kernels.POISSON_TABLE, means)
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, (additive, b, c) in parts.items():
            values = np.zeros(n_boot)
            for a in additive:
                values = values + means[:, a]
            if b >= 0:
                values = values + means[:, b] / means[:, c]
            out[name] = values
    return out


def _diagnostics(log, target, weight):
    n = log.n
    with np.errstate(invalid="ignore", divide="ignore"):
        ess = weight.sum() ** 2 / np.sum(weight * weight) if np.any(weight > 0) else 0.0
    unsupported = np.nan
    if log.probabilities is not None:
        unsupported = _kernels.unsupported_mass(
            np.ascontiguousarray(target), np.ascontiguousarray(log.probabilities)
        )
    return {
        "n": n,
        "excluded": log.excluded,
        "ess": float(ess),
        "ess_fraction": float(ess / n) if n else np.nan,
        "max_weight": float(weight.max()) if n else np.nan,
        "mean_weight": float(weight.mean()) if n else np.nan,
        "unsupported_mass": unsupported,
    }


def _provenance(log: BanditLog, call: str, parameters: dict[str, Any]) -> dict[str, Any]:
    import splitlab

    return {
        "splitlab_version": splitlab.__version__,
        "call": call,
        "parameters": parameters,
        "source": dict(log.description),
        "excluded_null_rewards": log.excluded,
        "input_fingerprint": log.fingerprint(),
    }


def _check_seed(seed: object) -> int:
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    try:
        value = int(seed)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError("seed", f"must be a non-negative integer, got {seed!r}") from exc
    if value != seed or value < 0:
        raise InvalidArgumentError("seed", f"must be a non-negative integer, got {seed!r}")
    return value


def _check_estimators(estimators: object) -> tuple[str, ...]:
    names = (estimators,) if isinstance(estimators, str) else tuple(estimators)  # type: ignore[arg-type]
    if not names:
        raise InvalidArgumentError("estimators", "name at least one estimator")
    for name in names:
        check_choice("estimators", name, ESTIMATORS)
    return tuple(dict.fromkeys(names))


def _positive(name: str, value: object, *, allow_inf: bool = False) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(name, f"must be a positive number, got {value!r}") from exc
    if not (number > 0 and (np.isfinite(number) or allow_inf)):
        raise InvalidArgumentError(name, f"must be a positive number, got {value!r}")
    return number


# ---------------------------------------------------------------------------- public


def evaluate(
    log: object,
    target: object,
    estimators: Sequence[str] | str = ESTIMATORS,
    alpha: float = 0.05,
    *,
    ci: str = "normal",
    n_boot: int = 1000,
    seed: int | None = 0,
    reward_model: str | np.ndarray = "ridge",
    l2: float = 1.0,
    folds: int = 5,
    clip: float | None = None,
    switch_threshold: float | None = None,
    min_ess_fraction: float = MIN_ESS_FRACTION,
    action_features: np.ndarray | None = None,
    **columns: Any,
) -> pd.DataFrame:
    """Estimate the value of ``target`` from a decision ``log``: one row per estimator.

    ``log``: a decision log as :func:`~splitlab.ope.logs.load_log` reads it (keywords such as
    ``action=``, ``reward=``, ``propensity=``, ``context=`` rename its columns). ``target``:
    see :func:`target_probabilities`; arrays (and a ``reward_model`` matrix) have one row
    per row of the source, in source order. ``ci``: "normal" (closed form) or "bootstrap"
    (``n_boot`` Poisson resamples, ``seed``; at most 100,000, time O(n · n_boot)).
    ``reward_model``: "ridge" or "logistic" with penalty ``l2``, cross-fitted over ``folds``
    (2 to 100, assigned from ``seed``), or an (n, K) matrix of predictions q̂(xᵢ, a) from a
    model fitted elsewhere. ``action_features``: an optional (K, p) matrix of item features;
    with it the "ridge" / "logistic" model is ONE shared model on the context, the action's
    features and their interactions, φ(x, a) = (1, x, f_a, x ⊗ f_a) (see
    ``splitlab.ope.reward_model``), cross-fitted as above; without it, one model per
    action. ``clip`` caps the IPS weights; ``switch_threshold`` is
    Switch-DR's τ (None: tuned by estimated MSE; the interval then ignores the tuning).

    Columns: estimator, estimate, se, ci_low, ci_high, then diagnostics shared by all rows —
    n (rows used), excluded (null rewards dropped), ess (Kish's (Σw)²/Σw²), ess_fraction,
    max_weight, mean_weight (≈ 1 under good overlap), unsupported_mass (target probability
    on actions the logger could not take; needs the logged probabilities) — and the
    estimator's parameter (clip, τ). A :class:`PoorOverlapWarning` is raised when
    ess_fraction < ``min_ess_fraction`` or unsupported_mass > 0.

    Reward-model diagnostics (when a model-based estimator is asked for): reward_model_mse,
    the mean squared error of the cross-fitted (held-out) predictions q̂(xᵢ, aᵢ), and
    mean_model_mse, that of the constant training mean on the same folds (for a given
    matrix of predictions, both in-sample: the matrix vs the mean of all rewards); and per
    row ``diagnostics``, a ";"-separated list of flags ("" when none):
    "outside_reward_range" (a DM / DR-type estimate outside [min, max] of the logged
    rewards) and "reward_model_worse_than_mean" (reward_model_mse > mean_model_mse by more
    than 2 standard errors of the paired difference of squared errors, from 50 rows on).
    Either flag raises a :class:`RewardModelWarning`.

    >>> rng = np.random.default_rng(1)
    >>> actions = rng.integers(2, size=4000)
    >>> rewards = rng.binomial(1, np.where(actions == 1, 0.6, 0.3)).astype(float)
    >>> log = {"action": actions, "reward": rewards, "propensity": np.full(4000, 0.5)}
    >>> table = evaluate(log, np.ones(4000, dtype=int), estimators=["ips", "snips"])
    >>> table[["estimator", "estimate"]].round(1).to_dict("list")
    {'estimator': ['ips', 'snips'], 'estimate': [0.6, 0.6]}
    """
    names = _check_estimators(estimators)
    alpha = check_alpha(alpha)
    ci = check_choice("ci", ci, CI_METHODS)
    seed = _check_seed(seed)
    if ci == "bootstrap":
        n_boot = bounded_integer(
            "n_boot", n_boot, 2, MAX_BOOTSTRAP,
            "time and memory grow linearly with the resamples, and at 10^5 the Monte Carlo "
            "error of a 95% bootstrap quantile is already ~0.1% of the interval",
        )  # fmt: skip
    if isinstance(reward_model, str):
        check_choice("reward_model", reward_model, KINDS)
    clip = None if clip is None else _positive("clip", clip, allow_inf=True)
    if switch_threshold is not None:
        switch_threshold = _positive("switch_threshold", switch_threshold, allow_inf=True)
    min_ess_fraction = float(min_ess_fraction)
    started = time.perf_counter()
    bandit_log = load_log(log, **columns)
    if bandit_log.n < 2:
        raise InvalidArgumentError(
            "log", f"needs at least 2 rows with a reward, has {bandit_log.n}"
        )
    matrix = target_probabilities(target, bandit_log)
    n_actions = matrix.shape[1]
    predicted, model_mse = None, None
    rewards = bandit_log.rewards
    if not isinstance(reward_model, str):
        q = _given_rewards(reward_model, bandit_log, n_actions)
        q_logged = q[np.arange(bandit_log.n), bandit_log.actions]
        predicted = (np.einsum("ij,ij->i", matrix, q), q_logged)
        model_mse = _mse_comparison(rewards, q_logged, np.full(bandit_log.n, rewards.mean()))
    elif any(name in MODEL_BASED for name in names):
        fit = cross_fitted_model(
            bandit_log.contexts, bandit_log.actions, rewards, n_actions=n_actions,
            kind=reward_model, l2=l2, folds=folds, seed=seed, action_features=action_features,
        )  # fmt: skip
        predicted = fit.policy_predictions(bandit_log.contexts, bandit_log.actions, matrix)
        model_mse = _mse_comparison(rewards, predicted[1], fit.centre[fit.fold])
    pseudo, parts, weight, thresholds = _pseudo_outcomes(
        bandit_log, matrix, predicted, names, clip, switch_threshold
    )
    means = pseudo.mean(axis=0)
    closed = _closed_form(means, pseudo, parts, bandit_log.n)
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    rows = []
    draws = _bootstrap(pseudo, parts, int(n_boot), seed) if ci == "bootstrap" else None
    for name in names:
        estimate, se = closed[name]
        if draws is None:
            low, high = estimate - z * se, estimate + z * se
        else:
            values = draws[name]
            se = float(np.std(values, ddof=1))
            low, high = (float(v) for v in np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0]))
        parameter = clip if name == "ips" else thresholds.get(name)
        rows.append(
            {"estimator": name, "estimate": estimate, "se": se, "ci_low": low, "ci_high": high,
             "parameter": np.nan if parameter is None else parameter}
        )  # fmt: skip
    diagnostics = _diagnostics(bandit_log, matrix, weight)
    flags = _reward_model_flags(rows, rewards, model_mse)
    diagnostics["reward_model_mse"] = np.nan if model_mse is None else float(model_mse[0])
    diagnostics["mean_model_mse"] = np.nan if model_mse is None else float(model_mse[1])
    table = pd.DataFrame(
        [{**row, **diagnostics, "ci": ci, "diagnostics": flags[row["estimator"]]} for row in rows]
    )
    _warn_overlap(diagnostics, min_ess_fraction)
    _warn_reward_model(table, rewards, diagnostics)
    table.attrs.update(
        _provenance(
            bandit_log,
            "ope.evaluate",
            {
                "estimators": list(names),
                "alpha": alpha,
                "ci": ci,
                "n_boot": int(n_boot),
                "seed": seed,
                "reward_model": reward_model if isinstance(reward_model, str) else "given",
                "l2": l2,
                "folds": folds,
                "clip": clip,
                "switch_threshold": switch_threshold,
                "action_features": None
                if action_features is None
                else list(np.shape(action_features)),
                "target": _describe_target(target, matrix),
            },
        )
    )
    table.attrs["seconds"] = time.perf_counter() - started
    return table


def _given_rewards(predictions: object, log: BanditLog, n_actions: int) -> np.ndarray:
    try:
        matrix = np.asarray(predictions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            "reward_model", "must be 'ridge', 'logistic' or an (n, K) matrix of predictions"
        ) from exc
    if matrix.ndim != 2 or matrix.shape[1] != n_actions:
        raise InvalidArgumentError(
            "reward_model", f"predictions must have shape (n, {n_actions}), got {matrix.shape}"
        )
    matrix = log.align("reward_model", matrix)
    if not np.all(np.isfinite(matrix)):
        raise InvalidArgumentError("reward_model", "predictions contain NaN or inf")
    return matrix


def _warn_overlap(diagnostics: dict[str, Any], min_ess_fraction: float) -> None:
    problems = []
    if diagnostics["ess_fraction"] < min_ess_fraction:
        problems.append(
            f"effective sample size {diagnostics['ess']:.1f} is "
            f"{100 * diagnostics['ess_fraction']:.2g}% of {diagnostics['n']} rows "
            f"(max weight {diagnostics['max_weight']:.3g})"
        )
    if diagnostics["unsupported_mass"] > 0:
        problems.append(
            f"the target puts {diagnostics['unsupported_mass']:.3g} of its mass on actions the "
            "logging policy could not take (IPS-type estimates are biased there)"
        )
    if problems:
        warnings.warn("poor overlap: " + "; ".join(problems), PoorOverlapWarning, stacklevel=3)


def _mse_comparison(rewards, predicted, baseline) -> tuple[float, float, bool]:
    """(MSE of the model, MSE of the baseline, the model is worse): worse means the mean
    paired difference of squared errors exceeds WORSE_Z of its standard errors, so that a
    handful of rows does not flag a model for noise."""
    difference = (rewards - predicted) ** 2 - (rewards - baseline) ** 2
    n = difference.size
    model = float(np.mean((rewards - predicted) ** 2))
    mean = float(np.mean((rewards - baseline) ** 2))
    se = float(np.std(difference, ddof=1)) / np.sqrt(n) if n > 1 else np.inf
    worse = n >= WORSE_MIN_ROWS and model > mean and difference.mean() > WORSE_Z * se
    return model, mean, bool(worse)


def _reward_model_flags(rows, rewards, model_mse) -> dict[str, str]:
    low, high = float(rewards.min()), float(rewards.max())
    worse = model_mse is not None and model_mse[2]
    flags = {}
    for row in rows:
        found = []
        if row["estimator"] in MODEL_BASED:
            if not low <= row["estimate"] <= high:
                found.append("outside_reward_range")
            if worse:
                found.append("reward_model_worse_than_mean")
        flags[row["estimator"]] = ";".join(found)
    return flags


def _warn_reward_model(table, rewards, diagnostics) -> None:
    problems = []
    outside = table.loc[table["diagnostics"].str.contains("outside_reward_range"), "estimator"]
    if len(outside):
        problems.append(
            f"{', '.join(outside)} outside the logged reward range "
            f"[{rewards.min():.4g}, {rewards.max():.4g}]"
        )
    if table["diagnostics"].str.contains("reward_model_worse_than_mean").any():
        problems.append(
            f"held-out MSE {diagnostics['reward_model_mse']:.4g} of the reward model exceeds "
            f"{diagnostics['mean_model_mse']:.4g} of the constant mean"
        )
    if problems:
        warnings.warn("reward model: " + "; ".join(problems), RewardModelWarning, stacklevel=3)


def _describe_target(target: object, matrix: np.ndarray) -> dict[str, Any]:
    # column sums and the first rows: enough to tell targets apart, cheap at 10⁷ rows
    summary = np.concatenate([matrix.sum(axis=0), matrix[:100].ravel()])
    digest = hashlib.sha256(np.char.mod("%.12g", summary).tobytes()).hexdigest()[:16]
    kind = type(target).__name__
    described: dict[str, Any] = {"type": kind, "probabilities_fingerprint": digest}
    if hasattr(target, "state") and callable(target.state):
        described["policy"] = repr(target)
    return described


def replay(log: object, target: object, alpha: float = 0.05, **columns: Any) -> pd.DataFrame:
    """The replay estimator of Li, Chu, Langford & Wang ("Unbiased offline evaluation of
    contextual-bandit-based news article recommendation algorithms", WSDM 2011, Algorithm
    1) for logs collected by a **uniformly random** policy: the mean reward over the rounds
    where the logged action is the one the target would take.

    A stochastic target contributes each round with weight π(aᵢ|xᵢ) (the expectation of the
    replay over the target's draws), V̂ = Σ π(aᵢ|xᵢ) rᵢ / Σ π(aᵢ|xᵢ); the se is the delta
    method's for this ratio. Raises if the logged propensities are not all equal (1/K).

    >>> log = {"action": [0, 1, 0, 1], "reward": [1.0, 0.0, 0.0, 1.0],
    ...        "propensity": [0.5, 0.5, 0.5, 0.5]}
    >>> row = replay(log, np.array([0, 0, 0, 1])).iloc[0]
    >>> float(row["estimate"]), int(row["matched"])
    (0.6666666666666666, 3)
    """
    alpha = check_alpha(alpha)
    bandit_log = load_log(log, **columns)
    matrix = target_probabilities(target, bandit_log)
    uniform = 1.0 / matrix.shape[1]
    bad = np.abs(bandit_log.propensities - uniform) > PROBABILITY_TOLERANCE
    if bad.any():
        raise InvalidArgumentError(
            "log",
            f"replay needs uniformly logged actions (propensity 1/{matrix.shape[1]}); not in "
            f"{describe_rows(bad, None, bandit_log.propensities)}",
        )
    match = matrix[np.arange(bandit_log.n), bandit_log.actions]
    matched = float(match.sum())
    if matched <= 0:
        raise InvalidArgumentError("target", "never agrees with a logged action: nothing to replay")
    estimate = float(np.sum(match * bandit_log.rewards) / matched)
    influence = match * (bandit_log.rewards - estimate) / match.mean()
    n = bandit_log.n
    se = float(np.sqrt(np.sum(influence**2) / (n - 1) / n)) if n > 1 else np.nan
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    table = pd.DataFrame(
        [{"estimator": "replay", "estimate": estimate, "se": se, "ci_low": estimate - z * se,
          "ci_high": estimate + z * se, "n": n, "matched": round(matched),
          "excluded": bandit_log.excluded}]
    )  # fmt: skip
    table.attrs.update(_provenance(bandit_log, "ope.replay", {"alpha": alpha}))
    return table
