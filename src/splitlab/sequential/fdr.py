"""False-discovery control with e-values: the e-BH procedure.

Wang & Ramdas (2022), "False discovery rate control with e-values", JRSS-B 84(3):822–852
(arXiv 2009.02824). An e-value is a nonnegative statistic with expectation at most 1 under
its null — a likelihood ratio, a point-null Bayes factor such as
:func:`splitlab.sequential.srm.sequential_srm`'s, or an e-process (a nonnegative
supermartingale) read at any stopping time. e-BH controls the FDR at α · m₀ / m ≤ α under
*arbitrary* dependence between the e-values, with no Benjamini-Yekutieli-style correction.
An e-process read at a stopping time is an e-value, so e-BH applied when the analyst
decides to stop — after monitoring continuously — keeps its guarantee; the union of the
rejections made at every look is not covered.
"""

from __future__ import annotations

import numpy as np

from splitlab._validation import as_float_array, check_alpha
from splitlab.errors import InvalidArgumentError

__all__ = ["e_bh"]


def e_bh(e_values: object, alpha: float = 0.05, *, axis: int = -1) -> np.ndarray:
    """Boolean mask of the hypotheses e-BH rejects at FDR level ``alpha``.

    With m e-values along ``axis`` and e_(1) ≥ e_(2) ≥ … ≥ e_(m) sorted in decreasing
    order, e-BH (Wang & Ramdas 2022) rejects the hypotheses with the k*
    largest e-values, where

        k* = max{k ∈ {1, …, m} : k · e_(k) / m ≥ 1 / α}    (k* = 0: reject nothing).

    Equivalently it rejects exactly the hypotheses with e_i ≥ m / (k* α), so ties at the
    threshold need no rule. Under any dependence the false discovery rate is at most
    α · m₀ / m, m₀ being the number of true nulls.

    NaN e-values (a metric with no result) are never rejected but still count in m, which
    keeps the guarantee: a missing e-value is treated as 0, a valid e-value. ``+inf`` is
    allowed (a null that the data contradict outright). Every other slice along ``axis``
    is an independent family.

    >>> e_bh([60.0, 30.0, 20.0, 1.5, 0.2], alpha=0.1).tolist()
    [True, True, True, False, False]

    Here m / (k α) = 50, 25, 16.7, 12.5, 10 for k = 1, …, 5, and e_(3) = 20 is the last
    to clear its bar. Like BH it is a step-up rule: five e-values of 12 are all rejected
    although none clears 50. Families run along ``axis``:

    >>> e_bh([[12.0, 12.0, 12.0, 12.0, 12.0], [12.0, 0.0, 0.0, 0.0, 0.0]], alpha=0.1).tolist()
    [[True, True, True, True, True], [False, False, False, False, False]]
    """
    values = as_float_array("e_values", e_values, finite=False)
    if np.any(values < 0.0):
        raise InvalidArgumentError("e_values", "must be non-negative (e-values are >= 0)")
    level = check_alpha(alpha)
    if values.ndim == 0:
        raise InvalidArgumentError("e_values", "needs a hypothesis axis: one e-value per test")
    try:
        moved = np.moveaxis(values, axis, -1)
    except np.exceptions.AxisError as exc:
        raise InvalidArgumentError(
            "axis", f"{axis} is out of range for e_values of shape {values.shape}"
        ) from exc

    hypotheses = moved.shape[-1]
    if hypotheses == 0:
        return np.zeros(values.shape, dtype=bool)
    # NaN sorts last in ascending order, so it stays last in the decreasing order and
    # never satisfies a comparison.
    decreasing = -np.sort(-moved, axis=-1)
    # The bars m / (k α), nonincreasing in k; the mask reuses the bar of k* so that it
    # holds exactly k* hypotheses (rank 1 stands in where k* = 0 and nothing is rejected).
    bars = hypotheses / (np.arange(1, hypotheses + 1) * level)
    passes = decreasing >= bars
    last_pass = hypotheses - np.argmax(passes[..., ::-1], axis=-1)
    k_star = np.where(np.any(passes, axis=-1), last_pass, 0)
    bar = bars[np.maximum(k_star, 1) - 1][..., np.newaxis]
    rejected = (k_star[..., np.newaxis] > 0) & (moved >= bar)
    return np.moveaxis(rejected, -1, axis)
