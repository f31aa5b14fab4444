"""Post-stratified A/B estimates on summary statistics (GrowthBook gbstats' algorithm).

Each comparison comes as per-stratum summaries: the LAST axis of ``control`` and
``treatment`` indexes strata (browser, country, a pre-period bucket, ...), the leading axes
are independent comparisons, computed together. Within stratum s the cell gives a control
mean α₀ₛ and an effect α₁ₛ with covariance Σₛ/nₛ (nₛ the stratum's units in both arms);
the strata are weighted by their observed shares ν̂ₛ = nₛ/N, and because those shares are
themselves random (multinomial), the covariance of the weighted means ᾱ = Σₛ ν̂ₛ αₛ is

    Cov(ᾱ) = [Σₛ ν̂ₛ αₛαₛᵀ − ᾱᾱᵀ] / N  +  Σₛ ν̂ₛ Σₛ / N,

the first term being the uncertainty of the weights (α(diag ν̂ − ν̂ν̂ᵀ)αᵀ/N), the second the
within-stratum one (Σₛ ν̂ₛ² Σₛ/nₛ). The absolute effect is ᾱ₁ with variance Cov₁₁; the
relative lift is ᾱ₁/|ᾱ₀| with the delta-method gradient (−ᾱ₁/ᾱ₀², 1/ᾱ₀): its denominator
is the post-stratified control mean, not the pooled one. This is post-stratification
(Miratrix, Sekhon & Yu 2013, "Adjusting treatment effect estimates by post-stratification
in randomized experiments", JRSS-B 75(2)) with the variance of gbstats
(``packages/stats/gbstats/models/tests.py`` of the GrowthBook repository at commit
8f1db4456915a8e7b7faf23d5632ca7219d2f469: ``CreateStrataResult``,
``CreateStrataResultRegressionAdjusted``, ``CreateStrataResultRatio``,
``PostStratificationSummary`` and ``EffectMomentsPostStratification``).

Per stratum:

- means and proportions (``Moments``): α = (ȳc, ȳt − ȳc), with var_c/n_c and var_t/n_t;
- regression adjustment (``JointMoments``, x the pre-period covariate): the least-squares fit
  y = γ₀ + γ₁T + γ₂x within the stratum (one slope for both arms), α = (γ₀ + γ₂x̄, γ₁) at
  the stratum's covariate mean x̄, with residual variance RSS/(n − 3) and the uncertainty of
  x̄ added to the control mean's variance ((Var γ₂ + γ₂²)·var(x), x̄'s delta term); the lift
  divides by this adjusted control mean (:func:`~splitlab.stats.adjustment.cuped_test`
  divides by the unadjusted ȳc);
- ratio metrics (``JointMoments`` with ``kind="ratio"``, x the denominator): α = (m̄c, m̄t −
  m̄c, d̄c, d̄t − d̄c) and the effect (m̄c + Δm)/(d̄c + Δd) − m̄c/d̄c of the weighted means, or
  its lift, by the delta method.

Degenerate strata follow gbstats. A stratum where an arm has fewer than 2 units or no
variance (for regression adjustment: of y) is merged into the largest stratum (by units,
first among equals), and the ``note`` names it. Regression adjustment is dropped within a
stratum where x is constant in an arm, and everywhere where x is constant in an arm over all
strata. Where one stratum is left, or the post-stratified estimate cannot be computed (the
largest stratum has an arm without variance, the variance is not positive, the relative
lift's control mean is zero), the result is the unstratified test of the pooled data
(:func:`~splitlab.stats.frequentist.ttest`, :func:`~splitlab.stats.adjustment.cuped_test`,
:func:`~splitlab.stats.frequentist.ratio_test`), ``stratified`` is False and the note says
why (as gbstats, the single-stratum regression-adjusted result is the plain t-test where x
is constant in an arm). The reference distribution is Student's t with the Welch degrees of
freedom of the pooled arms (CUPED-adjusted with the pooled θ for regression adjustment), as
gbstats uses. Proportions keep the variance p(1 − p) within a stratum; merged strata and,
with two or more strata, the pooled arms take the sample variance (ddof 1), because gbstats'
sum of two ProportionStatistic is a SampleMeanStatistic.

Unlike gbstats, an absolute effect does not need a non-zero control mean (gbstats reports
ZERO_NEGATIVE_BASELINE_VARIATION on both scales).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from splitlab._validation import (
    broadcast,
    check_alpha,
    check_alternative,
    check_bool,
    check_choice,
)
from splitlab.errors import InvalidArgumentError
from splitlab.stats.adjustment import cuped_difference
from splitlab.stats.frequentist import Difference, finish, mean_difference, ratio_difference
from splitlab.stats.moments import LOST_PRECISION, JointMoments, Moments
from splitlab.stats.results import EffectResult, RowErrors

_KINDS = ("cuped", "ratio")
_MERGE_REASON = "an arm has fewer than 2 units or no variance"


@dataclass(frozen=True, eq=False)
class PoststratifiedResult(EffectResult):
    """An :class:`~splitlab.stats.results.EffectResult` of :func:`poststratified_test` with
    the strata ``weights`` used (shape of the input: one per stratum, last; 0 for a stratum
    merged into the largest, NaN where the result is the unstratified test),
    ``stratified`` (False where it is the unstratified test: postStratificationApplied of
    gbstats' ``models/tests.py`` at commit 8f1db445) and a ``note`` naming merged strata and
    fallbacks.

    >>> c = Moments(n=[100, 300], mean=[1.0, 5.0], var=[1.0, 2.0])
    >>> t = Moments(n=[120, 280], mean=[1.2, 5.5], var=[1.0, 2.0])
    >>> result = poststratified_test(c, t)
    >>> result.weights.tolist(), bool(result.stratified)
    ([0.275, 0.725], True)
    """

    weights: Any = None
    stratified: Any = None
    note: Any = None


# ----------------------------------------------------------------------------- inputs


def _strata_count(name: str, value: Moments | JointMoments) -> int:
    if len(value.shape) == 0 or value.shape[-1] == 0:
        raise InvalidArgumentError(
            name, f"needs a strata axis: one entry per stratum, last (got shape {value.shape})"
        )
    return value.shape[-1]


def _arms(control: object, treatment: object, kind: object) -> tuple[str, dict, dict]:
    """Validated (kind, control arrays, treatment arrays), broadcast to one shape (..., K)."""
    joint = isinstance(control, JointMoments)
    if not isinstance(control, (Moments, JointMoments)):
        raise InvalidArgumentError(
            "control", f"must be splitlab.Moments or JointMoments, got {type(control).__name__}"
        )
    expected = JointMoments if joint else Moments
    if not isinstance(treatment, expected):
        raise InvalidArgumentError(
            "treatment",
            f"must be splitlab.{expected.__name__} like control, got {type(treatment).__name__}",
        )
    if joint:
        kind = "cuped" if kind is None else check_choice("kind", kind, _KINDS)
    elif kind is not None:
        raise InvalidArgumentError("kind", f"applies to JointMoments only; got {kind!r}")
    else:
        kind = "mean"
    strata_c = _strata_count("control", control)
    strata_t = _strata_count("treatment", treatment)
    if strata_c != strata_t:
        raise InvalidArgumentError(
            "treatment",
            f"has {strata_t} strata on its last axis, control has {strata_c}: the strata axes "
            "must match",
        )
    leading = broadcast(
        control=np.empty(control.shape[:-1]), treatment=np.empty(treatment.shape[:-1])
    )[0].shape
    shape = (*leading, strata_c)
    arms_c, arms_t = _arrays(control, shape), _arrays(treatment, shape)
    return kind, arms_c, arms_t


def _arrays(value: Moments | JointMoments, shape: tuple[int, ...]) -> dict:
    """One arm's summaries as named arrays of ``shape``, with M2 and the co-moment."""
    if isinstance(value, JointMoments):
        items = {
            "n": value.n, "mean_y": value.mean_y, "m2_y": value.y.m2, "var_y": value.var_y,
            "mean_x": value.mean_x, "m2_x": value.x.m2, "var_x": value.var_x,
            "co": value.co_moment, "cov": value.cov,
        }  # fmt: skip
    else:
        items = {"n": value.n, "mean_y": value.mean, "m2_y": value.m2, "var_y": value.var}
    arrays: dict = {key: np.broadcast_to(array, shape) for key, array in items.items()}
    arrays["ddof"] = value.ddof
    return arrays


# ----------------------------------------------------------------------------- pooling


def _pool(arm: dict, mask: np.ndarray, ddof=None) -> dict:
    """The summaries of the strata in ``mask`` merged into one (exact: Chan et al.'s
    update), the strata axis removed. Two or more strata merged have sample variances
    (ddof 1) even for proportions, as gbstats' sum of two ProportionStatistic is a
    SampleMeanStatistic; ``ddof`` overrides the per-row choice."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        weight = np.where(mask, arm["n"], 0.0)
        n = weight.sum(axis=-1)
        safe = np.where(n > 0, n, 1.0)
        if ddof is None:
            ddof = np.where(mask.sum(axis=-1) > 1, 1, arm["ddof"])
        pooled = {"n": n, "ddof": ddof}
        deviations = {}
        for variable in ("y", "x"):
            if f"mean_{variable}" not in arm:
                continue
            mean = np.where(mask, weight * arm[f"mean_{variable}"], 0.0).sum(axis=-1) / safe
            deviation = np.where(mask, arm[f"mean_{variable}"] - mean[..., None], 0.0)
            deviations[variable] = deviation
            pooled[f"mean_{variable}"] = mean
            pooled[f"m2_{variable}"] = np.where(mask, arm[f"m2_{variable}"], 0.0).sum(axis=-1) + (
                weight * deviation**2
            ).sum(axis=-1)
        if "co" in arm:
            pooled["co"] = np.where(mask, arm["co"], 0.0).sum(axis=-1) + (
                weight * deviations["y"] * deviations["x"]
            ).sum(axis=-1)
    return _with_variances(pooled)


def _with_variances(arm: dict) -> dict:
    with np.errstate(invalid="ignore", divide="ignore"):
        divisor = np.maximum(arm["n"] - arm["ddof"], 1.0)
        arm["var_y"] = np.where(arm["n"] > 0, arm["m2_y"] / divisor, 0.0)
        if "m2_x" in arm:
            arm["var_x"] = np.where(arm["n"] > 0, arm["m2_x"] / divisor, 0.0)
            arm["cov"] = np.where(arm["n"] > 0, arm["co"] / divisor, 0.0)
    return arm


def _cells(arm: dict, keep: np.ndarray, largest: np.ndarray, merged: dict) -> dict:
    """Strata for analysis: the largest carries the merged summaries, merged strata are
    empty (weight 0), the others are as given."""
    cells = {"ddof": np.where(largest, merged["ddof"][..., None], arm["ddof"])}
    for key, value in arm.items():
        if key == "ddof" or key.startswith("var_"):
            continue
        cells[key] = np.where(largest, merged[key][..., None], np.where(keep, value, 0.0))
    return _with_variances(cells)


def _joint(arm: dict) -> JointMoments:
    return JointMoments._trusted(
        arm["n"], arm["mean_y"], arm["var_y"], arm["mean_x"], arm["var_x"], arm["cov"],
        arm["ddof"],
    )  # fmt: skip


def _ratio_variance(arm: dict) -> np.ndarray:
    """Per-unit delta-method variance of the arm's ratio m̄/d̄; 0 where d̄ = 0 (gbstats)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mean_x = np.where(arm["mean_x"] != 0, arm["mean_x"], 1.0)
        ratio = arm["mean_y"] / mean_x
        variance = (arm["var_y"] - 2 * ratio * arm["cov"] + ratio**2 * arm["var_x"]) / mean_x**2
    return np.where(arm["mean_x"] != 0, variance, 0.0)


def _viable(kind: str, control: dict, treatment: dict) -> np.ndarray:
    """A stratum can be estimated on its own: both arms have 2+ units and variance."""
    if kind == "ratio":
        spread_c, spread_t = _ratio_variance(control), _ratio_variance(treatment)
    else:
        spread_c, spread_t = control["var_y"], treatment["var_y"]
    return (control["n"] >= 2) & (treatment["n"] >= 2) & (spread_c > 0) & (spread_t > 0)


# ----------------------------------------------------------------------------- strata


def _symmetric(rows: list[list[np.ndarray]]) -> np.ndarray:
    """A (..., L, L) array from the upper triangle's entries, row by row."""
    size = len(rows)
    entries = [[None] * size for _ in range(size)]
    for i, row in enumerate(rows):
        for offset, value in enumerate(row):
            entries[i][i + offset] = entries[i + offset][i] = value
    return np.stack([np.stack(row, axis=-1) for row in entries], axis=-2)


def _strata_mean(control: dict, treatment: dict) -> tuple[np.ndarray, np.ndarray]:
    """α = (ȳc, ȳt − ȳc) and n·Cov(α) per stratum (gbstats' CreateStrataResult)."""
    n = control["n"] + treatment["n"]
    alpha = np.stack([control["mean_y"], treatment["mean_y"] - control["mean_y"]], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        scaled_c = control["var_y"] * n / control["n"]
        scaled_t = treatment["var_y"] * n / treatment["n"]
    return alpha, _symmetric([[scaled_c, -scaled_c], [scaled_c + scaled_t]])


def _strata_cuped(control: dict, treatment: dict, adjust: np.ndarray):
    """Per stratum, y = γ₀ + γ₁T + γ₂x fitted by least squares where ``adjust``; the
    unadjusted strata estimate elsewhere (gbstats' CreateStrataResultRegressionAdjusted)."""
    alpha, covariance = _strata_mean(control, treatment)
    n_c, n_t = control["n"], treatment["n"]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        n = n_c + n_t
        m2_x = control["m2_x"] + treatment["m2_x"]  # within arms
        slope = (control["co"] + treatment["co"]) / m2_x
        rss = control["m2_y"] + treatment["m2_y"] - slope * (control["co"] + treatment["co"])
        sigma2 = rss / (n - 3.0)
        gap = treatment["mean_x"] - control["mean_x"]
        shift = n_t * gap / n  # x̄ − x̄c: the stratum's covariate mean from control's
        var_x = (m2_x + n_c * n_t * gap**2 / n) / (n - 1.0)  # x̄'s spread, both arms pooled
        adjusted = np.stack(
            [
                control["mean_y"] + slope * shift,
                treatment["mean_y"] - control["mean_y"] - slope * gap,
            ],
            axis=-1,
        )
        c00 = n * sigma2 * (1 / n_c + shift**2 / m2_x) + (sigma2 / m2_x + slope**2) * var_x
        c11 = n * sigma2 * (1 / n_c + 1 / n_t + gap**2 / m2_x)
        c01 = -n * sigma2 * (1 / n_c + shift * gap / m2_x)
    adjusted_covariance = _symmetric([[c00, c01], [c11]])
    alpha = np.where(adjust[..., None], adjusted, alpha)
    covariance = np.where(adjust[..., None, None], adjusted_covariance, covariance)
    return alpha, covariance


def _strata_ratio(control: dict, treatment: dict) -> tuple[np.ndarray, np.ndarray]:
    """α = (m̄c, m̄t − m̄c, d̄c, d̄t − d̄c) and n·Cov(α) per stratum (gbstats'
    CreateStrataResultRatio)."""
    n = control["n"] + treatment["n"]
    alpha = np.stack(
        [
            control["mean_y"],
            treatment["mean_y"] - control["mean_y"],
            control["mean_x"],
            treatment["mean_x"] - control["mean_x"],
        ],
        axis=-1,
    )
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        scale_c, scale_t = n / control["n"], n / treatment["n"]
        mm_c, md_c, dd_c = (control[key] * scale_c for key in ("var_y", "cov", "var_x"))
        mm_t, md_t, dd_t = (treatment[key] * scale_t for key in ("var_y", "cov", "var_x"))
    covariance = _symmetric(
        [
            [mm_c, -mm_c, md_c, -md_c],
            [mm_c + mm_t, -md_c, md_c + md_t],
            [dd_c, -dd_c],
            [dd_c + dd_t],
        ]
    )
    return alpha, covariance


# ----------------------------------------------------------------------------- summary


def _summary(alpha, covariance, weights, n_total):
    """Weighted means ᾱ and their covariance with the multinomial weights' uncertainty
    (gbstats' covariance_of_multinomial_weighted_means)."""
    used = weights > 0
    alpha = np.where(used[..., None], alpha, 0.0)
    covariance = np.where(used[..., None, None], covariance, 0.0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mean = (weights[..., None] * alpha).sum(axis=-2)
        spread = alpha[..., :, None] * alpha[..., None, :] + covariance
        second = (weights[..., None, None] * spread).sum(axis=-3)
        total = (second - mean[..., :, None] * mean[..., None, :]) / n_total[..., None, None]
    return mean, total


def _mean_estimate(mean, covariance, relative):
    control, effect = mean[..., 0], mean[..., 1]
    if not relative:
        return effect, covariance[..., 1, 1], np.ones(effect.shape, dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        gradient = np.stack([-effect / control**2, 1.0 / control], axis=-1)
        lift = effect / np.abs(control)
    return lift, _quadratic(gradient, covariance), control != 0


def _ratio_estimate(mean, covariance, relative):
    m_c, m_gap, d_c, d_gap = (mean[..., i] for i in range(4))
    m_t, d_t = m_c + m_gap, d_c + d_gap
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if relative:
            top, bottom = d_c * m_t, m_c * d_t
            effect = (top / bottom - 1.0) * np.sign(m_c / d_c)
            gradient = np.stack(
                [
                    (d_c * bottom - d_t * top) / bottom**2,
                    d_c / bottom,
                    (m_t * bottom - m_c * top) / bottom**2,
                    -top / (m_c * d_t**2),
                ],
                axis=-1,
            )
            ok = (m_c != 0) & (d_c != 0) & (d_t != 0)
        else:
            effect = m_t / d_t - m_c / d_c
            d_effect = 1.0 / d_t
            d_gap_den = -m_t / d_t**2
            gradient = np.stack(
                [d_effect - 1.0 / d_c, d_effect, d_gap_den + m_c / d_c**2, d_gap_den], axis=-1
            )
            ok = (d_c != 0) & (d_t != 0)
    return effect, _quadratic(gradient, covariance), ok


def _quadratic(gradient, covariance):
    with np.errstate(invalid="ignore", over="ignore"):
        return (gradient[..., :, None] * covariance * gradient[..., None, :]).sum(axis=(-2, -1))


# ----------------------------------------------------------------------------- notes


def _append(notes: np.ndarray, mask: np.ndarray, text) -> np.ndarray:
    """Add ``text`` (a string or an object array) to the notes of the rows in ``mask``."""
    if not np.any(mask):
        return notes
    separator = np.where(notes == "", "", "; ").astype(object)
    return np.where(mask, notes + separator + text, notes)


def _strata_list(flags: np.ndarray) -> np.ndarray:
    """'stratum 3' / 'strata 1, 3' per row, from a (..., K) mask (a loop over strata)."""
    listed = np.full(flags.shape[:-1], "", dtype=object)
    for k in range(flags.shape[-1]):
        separator = np.where(listed == "", "", ", ").astype(object)
        listed = np.where(flags[..., k], listed + separator + str(k), listed)
    plural = flags.sum(axis=-1) > 1
    return np.where(plural, "strata " + listed, "stratum " + listed)


def _index_text(index: np.ndarray) -> np.ndarray:
    return np.asarray(index).astype(str).astype(object)


# ----------------------------------------------------------------------------- estimate


def _poststratify(control, treatment, relative, kind):
    """Everything :func:`poststratified_test` reports, for validated inputs."""
    kind, arm_c, arm_t = _arms(control, treatment, kind)
    relative = check_bool("relative", relative)
    shape = arm_c["n"].shape[:-1]
    strata = arm_c["n"].shape[-1]
    errors = RowErrors(shape)
    for k in range(strata):
        for arm, name in ((arm_c, "control"), (arm_t, "treatment")):
            lost = np.isnan(arm["var_y"][..., k])
            if "var_x" in arm:
                lost |= np.isnan(arm["var_x"][..., k])
            errors.flag(lost, f"stratum {k}: {name} {LOST_PRECISION}")

    every = np.ones(arm_c["n"].shape, dtype=bool)
    pooled_c = _pool(arm_c, every, ddof=1 if strata > 1 else arm_c["ddof"])
    pooled_t = _pool(arm_t, every, ddof=1 if strata > 1 else arm_t["ddof"])

    # the unstratified test of the pooled arms: its df, and the result wherever the
    # post-stratified estimate is not computed
    if kind == "mean":
        fallback = mean_difference(
            pooled_c["mean_y"], pooled_c["var_y"], pooled_c["n"],
            pooled_t["mean_y"], pooled_t["var_y"], pooled_t["n"], relative=relative,
        )  # fmt: skip
    elif kind == "cuped":
        fallback = cuped_difference(_joint(pooled_c), _joint(pooled_t), relative=relative)[0]
    else:
        fallback = ratio_difference(_joint(pooled_c), _joint(pooled_t), relative=relative)
    for message in np.unique(fallback.errors.messages[fallback.errors.bad]):
        errors.flag(fallback.errors.bad & (fallback.errors.messages == message), message)

    # strata that cannot be estimated alone are merged into the largest (gbstats'
    # combine_cells_for_analysis)
    size = arm_c["n"] + arm_t["n"]
    largest_index = np.argmax(size, axis=-1)
    largest = np.arange(strata) == largest_index[..., None]
    merged_away = ~_viable(kind, arm_c, arm_t) & ~largest
    keep = ~merged_away
    group = largest | merged_away
    cell_c = _cells(arm_c, keep, largest, _pool(arm_c, group))
    cell_t = _cells(arm_t, keep, largest, _pool(arm_t, group))
    cells_left = keep.sum(axis=-1)
    largest_ok = np.take_along_axis(
        _viable(kind, cell_c, cell_t), largest_index[..., None], axis=-1
    )[..., 0]

    notes = np.full(shape, "", dtype=object)
    any_merged = merged_away.any(axis=-1)
    if any_merged.any():
        text = _strata_list(merged_away) + " merged into the largest stratum ("
        text = text + _index_text(largest_index) + f"): {_MERGE_REASON}"
        notes = _append(notes, any_merged, text)

    if kind == "cuped":
        adjust_all = (pooled_c["var_x"] > 0) & (pooled_t["var_x"] > 0)
        notes = _append(notes, ~adjust_all, "var(x) is zero in an arm: strata unadjusted")
        adjust = (cell_c["var_x"] > 0) & (cell_t["var_x"] > 0) & adjust_all[..., None]
        unadjusted = keep & ~adjust & adjust_all[..., None]
        if unadjusted.any():
            text = _strata_list(unadjusted) + " unadjusted: var(x) is zero in an arm"
            notes = _append(notes, unadjusted.any(axis=-1), text)
        alpha, covariance = _strata_cuped(cell_c, cell_t, adjust)
    elif kind == "ratio":
        alpha, covariance = _strata_ratio(cell_c, cell_t)
    else:
        alpha, covariance = _strata_mean(cell_c, cell_t)

    n_total = size.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = (cell_c["n"] + cell_t["n"]) / np.where(n_total > 0, n_total, 1.0)[..., None]
    mean, total = _summary(alpha, covariance, weights, n_total)
    estimate = _ratio_estimate if kind == "ratio" else _mean_estimate
    effect, variance, defined = estimate(mean, total, relative)
    with np.errstate(invalid="ignore"):
        positive = np.isfinite(variance) & (variance > 0)

    stratified = (cells_left > 1) & largest_ok & positive & defined & np.isfinite(effect)
    reasons = (
        (cells_left <= 1, "one stratum: unstratified test"),
        (
            ~largest_ok,
            "the largest stratum has an arm with fewer than 2 units or no variance: "
            "unstratified test",
        ),
        (~defined, "post-stratified control mean is zero: unstratified test"),
        (~positive, "post-stratified variance is not positive: unstratified test"),
    )
    explained = np.zeros(shape, dtype=bool)
    for condition, message in reasons:
        notes = _append(notes, condition & ~explained, message)
        explained |= condition

    fallback_effect, fallback_se = fallback.effect, fallback.se
    if kind == "cuped":
        # gbstats: with x constant in an arm, its single-stratum path is the plain t-test
        plain = mean_difference(
            pooled_c["mean_y"], pooled_c["var_y"], pooled_c["n"],
            pooled_t["mean_y"], pooled_t["var_y"], pooled_t["n"], relative=relative,
        )  # fmt: skip
        single = (cells_left <= 1) & ~adjust_all
        fallback_effect = np.where(single, plain.effect, fallback_effect)
        fallback_se = np.where(single, plain.se, fallback_se)
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.where(stratified, variance, 1.0))
    difference = Difference(
        np.where(stratified, effect, fallback_effect),
        np.where(stratified, se, fallback_se),
        fallback.df,
        errors,
    )
    weights = np.where(stratified[..., None], weights, np.nan)
    return difference, weights, stratified, notes, kind


def poststratified_difference(
    control: Moments | JointMoments,
    treatment: Moments | JointMoments,
    *,
    relative: bool = False,
    kind: str | None = None,
) -> Difference:
    """The post-stratified effect, its standard error and the Welch degrees of freedom,
    for callers that build their own interval (e.g. a confidence sequence).

    Inputs and estimate are those of :func:`poststratified_test` (the last axis indexes
    strata; post-stratification as in Miratrix, Sekhon & Yu 2013, with the variance of
    gbstats' ``packages/stats/gbstats/models/tests.py`` at commit 8f1db445, see the module
    docstring); rows that cannot be computed carry their reason in ``errors`` (their numbers
    are not blanked here).

    >>> c = Moments(n=[100, 300], mean=[1.0, 5.0], var=[1.0, 2.0])
    >>> t = Moments(n=[120, 280], mean=[1.2, 5.5], var=[1.0, 2.0])
    >>> d = poststratified_difference(c, t)
    >>> w, gap = np.array([220, 580]) / 800, np.array([0.2, 0.5])  # shares, strata effects
    >>> within = w**2 @ [1 / 100 + 1 / 120, 2 / 300 + 2 / 280]
    >>> shares = (w @ gap**2 - (w @ gap) ** 2) / 800  # the weights' multinomial noise
    >>> bool(np.isclose(d.effect, w @ gap)), bool(np.isclose(d.se, np.sqrt(within + shares)))
    (True, True)
    """
    return _poststratify(control, treatment, relative, kind)[0]


def poststratified_test(
    control: Moments | JointMoments,
    treatment: Moments | JointMoments,
    *,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    relative: bool = False,
    kind: str | None = None,
) -> PoststratifiedResult:
    """Post-stratified test of treatment − control on per-stratum summary statistics.

    ``control`` and ``treatment`` are :class:`~splitlab.stats.moments.Moments` (means,
    proportions) or :class:`~splitlab.stats.moments.JointMoments`, whose LAST axis indexes
    the strata (the same number in both); leading axes are independent comparisons and
    broadcast. With JointMoments, ``kind`` says what x is: "cuped" (the default: a
    pre-period covariate, regression adjustment within each stratum) or "ratio" (the
    denominator of a ratio metric Σy/Σx).

    The estimate weights each stratum by its share of the units, and its variance includes
    the uncertainty of those shares (post-stratification, Miratrix, Sekhon & Yu 2013; the
    formulas and fallbacks of GrowthBook's gbstats, ``packages/stats/gbstats/models/
    tests.py`` at commit 8f1db4456915a8e7b7faf23d5632ca7219d2f469, matched to 1e-6 in
    ``tests/test_stratification.py``). The interval and p-value use Student's t with the
    Welch degrees of freedom of the pooled arms, as gbstats does. Strata without variance
    in an arm are merged into the largest; with one stratum the result is the unstratified
    test (see the module docstring and the result's ``note``).

    >>> c = Moments(n=[100, 300], mean=[1.0, 5.0], var=[1.0, 2.0])
    >>> t = Moments(n=[120, 280], mean=[1.2, 5.5], var=[1.0, 2.0])
    >>> result = poststratified_test(c, t)
    >>> round(float(result.effect), 4), round(float(result.se), 4), bool(result.stratified)
    (0.4175, 0.0931, True)
    >>> from splitlab.stats.frequentist import ttest
    >>> pooled = ttest(c[0] + c[1], t[0] + t[1])  # unstratified: the same df, a wider se
    >>> bool(np.isclose(result.df, pooled.df)), round(float(pooled.se), 4)
    (True, 0.1608)
    """
    alpha = check_alpha(alpha)
    alternative = check_alternative(alternative)
    difference, weights, stratified, notes, kind = _poststratify(control, treatment, relative, kind)
    result = finish(
        difference,
        alpha=alpha,
        alternative=alternative,
        method="poststratified",
        scale="relative" if relative else "absolute",
        params={"kind": kind},
        result_type=PoststratifiedResult,
        note=notes,
    )
    bad = difference.errors.bad
    weights = np.where(bad[..., None], np.nan, weights)
    return replace(result, weights=weights, stratified=stratified & ~bad)
