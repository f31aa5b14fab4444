"""Multiple-testing adjustment of p-values: Bonferroni, Holm, Benjamini-Hochberg/-Yekutieli.

Each slice along ``axis`` is one family. NaN p-values stay NaN and are left out of their
family, so the family size m counts only the finite p-values of that slice. The adjusted
values equal statsmodels' ``multipletests(p, method=...)[1]`` on the finite p-values.
"""

from __future__ import annotations

import numpy as np

from splitlab._validation import as_float_array, check_choice
from splitlab.errors import InvalidArgumentError

__all__ = ["METHODS", "adjust_pvalues"]

METHODS = {
    "bonferroni": "bonferroni",
    "holm": "holm",
    "bh": "bh",
    "fdr_bh": "bh",
    "by": "by",
    "fdr_by": "by",
}


def adjust_pvalues(p: object, method: str = "holm", *, axis: int = -1) -> np.ndarray | np.float64:
    """Adjusted p-values, shaped like ``p``, each slice along ``axis`` one family.

    With the m finite p-values of a family sorted, p_(1) <= ... <= p_(m):

    - ``"bonferroni"``: min(1, m·p) (Dunn 1961, JASA 56:52);
    - ``"holm"``: max_{j<=i} min(1, (m − j + 1) p_(j)) (Holm 1979, Scand. J. Stat. 6:65);
    - ``"bh"`` / ``"fdr_bh"``: min_{j>=i} min(1, m p_(j) / j) (Benjamini & Hochberg 1995,
      JRSS-B 57:289);
    - ``"by"`` / ``"fdr_by"``: as BH with m replaced by m·Σ_{k<=m} 1/k (Benjamini &
      Yekutieli 2001, Ann. Stat. 29:1165, Theorem 1.3).

    >>> adjust_pvalues([0.01, 0.04, 0.03, 0.2], method="holm").round(4).tolist()
    [0.04, 0.09, 0.09, 0.2]
    >>> adjust_pvalues([0.01, 0.04, 0.03, 0.2], method="bh").round(4).tolist()
    [0.04, 0.0533, 0.0533, 0.2]
    """
    kind = METHODS[check_choice("method", method, tuple(METHODS))]
    raw = as_float_array("p", p, finite=False)
    if np.any(np.isinf(raw)) or np.any((raw < 0.0) | (raw > 1.0)):
        raise InvalidArgumentError("p", "p-values must lie in [0, 1] (NaN marks a missing one)")
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise InvalidArgumentError("axis", f"must be an integer, got {axis!r}")
    if raw.ndim == 0:
        if axis not in (0, -1):
            raise InvalidArgumentError("axis", f"{axis} is out of bounds for a scalar p")
        return adjust_pvalues(raw[np.newaxis], method)[0]
    if not -raw.ndim <= axis < raw.ndim:
        raise InvalidArgumentError("axis", f"{axis} is out of bounds for p with {raw.ndim} dims")

    if raw.size == 0:
        return raw.copy()

    families = np.moveaxis(raw, axis, -1)
    family_size = np.count_nonzero(~np.isnan(families), axis=-1)[..., np.newaxis]
    if kind == "bonferroni":
        adjusted = np.minimum(families * family_size, 1.0)
        return np.moveaxis(adjusted, -1, axis)

    # np.sort places NaN last, so ranks 1..m address exactly the finite p-values.
    order = np.argsort(families, axis=-1, kind="stable")
    ascending = np.take_along_axis(families, order, axis=-1)
    rank = np.arange(1, families.shape[-1] + 1)
    if kind == "holm":
        stepped = np.fmax.accumulate(ascending * (family_size - rank + 1), axis=-1)
    else:
        # Dividing by the fraction i/m (<= 1), as statsmodels does, keeps p_(m) exact.
        # An all-NaN family (m = 0) stays NaN; m = 1 there only avoids dividing by zero.
        nonempty_size = np.maximum(family_size, 1)
        fraction = rank / nonempty_size
        if kind == "by":
            harmonic = np.concatenate([[0.0], np.cumsum(1.0 / rank)])
            fraction = fraction / harmonic[nonempty_size]
        # fmin ignores the trailing NaNs while the running minimum sweeps down from p_(m).
        scaled = ascending / fraction
        stepped = np.fmin.accumulate(scaled[..., ::-1], axis=-1)[..., ::-1]
    stepped = np.where(np.isnan(ascending), np.nan, np.minimum(stepped, 1.0))

    adjusted = np.empty_like(stepped)
    np.put_along_axis(adjusted, order, stepped, axis=-1)
    return np.moveaxis(adjusted, -1, axis)
