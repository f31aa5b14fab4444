"""Sample-ratio mismatch: does the traffic split match the configured weights?

Pearson's chi-square goodness-of-fit test (Pearson 1900, Phil. Mag. 50:157) of the unit
counts per arm against total · w / Σw, the check recommended by Fabijan et al. (2019),
"Diagnosing Sample Ratio Mismatch in Online Controlled Experiments", KDD '19.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
from scipy import special

from splitlab._validation import counts_and_weights
from splitlab.errors import DegenerateDataWarning

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SRMResult", "srm_test"]


@dataclass(frozen=True)
class SRMResult:
    """Chi-square SRM test per experiment (the leading axes of ``counts``).

    ``statistic``, ``p_value`` and ``df`` are NaN and ``error`` says why for experiments
    that cannot be tested; ``error`` is ``""`` elsewhere. A single experiment gives numpy
    floats and a ``str``.
    """

    statistic: np.ndarray | np.float64
    p_value: np.ndarray | np.float64
    df: np.ndarray | np.float64
    error: np.ndarray | str

    def to_frame(self) -> pd.DataFrame:
        """One row per experiment, one column per field."""
        import pandas as pd  # only here: importing the statistics stays light

        return pd.DataFrame(
            {field.name: np.ravel(getattr(self, field.name)) for field in fields(self)}
        )


def srm_test(counts: object, weights: object = None) -> SRMResult:
    """Chi-square goodness-of-fit of ``counts`` (last axis = arms) to the split ``weights``.

    The expected count of arm i is total · w_i / Σ_j w_j over the arms with positive
    weight; the statistic is Σ (observed − expected)² / expected over those arms, with
    (number of weighted arms − 1) degrees of freedom. Zero-weight arms are left out; units
    in one make that experiment an error. ``weights=None`` means an equal split. Leading
    axes are independent experiments. Experiments with no units or fewer than two weighted
    arms get NaN, an ``error`` message and one ``DegenerateDataWarning`` for the call.

    >>> result = srm_test([1000, 1100], [0.5, 0.5])
    >>> round(float(result.statistic), 4), round(float(result.p_value), 6), result.error
    (4.7619, 0.029096, '')
    """
    observed, split = counts_and_weights(counts, weights)

    weighted = split > 0.0
    weighted_arms = np.count_nonzero(weighted, axis=-1)
    total = np.sum(np.where(weighted, observed, 0.0), axis=-1)
    stray_units = np.any(~weighted & (observed > 0.0), axis=-1)
    error = np.select(
        [weighted_arms < 2, stray_units, total == 0.0],
        [
            "fewer than 2 arms have positive weight",
            "an arm with zero weight has units",
            "no units: every count is 0",
        ],
        default="",
    ).astype(object)
    testable = error == ""

    weight_sum = np.sum(np.where(weighted, split, 0.0), axis=-1, keepdims=True)
    expected = total[..., np.newaxis] * split / np.where(weight_sum > 0.0, weight_sum, 1.0)
    usable = weighted & (expected > 0.0)
    contributions = np.where(
        usable, (observed - expected) ** 2 / np.where(usable, expected, 1.0), 0.0
    )
    df = np.where(testable, weighted_arms - 1.0, np.nan)
    statistic = np.where(testable, np.sum(contributions, axis=-1), np.nan)
    p_value = np.where(testable, special.chdtrc(np.where(testable, df, 1.0), statistic), np.nan)

    if not np.all(testable):
        untestable = np.size(testable) - np.count_nonzero(testable)
        warnings.warn(
            f"{untestable} of {np.size(testable)} experiment(s) cannot be tested for sample-"
            "ratio mismatch; see the error field",
            DegenerateDataWarning,
            stacklevel=2,
        )

    return SRMResult(
        statistic=statistic[()] if statistic.ndim == 0 else statistic,
        p_value=p_value[()] if p_value.ndim == 0 else p_value,
        df=df[()] if df.ndim == 0 else df,
        error=str(error) if error.ndim == 0 else error,
    )
