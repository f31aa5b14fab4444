"""Arm values and contrasts after adaptive allocation.

A bandit shifts traffic toward arms that looked good, so an arm's naive sample mean is
biased (downward for arms that were unlucky early and then starved) and its textbook
interval under-covers. Three readouts, each giving arm values with a covariance matrix:

``"aw_aipw"`` — adaptively weighted AIPW (Hadad, Hirshberg, Zhan, Wager & Athey, "Confidence
intervals for policy evaluation in adaptive experiments", PNAS 118(15), 2021). With the
AIPW scores Γ̂ₜ(a) of ``_kernels.aipw_scores`` (plug-in μ̂ from earlier
rows only) and evaluation weights hₜ(a) that depend on the past only,

    Q̂ʰ(a) = Σₜ hₜ(a) Γ̂ₜ(a) / Σₜ hₜ(a),   V̂(a) = Σₜ hₜ(a)² (Γ̂ₜ(a) − Q̂ʰ(a))² / (Σₜ hₜ(a))²,

and (Q̂ʰ(a) − Q(a)) / √V̂(a) is asymptotically N(0, 1) (their Theorem 2). Weights:
``"stable_var"`` hₜ = √eₜ(a) (constant allocation rate, after Luedtke & van der Laan
2016); ``"two_point"`` the two-point allocation rate of §3 — hₜ²/eₜ = λₜ Πₛ<ₜ(1 − λₛ) with
λₜ = eₜ/(T − t + 1) + (1 − eₜ)(1 − α)/((1 − α) + T(t/T)^α − t), interpolating between an
arm that keeps its share and one whose probability decays like t^(−α) (α =
``floor_decay``); ``"uniform"`` hₜ = 1 (plain AIPW, valid only without vanishing
propensities). For a contextual bandit the scores use each row's eₜ(a|xₜ) but the weights
use the period's effective allocation (see ``_allocation``). A contrast uses the
cross-products of the centred, normalized terms uₜ(a) = hₜ(a)(Γ̂ₜ(a) − Q̂ʰ(a))/Σₛhₛ(a):
Cov(a, b) = Σₜ uₜ(a) uₜ(b).

``"naive"`` — the per-arm sample mean with se = s/√n (for comparison; not valid on bandit data).

``"period_weighted"`` — GrowthBook's correction for bandits whose weights changed between
periods (gbstats ``BanditsPrevious``, ``weight_by_period``): with nₚ rows in period p out of
N, ȳ(a) = Σₚ (nₚ/N) ȳₚ(a) and Var = Σₚ (nₚ/N)² sₚ²(a)/nₚ(a). This removes the Simpson's
paradox of pooling periods with different splits when the reward drifts between periods.

**Logs that record only the chosen arm's propensity** (no ``prob_0`` … ``prob_{K−1}``; most
production logs): use ``weights="uniform"``. The score Γ̂ₜ(a) reads eₜ(a) only where
Aₜ = a, where it is the logged propensity, so plain AIPW (hₜ = 1) needs nothing more;
``"stable_var"`` and ``"two_point"`` read eₜ(a) at *every* t, also where a was not chosen,
and raise :class:`~splitlab.errors.InvalidArgumentError` on such a log. Why no substitute
for the missing eₜ(a) is offered: Hadad et al.'s Theorem 2 asks two things of the weights —
(1) hₜ is a function of the history before t, which makes Σₜ hₜ(Γ̂ₜ − Q) a martingale, and
(2) the conditional variance, about Σₜ hₜ²/eₜ(a), divided by its expectation tends to 1 in
probability (with a Lindeberg condition: no single hₜ²/eₜ dominates the sum). The adaptive
weights satisfy (2) by construction, because they make hₜ²/eₜ non-random; that needs the
true eₜ(a). An estimate ê of it keeps (2) only if ê/e → 1, and reading arm a's probability
off other rows of the current period where a happened to be chosen makes the weight depend
on the current period's choices, which breaks (1). hₜ = 1 meets (1) trivially and meets (2)
when Σₜ 1/eₜ(a) concentrates around its expectation — when each arm's assignment
probability settles to a non-random limit away from 0, as under a probability floor with
arms of different values. It can under-cover where the adaptive weights would not: when a
propensity decays to 0 with no floor, or when arms tie and their allocation keeps wandering
(the failure of unweighted AIPW that motivates Hadad et al.). So, with only chosen
propensities: ``weights="uniform"`` (scores from the chosen propensity), preferably on a
bandit that kept an exploration floor; ``method="period_weighted"`` when the log has a
period column and the split changed only between periods; and if every arm's probability
can be recomputed (say from each period's policy state), recompute it and pass
``probabilities=`` to use ``"stable_var"``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from splitlab._validation import check_alpha, check_choice
from splitlab.errors import DegenerateDataWarning, InvalidArgumentError
from splitlab.ope import _kernels
from splitlab.ope.estimators import _provenance
from splitlab.ope.logs import BanditLog, load_log

__all__ = ["METHODS", "WEIGHTS", "arm_contrasts", "arm_values", "aw_aipw_weights"]

METHODS = ("aw_aipw", "naive", "period_weighted")
WEIGHTS = ("stable_var", "two_point", "uniform")
DEFAULT_FLOOR_DECAY = 0.7  # the decay rate of the probability floor in Hadad et al.'s studies


def aw_aipw_weights(
    probabilities: np.ndarray, weights: str = "stable_var", floor_decay: float = 0.7
) -> np.ndarray:
    """Evaluation weights hₜ(a), shape (T, K), from the logged probabilities eₜ(a).

    >>> e = np.array([[0.5, 0.5], [0.8, 0.2]])
    >>> aw_aipw_weights(e).round(3).tolist()
    [[0.707, 0.707], [0.894, 0.447]]
    """
    weights = check_choice("weights", weights, WEIGHTS)
    e = np.asarray(probabilities, dtype=np.float64)
    if weights == "uniform":
        return np.ones_like(e)
    if weights == "stable_var":
        return np.sqrt(e)
    alpha = float(floor_decay)
    if not 0.0 <= alpha < 1.0:
        raise InvalidArgumentError("floor_decay", f"must be in [0, 1), got {floor_decay!r}")
    horizon = e.shape[0]
    t = np.arange(1, horizon + 1, dtype=np.float64)[:, None]
    keeps_share = 1.0 / (horizon - t + 1.0)
    decays = (1.0 - alpha) / ((1.0 - alpha) + horizon * (t / horizon) ** alpha - t)
    rate = np.clip(e * keeps_share + (1.0 - e) * decays, 0.0, 1.0)
    # stick breaking: hₜ²/eₜ = λₜ Π_{s<t} (1 − λₛ)
    remaining = np.vstack([np.ones((1, e.shape[1])), np.cumprod(1.0 - rate, axis=0)[:-1]])
    return np.sqrt(np.maximum(rate * remaining * e, 0.0))


def _allocation(log: BanditLog, probabilities: np.ndarray) -> np.ndarray:
    """The allocation e the weights are built from: the logged probabilities of a
    context-free bandit, or, for a contextual one, each period's effective share
    ēₚ(a) = 1 / meanᵢ∈ₚ 1/eᵢ(a) — the inverse of the conditional variance factor
    E_x[1/eₚ(x, a)] of Zhan, Hadad, Hirshberg & Athey ("Off-policy evaluation via adaptive
    weighting with data from contextual bandits", KDD 2021, §3), estimated over the period's
    contexts. A weight must not depend on the current row's context: hₜ = √eₜ(a|xₜ) would
    favour rows where the policy liked arm a, i.e. where its reward is high."""
    if log.n_features == 0:
        return probabilities
    if log.periods is None:
        raise InvalidArgumentError(
            "log",
            "AW-AIPW on a contextual log needs its period column: the evaluation weights "
            "are built from each period's allocation, not from the row's own context",
        )
    labels, period = np.unique(log.periods, return_inverse=True)
    with np.errstate(divide="ignore"):
        inverse = 1.0 / probabilities
    sums = np.zeros((labels.size, probabilities.shape[1]))
    np.add.at(sums, period, inverse)
    counts = np.bincount(period, minlength=labels.size)[:, None]
    with np.errstate(divide="ignore"):
        effective = counts / sums
    return effective[period]


def _chosen_only(weights: str) -> str:
    """Why ``weights`` cannot run on a log with only the chosen arm's propensity."""
    return (
        f"weights={weights!r} needs the full logged probabilities of every arm (columns "
        "prob_0 … prob_{K-1}, or probabilities=): its weights are built from eₜ(a) at every "
        "row, also where arm a was not chosen, and this log has only the chosen arm's "
        "propensity. Use weights='uniform' (plain AIPW, which needs only the chosen "
        "propensity; see splitlab.ope.adaptive for when its interval is valid), or log "
        "every arm's probability"
    )


def _chosen_probabilities(log: BanditLog, k: int) -> np.ndarray:
    """An (n, K) matrix holding each row's chosen propensity at its action and NaN
    elsewhere: all the AIPW scores read (``_kernels.aipw_scores`` uses eₜ(Aₜ) only)."""
    probabilities = np.full((log.n, k), np.nan)
    probabilities[np.arange(log.n), log.actions.astype(np.int64)] = log.propensities
    return probabilities


def _aw_aipw(log: BanditLog, weights: str, floor_decay: float, k: int):
    weights = check_choice("weights", weights, WEIGHTS)
    if log.probabilities is None:
        if weights != "uniform":
            raise InvalidArgumentError("weights", _chosen_only(weights))
        probabilities = _chosen_probabilities(log, k)
    else:
        probabilities = np.ascontiguousarray(log.probabilities)
    scores = np.empty_like(probabilities)
    _kernels.aipw_scores(log.actions, log.rewards, probabilities, scores)
    if weights == "uniform":  # hₜ = 1 reads no probability (and no period allocation)
        h = np.ones_like(scores)
    else:
        h = aw_aipw_weights(_allocation(log, probabilities), weights, floor_decay)
    total = h.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = np.sum(h * scores, axis=0) / total
        terms = h * (scores - estimate) / total
    covariance = terms.T @ terms
    return estimate, covariance


def _naive(log: BanditLog, k: int):
    counts = np.bincount(log.actions, minlength=k).astype(float)
    sums = np.bincount(log.actions, log.rewards, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
        centred = log.rewards - mean[log.actions]
        variance = np.bincount(log.actions, centred * centred, minlength=k) / (counts - 1.0)
        return mean, np.diag(np.where(counts > 1, variance / counts, np.nan))


def _period_weighted(log: BanditLog, k: int):
    if log.periods is None:
        raise InvalidArgumentError("log", "period weighting needs a period column")
    labels, period = np.unique(log.periods, return_inverse=True)
    cells = period * k + log.actions
    size = labels.size * k
    n = np.bincount(cells, minlength=size).reshape(labels.size, k).astype(float)
    sums = np.bincount(cells, log.rewards, minlength=size).reshape(labels.size, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(n > 0, sums / n, 0.0)
        centred = log.rewards - means.ravel()[cells]
        squares = np.bincount(cells, centred * centred, minlength=size).reshape(labels.size, k)
        # cells with one row borrow the arm's pooled within-period variance
        pooled = squares.sum(axis=0) / np.maximum(n - 1.0, 0.0).sum(axis=0)
        cell_var = np.where(n > 1, squares / (n - 1.0), pooled)
        share = n.sum(axis=1, keepdims=True) / n.sum()
        served = n > 0
        missing = (~served & (n.sum(axis=0) > 0)).any(axis=0)
        weight = np.where(served, share, 0.0)
        weight = weight / weight.sum(axis=0)
        mean = np.sum(weight * means, axis=0)
        variance = np.sum(np.where(served, weight**2 * cell_var / n, 0.0), axis=0)
    if missing.any():
        warnings.warn(
            f"arms {np.flatnonzero(missing).tolist()} were not served in every period; their "
            "period weights are renormalized over the periods that served them",
            DegenerateDataWarning,
            stacklevel=4,
        )
    return mean, np.diag(variance)


def arm_inference(
    log: BanditLog, method: str, weights: str = "stable_var", floor_decay: float = 0.7
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(value, covariance, times played) of every arm by ``method``."""
    method = check_choice("method", method, METHODS)
    k = log.n_actions if log.n_actions is not None else int(log.actions.max()) + 1
    if method == "aw_aipw":
        value, covariance = _aw_aipw(log, weights, floor_decay, k)
    elif method == "naive":
        value, covariance = _naive(log, k)
    else:
        value, covariance = _period_weighted(log, k)
    played = np.bincount(log.actions, minlength=k)
    return value, covariance, played


def _labels(log: BanditLog, k: int) -> list[str]:
    return list(log.arms) if log.arms is not None else [str(a) for a in range(k)]


def arm_values(
    log: object,
    alpha: float = 0.05,
    *,
    method: str = "aw_aipw",
    weights: str = "stable_var",
    floor_decay: float = DEFAULT_FLOOR_DECAY,
    **columns: Any,
) -> pd.DataFrame:
    """Value of every arm with a normal interval: columns arm, action, n (times played),
    estimate, se, ci_low, ci_high, method. ``log`` as in :func:`~splitlab.ope.evaluate`.

    ``weights="stable_var"`` and ``"two_point"`` need the full logged probabilities of
    every arm; on a log that records only the chosen arm's propensity use
    ``weights="uniform"`` (plain AIPW, whose scores read only the chosen propensity — see
    the module docstring for when its interval is valid), which the other weights refuse
    with an :class:`~splitlab.errors.InvalidArgumentError` naming it.

    >>> log = {"action": [0, 1, 0, 1], "reward": [1.0, 0.0, 1.0, 1.0],
    ...        "propensity": [0.5] * 4, "probabilities": [[0.5, 0.5]] * 4}
    >>> arm_values(log, method="naive")["estimate"].tolist()
    [1.0, 0.5]
    >>> chosen_only = {"action": [0, 1, 0, 1], "reward": [1.0, 0.0, 1.0, 1.0],
    ...                "propensity": [0.5] * 4}
    >>> arm_values(chosen_only, weights="uniform")["estimate"].tolist()
    [1.25, 0.25]
    >>> arm_values(chosen_only)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    splitlab.errors.InvalidArgumentError: weights: weights='stable_var' needs the full ...
    """
    alpha = check_alpha(alpha)
    bandit_log = load_log(log, **columns)
    value, covariance, played = arm_inference(bandit_log, method, weights, floor_decay)
    se = np.sqrt(np.diag(covariance))
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    labels = _labels(bandit_log, value.size)
    table = pd.DataFrame(
        {
            "arm": labels, "action": np.arange(value.size), "n": played, "estimate": value,
            "se": se, "ci_low": value - z * se, "ci_high": value + z * se,
            "method": _method_name(method, weights),
        }
    )  # fmt: skip
    parameters = {"alpha": alpha, "method": method, "weights": weights, "floor_decay": floor_decay}
    table.attrs.update(_provenance(bandit_log, "ope.arm_values", parameters))
    return table


def _method_name(method: str, weights: str) -> str:
    return f"aw_aipw/{weights}" if method == "aw_aipw" else method


def contrasts(
    value: np.ndarray, covariance: np.ndarray, control: int, relative: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Effects of every arm against ``control`` and their delta-method se."""
    k = value.size
    base = value[control]
    gradient = np.zeros((k, k))
    with np.errstate(invalid="ignore", divide="ignore"):
        if relative:
            effect = value / base - 1.0
            gradient[np.arange(k), np.arange(k)] = 1.0 / base
            gradient[:, control] += -value / base**2
        else:
            effect = value - base
            gradient[np.arange(k), np.arange(k)] = 1.0
            gradient[:, control] -= 1.0
    variance = np.einsum("ij,jk,ik->i", gradient, covariance, gradient)
    return effect, np.sqrt(np.maximum(variance, 0.0))


def arm_contrasts(
    log: object,
    control: int | str = 0,
    alpha: float = 0.05,
    *,
    method: str = "aw_aipw",
    weights: str = "stable_var",
    floor_decay: float = DEFAULT_FLOOR_DECAY,
    relative: bool = False,
    **columns: Any,
) -> pd.DataFrame:
    """Every arm against ``control`` (an action index or arm label): columns arm, control,
    value_arm, value_control, effect, se, ci_low, ci_high, p_value (two-sided z), method.
    ``weights`` as in :func:`arm_values`: ``"uniform"`` on a log with only the chosen arm's
    propensity.

    >>> log = {"action": [0, 1, 0, 1], "reward": [1.0, 0.0, 1.0, 1.0],
    ...        "propensity": [0.5] * 4, "probabilities": [[0.5, 0.5]] * 4}
    >>> arm_contrasts(log, method="naive")["effect"].tolist()
    [-0.5]
    """
    alpha = check_alpha(alpha)
    bandit_log = load_log(log, **columns)
    value, covariance, played = arm_inference(bandit_log, method, weights, floor_decay)
    labels = _labels(bandit_log, value.size)
    if isinstance(control, str):
        if control not in labels:
            raise InvalidArgumentError("control", f"unknown arm {control!r}; arms are {labels}")
        index = labels.index(control)
    else:
        index = int(control)
        if index != control or not 0 <= index < value.size:
            raise InvalidArgumentError("control", f"must be an arm index below {value.size}")
    effect, se = contrasts(value, covariance, index, relative)
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_value = 2.0 * stats.norm.sf(np.abs(effect / se))
    others = [a for a in range(value.size) if a != index]
    table = pd.DataFrame(
        {
            "arm": [labels[a] for a in others], "control": labels[index],
            "n_arm": played[others], "n_control": played[index],
            "value_arm": value[others], "value_control": value[index],
            "effect": effect[others], "se": se[others],
            "ci_low": effect[others] - z * se[others], "ci_high": effect[others] + z * se[others],
            "p_value": p_value[others], "method": _method_name(method, weights),
            "scale": "relative" if relative else "absolute",
        }
    )  # fmt: skip
    parameters = {"alpha": alpha, "method": method, "weights": weights,
                  "floor_decay": floor_decay, "relative": relative, "control": control}  # fmt: skip
    table.attrs.update(_provenance(bandit_log, "ope.arm_contrasts", parameters))
    return table


def aipw_readout(
    source: object,
    *,
    experiment: str,
    variant: str,
    control: Callable[[object], str],
    metrics: Sequence[Any],
    alpha: float,
    relative: bool,
    weights: str = "stable_var",
    floor_decay: float = DEFAULT_FLOOR_DECAY,
    action: str = "action",
    propensity: str = "propensity",
    probabilities: str | Sequence[str] = "prob_",
    timestamp: str = "timestamp",
    period: str = "period",
    context: str = "x_",
) -> pd.DataFrame:
    """Rows of ``Analyzer.analyze(method="aipw")``: AW-AIPW arm values and contrasts
    against each experiment's control, per (experiment, metric, variant ≠ control).

    A source without the per-arm probability columns (only the chosen arm's
    ``propensity``) takes ``weights="uniform"`` — ``method_options={"weights": "uniform"}``,
    plain AIPW from the chosen propensity (see the module docstring for when its interval
    is valid); the adaptive weights refuse it with an error that says so.

    >>> import pandas as pd
    >>> from types import SimpleNamespace
    >>> frame = pd.DataFrame({"experiment": "e", "arm": ["a", "b", "a", "b"],
    ...                       "action": [0, 1, 0, 1], "propensity": 0.5,
    ...                       "reward": [1.0, 0.0, 1.0, 1.0]})
    >>> metric = SimpleNamespace(name="reward", y="reward", kind="mean", xs=(),
    ...                          guardrail=False, higher_is_better=True)
    >>> rows = aipw_readout(frame, experiment="experiment", variant="arm",
    ...                     control=lambda name: "a", metrics=[metric], alpha=0.05,
    ...                     relative=False, weights="uniform")
    >>> rows[["variant", "mean_control", "mean_variant", "method"]].values.tolist()
    [['b', 1.25, 0.25, 'aipw/uniform']]
    """
    import narwhals as nw

    from splitlab.ope.logs import _numbered
    from splitlab.sources import open_source

    weights = check_choice("weights", weights, WEIGHTS)
    opened = open_source(source)
    schema = list(opened.columns)
    for metric in metrics:
        if metric.kind in ("ratio", "quantile") or metric.xs:
            raise InvalidArgumentError(
                "metrics", f"metric {metric.name!r}: method='aipw' takes plain mean metrics only"
            )
    listed = _numbered(schema, probabilities) if isinstance(probabilities, str) else probabilities
    if not listed and weights != "uniform":
        raise InvalidArgumentError(
            "method_options",
            f"method='aipw' with weights={weights!r} reads a decision log with the logged "
            f"probabilities of every arm (columns {probabilities}0, {probabilities}1, …), "
            "which the source lacks; with only the chosen arm's propensity pass "
            "method_options={'weights': 'uniform'} (plain AIPW; see splitlab.ope.adaptive)",
        )
    contexts = _numbered(schema, context)
    wanted = [experiment, variant, action, propensity, *listed, *contexts]
    wanted += [m.y for m in metrics]
    wanted += [c for c in (timestamp, period) if c in schema]
    for column in wanted:
        if column not in schema:
            raise InvalidArgumentError(
                "method_options", f"method='aipw' needs column {column!r}, not in the source"
            )
    selected = list(dict.fromkeys(wanted))
    frame = opened.frame.select([nw.col(c) for c in selected]).collect().to_pandas()
    rows = []
    for name, group in frame.groupby(experiment, sort=True):
        label = control(name)
        for metric in metrics:
            log = load_log(
                group, action=action, reward=metric.y, propensity=propensity,
                probabilities=list(listed) or None, context=contexts, period=period,
                timestamp=timestamp, arm=variant,
            )  # fmt: skip
            value, covariance, played = arm_inference(log, "aw_aipw", weights, floor_decay)
            labels = _labels(log, value.size)
            if label not in labels:
                raise InvalidArgumentError(
                    "control",
                    f"label {label!r} is not an arm of experiment {name!r} (arms: {labels})",
                )
            index = labels.index(label)
            effect, se = contrasts(value, covariance, index, relative)
            absolute, _ = contrasts(value, covariance, index, False)
            z = stats.norm.ppf(1.0 - alpha / 2.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                p_value = 2.0 * stats.norm.sf(np.abs(effect / se))
            for arm in range(value.size):
                if arm == index or played[arm] == 0:
                    continue
                with np.errstate(invalid="ignore", divide="ignore"):
                    relative_effect = absolute[arm] / abs(value[index])
                rows.append(
                    {
                        "experiment": name, "segment": "all", "metric": metric.name,
                        "variant": labels[arm], "n_control": int(played[index]),
                        "n_variant": int(played[arm]), "mean_control": value[index],
                        "mean_variant": value[arm], "effect": effect[arm],
                        "relative_effect": effect[arm] if relative else relative_effect,
                        "se": se[arm], "ci_low": effect[arm] - z * se[arm],
                        "ci_high": effect[arm] + z * se[arm], "p_value": p_value[arm],
                        "method": f"aipw/{weights}",
                        "scale": "relative" if relative else "absolute", "error": "",
                        "guardrail": metric.guardrail,
                        "higher_is_better": metric.higher_is_better,
                        "lower_is_better": not metric.higher_is_better,
                        "excluded": log.excluded,
                    }
                )  # fmt: skip
    return pd.DataFrame(rows)
